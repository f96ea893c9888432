"""The real Azure Functions Python worker (Python 3.13) indexes function_app.py as in Azure.

Runs tests/worker_index_check.py with <repo>/.venv-worker (or ``WORKER_VENV``), made by
``bash tests/setup_worker_venv.sh``. Without that venv these tests fail and say so; on a machine
without Python 3.13 they skip with the setup script's one line (how to get it), except in CI
(``CI=true``), where the worker check is required.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from devstack.functions_host import FunctionsHost

pytestmark = pytest.mark.worker

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "tests" / "worker_index_check.py"
SETUP = "bash tests/setup_worker_venv.sh"
EVERY_METHOD = ["GET", "POST", "PUT", "PATCH", "DELETE"]

GOOD_APP = """
import azure.functions as func

app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)


@app.route(route="me", methods=["GET"])
def me(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse("me")


@app.route(route="downstream/{*path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
def downstream(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse("relay")


@app.route(route="health", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def health(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse("ok")
"""

BROKEN_APPS = {
    # The trigger binding is named "req" (the default) but the parameter is not: the worker
    # refuses to load the function, while the function still imports fine on Python 3.11.
    "FunctionLoadError": """
        import azure.functions as func
        app = func.FunctionApp()
        @app.route(route="me")
        def me(request: func.HttpRequest) -> func.HttpResponse:
            return func.HttpResponse("me")
    """,
    "ModuleNotFoundError": """
        import azure.functions as func
        import package_that_is_not_in_requirements
        app = func.FunctionApp()
    """,
    "ValueError": """
        import azure.functions as func
        app = func.FunctionApp()
        @app.function_name("same")
        @app.route(route="a")
        def a(req: func.HttpRequest) -> func.HttpResponse:
            return func.HttpResponse("a")
        @app.function_name("same")
        @app.route(route="b")
        def b(req: func.HttpRequest) -> func.HttpResponse:
            return func.HttpResponse("b")
    """,
}


def worker_python() -> Path:
    """The worker venv's Python; without the venv, skip when this machine has no Python 3.13
    (outside CI), else fail saying how to create it."""
    venv = Path(os.environ.get("WORKER_VENV") or REPO / ".venv-worker")
    python = venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    if python.exists():
        return python
    found = subprocess.run(
        ["bash", str(REPO / "tests" / "setup_worker_venv.sh"), "--find-python"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    if found.returncode != 0 and os.environ.get("CI") != "true":
        pytest.skip(found.stderr.strip())
    pytest.fail(
        f"{venv} does not exist: the Azure Functions Python worker needs a Python 3.13 venv. "
        f"Create it with `{SETUP}` (from the repo root); {found.stderr.strip()}".rstrip("; "),
        pytrace=False,
    )


def run_check(
    app: Path, settings: Path | None = None
) -> tuple[subprocess.CompletedProcess[str], dict]:
    command = [str(worker_python()), str(SCRIPT), "--app", str(app)]
    if settings is not None:
        command += ["--settings", str(settings)]
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    proc = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=REPO, env=env)
    try:
        summary = json.loads(proc.stdout)
    except json.JSONDecodeError:
        pytest.fail(
            f"no JSON from the check (exit {proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
        )
    return proc, summary


def by_name(summary: dict) -> dict[str, dict]:
    return {f["name"]: f for f in summary["functions"]}


def test_worker_indexes_the_function_app() -> None:
    app = REPO / "function_app.py"
    assert app.exists(), "function_app.py is missing at the repo root"
    sample = REPO / "local.settings.sample.json"
    proc, summary = run_check(app, sample if sample.exists() else None)
    assert proc.returncode == 0 and summary["ok"], proc.stderr
    functions = by_name(summary)
    assert {"me", "downstream", "health", "profile", "relay", "ready"} <= set(functions), functions
    assert functions["profile"]["route"] == "profile"  # @obo.authorize: only req is bound
    assert functions["relay"]["route"] == "apis/{name}/{*path}"
    assert functions["me"]["route"] == "me"
    assert functions["me"]["methods"] == ["GET"]
    assert functions["downstream"]["route"] == "downstream/{*path}"
    assert sorted(functions["downstream"]["methods"]) == sorted(EVERY_METHOD)
    assert functions["health"]["route"] == "health"
    assert functions["health"]["methods"] == ["GET"]
    assert functions["health"]["auth_level"] == "anonymous"
    assert functions["ready"]["auth_level"] == "function"  # Azure asks for a function key
    assert all(f["trigger"] == "httpTrigger" for f in functions.values())


def test_worker_summary_of_a_known_app(tmp_path: Path) -> None:
    (tmp_path / "function_app.py").write_text(GOOD_APP)
    proc, summary = run_check(tmp_path / "function_app.py")
    assert proc.returncode == 0, proc.stderr
    assert summary["python"].startswith("3.13")
    assert summary["azure-functions-runtime"]
    functions = by_name(summary)
    assert functions["downstream"] == {
        "name": "downstream",
        "function_id": functions["downstream"]["function_id"],
        "script_file": "function_app.py",
        "trigger": "httpTrigger",
        "bindings": ["http", "httpTrigger"],
        "route": "downstream/{*path}",
        "methods": EVERY_METHOD,
        "auth_level": "function",
    }
    assert functions["health"]["auth_level"] == "anonymous"


def test_local_host_reads_routes_as_the_worker_does(tmp_path: Path) -> None:
    """devstack's FunctionsHost (Python 3.11/3.13) and the worker agree on every route."""
    (tmp_path / "function_app.py").write_text(GOOD_APP)
    _, summary = run_check(tmp_path / "function_app.py")
    host = FunctionsHost(tmp_path / "function_app.py", port=0, stream=io.StringIO())
    with host:
        local = {r.name: (r.template, list(r.methods), r.auth_level) for r in host.routes()}
    worker = {f["name"]: (f["route"], f["methods"], f["auth_level"]) for f in summary["functions"]}
    assert local == worker


@pytest.mark.parametrize("error", sorted(BROKEN_APPS))
def test_a_broken_app_fails_the_check(tmp_path: Path, error: str) -> None:
    (tmp_path / "function_app.py").write_text(textwrap.dedent(BROKEN_APPS[error]))
    proc, summary = run_check(tmp_path / "function_app.py")
    assert proc.returncode != 0
    assert summary == {"ok": False, "error": error, "message": summary["message"]}
    assert "Traceback" in proc.stderr


def test_the_check_refuses_an_older_python(tmp_path: Path) -> None:
    if sys.version_info >= (3, 13):
        pytest.skip("this interpreter is new enough to run the worker")
    (tmp_path / "function_app.py").write_text(GOOD_APP)
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--app", str(tmp_path / "function_app.py")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 1
    assert "3.13" in json.loads(proc.stdout)["message"]
