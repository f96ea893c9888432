"""A fleet of real instances: three local Functions host processes serving function_app.py,
sharing one real redis-server, against the stand-ins in this process (where Entra's
token endpoint counts every exchange). Each test uses users no instance has seen yet."""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from devstack.httpserver import Fault
from devstack.instances import Instance
from tests.conftest import _AZURE_IDENTITY_NOISE, _SECRET_SHAPES
from tests.redis_server import encodings

PASSWORD = "wr0ng-Pa55word-for-redis"


def new_users(stack, n: int) -> list[tuple[str, str]]:
    """(token, object id) of ``n`` Contoso users no instance has seen."""
    made = [
        stack.directory.add_user(f"Fleet{secrets.token_hex(4)}", stack.seed.contoso)
        for _ in range(n)
    ]
    return [(stack.seed.user_token(u), u.object_ids[stack.seed.contoso.id]) for u in made]


@pytest.fixture(scope="module")
def hosts(_running_stack, _redis_session, tmp_path_factory) -> Iterator[list[Instance]]:
    folder = tmp_path_factory.mktemp("fleet")
    settings = _running_stack.settings(OBO_CACHE_URL=_redis_session.url)
    started = [
        Instance(settings, folder / f"host{i}.log", drop=_AZURE_IDENTITY_NOISE) for i in range(3)
    ]
    try:
        yield started
    finally:
        for host in started:
            host.stop()
    for host in started:  # nothing replayable in any instance's log
        text = host.log.read_text(errors="replace")
        assert not _SECRET_SHAPES.search(text), f"{host.log.name} holds a secret"


@pytest.fixture
def fleet(hosts, stack, redis_server) -> list[Instance]:
    """The three instances, warmed up (keys, certificate, MSAL client), Redis empty."""
    for host, (token, _) in zip(hosts, new_users(stack, len(hosts)), strict=True):
        assert host.me(token).status_code == 200
    redis_server.admin().flushall()
    stack.entra.reset_counters()
    return hosts


def test_a_user_seen_on_one_instance_costs_no_exchange_on_the_others(fleet, stack, redis_server):
    people = new_users(stack, 4)
    for n, (token, oid) in enumerate(people):
        for host in fleet[n % 3 :] + fleet[: n % 3]:  # first seen on a different host each time
            reply = host.me(token)
            assert reply.status_code == 200 and reply.json()["id"] == oid
    assert stack.entra.calls("token") == len(people)
    admin = redis_server.admin()
    at_rest = " ".join(f"{k!r} {admin.get(k)!r}" for k in admin.keys("*"))
    assert at_rest.count("obo:v1:") == len(people)
    for token, _ in people:
        for shape in encodings(token):
            assert shape not in at_rest


def test_concurrent_first_requests_across_instances_cost_one_exchange(fleet, stack):
    [(token, oid)] = new_users(stack, 1)
    stack.entra.inject(Fault(latency=0.5, route="token", count=1))  # Entra takes its time
    start = threading.Barrier(9)

    def one(host: Instance) -> tuple[int, str]:
        start.wait()
        reply = host.me(token)
        return reply.status_code, reply.json().get("id", "")

    with ThreadPoolExecutor(9) as pool:
        answers = list(pool.map(one, fleet * 3))
    assert answers == [(200, oid)] * 9
    assert stack.entra.calls("token") == 1


def test_users_never_see_each_others_results_under_concurrency(fleet, stack):
    people = new_users(stack, 12)
    plan = [(fleet[(i + n) % 3], person) for n, person in enumerate(people) for i in range(4)]
    secrets.SystemRandom().shuffle(plan)

    def one(step: tuple[Instance, tuple[str, str]]) -> tuple[str, int, str]:
        host, (token, oid) = step
        reply = host.me(token)
        return oid, reply.status_code, reply.json().get("id", "")

    with ThreadPoolExecutor(12) as pool:
        answers = list(pool.map(one, plan))
    assert all(status == 200 and got == oid for oid, status, got in answers), answers
    assert stack.entra.calls("token") == len(people)  # one per user, whatever the interleaving


def test_a_stalled_redis_delays_no_answer_beyond_the_timeout_budget(fleet, stack, redis_server):
    people = new_users(stack, 6)
    stalled = threading.Thread(
        target=lambda: redis_server.admin().execute_command("DEBUG", "SLEEP", 3)
    )
    stalled.start()
    try:
        with ThreadPoolExecutor(6) as pool:
            replies = list(pool.map(lambda n: fleet[n % 3].me(people[n][0]), range(6)))
        still_stalled = stalled.is_alive()
    finally:
        stalled.join(10)
    assert [r.status_code for r in replies] == [200] * 6
    assert still_stalled  # all answered while Redis was still asleep


def test_redis_killed_mid_run_then_restarted_every_request_200_and_sharing_resumes(
    fleet, stack, redis_server
):
    people = new_users(stack, 6)
    statuses: list[int] = []
    for n, (token, _) in enumerate(people[:3]):
        statuses.append(fleet[n].me(token).status_code)
    redis_server.stop()  # killed, as a crash would
    for n, (token, _) in enumerate(people):
        statuses += [fleet[n % 3].me(token).status_code, fleet[(n + 1) % 3].me(token).status_code]
    redis_server.start()
    resumed = False
    deadline = time.monotonic() + 30  # the breaker probes again within 5 s
    while not resumed and time.monotonic() < deadline:
        [(token, _)] = new_users(stack, 1)
        statuses.append(fleet[0].me(token).status_code)
        before = stack.entra.calls("token")
        statuses += [fleet[1].me(token).status_code, fleet[2].me(token).status_code]
        resumed = stack.entra.calls("token") == before
        time.sleep(0.5)
    assert set(statuses) == {200}
    assert resumed


def test_a_wrong_password_answers_every_request_and_logs_one_warning(
    _running_stack, stack, redis_server, tmp_path
):
    url = f"redis://:{PASSWORD}@127.0.0.1:{redis_server.port}/0"
    admin = redis_server.admin()
    admin.config_set("requirepass", "the-right-one")
    host = Instance(
        _running_stack.settings(OBO_CACHE_URL=url),
        tmp_path / "host.log",
        drop=_AZURE_IDENTITY_NOISE,
    )
    try:
        for token, oid in new_users(stack, 5):
            reply = host.me(token)
            assert reply.status_code == 200 and reply.json()["id"] == oid
    finally:
        host.stop()
        admin.config_set("requirepass", "")
    log = host.log.read_text()
    warnings = [line for line in log.splitlines() if line.startswith("WARNING:obo.shared_cache")]
    assert len(warnings) == 1, log[-3000:]
    assert "OBO_CACHE_URL" in warnings[0] and f"127.0.0.1:{redis_server.port}" in warnings[0]
    assert PASSWORD not in log and "the-right-one" not in log
