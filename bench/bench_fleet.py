"""The shared cache (``OBO_CACHE_URL``): a fleet of instance processes, and its costs in process.

Run: ``nice .venv/bin/python -m bench.bench_fleet`` (needs Debian's ``redis-server``; a local
one is started on a free port). Prints two Markdown tables; docs/performance.md holds a recent
run. ``--smoke`` runs tiny sizes so that tests/project/test_bench.py keeps the benchmark alive.
"""

from __future__ import annotations

import argparse
import os
import secrets
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

for _name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
    os.environ.pop(_name, None)

from devstack.instances import Instance  # noqa: E402
from devstack.redis_server import RedisServer  # noqa: E402
from devstack.stack import DevStack  # noqa: E402
from obo.bearer import bearer_token  # noqa: E402
from obo.config import Settings  # noqa: E402
from obo.service import OboService  # noqa: E402
from obo.user_assertion import UserAssertion  # noqa: E402


def _tokens(stack: DevStack, count: int) -> list[str]:
    made = [
        stack.directory.add_user(f"Fleet{secrets.token_hex(4)}", stack.seed.contoso)
        for _ in range(count)
    ]
    return [stack.seed.user_token(user) for user in made]


def _ms(samples: list[float]) -> tuple[float, float]:
    ms = sorted(s * 1000 for s in samples)
    return statistics.median(ms), ms[min(len(ms) - 1, int(len(ms) * 0.99))]


# -- the fleet: N processes ----------------------------------------------------------------
def fleet(
    stack: DevStack, redis_url: str | None, n: int, users: int, logs: Path
) -> tuple[int, int, int]:
    """Every user calls every instance twice, all shuffled and 8 at a time, as a load
    balancer spreads a burst; returns (users, requests answered 200, Entra exchanges)."""
    extra = {"OBO_CACHE_URL": redis_url} if redis_url else {}
    instances = [Instance(stack.settings(**extra), logs / f"n{n}-{i}.log") for i in range(n)]
    try:
        for instance, token in zip(instances, _tokens(stack, n), strict=True):
            instance.me(token)  # warm: signing keys, certificate, MSAL client
        stack.entra.reset_counters()
        plan = [(instance, token) for token in _tokens(stack, users) for instance in instances * 2]
        secrets.SystemRandom().shuffle(plan)
        with ThreadPoolExecutor(8) as pool:
            statuses = list(pool.map(lambda step: step[0].me(step[1]).status_code, plan))
        return users, statuses.count(200), stack.entra.calls("token")
    finally:
        for instance in instances:
            instance.stop()


# -- in process: what a request pays on each path -------------------------------------------
def _request(svc: OboService, token: str) -> float:
    """Validation and the cached exchange (the warm-path measure of bench_obo), in seconds."""
    started = time.perf_counter()
    assertion = UserAssertion(bearer_token(f"Bearer {token}"))
    svc.exchanger.token_for(svc.validator.validate(assertion), assertion)
    return time.perf_counter() - started


def _service(stack: DevStack, **settings: str) -> OboService:
    """A new instance, warmed up (signing keys, certificate, MSAL client, Redis connection)."""
    svc = OboService(Settings.from_env({**os.environ, **settings}))
    _request(svc, _tokens(stack, 1)[0])
    return svc


def paths(
    stack: DevStack, redis_server: RedisServer, users: int, iterations: int
) -> list[tuple[str, float, float]]:
    samples = min(users, 50)
    url = redis_server.url
    rows: list[tuple[str, float, float]] = []
    tokens = _tokens(stack, users)
    plain = _service(stack)
    first, second = _service(stack, OBO_CACHE_URL=url), _service(stack, OBO_CACHE_URL=url)
    new_plain, new_fleet, known = [], [], []
    for token in tokens:  # interleaved, so that machine noise falls on all three alike
        new_plain.append(_request(plain, token))  # an exchange, no Redis
        new_fleet.append(_request(first, token))  # L2 miss, lock, exchange, sealed write
        known.append(_request(second, token))  # this instance's first request: L2 hit
    for label, svc in (("without OBO_CACHE_URL", plain), ("with OBO_CACHE_URL", second)):
        warm = [_request(svc, tokens[i % len(tokens)]) for i in range(iterations)]
        rows.append((f"L1 warm path, {label}", *_ms(warm)))
    rows.append(("first request on an instance, user known to the fleet (L2 hit)", *_ms(known)))
    rows.append(("first request in the fleet (exchange), without OBO_CACHE_URL", *_ms(new_plain)))
    rows.append(("first request in the fleet (exchange + lock + L2 write)", *_ms(new_fleet)))

    def extra(svc: OboService) -> float:
        """A new user's request on ``svc`` minus one on ``plain`` right after, in ms."""
        mine, baseline = _tokens(stack, 2)
        return (_request(svc, mine) - _request(plain, baseline)) * 1000

    def failing(label: str, server: RedisServer, fail: Callable[[], object]) -> None:
        svc = _service(stack, OBO_CACHE_URL=server.url)
        cause = threading.Thread(target=fail)
        cause.start()
        time.sleep(0.05)
        found = extra(svc)
        after = sorted(extra(svc) for _ in range(samples))
        cause.join()
        rows.append((f"Redis {label}: extra on the request that finds it", found, found))
        rows.append(
            (
                f"Redis {label}: extra per request once the breaker is open",
                statistics.median(after),
                after[-1],
            )
        )

    failing(
        "stalled (DEBUG SLEEP)",
        redis_server,
        lambda: redis_server.admin().execute_command("DEBUG", "SLEEP", 2),
    )
    with RedisServer() as doomed:
        failing("killed (connection refused)", doomed, doomed.stop)
    return rows


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--users", type=int, default=60, help="users per fleet run")
    parser.add_argument("--iterations", type=int, default=20000, help="warm-path samples")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: does it still run?")
    args = parser.parse_args(argv)
    sizes, users, path_users = (1, 2, 4), args.users, 200
    if args.smoke:
        sizes, users, path_users, args.iterations = (1, 2), 3, 10, 200
    logs = Path(tempfile.mkdtemp(prefix="obo-bench-fleet-"))
    with DevStack() as stack, RedisServer() as redis_server:
        os.environ.update(stack.settings())
        runs = []
        for n in sizes:
            redis_server.admin().flushall()
            runs.append((n, "yes", *fleet(stack, redis_server.url, n, users, logs)))
        runs.append((sizes[-1], "no", *fleet(stack, None, sizes[-1], users, logs)))
        rows = paths(stack, redis_server, path_users, args.iterations)
    print(f"\nPython {sys.version.split()[0]}, {os.cpu_count()} CPUs\n")
    print("| instances | OBO_CACHE_URL | users | requests (200) | Entra exchanges | per user |")
    print("|---:|---|---:|---:|---:|---:|")
    for n, shared, people, ok, calls in runs:
        print(
            f"| {n} | {shared} | {people} | {people * n * 2} ({ok}) | {calls} | "
            f"{calls / people:.2f} |"
        )
    print("\n| in process (validation + cached exchange) | p50 | p99 |")
    print("|---|---:|---:|")
    for label, p50, p99 in rows:
        print(f"| {label} | {p50:.4f} ms | {p99:.4f} ms |")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
