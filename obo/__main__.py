"""``python -m obo diagnose [TOKEN] [--settings local.settings.json] [--json]``.

Only adapts: reads the token (argument, or stdin so it stays out of shell history and ``ps``)
and the app settings, prints :func:`obo.diagnose.diagnose`'s report as text or JSON, and exits
0 when API 1 can use the token On-Behalf-Of, 1 when it cannot, 2 on bad input. Offline.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import sys
from pathlib import Path
from typing import Any, NoReturn

from obo.diagnose import Report, diagnose, relative
from obo.errors import OboError

KINDS = {
    "delegated": "delegated access token",
    "id_token": "ID token",
    "app_only": "app-only access token",
    "graph": "access token for Microsoft Graph",
    "b2c": "Azure AD B2C token",
}
# Anything shaped like a token or a long credential, in case argparse echoes an argument.
_SECRETISH = re.compile(r"\S*[\w-]{8,}\.[\w-]{8,}\S*|\S{40,}")


class BadInput(Exception):
    """The input cannot be diagnosed at all (exit status 2)."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # argparse quotes stray arguments: redact them
        self.print_usage(sys.stderr)
        self.exit(2, f"{self.prog}: error: {_SECRETISH.sub('<redacted>', message)}\n")


def main(argv: list[str] | None = None) -> int:
    parser = _Parser(prog="python -m obo", description="Offline tools for the OBO middle tier.")
    commands = parser.add_subparsers(dest="command", required=True)
    cmd = commands.add_parser(
        "diagnose",
        help="explain whether API 1 can exchange a token On-Behalf-Of",
        description="Explain offline whether API 1 can exchange TOKEN On-Behalf-Of, and what "
        "Entra would answer if not. The signature is not checked; the token is never printed.",
    )
    cmd.add_argument("token", nargs="?", help="the token; omit or '-' to read it from stdin")
    cmd.add_argument(
        "--settings",
        metavar="FILE",
        help="a local.settings.json whose Values "
        "hold the OBO_* settings (default: the environment)",
    )
    cmd.add_argument("--json", action="store_true", help="print the report as JSON")
    args = parser.parse_args(argv)
    try:
        report = diagnose(read_token(args.token), read_settings(args.settings))
    except (BadInput, OboError) as exc:
        print(f"python -m obo diagnose: {getattr(exc, 'detail', exc)}", file=sys.stderr)
        return 2
    print(json.dumps(report.as_dict(), indent=2) if args.json else render(report))
    return 0 if report.usable_for_obo else 1


def read_token(argument: str | None) -> str:
    """The token from the argument or stdin; a pasted ``Authorization: Bearer`` is stripped."""
    if argument is None or argument == "-":
        if sys.stdin is None or sys.stdin.isatty():
            raise BadInput("give the token as an argument or on stdin")
        argument = sys.stdin.read()
    token = argument.strip()
    if token.lower().startswith("authorization:"):
        token = token.partition(":")[2].strip()
    if token[:7].lower() == "bearer ":
        token = token[7:].strip()
    return token


def read_settings(path: str | None) -> dict[str, str]:
    """``OBO_*`` from the environment, or a local.settings.json's ``Values`` when given."""
    if path is None:
        return {k: v for k, v in os.environ.items() if k.startswith("OBO_")}
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise BadInput(f"cannot read {path}: {exc.strerror}") from None
    except ValueError as exc:
        raise BadInput(f"{path} is not JSON ({exc})") from None
    values = data.get("Values") if isinstance(data, dict) else None
    if not isinstance(values, dict):
        raise BadInput(f'{path} has no "Values" object')
    return {str(k): str(v) for k, v in values.items() if v is not None}


def render(report: Report) -> str:
    """The short human report; never the token, whose facts are all it shows."""
    d: dict[str, Any] = report.as_dict()
    exp = d["expires_at"]
    if exp is None:
        expiry = "no valid exp claim"
    else:
        left = relative(exp - report.now)
        expiry = f"{_utc(exp)}, " + (f"expired {left} ago" if d["expired"] else f"valid for {left}")
    who = "guest" + (f" (home {d['home_tenant']})" if d["home_tenant"] else "")
    rows = [
        (
            "Token",
            f"{KINDS[d['kind']]}, v{d['version'].split('.')[0]} (signature not checked offline)",
        ),
        ("Issuer", d["issuer"] or "-"),
        ("Tenant", d["tenant"] or "-"),
        ("Audience", d["audience"] or "-"),
        ("Scopes", " ".join(d["scopes"]) or "-"),
        ("Roles", " ".join(d["roles"]) or "-"),
        ("Client app", d["client_app"] or "-"),
        ("User", f"{d['user']}, {who if d['guest'] else 'member'}" if d["user"] else "-"),
        ("Expires", expiry),
        ("Authority", d["authority"] or "-"),
    ]
    lines = [f"{name:<11} {value}" for name, value in rows]
    if report.usable_for_obo:
        lines += ["", "Verdict: API 1 can use this token for the On-Behalf-Of exchange."]
    else:
        lines += ["", "Verdict: API 1 cannot use this token for the On-Behalf-Of exchange."]
    for p in d["problems"]:
        entra = (
            f"Entra would answer {p['aadsts']}"
            if p["aadsts"]
            else "a setting"
            if p["code"] == "OBO1001"
            else "API 1 refuses it itself; Entra is not asked"
        )
        lines += [f"  {p['code']} ({entra})", f"    {p['message']}"]
        if p["meaning"]:
            lines.append(f"    {p['aadsts']}: {p['meaning']}")
        lines.append(f"    Fix: {p['fix']}")
    lines += ["", *(f"Note: {note}" for note in d["notes"])]
    if report.settings_missing:
        lines.append("Settings incomplete (API 1 needs them to start):")
        lines += [f"  {why}" for why in report.settings_missing.values()]
    return "\n".join(lines)


def _utc(epoch: int) -> str:
    try:
        return dt.datetime.fromtimestamp(epoch, dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    except (OverflowError, OSError, ValueError):
        return f"exp {epoch}"


if __name__ == "__main__":
    sys.exit(main())
