#!/usr/bin/env bash
# The test tools that cannot share the main .venv:
#  - .venv-worker: Python 3.13 with the Azure Functions Python worker (tests/project/test_worker_index.py)
#  - .venv-checkov: checkov, which pins an older pycep-parser than tests/project/test_infra.py needs
# Idempotent: each venv is rebuilt only when its requirements change.
# Without Python 3.13 the worker venv is left out with one line saying so (exit status 0): the
# worker tests then skip with the same line, or fail when CI=true.
# Usage: bash tests/setup_test_venvs.sh [checkov] [worker]   (default both; WORKER_VENV=path)
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
tools=" ${*:-checkov worker} "
worker_venv="${WORKER_VENV:-.venv-worker}"

stamp_ok() {  # stamp_ok <venv> <files...>: true when the venv was built from these files
    local venv="$1"; shift
    [ -f "$venv/.stamp" ] && [ "$(cat "$@" | sha256sum)" = "$(cat "$venv/.stamp")" ]
}

if [[ "$tools" == *" checkov "* ]] && ! stamp_ok .venv-checkov requirements-checkov.txt; then
    echo "Setting up .venv-checkov ..."
    python3 -m venv .venv-checkov
    .venv-checkov/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-checkov.txt
    cat requirements-checkov.txt | sha256sum > .venv-checkov/.stamp
fi

if [[ "$tools" == *" worker "* ]] \
        && ! stamp_ok "$worker_venv" requirements.txt tests/setup_worker_venv.sh; then
    if ! missing="$(WORKER_VENV="$worker_venv" bash tests/setup_worker_venv.sh --find-python \
            2>&1 >/dev/null)"; then
        if [ "${CI:-}" = "true" ]; then
            echo "missing (CI=true: tests/project/test_worker_index.py will fail): $missing"
        else
            echo "skipped: $missing"
        fi
    else
        echo "Setting up $worker_venv (Python 3.13, Azure Functions worker) ..."
        WORKER_VENV="$worker_venv" bash tests/setup_worker_venv.sh
        cat requirements.txt tests/setup_worker_venv.sh | sha256sum > "$worker_venv/.stamp"
    fi
fi
