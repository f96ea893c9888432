"""obo/cache.py: the per-user result map (bounded, expiring, least recently used out first)
and the single flight that lets concurrent misses of one key share one exchange."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable

import pytest

from obo.cache import ExpiringLru, SingleFlight


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


# -- ExpiringLru ----------------------------------------------------------------------------
def test_an_entry_is_served_until_its_expiry_and_never_from_then_on(clock):
    lru: ExpiringLru[str] = ExpiringLru(10, clock)
    lru.put(b"k", "v", expires_at=clock.now + 60)
    clock.now += 59.999
    assert lru.get(b"k") == "v"
    clock.now += 0.001  # expires_at itself is already too late
    assert lru.get(b"k") is None
    assert len(lru) == 0  # the expired entry was dropped, not kept


def test_an_entry_put_already_expired_is_never_served(clock):
    lru: ExpiringLru[str] = ExpiringLru(10, clock)
    lru.put(b"k", "v", expires_at=clock.now - 1)
    assert lru.get(b"k") is None


def test_putting_a_key_again_replaces_its_value_and_expiry(clock):
    lru: ExpiringLru[str] = ExpiringLru(10, clock)
    lru.put(b"k", "old", expires_at=clock.now + 10)
    lru.put(b"k", "new", expires_at=clock.now + 100)
    clock.now += 50
    assert lru.get(b"k") == "new"
    assert len(lru) == 1


def test_beyond_the_bound_the_least_recently_put_entry_goes_first(clock):
    lru: ExpiringLru[int] = ExpiringLru(2, clock)
    for i, key in enumerate((b"a", b"b", b"c")):
        lru.put(key, i, expires_at=clock.now + 60)
    assert len(lru) == 2
    assert (lru.get(b"a"), lru.get(b"b"), lru.get(b"c")) == (None, 1, 2)


def test_a_get_makes_an_entry_the_most_recent_so_another_is_evicted(clock):
    lru: ExpiringLru[int] = ExpiringLru(2, clock)
    lru.put(b"a", 0, expires_at=clock.now + 60)
    lru.put(b"b", 1, expires_at=clock.now + 60)
    assert lru.get(b"a") == 0
    lru.put(b"c", 2, expires_at=clock.now + 60)
    assert (lru.get(b"a"), lru.get(b"b"), lru.get(b"c")) == (0, None, 2)


def test_a_put_of_a_known_key_makes_it_the_most_recent(clock):
    lru: ExpiringLru[int] = ExpiringLru(2, clock)
    lru.put(b"a", 0, expires_at=clock.now + 60)
    lru.put(b"b", 1, expires_at=clock.now + 60)
    lru.put(b"a", 9, expires_at=clock.now + 60)
    lru.put(b"c", 2, expires_at=clock.now + 60)
    assert (lru.get(b"a"), lru.get(b"b")) == (9, None)


def test_discard_forgets_one_entry_and_ignores_an_absent_key(clock):
    lru: ExpiringLru[int] = ExpiringLru(10, clock)
    lru.put(b"a", 0, expires_at=clock.now + 60)
    lru.put(b"b", 1, expires_at=clock.now + 60)
    lru.discard(b"a")
    lru.discard(b"never-put")
    assert (lru.get(b"a"), lru.get(b"b"), len(lru)) == (None, 1, 1)


def test_clear_forgets_every_entry(clock):
    lru: ExpiringLru[int] = ExpiringLru(10, clock)
    lru.put(b"a", 0, expires_at=clock.now + 60)
    lru.clear()
    assert (lru.get(b"a"), len(lru)) == (None, 0)


# -- SingleFlight ---------------------------------------------------------------------------
def _waiting_for_the_leader(thread: threading.Thread) -> bool:
    """``thread`` holds the leader's future (it is inside ``Future.result``)."""
    frame = sys._current_frames().get(thread.ident or -1)
    while frame is not None:
        if frame.f_code.co_name == "result" and "concurrent" in frame.f_code.co_filename:
            return True
        frame = frame.f_back
    return False


def _followers_join_a_blocked_leader(
    outcome: Callable[[], str], followers: int = 3
) -> tuple[list[str], list[object]]:
    """The leader's work waits until ``followers`` callers of the same key wait for it, then
    ends with ``outcome()``. Returns the runs of work and what each caller got (leader first)."""
    flight: SingleFlight[str] = SingleFlight()
    runs: list[str] = []
    got: list[object] = [None] * (followers + 1)
    started, release = threading.Event(), threading.Event()

    def work() -> str:
        runs.append("run")
        started.set()
        release.wait(10)
        return outcome()

    def call(slot: int) -> None:
        try:
            got[slot] = flight.run(b"key", work)
        except Exception as exc:  # noqa: BLE001 - what the caller got is the point
            got[slot] = exc

    leader = threading.Thread(target=call, args=(0,))
    leader.start()
    assert started.wait(10)
    threads = [threading.Thread(target=call, args=(i,)) for i in range(1, followers + 1)]
    for thread in threads:
        thread.start()
    for _ in range(10_000):  # polls a thread state, not the time: the outcome is not timed
        if all(_waiting_for_the_leader(t) for t in threads):
            break
        time.sleep(0.001)
    release.set()
    for thread in (leader, *threads):
        thread.join(10)
    return runs, got


def test_concurrent_callers_of_one_key_share_one_execution_and_its_result():
    runs, got = _followers_join_a_blocked_leader(lambda: "token")
    assert runs == ["run"]
    assert got == ["token"] * 4


def test_concurrent_callers_of_one_key_share_the_leaders_exception():
    failure = RuntimeError("Entra down")

    def fail() -> str:
        raise failure

    runs, got = _followers_join_a_blocked_leader(fail)
    assert runs == ["run"]
    assert all(g is failure for g in got)


def test_different_keys_run_concurrently_each_with_its_own_result():
    flight: SingleFlight[str] = SingleFlight()
    both_running = threading.Barrier(2, timeout=10)  # broken unless both works run at once
    got: dict[bytes, str] = {}

    def call(key: bytes) -> None:
        def work() -> str:
            both_running.wait()
            return key.decode()

        got[key] = flight.run(key, work)

    threads = [threading.Thread(target=call, args=(k,)) for k in (b"alice", b"bob")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(15)
    assert got == {b"alice": "alice", b"bob": "bob"}


def test_after_a_failed_leader_the_next_caller_runs_again():
    flight: SingleFlight[str] = SingleFlight()

    def fail() -> str:
        raise TimeoutError("Entra timed out")

    with pytest.raises(TimeoutError):
        flight.run(b"key", fail)
    assert flight.run(b"key", lambda: "second try") == "second try"


def test_a_finished_flight_is_not_a_cache():
    flight: SingleFlight[int] = SingleFlight()
    runs = iter(range(10))
    assert [flight.run(b"key", lambda: next(runs)) for _ in range(3)] == [0, 1, 2]
