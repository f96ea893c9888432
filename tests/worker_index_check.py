"""Index function_app.py with the real Azure Functions Python worker, as the host does in Azure.

Run with the Python 3.13 venv made by ``bash tests/setup_worker_venv.sh``::

    .venv-worker/bin/python tests/worker_index_check.py [--app function_app.py]
        [--settings local.settings.sample.json] [--protos .venv-worker/protos]

It follows the worker's own sequence (azure-functions-runtime, the library the Functions host
loads for Python 3.13+): ``load_binding_registry()``, ``index_function_app(path)``, then
``process_indexed_function(protos, Registry(), indexed, folder)``, which checks each
function's parameters against its bindings and builds the ``RpcFunctionMetadata`` the worker
returns to the host. In Azure the host supplies ``protos`` (the generated gRPC messages);
here they come from the ``tests/protos`` folder of the azure-functions-runtime-v1 wheel.
Then it applies the host's own function-name rule ("Azure Functions naming rules": a letter
first, then letters, digits, ``_`` or ``-``, at most 127 characters).

Prints one JSON summary on stdout (functions with route, methods, auth level); exits 1 with
``{"ok": false, ...}`` and the traceback on stderr when anything fails.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import sys
import traceback
from importlib import metadata
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
FUNCTION_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_\-]{0,126}$")


def load_settings(path: Path) -> None:
    """App settings the app may read at import (``Values`` of a local.settings file)."""
    values = json.loads(path.read_text()).get("Values", {})
    for key, value in values.items():
        os.environ.setdefault(key, str(value))


def index(app_path: Path, protos_dir: Path) -> list[dict[str, object]]:
    sys.path.insert(0, str(protos_dir))
    import protos  # the host's gRPC messages: FunctionRpc_pb2 and friends
    from azure_functions_runtime.bindings.meta import load_binding_registry
    from azure_functions_runtime.functions import Registry
    from azure_functions_runtime.loader import index_function_app, process_indexed_function

    folder = app_path.parent
    sys.path.insert(0, str(folder))  # the worker imports the app by module name from its folder
    os.chdir(folder)
    load_binding_registry()
    indexed = index_function_app(str(app_path))
    if not indexed:
        raise ValueError(f"no functions found in {app_path}")
    results, _logs = process_indexed_function(protos, Registry(), indexed, str(folder))

    summary = []
    for meta in results:
        if not FUNCTION_NAME.match(meta.name):
            raise ValueError(f"invalid function name for the host: {meta.name!r}")
        bindings = [json.loads(raw) for raw in meta.raw_bindings]
        trigger = next(
            (
                b
                for b in bindings
                if b.get("direction") == "IN" and str(b.get("type", "")).endswith("Trigger")
            ),
            {},
        )
        entry: dict[str, object] = {
            "name": meta.name,
            "function_id": meta.function_id,
            "script_file": meta.script_file,
            "trigger": trigger.get("type"),
            "bindings": sorted(str(b.get("type")) for b in bindings),
        }
        if trigger.get("type") == "httpTrigger":
            entry["route"] = trigger.get("route")
            entry["methods"] = [str(m).upper() for m in trigger.get("methods") or []] or None
            entry["auth_level"] = str(trigger.get("authLevel") or "function").lower()
        summary.append(entry)
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--app", type=Path, default=REPO / "function_app.py")
    parser.add_argument(
        "--settings",
        type=Path,
        default=None,
        help="a local.settings.json-style file whose Values become app settings",
    )
    parser.add_argument("--protos", type=Path, default=Path(sys.prefix) / "protos")
    args = parser.parse_args(argv)
    try:
        if sys.version_info < (3, 13):
            raise RuntimeError("azure-functions-runtime needs Python 3.13+: use .venv-worker")
        if not (args.protos / "protos" / "FunctionRpc_pb2.py").exists():
            raise FileNotFoundError(f"no protos in {args.protos}: run tests/setup_worker_venv.sh")
        if args.settings is not None:
            load_settings(args.settings)
        with contextlib.redirect_stdout(sys.stderr):  # stdout carries only the summary
            functions = index(args.app.resolve(), args.protos.resolve())
    except BaseException as exc:  # noqa: BLE001 - any failure is the answer, reported as JSON
        traceback.print_exc()
        print(json.dumps({"ok": False, "error": type(exc).__name__, "message": str(exc)}))
        return 1
    print(
        json.dumps(
            {
                "ok": True,
                "app": str(args.app),
                "python": sys.version.split()[0],
                "azure-functions": metadata.version("azure-functions"),
                "azure-functions-runtime": metadata.version("azure-functions-runtime"),
                "functions": functions,
            },
            indent=2,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
