"""A token bucket: a burst of ``capacity`` actions, then one every ``interval`` seconds.

Used to bound how often anonymous input can make this API call Entra for a tenant it has
never seen (issue 9, finding 3): the cost of a forged token must not scale with the
attacker's request rate.
"""

from __future__ import annotations

import threading
from collections.abc import Callable


class TokenBucket:
    def __init__(self, capacity: int, interval: float, clock: Callable[[], float]) -> None:
        if capacity < 1 or interval <= 0:
            raise ValueError("a token bucket needs capacity >= 1 and a positive interval")
        self._capacity = float(capacity)
        self._interval = interval
        self._clock = clock
        self._tokens = float(capacity)
        self._updated = clock()
        self._lock = threading.Lock()

    def take(self) -> bool:
        """Spend one token if there is one."""
        with self._lock:
            self._refill()
            if self._tokens < 1:
                return False
            self._tokens -= 1
            return True

    def wait(self) -> float:
        """Seconds until the next token."""
        with self._lock:
            self._refill()
            return max(0.0, (1 - self._tokens) * self._interval)

    def _refill(self) -> None:
        now = self._clock()
        elapsed = max(0.0, now - self._updated)  # a clock that steps back refills nothing
        self._tokens = min(self._capacity, self._tokens + elapsed / self._interval)
        self._updated = now
