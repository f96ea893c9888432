"""One load at a time, its outcome shared by everyone waiting, a failure remembered briefly.

Why (issue 9, finding 9): a lock held across a network call makes every request that waits
for it repeat the failing call in turn once the holder gives up, so during an outage requests
queue for the sum of their timeouts (20 s and more behind Key Vault). Here:

- the first caller starts the load on a worker thread; callers arriving meanwhile wait for
  that same load and get its value or its error;
- nobody waits longer than ``deadline`` seconds from the load's start, whatever the client
  library's own retries and ``Retry-After`` sleeps do (azure-core sleeps a whole
  ``Retry-After`` between attempts);
- a failure is remembered for ``remember_failure`` seconds: callers then get it at once, as a
  503 with the time left as ``Retry-After``, and no new load starts, so a dependency that is
  down is asked once per window, not once per request. The first call after the window
  starts a new load, which is how the product recovers by itself.
"""

from __future__ import annotations

import contextvars
import math
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Generic, TypeVar

from obo.errors import DependencyTimeout, DependencyUnavailable, RememberedFailure

T = TypeVar("T")


class SharedLoad(Generic[T]):
    def __init__(
        self,
        load: Callable[[], T],
        *,
        deadline: float,
        remember_failure: float,
        too_slow: Callable[[], Exception],
        clock: Callable[[], float] = time.time,
        name: str = "shared-load",
    ) -> None:
        self._load = load
        self._deadline = deadline
        self._remember = remember_failure
        self._too_slow = too_slow
        self._clock = clock  # for the failure window (tests move it); deadlines use real time
        self._name = name
        self._lock = threading.Lock()
        self._inflight: Future[T] | None = None
        self._started = 0.0
        self._failure: Exception | None = None
        self._failed_until = float("-inf")
        self.value: T | None = None  # the last value loaded successfully

    def get(self, *, start: bool = True) -> T | None:
        """The outcome of the load under way, or of a new one (``start``); ``None`` when no
        load is under way, none failed recently and ``start`` is false."""
        with self._lock:
            if self._failure is not None and self._clock() < self._failed_until:
                raise self._replay()
            future = self._inflight
            if future is None:
                if not start:
                    return None
                future = self._begin()
            remaining = self._deadline - (time.monotonic() - self._started)
        try:
            return future.result(timeout=max(0.0, remaining))
        except FutureTimeout:
            with self._lock:
                if self._inflight is future:  # still loading: later callers answer at once
                    self._failure = self._too_slow()
                    self._failed_until = self._clock() + self._remember
            raise self._too_slow() from None

    def _begin(self) -> Future[T]:
        future: Future[T] = Future()
        self._inflight, self._started = future, time.monotonic()
        context = contextvars.copy_context()  # the caller's trace context goes along
        worker = threading.Thread(
            target=context.run, args=(self._run, future), name=self._name, daemon=True
        )
        worker.start()
        return future

    def _run(self, future: Future[T]) -> None:
        try:
            value = self._load()
        except BaseException as exc:  # noqa: BLE001 - handed to every waiter, as Future does
            with self._lock:
                self._inflight = None
                if isinstance(exc, Exception):
                    self._failure, self._failed_until = exc, self._clock() + self._remember
            future.set_exception(exc)
        else:
            with self._lock:
                self._inflight, self._failure, self.value = None, None, value
            future.set_result(value)

    def _replay(self) -> Exception:
        """A remembered failure: a dependency's unavailability or slowness as a 503 with the
        rest of the window as ``Retry-After``; anything else (a 502 for a wrong setting, a
        401) unchanged."""
        failure = self._failure
        assert failure is not None
        if isinstance(failure, (DependencyUnavailable, DependencyTimeout)):
            left = math.ceil(self._failed_until - self._clock())
            return RememberedFailure(
                failure.registered or failure.code,
                failure.detail,
                public_detail=failure.public_detail,
                retry_after=max(1, left),
                **failure.extra,
            )
        return failure.with_traceback(None)  # re-raised often: do not let its traceback grow
