"""Warm-path cost, memory per cached user and single-flight, measured against the stand-ins.

Run: ``.venv/bin/python -m bench.bench_obo`` (after ``python3 -m devstack test`` or ``demo``
has created ``.venv``). Prints a Markdown table; docs/performance.md holds a recent one.
"""

from __future__ import annotations

import argparse
import gc
import os
import secrets
import statistics
import sys
import threading
import time
import tracemalloc
from dataclasses import replace

for _name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
    os.environ.pop(_name, None)

import msal  # noqa: E402

from devstack.httpserver import Fault  # noqa: E402
from devstack.stack import DevStack  # noqa: E402
from obo.cache import OboToken  # noqa: E402
from obo.clients import DownstreamApi  # noqa: E402
from obo.config import Settings  # noqa: E402
from obo.exchange import _partition  # noqa: E402
from obo.fleet_cache import l1_key  # noqa: E402
from obo.service import OboService  # noqa: E402
from obo.user_assertion import UserAssertion  # noqa: E402


def _stats(samples: list[float]) -> tuple[float, float]:
    ms = sorted(s * 1000 for s in samples)
    return statistics.median(ms), ms[int(len(ms) * 0.95)]


def _warm_request(svc: OboService, header: str) -> None:
    """What a request costs before the downstream call: the header, validation and the
    cached exchange, through the same calls the public API makes (spans included)."""
    caller, assertion = svc.authenticate({"Authorization": header})
    svc.exchanger.token_for(caller, assertion)


def _fill(svc: OboService, template_token: str, count: int) -> None:
    """``count`` more users in both caches, shaped like real entries (distinct strings)."""
    template = UserAssertion(template_token)
    caller = svc.validator.validate(template)
    obo = svc.exchanger.token_for(caller, template)
    expires = time.time() + 3000
    for _ in range(count):
        fake = UserAssertion(secrets.token_urlsafe(len(template_token) * 3 // 4))
        user = replace(caller, oid=secrets.token_hex(16)[:36], name=secrets.token_hex(6))
        svc.validator._validated.put(fake.digest, user, expires)
        key = l1_key(fake, _partition(user, svc.settings.default_api))
        value = "Bearer " + secrets.token_urlsafe(len(obo.authorization) * 3 // 4)
        svc.exchanger._cache.l1.put(key, OboToken(value, expires), expires)


def warm_path(stack: DevStack, users: int, iterations: int) -> tuple[float, float]:
    svc = OboService(Settings.from_env())
    seed = stack.seed
    real = [seed.user_token(u) for u in _users(stack, min(users, 200))]
    for token in real:  # real validation and a real exchange for the measured users
        _warm_request(svc, f"Bearer {token}")
    if users > len(real):
        _fill(svc, real[0], users - len(real))
    headers = [f"Bearer {t}" for t in real]
    samples = []
    gc.collect()
    for i in range(iterations):
        header = headers[i % len(headers)]
        started = time.perf_counter()
        _warm_request(svc, header)
        samples.append(time.perf_counter() - started)
    return _stats(samples)


def documented_approach(stack: DevStack, users: int, iterations: int) -> tuple[float, float]:
    """One shared MSAL client, ``acquire_token_on_behalf_of`` on every request."""
    svc = OboService(Settings.from_env())
    cert = svc.credentials.current()
    seed = stack.seed
    app = msal.ConfidentialClientApplication(
        seed.api.app_id,
        authority=f"{stack.entra.base_url}/{seed.contoso.id}",
        client_credential=cert.msal_credential(),
        http_client=svc.exchanger._http._session,
        instance_discovery=False,
    )
    tokens = [seed.user_token(u) for u in _users(stack, users)]
    scopes = list(svc.settings.default_api.scopes)
    samples = []
    for i in range(iterations):
        token = tokens[i % len(tokens)]
        started = time.perf_counter()
        result = app.acquire_token_on_behalf_of(token, scopes)
        samples.append(time.perf_counter() - started)
        assert "access_token" in result, result.get("error")
    return _stats(samples)


def memory_per_user(stack: DevStack, users: int) -> float:
    svc = OboService(Settings.from_env())
    token = stack.seed.user_token(stack.seed.alice)
    _warm_request(svc, f"Bearer {token}")
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    _fill(svc, token, users)
    gc.collect()
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    grown = sum(s.size_diff for s in after.compare_to(before, "filename"))
    return grown / users


def concurrent_first_requests(stack: DevStack, requests: int) -> tuple[int, int]:
    svc = OboService(Settings.from_env())
    token = stack.seed.user_token(stack.seed.alice)
    svc.validator.validate(UserAssertion(token))  # keys fetched; we count token endpoint calls only
    svc.credentials.current()
    stack.entra.reset_counters()
    stack.entra.inject(Fault(latency=0.1, route="token", count=1))
    statuses: list[int] = []
    barrier = threading.Barrier(requests)

    def one() -> None:
        barrier.wait()
        caller, assertion = svc.authenticate({"Authorization": f"Bearer {token}"})
        client = DownstreamApi(svc, svc.settings.default_api, caller, assertion)
        statuses.append(client.request("GET", "me").status)

    threads = [threading.Thread(target=one) for _ in range(requests)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return stack.entra.calls("token"), statuses.count(200)


_made: list = []


def _users(stack: DevStack, count: int) -> list:
    while len(_made) < count:
        _made.append(stack.directory.add_user(f"Bench{len(_made):05d}", stack.seed.contoso))
    return _made[:count]


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--iterations", type=int, default=20000)
    parser.add_argument("--quick", action="store_true", help="smaller sizes, for a quick look")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: does it still run?")
    args = parser.parse_args(argv)
    sizes = (1, 1000, 10_000) if args.quick else (1, 1000, 100_000)
    memory_users, documented_runs, concurrent = (20_000 if args.quick else 100_000), 300, 100
    if args.smoke:
        sizes, memory_users, documented_runs, concurrent = (1, 50), 200, 5, 10
    with DevStack() as stack:
        os.environ.update(stack.settings())
        rows = []
        for n in sizes:
            median, p95 = warm_path(stack, n, args.iterations)
            rows.append((f"this project, warm path, {n:,} cached users", median, p95))
        for n in (1, 100):
            median, p95 = documented_approach(stack, n, documented_runs)
            rows.append((f"documented approach (MSAL OBO every request), {n} users", median, p95))
        per_user = memory_per_user(stack, memory_users)
        calls, ok = concurrent_first_requests(stack, concurrent)
    print(f"\nPython {sys.version.split()[0]}, {os.cpu_count()} CPUs\n")
    print("| measurement | median | p95 |")
    print("|---|---:|---:|")
    for label, median, p95 in rows:
        print(f"| {label} | {median:.4f} ms | {p95:.4f} ms |")
    flat = rows[len(sizes) - 1][1] / rows[0][1]
    print(f"| largest / single-user median | {flat:.2f}x | |")
    print(f"| memory per cached user (validation + OBO token) | {per_user / 1024:.2f} KB | |")
    label = f"Entra calls for {concurrent} concurrent first requests of one user"
    print(f"| {label} | {calls} ({ok}/{concurrent} answered 200) | |")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
