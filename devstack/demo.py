"""The main job, offline: one complete On-Behalf-Of round trip a person can follow.

Starts the stand-ins and the function app (served like Core Tools would), signs in Carol —
a Fabrikam user invited as a guest into Contoso, so the tenant-specific authority matters —
calls ``/api/me``, and shows the exchange and the downstream answer; then ``/api/profile``,
the worked example of your own function (two Graph calls, one exchange, cached for the next
request). Then keeps serving and prints a ready-to-paste ``curl`` with a fresh token
(``--once`` exits after the round trip). Ctrl+C and a busy port end with one line.

``--shared-cache`` runs the fleet instead: a local ``redis-server`` and two Function App
instances (separate processes, as Azure scales out) sharing it through ``OBO_CACHE_URL``;
the second instance answers Carol with no exchange of its own.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import jwt
import requests

from devstack.functions_host import FunctionsHost, run_cli
from devstack.instances import Instance
from devstack.redis_server import RedisServer
from devstack.stack import DevStack

SHOWN_CLAIMS = ("aud", "iss", "tid", "oid", "name", "preferred_username", "idp", "scp", "ver")


def _claims(token: str) -> dict[str, object]:
    claims = jwt.decode(token, options={"verify_signature": False})
    return {k: claims[k] for k in SHOWN_CLAIMS if k in claims}


def _step(n: int, title: str) -> None:
    print(f"\n[{n}] {title}")


def run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m devstack demo")
    parser.add_argument("--once", action="store_true", help="exit after the round trip")
    parser.add_argument("--port", type=int, default=7071, help="function app port (0 = any)")
    parser.add_argument(
        "--shared-cache",
        action="store_true",
        help="two instances sharing one local redis-server (OBO_CACHE_URL)",
    )
    args = parser.parse_args(argv)
    if args.shared_cache:
        return shared_cache(args.once)
    return run_cli("python3 -m devstack demo", args.port, lambda: _run(args.port, args.once))


def _run(port: int, once: bool) -> int:
    with DevStack() as stack:
        os.environ.update(stack.settings())
        seed = stack.seed
        with FunctionsHost(port=port) as host:
            print("Offline stand-ins (HTTPS, CA generated for this run):")
            print(f"  Entra ID        {stack.entra.base_url}")
            print(f"  Key Vault       {stack.vault.base_url}")
            print(f"  Managed identity {stack.identity.endpoint}")
            print(f"  Graph-like API  {stack.graph.base_url}/v1.0")
            print(f"  Function app    {host.url}/api/me  (served like 'func start')")

            _step(1, "Carol signs in to the SPA. She is a Fabrikam user, a guest in Contoso.")
            token = seed.user_token(seed.carol, seed.contoso)
            print("  her access token for API 1 (claims only; the token itself is not shown):")
            print("  " + json.dumps(_claims(token), indent=2).replace("\n", "\n  "))

            _step(2, f"The SPA calls GET {host.url}/api/me with that token.")
            started = time.perf_counter()
            reply = requests.get(
                f"{host.url}/api/me", headers={"Authorization": f"Bearer {token}"}, timeout=30
            )
            elapsed = (time.perf_counter() - started) * 1000
            print(f"  -> HTTP {reply.status_code} in {elapsed:.0f} ms")

            _step(3, "API 1 exchanged it On-Behalf-Of Carol:")
            contoso_calls = stack.entra.calls("token", seed.contoso.id)
            home_calls = stack.entra.calls("token", seed.fabrikam.id)
            print(
                f"  POST /{seed.contoso.id}/oauth2/v2.0/token   x{contoso_calls}  (the token's tid)"
            )
            print(
                f"  POST /{seed.fabrikam.id}/oauth2/v2.0/token  x{home_calls}  "
                "(Carol's home tenant: not used)"
            )
            header = stack.entra.last_client_assertion_header or {}
            print(
                f"  client assertion: alg={header.get('alg')} "
                f"x5t#S256={header.get('x5t#S256')} x5c sent={header.get('x5c_present')}"
            )
            print(
                f"  certificate read from Key Vault with the managed identity: "
                f"{stack.vault.answered('get_certificate', 200)} certificate read(s), "
                f"{stack.identity.calls('token')} managed identity token request(s)"
            )

            _step(4, "The downstream API answered, as Carol:")
            try:
                print("  " + json.dumps(reply.json(), indent=2).replace("\n", "\n  "))
            except ValueError:
                print("  " + reply.text[:500])
            ok = reply.status_code == 200 and contoso_calls == 1 and home_calls == 0
            ok = _profile(stack, host, token) and ok
            print("\nRound trip " + ("complete." if ok else "FAILED."))
            if once or not ok:
                return 0 if ok else 1

            fresh = seed.user_token(seed.carol, seed.contoso)
            print("\nServing until Ctrl+C. Try it yourself (token valid for an hour):\n")
            print(f"  curl --silent -H 'Authorization: Bearer {fresh}' {host.url}/api/me\n")
            print(
                "For your own functions, `python3 -m devstack serve` keeps the settings and "
                "gives tokens on demand (docs/adopting.md)."
            )
            while True:
                time.sleep(3600)


def _profile(stack: DevStack, host: FunctionsHost, token: str) -> bool:
    """Step 5: GET /api/profile, twice: Graph's /me and /me/memberOf, one exchange."""
    seed = stack.seed
    _step(5, "Your own function: GET /api/profile (function_app.py, the public API).")
    print("  It calls Graph twice, as Carol: /me and /me/memberOf, and merges them.")
    stack.entra.reset_counters()
    stack.graph.reset_counters()
    headers = {"Authorization": f"Bearer {token}"}
    first = requests.get(f"{host.url}/api/profile", headers=headers, timeout=30)
    exchanges = stack.entra.calls("token", seed.contoso.id)
    graph_calls = (stack.graph.calls("me"), stack.graph.calls("memberOf"))
    print(f"  -> HTTP {first.status_code}")
    try:
        print("  " + json.dumps(first.json(), indent=2).replace("\n", "\n  "))
    except ValueError:
        print("  " + first.text[:500])
    print(
        f"  Graph /me x{graph_calls[0]}, /me/memberOf x{graph_calls[1]}, "
        f"token exchanges x{exchanges} (one token for both calls)"
    )
    again = requests.get(f"{host.url}/api/profile", headers=headers, timeout=30)
    cached = stack.entra.calls("token", seed.contoso.id) - exchanges
    print(f"  again -> HTTP {again.status_code}, token exchanges x{cached} (served from the cache)")
    return first.status_code == again.status_code == 200 and exchanges == 1 and cached == 0


def shared_cache(once: bool) -> int:
    """Two instances, one Redis: the second answers a user the first has seen, no exchange."""
    try:
        redis_server = RedisServer()
    except FileNotFoundError as exc:
        print(f"{exc}\nThe plain demo (without --shared-cache) needs no Redis.")
        return 1
    logs = Path(tempfile.mkdtemp(prefix="obo-demo-"))
    with DevStack() as stack, redis_server:
        seed = stack.seed
        settings = stack.settings(OBO_CACHE_URL=redis_server.url)
        print(f"Offline stand-ins as in the plain demo; Redis (redis-server) {redis_server.url}")
        instances = [Instance(settings, logs / f"instance{n}.log") for n in (1, 2)]
        try:
            for n, instance in enumerate(instances, 1):
                print(f"  instance {n}       {instance.url}/api/me  (its own process and memory)")
            token = seed.user_token(seed.carol, seed.contoso)
            exchanges = []
            for n, instance in enumerate(instances, 1):
                _step(n, f"Carol calls instance {n}: GET {instance.url}/api/me")
                before = stack.entra.calls("token")
                started = time.perf_counter()
                reply = instance.me(token)
                elapsed = (time.perf_counter() - started) * 1000
                exchanges.append(stack.entra.calls("token") - before)
                source = (
                    "exchanged On-Behalf-Of Carol with Entra ID"
                    if exchanges[-1]
                    else "from the shared cache: no exchange"
                )
                print(
                    f"  -> HTTP {reply.status_code} in {elapsed:.0f} ms, {source} "
                    f"(token endpoint calls: {exchanges[-1]})"
                )
                if reply.status_code == 200:
                    print(f"  as {reply.json().get('userPrincipalName')}")
            _step(3, "What Redis holds (names and values, as an operator's GET sees them):")
            admin = redis_server.admin()
            for name in admin.keys("*"):
                value = admin.get(name) or b""
                print(
                    f"  {name.decode()}  {len(value)} bytes of AES-256-GCM ciphertext, "
                    f"expires in {admin.ttl(name)} s"
                )
            print(
                "  Its encryption key and its name are derived from Carol's own token: "
                "without it, nothing there reads as a token."
            )
            ok = exchanges == [1, 0]
            print(
                "\nShared cache " + ("works: one exchange for two instances." if ok else "FAILED.")
            )
            if once or not ok:
                return 0 if ok else 1
            print("\nServing until Ctrl+C; the instances' logs are in " + str(logs))
            try:
                while True:
                    time.sleep(3600)
            except KeyboardInterrupt:
                return 0
        finally:
            for instance in instances:
                instance.stop()
