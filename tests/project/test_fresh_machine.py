"""``python3 -m devstack test`` on a machine without Python 3.13: the worker venv's setup says
what needed 3.13 in one line and goes on, and the worker tests skip with that line, except in
CI (``CI=true``), where they fail. The shared .venv-worker is never touched: every run points
``WORKER_VENV`` at a temporary directory."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.project.test_worker_index import worker_python

REPO = Path(__file__).resolve().parents[2]
# What the two setup scripts run on the worker's path, and nothing that could find a Python 3.13.
TOOLS = ("bash", "dirname", "cat", "sha256sum")
NEEDS_313 = (
    "the Azure Functions worker check (tests/project/test_worker_index.py) needs Python 3.13: install it "
    "(pyenv install 3.13, or apt install python3.13 where your distribution has it) or set "
    "WORKER_PYTHON=/path/to/python3.13, then run the tests again"
)


@pytest.fixture
def no_python_313(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """An environment whose PATH has the scripts' tools only (no python3.13, no pyenv)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in TOOLS:
        found = shutil.which(tool)
        assert found, tool
        (bin_dir / tool).symlink_to(found)
    env = {"PATH": str(bin_dir), "WORKER_VENV": str(tmp_path / "venv-worker")}
    monkeypatch.delenv("WORKER_PYTHON", raising=False)
    monkeypatch.delenv("CI", raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


def _setup(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(REPO / "tests" / "setup_test_venvs.sh"), "worker"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_setup_without_python_313_says_so_in_one_line_and_goes_on(no_python_313):
    result = _setup(no_python_313)
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout.splitlines() == [f"skipped: {NEEDS_313}"]
    assert not Path(no_python_313["WORKER_VENV"]).exists()


def test_setup_in_ci_without_python_313_says_the_worker_tests_will_fail(no_python_313):
    result = _setup({**no_python_313, "CI": "true"})
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout.splitlines() == [
        f"missing (CI=true: tests/project/test_worker_index.py will fail): {NEEDS_313}"
    ]


def test_the_worker_tests_skip_with_that_line(no_python_313):
    with pytest.raises(pytest.skip.Exception) as skipped:
        worker_python()
    assert str(skipped.value.msg) == NEEDS_313


def test_the_worker_tests_fail_in_ci(no_python_313, monkeypatch):
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception) as failed:
        worker_python()
    assert "does not exist" in failed.value.msg
    assert failed.value.msg.endswith(NEEDS_313)


def test_the_setup_script_names_the_python_it_would_use(tmp_path):
    """With a Python 3.13 on PATH (a stand-in named python3.13), --find-python prints it."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in TOOLS:
        (bin_dir / tool).symlink_to(shutil.which(tool) or tool)
    fake = bin_dir / "python3.13"
    fake.write_text("#!/bin/sh\nexit 0\n")
    fake.chmod(0o755)
    result = subprocess.run(
        ["bash", str(REPO / "tests" / "setup_worker_venv.sh"), "--find-python"],
        env={"PATH": str(bin_dir)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (result.returncode, result.stdout.strip()) == (0, str(fake))
