"""``python3 -m devstack demo|serve|token|test``: set up the virtual environments, then run.

Only the standard library is used until the project's own ``.venv`` exists, so every
command works from a fresh clone with nothing but Python installed.

- ``demo [--once] [--port N]``: one On-Behalf-Of round trip you can follow, then serving;
- ``serve [--port N]``: the stand-ins and the app until Ctrl+C, settings in ``.devstack/``;
- ``token [--user U] [--tenant T] [--api A] [--scope S]``: a token from a running ``serve``;
- ``test [pytest args]``: the suite.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / os.environ.get("OBO_VENV", ".venv")  # e.g. OBO_VENV=.venv-py313 for a second Python
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PYTHON = BIN / ("python.exe" if os.name == "nt" else "python")
REQUIREMENTS = ["requirements.txt", "requirements-dev.txt", "requirements-infra.txt"]
STATE = Path(os.environ.get("OBO_DEVSTACK_STATE") or ROOT / ".devstack")  # serve's files
COMMANDS = ("demo", "serve", "token", "test")
USAGE = (
    "usage: python3 -m devstack demo [--once] [--port N] [--shared-cache] | serve [--port N] |\n"
    "       token [--user U] [--tenant T] [--api api|orders|graph] [--scope S] | test [pytest args]"
)


def _inside_project_venv() -> bool:
    return Path(sys.prefix).resolve() == VENV.resolve()


def _ensure_venv() -> None:
    files = [ROOT / name for name in REQUIREMENTS if (ROOT / name).exists()]
    digest = hashlib.sha256(b"".join(f.read_bytes() for f in files)).hexdigest()
    stamp = VENV / ".requirements.sha256"
    if stamp.exists() and stamp.read_text() == digest and PYTHON.exists():
        return
    if not PYTHON.exists():
        print(f"Creating {VENV.name} with {sys.executable} ...", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    args = [str(PYTHON), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    for f in files:
        if f.name != "requirements.txt":
            args += ["-r", str(f)]
    print("Installing dependencies ...", flush=True)
    subprocess.run(args, check=True, cwd=ROOT)
    stamp.write_text(digest)


def _setup_test_tools() -> None:
    """The Functions worker check (Python 3.13) and checkov live in venvs of their own."""
    script = ROOT / "tests" / "setup_test_venvs.sh"
    if script.exists():
        subprocess.run(["bash", str(script)], check=True, cwd=ROOT)


# Debian packages the suite runs for real: the shared-cache tests start redis-server; the
# certificate script's tests run under BusyBox and GNU tools, with jq (tests/project/test_infra.py).
SYSTEM_PACKAGES = {"redis-server": "redis-server", "busybox": "busybox", "jq": "jq"}


def _ensure_system_packages() -> None:
    """Install the missing ones when we may (root with apt-get), as we install the venvs."""
    missing = [pkg for command, pkg in SYSTEM_PACKAGES.items() if not shutil.which(command)]
    if not missing:
        return
    wanted = " ".join(missing)
    if os.name != "posix" or os.geteuid() != 0 or not shutil.which("apt-get"):
        print(
            f"{wanted}: not installed and cannot be installed from here; the tests that need "
            f"them will say so (install with: apt-get install -y {wanted})",
            flush=True,
        )
        return
    print(f"Installing {wanted} (apt-get update && apt-get install -y {wanted}) ...", flush=True)
    quiet = {"DEBIAN_FRONTEND": "noninteractive", **os.environ}
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=quiet)
    subprocess.run(
        ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing],
        check=True,
        env=quiet,
    )


def main(argv: list[str]) -> int:
    command = argv[0] if argv else "demo"
    if command not in COMMANDS:
        print(USAGE)
        return 2
    if not _inside_project_venv():
        _ensure_venv()
        if command == "test":
            _setup_test_tools()
            _ensure_system_packages()
        return _child([str(PYTHON), "-m", "devstack", *argv])
    sys.path.insert(0, str(ROOT))
    if command == "token":  # stays in the caller's directory: only prints
        from devstack.devtokens import main as token

        return token(argv[1:], STATE)
    os.chdir(ROOT)
    if command == "test":
        import pytest

        return int(pytest.main(argv[1:]))
    if command == "serve":
        from devstack.serve import run as serve

        return serve(argv[1:], STATE)
    from devstack.demo import run

    return run(argv[1:])


def _child(args: list[str]) -> int:
    """The command, run with the project's venv. Ctrl+C at a terminal reaches it too (same
    process group): wait for it to end itself, with its own one-line goodbye. A SIGINT sent
    to this process alone (``kill -INT``, a supervisor) is passed on if the child has not
    ended within a moment, so the child never outlives the command that started it."""
    child = subprocess.Popen(args, cwd=ROOT)
    while True:
        try:
            return child.wait()
        except KeyboardInterrupt:
            try:
                return child.wait(timeout=2)
            except subprocess.TimeoutExpired:
                child.send_signal(signal.SIGINT)
            except KeyboardInterrupt:
                continue


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
