"""``python3 -m devstack serve``: the stand-ins and the function app, until Ctrl+C.

The local loop without guessing: the app listens on a fixed port (``--port``, 7071 like
``func start``), the stand-ins on free ports it prints, and everything another command needs
goes to ``.devstack/``: ``local.settings.json`` (the app's settings, for ``python -m obo
diagnose --settings``), ``ca.pem`` (the stand-ins' CA, kept after the run so diagnose still
reads it) and ``serve.json`` (where ``python3 -m devstack token`` asks for tokens, with a
random key; removed when serve stops). Files are readable by this user only.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import secrets
import shutil
import sys
import threading
from pathlib import Path
from typing import Any

from devstack.devtokens import DevTokens
from devstack.functions_host import FunctionsHost, app_problems
from devstack.httpserver import Server, run_cli
from devstack.stack import DevStack

PROG = "python3 -m devstack serve"
USERS = (
    "alice (Contoso), bob (Fabrikam), carol (Fabrikam, guest in Contoso: --tenant contoso), "
    "dave (Contoso, MFA required), nina (Northwind: not allowed), tess (Tailspin: no consent)"
)


def write_private(path: Path, data: Any) -> None:
    """JSON only this user can read (the files name local endpoints and a key)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(data, f, indent=2)
    os.chmod(path, 0o600)


def run(argv: list[str], state_dir: Path) -> int:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.splitlines()[0])
    parser.add_argument(
        "--port",
        type=int,
        default=7071,
        help="the function app's port (default 7071; 0 picks a free port)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    return run_cli(PROG, args.port, lambda: _serve(args.port, state_dir))


def _serve(port: int, state_dir: Path) -> int:
    state_dir.mkdir(parents=True, exist_ok=True)
    state_file = state_dir / "serve.json"
    with DevStack() as stack:
        key = secrets.token_urlsafe(24)
        tokens = Server(DevTokens(stack.seed, key), stack.ca.server_context())
        try:
            ca = state_dir / "ca.pem"
            shutil.copyfile(stack.ca.ca_file, ca)
            settings = stack.settings(OBO_CA_BUNDLE=str(ca.resolve()))
            os.environ.update(settings)
            settings_file = state_dir / "local.settings.json"
            write_private(
                settings_file,
                {
                    "IsEncrypted": False,
                    "Values": {"FUNCTIONS_WORKER_RUNTIME": "python", **settings},
                },
            )
            with FunctionsHost(port=port) as host:
                problems = app_problems(host)
                if problems:
                    print(
                        f"{PROG}: the app refuses its settings:\n  " + "\n  ".join(problems),
                        file=sys.stderr,
                    )
                    return 1
                write_private(
                    state_file,
                    {"app": host.url, "tokens": tokens.url, "key": key, "ca": str(ca.resolve())},
                )
                try:
                    _banner(stack, host, settings_file)
                    threading.Event().wait()
                finally:
                    state_file.unlink(missing_ok=True)
        finally:
            tokens.stop()
    return 0


def _banner(stack: DevStack, host: FunctionsHost, settings_file: Path) -> None:
    here = Path.cwd()
    shown = settings_file.relative_to(here) if settings_file.is_relative_to(here) else settings_file
    print("Offline stand-ins (HTTPS, CA generated for this run):")
    for name, url in (
        ("Entra ID", stack.entra.base_url),
        ("Key Vault", stack.vault.base_url),
        ("Managed identity", stack.identity.endpoint),
        ("Graph", f"{stack.graph.base_url}/v1.0"),
        ("Orders API", stack.orders.base_url),
        ("SAML-only API", stack.saml_api.base_url),
        ("Function app", host.url),
    ):
        print(f"  {name:<17} {url}")
    print(f"\nThe app's settings are in {shown}.")
    print(f"Seeded users: {USERS}.\n")
    print("In another terminal, from the repository root:\n")
    print("  TOKEN=$(python3 -m devstack token --user alice)")
    for route in ("profile", "me", "apis/orders/orders"):
        print(f'  curl -H "Authorization: Bearer $TOKEN" {host.url}/api/{route}')
    print(
        f"  python3 -m devstack token --user carol --tenant contoso | "
        f".venv/bin/python -m obo diagnose --settings {shown}\n"
    )
    print("Serving until Ctrl+C.", flush=True)
