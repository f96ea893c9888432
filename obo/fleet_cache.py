"""OBO results for the whole fleet: L1 in this process, L2 in Redis shared by every instance.

Azure Functions runs Python with one request per instance and scales out to many instances
(learn.microsoft.com/azure/azure-functions/functions-concurrency), so a per-process cache
alone costs every user one Entra exchange per instance. With ``OBO_CACHE_URL`` set, the L1
sits in front of a Redis L2, as Microsoft.Identity.Web puts its memory cache in front of an
``IDistributedCache``; without it, the L1 and the in-process single flight work alone.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from obo.cache import ExpiringLru, OboToken, SingleFlight
from obo.config import Settings
from obo.sealed import EntryKeys, Sealed
from obo.user_assertion import UserAssertion

if TYPE_CHECKING:  # redis is imported only when OBO_CACHE_URL is set (cold start)
    from obo.redis_store import RedisStore

REFRESH_MARGIN = 300.0  # stop serving a cached token this many seconds before it expires
MAX_CACHED_USERS = 200_000
SHARED_L1_TTL = 60.0  # with L2 on: how long another instance may still serve a forgotten token
LOCK_TTL = 2.0  # a leader's hold on a key; followers never wait longer
POLL_EVERY = 0.02  # how often a follower looks for the leader's entry


class TieredCache:
    """``get(assertion, partition, not_after, exchange)``: the user's OBO token, exchanged at
    most once per (assertion, partition) in the fleet while it stays usable.

    Lookup order:   L1 → (in-process single flight) → L2 → fleet lock → exchange, whose
                    result is written to L2 and L1. A follower of another instance's lock
                    waits for its entry up to ``LOCK_TTL``, then exchanges itself.
    Failure policy: L2 is never needed. ``RedisStore`` answers every failure or timeout
                    (90 ms) as "nothing": a miss, no lock, no wait.
    Lifetime bound: an entry is usable until the downstream token's and the caller's own
                    ``exp``, whichever is first, minus ``REFRESH_MARGIN``; that is its L2 TTL.
                    With L2 on, L1 keeps it at most ``SHARED_L1_TTL``, so a ``forget`` on one
                    instance stops every other instance serving it within that time.
    """

    def __init__(
        self,
        store: RedisStore | None,
        clock: Callable[[], float],
        max_entries: int = MAX_CACHED_USERS,
        lock_ttl: float = LOCK_TTL,
    ) -> None:
        self.l1: ExpiringLru[OboToken] = ExpiringLru(max_entries, clock)
        self.l2 = store
        self._flight: SingleFlight[tuple[OboToken, str]] = SingleFlight()
        self._clock = clock
        self._lock_ttl = lock_ttl

    def get(
        self,
        assertion: UserAssertion,
        partition: str,
        not_after: float,
        exchange: Callable[[], OboToken],
    ) -> tuple[OboToken, str]:
        """The token, and which layer answered: ``l1``, ``l2`` or ``miss`` (an exchange, this
        request's or the in-process leader's it waited for)."""
        key = l1_key(assertion, partition)
        hit = self.l1.get(key)
        if hit is not None:
            return hit, "l1"
        return self._flight.run(
            key, lambda: self._miss(key, assertion, partition, not_after, exchange)
        )

    def forget(self, assertion: UserAssertion, partition: str) -> None:
        self.l1.discard(l1_key(assertion, partition))
        if self.l2 is not None:
            self.l2.delete(EntryKeys(assertion.raw, partition).name)

    def _miss(
        self,
        key: bytes,
        assertion: UserAssertion,
        partition: str,
        not_after: float,
        exchange: Callable[[], OboToken],
    ) -> tuple[OboToken, str]:
        hit = self.l1.get(key)  # a leader in this process finished just before us
        if hit is not None:
            return hit, "l1"
        if self.l2 is None:
            return self._keep(key, None, exchange(), not_after), "miss"
        entry = EntryKeys(assertion.raw, partition)  # HKDF needs the token itself
        hit = self._from_l2(key, entry, self.l2.get(entry.name))
        if hit is not None:
            return hit, "l2"
        leader = self.l2.lock(entry.lock, int(self._lock_ttl * 1000))
        try:
            # the leader looks once more (another may have finished in between)
            blob = self.l2.get(entry.name) if leader else self._wait(entry)
            hit = self._from_l2(key, entry, blob)
            if hit is not None:
                return hit, "l2"
            return self._keep(key, entry, exchange(), not_after), "miss"
        finally:
            if leader:
                self.l2.unlock(entry.lock, leader)

    def _wait(self, entry: EntryKeys) -> bytes | None:
        """The entry another instance is exchanging for; ``None`` once its lock is gone
        (done, failed or crashed), after ``LOCK_TTL``, or as soon as Redis fails."""
        assert self.l2 is not None
        deadline = time.monotonic() + self._lock_ttl
        while True:
            answer = self.l2.poll(entry.name, entry.lock)
            if answer is None:
                return None
            blob, held = answer
            if blob is not None or not held or time.monotonic() >= deadline:
                return blob
            time.sleep(POLL_EVERY)

    def _from_l2(self, key: bytes, entry: EntryKeys, blob: bytes | None) -> OboToken | None:
        found = entry.open(blob) if blob is not None else None
        now = self._clock()
        if found is None or found.usable_until <= now:  # another instance's clock may differ
            return None
        token = OboToken(found.authorization, found.expires_at)
        self.l1.put(key, token, min(found.usable_until, now + SHARED_L1_TTL))
        return token

    def _keep(
        self, key: bytes, entry: EntryKeys | None, token: OboToken, not_after: float
    ) -> OboToken:
        now = self._clock()
        # never beyond the incoming token's own life: the user's session bounds ours
        usable_until = min(token.expires_at, not_after) - REFRESH_MARGIN
        if usable_until <= now:
            return token
        if entry is None or self.l2 is None:
            self.l1.put(key, token, usable_until)
            return token
        sealed = entry.seal(Sealed(token.authorization, token.expires_at, usable_until))
        self.l2.put(entry.name, sealed, int((usable_until - now) * 1000))
        self.l1.put(key, token, min(usable_until, now + SHARED_L1_TTL))
        return token


def l1_key(assertion: UserAssertion, partition: str) -> bytes:
    """The in-process key: a hash another user's request cannot produce (it covers the
    assertion's own SHA-256, computed once per request)."""
    digest = hashlib.sha256(partition.encode())
    digest.update(b"\x00")  # the partition is JSON, which never holds a raw NUL
    digest.update(assertion.digest)
    return digest.digest()


def shared_store(settings: Settings, clock: Callable[[], float]) -> RedisStore | None:
    """The L2 that ``OBO_CACHE_URL`` names, if any (redis is imported only then)."""
    if settings.cache_url is None:
        return None
    from obo.redis_store import RedisStore

    return RedisStore(
        settings.cache_url,
        ca_bundle=settings.ca_bundle,
        clock=clock,
        identity_client_id=settings.managed_identity_client_id,
    )
