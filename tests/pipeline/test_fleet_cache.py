"""The shared OBO cache (OBO_CACHE_URL) against a real redis-server: two services in this
process stand for two instances (each its own L1), the clock is moved instead of slept.
The same behaviours across real host processes: tests/pipeline/test_fleet_processes.py."""

from __future__ import annotations

import json
import logging
import secrets
import threading
import time

import jwt
import pytest

from devstack.directory import App, stable_id
from devstack.httpserver import Fault
from obo.exchange import _partition
from obo.fleet_cache import REFRESH_MARGIN, SHARED_L1_TTL
from obo.redis_store import BREAKER_INTERVAL, WARNING_INTERVAL
from obo.sealed import EntryKeys
from obo.service import OboService
from obo.user_assertion import UserAssertion
from tests.client import through
from tests.redis_server import encodings

PASSWORD = "s3cret-Pa55word-for-redis"


def users(stack, n: int) -> list[str]:
    """Tokens of ``n`` new Contoso users (consented, allowed, no MFA policy)."""
    made = [
        stack.directory.add_user(f"Fleet{secrets.token_hex(4)}", stack.seed.contoso)
        for _ in range(n)
    ]
    return [stack.seed.user_token(user) for user in made]


def me(svc: OboService, token: str):
    return through(svc, token)


def oid_of(reply) -> str:
    return json.loads(reply.body)["id"]


def partition(svc: OboService, token: str) -> str:
    caller = svc.validator.validate(UserAssertion(token))
    return _partition(caller, svc.settings.default_api)


def stored(redis_server) -> dict[bytes, bytes]:
    admin = redis_server.admin()
    return {name: admin.get(name) for name in admin.keys("*")}


@pytest.fixture
def fleet(configure, redis_server):
    """``fleet(n, **settings)``: n instances sharing the session's Redis."""

    def build(n: int = 2, **overrides: str) -> list[OboService]:
        overrides.setdefault("OBO_CACHE_URL", redis_server.url)
        return [configure(**overrides) for _ in range(n)]

    return build


# -- unset: exactly as before ------------------------------------------------------------
def test_without_a_cache_url_each_instance_caches_alone(configure, stack):
    a, b = configure(), configure()
    assert a.exchanger._cache.l2 is None
    token = stack.seed.user_token(stack.seed.alice)
    assert me(a, token).status == me(a, token).status == me(b, token).status == 200
    assert stack.entra.calls("token") == 2  # one per instance, none repeated on an instance


# -- sharing -------------------------------------------------------------------------------
def test_a_user_seen_on_one_instance_costs_no_exchange_on_another(fleet, stack):
    a, b = fleet(2)
    token = stack.seed.user_token(stack.seed.alice)
    first, second = me(a, token), me(b, token)
    assert first.status == second.status == 200
    assert oid_of(first) == oid_of(second) == stack.seed.alice.object_ids[stack.seed.contoso.id]
    assert stack.entra.calls("token") == 1


def test_concurrent_first_requests_on_two_instances_cost_one_exchange(fleet, stack):
    a, b = fleet(2)
    token = stack.seed.user_token(stack.seed.bob)
    stack.entra.inject(Fault(latency=0.4, route="token", count=1))  # so that they overlap
    replies: list = []
    start = threading.Barrier(4)

    def one(svc: OboService) -> None:
        start.wait()
        replies.append(me(svc, token))

    threads = [threading.Thread(target=one, args=(svc,)) for svc in (a, b, a, b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert [r.status for r in replies] == [200] * 4
    assert stack.entra.calls("token") == 1


def test_a_crashed_leaders_lock_holds_no_one_beyond_its_ttl(fleet, stack, redis_server):
    (a,) = fleet(1)
    token = stack.seed.user_token(stack.seed.alice)
    lock = EntryKeys(token, partition(a, token)).lock
    redis_server.admin().set(lock, "a leader that crashed", px=300)
    assert me(a, token).status == 200  # waited for the lock to lapse, then exchanged itself
    assert stack.entra.calls("token") == 1


def test_a_lock_that_never_lapses_delays_a_follower_only_up_to_the_lock_ttl(
    fleet, stack, redis_server
):
    (a,) = fleet(1)
    token = stack.seed.user_token(stack.seed.alice)
    lock = EntryKeys(token, partition(a, token)).lock
    redis_server.admin().set(lock, "held forever")  # no expiry: a Redis that lost PX
    assert me(a, token).status == 200
    assert stack.entra.calls("token") == 1
    assert len(stored(redis_server)) == 2  # the follower's own result is shared after all


# -- encryption at rest ------------------------------------------------------------------
def test_an_entry_opens_only_with_the_users_own_token(fleet, stack, redis_server):
    (a,) = fleet(1)
    seed = stack.seed
    token, other = seed.user_token(seed.alice), seed.user_token(seed.bob)
    assert me(a, token).status == 200
    [(name, blob)] = stored(redis_server).items()
    mine = EntryKeys(token, partition(a, token))
    assert name.decode() == mine.name
    entry = mine.open(blob)
    assert entry is not None and entry.authorization.startswith("Bearer ")
    obo_claims = jwt.decode(entry.authorization[7:], options={"verify_signature": False})
    assert obo_claims["oid"] == seed.alice.object_ids[seed.contoso.id]
    # another user's token, or the same token for other scopes, names and opens nothing here
    for keys in (
        EntryKeys(other, partition(a, token)),
        EntryKeys(token, json.dumps(["x", ["https://other.example/.default"]])),
    ):
        assert keys.name != mine.name and keys.open(blob) is None
    tampered = blob[:-1] + bytes([blob[-1] ^ 1])
    assert mine.open(tampered) is None


def test_an_entry_moved_under_another_users_name_is_a_miss_not_their_result(
    fleet, stack, redis_server
):
    a, b = fleet(2)
    seed = stack.seed
    alice, bob = seed.user_token(seed.alice), seed.user_token(seed.bob)
    assert me(a, alice).status == 200
    [(_, alices_blob)] = stored(redis_server).items()
    # an operator (or an attacker with write access) copies Alice's entry to Bob's name
    redis_server.admin().set(EntryKeys(bob, partition(b, bob)).name, alices_blob)
    reply = me(b, bob)
    assert reply.status == 200
    assert oid_of(reply) == seed.bob.object_ids[seed.fabrikam.id]
    assert stack.entra.calls("token") == 2  # Bob's own exchange: the copy did not open


def test_nothing_at_rest_reveals_a_token_in_any_encoding(fleet, stack, redis_server):
    (a,) = fleet(1)
    seed = stack.seed
    tokens = [seed.user_token(user) for user in (seed.alice, seed.bob, seed.carol)]
    tokens[2] = seed.user_token(seed.carol, seed.contoso)
    secrets = list(tokens)
    for token in tokens:
        assert me(a, token).status == 200
        found = EntryKeys(token, partition(a, token)).open(
            redis_server.admin().get(EntryKeys(token, partition(a, token)).name)
        )
        assert found is not None
        secrets += [found.authorization, found.authorization.removeprefix("Bearer ")]
        secrets += found.authorization[7:].split(".")  # each part of the OBO JWT alone
        secrets += token.split(".")
    at_rest = b" ".join(name + b" " + value for name, value in stored(redis_server).items())
    assert len(stored(redis_server)) == 3
    text = at_rest.decode("latin-1")
    for secret in secrets:
        for shape in encodings(secret):
            assert shape not in text
    assert "eyJ" not in text and "Bearer" not in text


# -- lifetime --------------------------------------------------------------------------------
def test_entry_ttl_ends_before_the_callers_token_does(fleet, stack, redis_server):
    (a,) = fleet(1)
    token = stack.seed.user_token(stack.seed.alice, lifetime=900)  # the OBO token lives longer
    assert me(a, token).status == 200
    name = EntryKeys(token, partition(a, token)).name
    ttl_ms = redis_server.admin().pttl(name)
    assert 0 < ttl_ms <= (900 - REFRESH_MARGIN) * 1000
    exp = jwt.decode(token, options={"verify_signature": False})["exp"]
    entry = EntryKeys(token, partition(a, token)).open(redis_server.admin().get(name))
    assert entry is not None and entry.usable_until == exp - REFRESH_MARGIN


def test_a_token_too_close_to_its_end_is_not_shared(fleet, stack, redis_server):
    (a,) = fleet(1)
    token = stack.seed.user_token(stack.seed.alice, lifetime=int(REFRESH_MARGIN) - 10)
    assert me(a, token).status == 200
    assert stored(redis_server) == {}


# -- revocation (CAE) ------------------------------------------------------------------------
def test_forget_removes_the_entry_everywhere_within_the_l1_bound(fleet, stack, redis_server, clock):
    a, b = fleet(2)
    b.credentials.current()  # b has run a while (its certificate is loaded) before the clock moves
    seed = stack.seed
    token = seed.user_token(seed.alice)
    assert me(a, token).status == me(b, token).status == 200
    assert stack.entra.calls("token") == 1
    stack.graph.require_claims(seed.alice.object_ids[seed.contoso.id])
    try:
        refused = me(a, token)
    finally:
        stack.graph.clear_claims()
    assert refused.status == 401 and json.loads(refused.body)["code"] == "OBO6004"
    assert stored(redis_server) == {}  # a deleted it from L2 as well as its own L1
    assert me(b, token).status == 200  # b's L1 may still hold it ...
    assert stack.entra.calls("token") == 1
    clock.advance(SHARED_L1_TTL + 1)  # ... for SHARED_L1_TTL at most
    assert me(b, token).status == 200
    assert stack.entra.calls("token") == 2
    assert me(a, token).status == 200  # and a takes b's fresh entry
    assert stack.entra.calls("token") == 2


# -- failures: never the caller's problem ----------------------------------------------------
def _warnings(caplog) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "obo.shared_cache" and r.levelno == logging.WARNING
    ]


def test_wrong_password_serves_every_request_with_one_warning_without_the_secret(
    fleet, stack, redis_server, caplog
):
    url = f"redis://:{PASSWORD}@127.0.0.1:{redis_server.port}/0"
    admin = redis_server.admin()
    admin.config_set("requirepass", "the-real-one")
    try:
        a, b = fleet(2, OBO_CACHE_URL=url)
        seed = stack.seed
        with caplog.at_level(logging.INFO, logger="obo"):
            for token in [*users(stack, 3), seed.user_token(seed.bob)]:
                assert me(a, token).status == me(b, token).status == 200
        warned = _warnings(caplog)
        assert len(warned) == 2, warned  # one per instance, for eight requests
        for text in warned:
            assert "OBO_CACHE_URL" in text and f"127.0.0.1:{redis_server.port}" in text
            assert "AuthenticationError" in text
        assert PASSWORD not in caplog.text and "the-real-one" not in caplog.text
    finally:
        admin.config_set("requirepass", "")


def test_unreachable_host_serves_every_request_with_one_warning(fleet, stack, caplog):
    from tests.redis_server import free_port

    port = free_port()  # nothing listens there
    (a,) = fleet(1, OBO_CACHE_URL=f"redis://:{PASSWORD}@127.0.0.1:{port}/0")
    seed = stack.seed
    alice = seed.user_token(seed.alice)
    with caplog.at_level(logging.INFO, logger="obo"):
        for token in [alice, *users(stack, 2), alice]:
            assert me(a, token).status == 200
    warned = _warnings(caplog)
    assert len(warned) == 1 and f"127.0.0.1:{port}" in warned[0] and "OBO_CACHE_URL" in warned[0]
    assert PASSWORD not in caplog.text
    assert stack.entra.calls("token") == 3  # alice's second request came from L1


def test_a_failing_redis_is_reported_again_once_per_warning_interval(fleet, stack, clock, caplog):
    from tests.redis_server import free_port

    (a,) = fleet(1, OBO_CACHE_URL=f"redis://127.0.0.1:{free_port()}/0")
    with caplog.at_level(logging.INFO, logger="obo"):
        for step in (0, BREAKER_INTERVAL + 0.1, BREAKER_INTERVAL + 0.1, WARNING_INTERVAL):
            clock.advance(step)
            assert me(a, users(stack, 1)[0]).status == 200
    assert len(_warnings(caplog)) == 2  # four failed tries: at 0 s, 5 s, 10 s and 70 s


def test_breaker_opens_on_a_failure_and_one_probe_per_interval_closes_it(
    fleet, stack, redis_server, clock, caplog
):
    url = f"redis://:{PASSWORD}@127.0.0.1:{redis_server.port}/0"
    admin = redis_server.admin()
    admin.config_set("requirepass", "not-yet")
    a, b = fleet(2, OBO_CACHE_URL=url)
    tokens = users(stack, 4)

    def auth_failures() -> int:
        return sum(int(e["count"]) for e in admin.acl_log() if e["reason"] == "auth")

    try:
        with caplog.at_level(logging.INFO, logger="obo"):
            assert me(a, tokens[0]).status == 200
            assert auth_failures() == 1
            assert a.exchanger._cache.l2.breaker.open_until is not None  # open
            for token in tokens[1:]:
                assert me(a, token).status == 200
            assert auth_failures() == 1  # while open, Redis is not even asked
            clock.advance(BREAKER_INTERVAL + 0.1)
            assert me(a, users(stack, 1)[0]).status == 200
            assert auth_failures() == 2  # one probe per interval, still failing
            admin.config_set("requirepass", PASSWORD)  # Redis is fixed
            clock.advance(BREAKER_INTERVAL + 0.1)
            [fresh] = users(stack, 1)
            assert me(a, fresh).status == 200
            assert a.exchanger._cache.l2.breaker.open_until is None  # closed again
            calls = stack.entra.calls("token")
            assert me(b, fresh).status == 200  # sharing resumed: b needs no exchange
            assert stack.entra.calls("token") == calls
        assert len(_warnings(caplog)) == 1  # the second failure fell in the same minute
        assert any("sharing resumed" in r.getMessage() for r in caplog.records)
    finally:
        admin.config_set("requirepass", "")


def test_a_stalled_redis_answers_within_the_timeout_budget(fleet, stack, redis_server):
    a, b = fleet(2)
    seed = stack.seed
    assert me(a, seed.user_token(seed.alice)).status == 200  # connections are open
    tokens = users(stack, 4)
    stalled = threading.Thread(
        target=lambda: redis_server.admin().execute_command("DEBUG", "SLEEP", 2)
    )
    stalled.start()
    try:
        replies = [me(svc, token) for svc, token in zip((a, b, b, a), tokens, strict=True)]
        still_stalled = stalled.is_alive()
    finally:
        stalled.join(10)
    assert [r.status for r in replies] == [200] * 4
    assert still_stalled  # every request was answered while Redis was still asleep


def test_redis_killed_and_restarted_recovers_without_a_restart(fleet, stack, redis_server, clock):
    a, b = fleet(2)
    seed = stack.seed
    assert me(a, seed.user_token(seed.alice)).status == 200
    redis_server.stop()
    bob, carol = seed.user_token(seed.bob), seed.user_token(seed.carol, seed.contoso)
    for svc, token in ((a, bob), (b, bob), (a, carol), (b, carol)):
        assert me(svc, token).status == 200
    redis_server.start()
    clock.advance(BREAKER_INTERVAL + 0.1)
    [token] = users(stack, 1)
    assert me(a, token).status == 200
    calls = stack.entra.calls("token")
    clock.advance(BREAKER_INTERVAL + 0.1)
    assert me(b, token).status == 200
    assert stack.entra.calls("token") == calls  # shared again


# -- Entra ID authentication (Azure Managed Redis with access keys disabled) ----------------
def test_rediss_without_password_logs_in_as_the_managed_identity(configure, stack):
    from tests.redis_server import RedisServer, require_redis_server

    require_redis_server()
    seed = stack.seed
    redis_app = App(
        stable_id("app:azure-redis"),
        "Azure Cache for Redis",
        seed.contoso.id,
        identifier_uris=["https://redis.azure.com"],
    )
    stack.directory.add_app(redis_app, tenants=[seed.contoso.id])
    stack.identity.allow_resource("https://redis.azure.com", redis_app)
    identity_oid = stack.identity.object_id
    with RedisServer(password="admin-only", tls=stack.ca.server_files()) as server:
        admin = server.admin()
        # Redis cannot check an Entra token; it can check the user name redis-entraid sends
        admin.acl_setuser(
            identity_oid, enabled=True, nopass=True, keys=["obo:*"], commands=["+@all"]
        )
        a, b = configure(OBO_CACHE_URL=server.url), configure(OBO_CACHE_URL=server.url)
        token = seed.user_token(seed.alice)
        assert me(a, token).status == me(b, token).status == 200
        assert stack.entra.calls("token") == 1
        assert len(admin.keys("obo:*")) == 1
        users = {c["user"] for c in admin.client_list()}
        assert identity_oid in users


def test_a_stalled_identity_endpoint_delays_the_first_login_only_by_its_timeout(
    configure, stack, caplog
):
    from tests.redis_server import RedisServer, require_redis_server

    require_redis_server()
    with RedisServer(tls=stack.ca.server_files()) as server:
        a = configure(OBO_CACHE_URL=server.url)
        a.credentials.current()  # the certificate is loaded: the next identity call is Redis's
        stack.identity.inject(Fault(latency=6, route="token", count=1))
        token = stack.seed.user_token(stack.seed.alice)
        started = time.monotonic()
        with caplog.at_level(logging.INFO, logger="obo"):
            reply = me(a, token)
        assert reply.status == 200
        assert time.monotonic() - started < 4  # generous: the endpoint would stall for 6 s
        [warned] = _warnings(caplog)
        assert "OBO_CACHE_URL" in warned and "RequestTokenErr" in warned


# -- the setting -----------------------------------------------------------------------------
def test_cache_url_is_checked_at_start_and_never_echoed(stack):
    from obo.config import Settings
    from obo.errors import ConfigurationError

    for bad in (
        f"http://:{PASSWORD}@cachehost1:6379",
        f"redis://:{PASSWORD}@:6379",
        f"redis://:{PASSWORD}@cachehost1:notaport",
        f"rediss://:{PASSWORD}@cachehost1/zero",
        f"redis://:{PASSWORD}@cachehost1:6379/0?ssl_cert_reqs=none",
    ):
        with pytest.raises(ConfigurationError) as raised:
            Settings.from_env(stack.settings(OBO_CACHE_URL=bad))
        assert raised.value.code == "OBO1001"
        assert raised.value.extra["setting"] == "OBO_CACHE_URL"
        assert PASSWORD not in str(raised.value.body()) and "cachehost1" not in raised.value.detail
    good = Settings.from_env(stack.settings(OBO_CACHE_URL="rediss://cache.example:10000"))
    assert good.cache_url == "rediss://cache.example:10000"
    assert Settings.from_env(stack.settings()).cache_url is None
