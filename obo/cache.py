"""Per-user OBO results: a bounded, expiring LRU map, and single-flight for concurrent misses.

MSAL Python's ``acquire_token_on_behalf_of`` never reads its cache, so without this every
request would cost a round trip to Entra. Keys are hashes that include the caller's token,
so one user's entry can never be found with another user's request.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class OboToken:
    """What the downstream call sends: the whole ``Authorization`` value, and until when."""

    authorization: str
    expires_at: float

    def __repr__(self) -> str:
        return f"OboToken(expires_at={self.expires_at})"


class ExpiringLru(Generic[T]):
    """``key -> (value, expires_at)``; entries past ``expires_at`` are never returned."""

    def __init__(self, max_entries: int, clock: Callable[[], float]) -> None:
        self._max = max_entries
        self._clock = clock
        self._data: OrderedDict[bytes, tuple[T, float]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: bytes) -> T | None:
        with self._lock:
            item = self._data.get(key)
            if item is None:
                return None
            if item[1] <= self._clock():
                del self._data[key]
                return None
            self._data.move_to_end(key)
            return item[0]

    def put(self, key: bytes, value: T, expires_at: float) -> None:
        with self._lock:
            self._data[key] = (value, expires_at)
            self._data.move_to_end(key)
            while len(self._data) > self._max:
                self._data.popitem(last=False)

    def discard(self, key: bytes) -> None:
        with self._lock:
            self._data.pop(key, None)

    def __len__(self) -> int:
        return len(self._data)

    def clear(self) -> None:
        with self._lock:
            self._data.clear()


class SingleFlight(Generic[T]):
    """Concurrent calls with the same key share one execution and its result or error."""

    def __init__(self) -> None:
        self._inflight: dict[bytes, Future[T]] = {}
        self._lock = threading.Lock()

    def run(self, key: bytes, work: Callable[[], T]) -> T:
        with self._lock:
            future = self._inflight.get(key)
            leader = future is None
            if future is None:
                future = self._inflight[key] = Future()
        if not leader:
            return future.result()
        try:
            result = work()
        except BaseException as exc:
            future.set_exception(exc)
            raise
        else:
            future.set_result(result)
            return result
        finally:
            with self._lock:
                del self._inflight[key]
