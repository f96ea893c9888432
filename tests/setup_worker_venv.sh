#!/usr/bin/env bash
# Create <repo>/.venv-worker: a Python 3.13 venv with the Azure Functions Python worker
# (azure-functions-runtime, the "V2 library worker" the Functions host runs for Python 3.13+),
# the app's runtime requirements and the host's gRPC message modules (protos), so that
# tests/worker_index_check.py can index function_app.py exactly as the host does.
#
# The protos are not a package of their own: the generated FunctionRpc_pb2 module ships in the
# tests/protos folder of the azure-functions-runtime-v1 wheel. Only that folder is unpacked
# (to .venv-worker/protos/protos), never the wheel's top-level "tests" package.
#
# Usage: bash tests/setup_worker_venv.sh        (idempotent; WORKER_PYTHON=/path/python3.13 to
#        choose the Python, WORKER_VENV=/path/venv for another place than .venv-worker)
#        bash tests/setup_worker_venv.sh --find-python
#            prints the Python 3.13 it would use; without one, exits 3 and says on one line
#            (stderr) what needs it and how to get it (tests/setup_test_venvs.sh, the tests).
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${WORKER_VENV:-$repo/.venv-worker}"
NO_PYTHON="the Azure Functions worker check (tests/project/test_worker_index.py) needs Python 3.13: \
install it (pyenv install 3.13, or apt install python3.13 where your distribution has it) \
or set WORKER_PYTHON=/path/to/python3.13, then run the tests again"

find_python() {
    if [ -n "${WORKER_PYTHON:-}" ]; then echo "$WORKER_PYTHON"; return; fi
    # pyenv's shim exists for every installed version but only runs the selected ones.
    if python3.13 -c "" >/dev/null 2>&1; then command -v python3.13; return; fi
    if command -v pyenv >/dev/null 2>&1; then
        local version
        version="$(pyenv versions --bare | grep -E '^3\.13(\.|$)' | sort -V | tail -n 1 || true)"
        if [ -n "$version" ]; then PYENV_VERSION="$version" pyenv which python3.13; return; fi
    fi
    echo "$NO_PYTHON" >&2
    exit 3
}

python="$(find_python)"
"$python" -c 'import sys; assert sys.version_info >= (3, 13), sys.version'
if [ "${1:-}" = "--find-python" ]; then echo "$python"; exit 0; fi

if [ ! -x "$venv/bin/python" ]; then
    "$python" -m venv "$venv"
fi
pip=("$venv/bin/python" -m pip --disable-pip-version-check --quiet)
"${pip[@]}" install --upgrade pip
# The worker (and what the generated protos import), then the app's own runtime dependencies.
"${pip[@]}" install "azure-functions-runtime>=1.1,<2" "protobuf>=5.29,<7" "grpcio>=1.70,<2"
"${pip[@]}" install -r "$repo/requirements.txt"

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
"${pip[@]}" download --no-deps --ignore-requires-python --dest "$tmp" \
    "azure-functions-runtime-v1>=1.1,<2"
rm -rf "$venv/protos"
mkdir -p "$venv/protos"
"$venv/bin/python" - "$tmp" "$venv/protos" <<'EOF'
import pathlib, sys, zipfile

wheel = next(pathlib.Path(sys.argv[1]).glob("azure_functions_runtime_v1-*.whl"))
target = pathlib.Path(sys.argv[2])
with zipfile.ZipFile(wheel) as archive:
    names = [n for n in archive.namelist() if n.startswith("tests/protos/") and n.endswith(".py")]
    if not any(n.endswith("/FunctionRpc_pb2.py") for n in names):
        sys.exit(f"{wheel.name} has no tests/protos/FunctionRpc_pb2.py")
    for name in names:
        out = target / name.removeprefix("tests/")
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(archive.read(name))
print(f"protos from {wheel.name} -> {target / 'protos'}")
EOF

"$venv/bin/python" - "$venv/protos" <<'EOF'
import sys
sys.path.insert(0, sys.argv[1])
import azure_functions_runtime.loader  # noqa: F401
from protos import FunctionRpc_pb2  # noqa: F401
print("worker venv ready:", sys.prefix)
EOF
