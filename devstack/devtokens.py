"""``python3 -m devstack token``: an access token for a seeded user, from a running ``serve``.

The stand-ins' signing keys live only in the ``serve`` process (fresh each run), so the
token is minted there: ``serve`` runs :class:`DevTokens`, a local-only endpoint that is not
part of Entra ID (a real client signs the user in through MSAL instead), and writes where it
listens, with a random key, to ``.devstack/serve.json`` (readable by this user only).
"""

from __future__ import annotations

import argparse
import hmac
import json
import sys
from pathlib import Path

import requests

from devstack.httpserver import Request, Response, Service
from devstack.seed import Seed

# What --api can name: the app the token is for, and the scope asked when --scope is not given.
AUDIENCES = {"api": "access_as_user", "orders": "Orders.Read", "graph": "User.Read"}


class DevTokens(Service):
    """``POST /token`` with ``{"user", "tenant"?, "api"?, "scopes"?}`` and the serve key."""

    name = "devtokens"

    def __init__(self, seed: Seed, key: str) -> None:
        super().__init__()
        self.seed, self.key = seed, key
        self.route("POST", "/token", "token", self._token)

    def _token(self, req: Request) -> Response:
        if not hmac.compare_digest(req.headers.get("x-devstack-key", ""), self.key):
            return Response.json(
                {"error": "this endpoint needs the key in .devstack/serve.json"}, 403
            )
        try:
            ask = req.json()
            directory = self.seed.directory
            user = directory.users[_upn(self.seed, str(ask["user"]))]
            ref = str(ask.get("tenant") or user.home_tenant)  # a name, a domain or an id
            tenant = directory.tenant(ref) or directory.tenant(f"{ref}.onmicrosoft.com")
            if tenant is None:
                raise KeyError(ref)
            kind = str(ask.get("api") or "api")
            apis = {"api": self.seed.api, "orders": self.seed.other_api, "graph": self.seed.graph}
            resource = apis[kind]
            scopes = list(ask.get("scopes") or [AUDIENCES[kind]])
        except (ValueError, KeyError, TypeError):
            return Response.json({"error": "unknown user, tenant or api"}, 400)
        if tenant.id not in user.object_ids:
            return Response.json({"error": f"{user.name} is not in {tenant.domain}"}, 400)
        unknown = [s for s in scopes if s not in resource.scopes]
        if unknown:
            missing = " ".join(unknown)
            return Response.json({"error": f"{resource.name} has no scope {missing}"}, 400)
        token = self.seed.directory.user_token(user, tenant, self.seed.spa, resource, scopes)
        return Response.json({"access_token": token})


def _upn(seed: Seed, name: str) -> str:
    users = seed.directory.users.items()
    found = (upn for upn, u in users if name.lower() in (u.name.lower(), upn))
    return next(found, "")


def main(argv: list[str], state_dir: Path) -> int:
    parser = argparse.ArgumentParser(
        prog="python3 -m devstack token",
        description="Print an access token for a seeded user (needs `python3 -m devstack serve`).",
    )
    parser.add_argument("--user", default="alice", help="alice, bob, carol, dave, nina or tess")
    parser.add_argument(
        "--tenant",
        help="contoso, fabrikam, northwind or tailspin (default: "
        "the user's home tenant; carol is also a guest in contoso)",
    )
    parser.add_argument(
        "--api",
        choices=sorted(AUDIENCES),
        default="api",
        help="the token's audience: api = the function app (default)",
    )
    parser.add_argument(
        "--scope",
        action="append",
        help="a scope to ask for (repeatable; default: access_as_user, Orders.Read or User.Read)",
    )
    args = parser.parse_args(argv)
    prog = parser.prog
    try:
        state = json.loads((state_dir / "serve.json").read_text())
    except (OSError, ValueError):
        print(
            f"{prog}: no devstack is serving; start `python3 -m devstack serve` first.",
            file=sys.stderr,
        )
        return 1
    ask = {"user": args.user, "tenant": args.tenant, "api": args.api, "scopes": args.scope}
    try:
        reply = requests.post(
            f"{state['tokens']}/token",
            json=ask,
            timeout=10,
            headers={"X-Devstack-Key": state["key"]},
            verify=state["ca"],
        )
    except requests.RequestException:
        print(
            f"{prog}: the devstack at {state['tokens']} does not answer; is `serve` still running?",
            file=sys.stderr,
        )
        return 1
    if reply.status_code != 200:
        print(f"{prog}: {reply.json().get('error')}", file=sys.stderr)
        return 2
    print(reply.json()["access_token"])
    return 0
