"""obo/cache.py: the per-user result map (bounded, expiring, least recently used out first)
and the single flight that lets concurrent misses of one key share one exchange."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable

import pytest

from obo.cache import ExpiringLru, SingleFlight

START = 1000.0


class Clock:
    """Stands still at ``START`` unless a test moves ``now``."""

    now = START

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def still() -> Clock:
    return Clock()


@pytest.fixture
def lru(still: Clock) -> ExpiringLru[str]:
    """A map of two entries at most, on the ``still`` clock."""
    return ExpiringLru(2, still)


def _put(lru: ExpiringLru[str], key: bytes, value: str, ttl: float = 60) -> None:
    """Put ``value`` to expire ``ttl`` seconds after ``START``."""
    lru.put(key, value, expires_at=START + ttl)


# -- ExpiringLru ----------------------------------------------------------------------------
def test_an_entry_is_served_until_its_expiry_and_never_from_then_on(lru, still):
    _put(lru, b"k", "v", ttl=60)
    _put(lru, b"expired", "v", ttl=-1)
    assert lru.get(b"expired") is None
    still.now = START + 59.999
    assert lru.get(b"k") == "v"
    still.now = START + 60  # expires_at itself is already too late
    assert lru.get(b"k") is None
    assert len(lru) == 0  # expired entries are dropped, not kept


def test_beyond_the_bound_the_least_recently_used_entry_goes_first(lru):
    for key in (b"a", b"b", b"c"):
        _put(lru, key, key.decode())
    assert len(lru) == 2
    assert (lru.get(b"a"), lru.get(b"b"), lru.get(b"c")) == (None, "b", "c")


def test_a_get_makes_an_entry_the_most_recent_so_another_is_evicted(lru):
    _put(lru, b"a", "a")
    _put(lru, b"b", "b")
    assert lru.get(b"a") == "a"
    _put(lru, b"c", "c")
    assert (lru.get(b"a"), lru.get(b"b"), lru.get(b"c")) == ("a", None, "c")


def test_putting_a_key_again_replaces_value_and_expiry_and_makes_it_the_most_recent(lru, still):
    _put(lru, b"a", "old", ttl=10)
    _put(lru, b"b", "b")
    _put(lru, b"a", "new", ttl=100)
    _put(lru, b"c", "c")
    still.now = START + 50
    assert (lru.get(b"a"), lru.get(b"b")) == ("new", None)


def test_discard_forgets_one_entry_and_clear_all(lru):
    _put(lru, b"a", "a")
    _put(lru, b"b", "b")
    lru.discard(b"a")
    lru.discard(b"never-put")  # no error
    assert (lru.get(b"a"), lru.get(b"b"), len(lru)) == (None, "b", 1)
    lru.clear()
    assert (lru.get(b"b"), len(lru)) == (None, 0)


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


def test_a_flight_that_ended_is_no_cache_and_a_failed_one_lets_the_next_caller_run():
    flight: SingleFlight[str] = SingleFlight()
    outcomes = iter([TimeoutError("Entra timed out"), "first token", "second token"])

    def work() -> str:
        outcome = next(outcomes)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    with pytest.raises(TimeoutError):
        flight.run(b"key", work)
    assert [flight.run(b"key", work), flight.run(b"key", work)] == ["first token", "second token"]
