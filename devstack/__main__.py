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


def _ensure_redis_server() -> None:
    """The shared-cache tests run a real ``redis-server`` (Debian's package): install it
    when it is missing and we may (root with apt-get), as we install the virtualenvs."""
    if shutil.which("redis-server"):
        return
    if os.name != "posix" or os.geteuid() != 0 or not shutil.which("apt-get"):
        print("redis-server is not installed and cannot be installed from here; the shared-"
              "cache tests will be skipped (install it with: apt-get install -y redis-server)",
              flush=True)
        return
    print("Installing redis-server (apt-get update && apt-get install -y redis-server) ...",
          flush=True)
    quiet = {"DEBIAN_FRONTEND": "noninteractive", **os.environ}
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=quiet)
    subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", "redis-server"],
                   check=True, env=quiet)
    print(f"redis-server installed at {shutil.which('redis-server')}", flush=True)


def main(argv: list[str]) -> int:
    command = argv[0] if argv else "demo"
    if command not in COMMANDS:
        print(USAGE)
        return 2
    if not _inside_project_venv():
        _ensure_venv()
        if command == "test":
            _setup_test_tools()
            _ensure_redis_server()
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
    """The command, run with the project's venv. Ctrl+C reaches it too (same process
    group): wait for it to end itself, with its own one-line goodbye."""
    child = subprocess.Popen(args, cwd=ROOT)
    while True:
        try:
            return child.wait()
        except KeyboardInterrupt:
            continue


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
