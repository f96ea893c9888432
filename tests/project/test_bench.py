"""The benchmark still runs (its figures are read by people, not asserted here)."""

from __future__ import annotations

from tests.client import run_module


def test_benchmark_smoke_run_prints_its_table():
    done = run_module("bench.bench_obo", "--smoke", "--iterations", "50")
    assert done.returncode == 0, done.stderr[-2000:]
    assert "| this project, warm path, 50 cached users |" in done.stdout
    assert "| memory per cached user (validation + OBO token) |" in done.stdout
    # single flight holds even in a smoke run: one exchange for ten simultaneous requests
    assert (
        "| Entra calls for 10 concurrent first requests of one user | 1 (10/10 answered 200) |"
        in done.stdout
    )


def test_fleet_benchmark_smoke_run_prints_its_tables():
    from tests.redis_server import require_redis_server

    require_redis_server()
    done = run_module("bench.bench_fleet", "--smoke")
    assert done.returncode == 0, done.stderr[-2000:]
    # one exchange per user whatever the number of instances, when they share Redis
    assert "| 1 | yes | 3 | 6 (6) | 3 | 1.00 |" in done.stdout
    assert "| 2 | yes | 3 | 12 (12) | 3 | 1.00 |" in done.stdout
    assert "| 2 | no | 3 | 12 (12) | 6 | 2.00 |" in done.stdout  # each instance alone
    assert "| first request on an instance, user known to the fleet (L2 hit) |" in done.stdout
    assert "| Redis stalled (DEBUG SLEEP): extra on the request that finds it |" in done.stdout
