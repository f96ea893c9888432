"""The README's first command: the offline round trip, as a person (or a script) runs it."""

from __future__ import annotations

from tests.client import run_module


def test_demo_round_trip_completes_and_shows_no_token():
    result = run_module("devstack", "demo", "--once", "--port", "0", timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "Round trip complete." in out
    assert "-> HTTP 200" in out
    assert "(the token's tid)" in out and "x1" in out
    assert "Carol's home tenant: not used" in out and "x0" in out
    assert '"Partner Engineering"' in out  # step 5: /api/profile with Carol's group in Contoso
    assert "token exchanges x1 (one token for both calls)" in out
    assert "token exchanges x0 (served from the cache)" in out
    assert "eyJ" not in out  # claims are shown, the token is not (only --serve prints a curl)


def test_leak_watch_catches_a_logged_token(no_secrets_in_logs, stack):
    import logging

    logging.getLogger("obo.test").warning("oops %s", stack.seed.user_token(stack.seed.alice))
    assert len(no_secrets_in_logs.leaks) == 1
    no_secrets_in_logs.leaks.clear()  # this test leaked on purpose


def test_shared_cache_demo_second_instance_answers_with_no_exchange():
    from tests.redis_server import require_redis_server

    require_redis_server()
    result = run_module("devstack", "demo", "--shared-cache", "--once", timeout=180)
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "exchanged On-Behalf-Of Carol with Entra ID (token endpoint calls: 1)" in out
    assert "from the shared cache: no exchange (token endpoint calls: 0)" in out
    assert "Shared cache works: one exchange for two instances." in out
    assert "eyJ" not in out
