#!/usr/bin/env bash
# The test tools that cannot share the main .venv:
#  - .venv-worker: Python 3.13 with the Azure Functions Python worker (tests/test_worker_index.py)
#  - .venv-checkov: checkov, which pins an older pycep-parser than tests/test_infra.py needs
# Idempotent: each venv is rebuilt only when its requirements change.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"

stamp_ok() {  # stamp_ok <venv> <files...>: true when the venv was built from these files
    local venv="$1"; shift
    [ -f "$venv/.stamp" ] && [ "$(cat "$@" | sha256sum)" = "$(cat "$venv/.stamp")" ]
}

if ! stamp_ok .venv-checkov requirements-checkov.txt; then
    echo "Setting up .venv-checkov ..."
    python3 -m venv .venv-checkov
    .venv-checkov/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-checkov.txt
    cat requirements-checkov.txt | sha256sum > .venv-checkov/.stamp
fi

if ! stamp_ok .venv-worker requirements.txt tests/setup_worker_venv.sh; then
    echo "Setting up .venv-worker (Python 3.13, Azure Functions worker) ..."
    bash tests/setup_worker_venv.sh
    cat requirements.txt tests/setup_worker_venv.sh | sha256sum > .venv-worker/.stamp
fi
