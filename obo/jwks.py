"""Signing keys per tenant, from OpenID Connect discovery, cached and refreshed with care.

Entra's guidance (https://learn.microsoft.com/entra/identity-platform/signing-key-rollover):
refresh the key set when a token names an unknown ``kid``, not more often than every
5 minutes, and keep serving the known keys if a refresh fails.

With ``OBO_ALLOWED_TENANTS=*`` the ``tid`` that picks the tenant comes from a token whose
signature is not checked yet, so anyone can name any tenant (issue 9, finding 3). Bounds:

- a tenant Entra says does not exist (``invalid_tenant``, AADSTS90002, or a 404) is
  remembered for ``ABSENT_FOR`` seconds: 401 ``OBO3021``, and no second discovery;
- a tenant without a verified token yet costs a token from one global
  :class:`obo.budget.TokenBucket` per discovery; when it is empty such tenants get 503
  ``OBO3022`` with ``Retry-After`` while known tenants are served. Entra signs every
  tenant's tokens with the same keys (the ``/common`` set; custom keys are published only
  with ``?appid=``, which is never asked for here), so a token that verifies with a key
  already published for a verified tenant was issued by Entra: its tenant exists and is
  admitted without the budget;
- two tiers: tenants that had a verified token (``verified``, an LRU of ``max_verified``)
  and the others (``probation``, an LRU of ``max_probation``): unverified tenants only ever
  evict each other.

Discovery runs through :class:`obo.shared_load.SharedLoad`: one fetch per tenant at a time,
its outcome shared, no lock held across the network, and no wait beyond ``deadline``.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import requests

from obo.budget import TokenBucket
from obo.cache import ExpiringLru
from obo.codes import Code
from obo.errors import DependencyUnavailable, Unauthorized
from obo.key_discovery import FIRST_FETCH_RETRY, fetch_keys, no_such_tenant, unavailable
from obo.shared_load import SharedLoad

log = logging.getLogger("obo.jwks")

REFRESH_COOLDOWN = 300.0  # seconds between refreshes of one tenant's keys
MAX_AGE = 24 * 3600.0  # refresh known keys at least daily so retired keys drop out
DISCOVERY_DEADLINE = 8.0  # nobody waits longer for one tenant's discovery and key set
MAX_VERIFIED = 10_000  # tenants with a verified token
MAX_PROBATION = 1_000  # tenants named by tokens not verified yet
MAX_SHARED_KEYS = 256  # keys published for verified tenants, to vouch for new tenants
ABSENT_FOR = 600.0  # how long a tenant Entra does not know is answered without asking
MAX_ABSENT = 10_000
# Discoveries of unverified tenants: a burst, then one every DISCOVERY_INTERVAL seconds.
DISCOVERY_BURST = 20
DISCOVERY_INTERVAL = 3.0


class UnknownKey(Exception):
    """The token names a key the tenant does not publish (even after a refresh)."""


class _TenantKeys:
    def __init__(self, owner: KeySource, tid: str) -> None:
        self.fetched_at = float("-inf")  # last successful fetch
        self.tried_at = float("-inf")  # last attempt started, successful or not
        self.loads: SharedLoad[dict[str, Any]] = SharedLoad(
            lambda: owner._refresh(tid, self),
            deadline=owner.deadline,
            remember_failure=FIRST_FETCH_RETRY,
            too_slow=unavailable,
            clock=owner.clock,
            name="jwks-discovery",
        )

    @property
    def keys(self) -> dict[str, Any]:
        return self.loads.value or {}


class KeySource:
    def __init__(
        self,
        session: requests.Session,
        authority_host: str,
        clock: Callable[[], float] = time.time,
        cooldown: float = REFRESH_COOLDOWN,
        *,
        max_verified: int = MAX_VERIFIED,
        max_probation: int = MAX_PROBATION,
        absent_for: float = ABSENT_FOR,
        discovery_burst: int = DISCOVERY_BURST,
        discovery_interval: float = DISCOVERY_INTERVAL,
        deadline: float = DISCOVERY_DEADLINE,
    ) -> None:
        self._session = session
        self._host = authority_host
        self.clock = clock
        self.deadline = deadline
        self._cooldown = cooldown
        self._max_verified = max_verified
        self._max_probation = max_probation
        self._absent_for = absent_for
        self._verified: OrderedDict[str, _TenantKeys] = OrderedDict()
        self._probation: OrderedDict[str, _TenantKeys] = OrderedDict()
        self._shared: OrderedDict[str, Any] = OrderedDict()  # kid -> key of verified tenants
        self._absent: ExpiringLru[bool] = ExpiringLru(MAX_ABSENT, clock)
        self._budget = TokenBucket(discovery_burst, discovery_interval, clock)
        self._lock = threading.Lock()  # the tiers' bookkeeping only; never held across I/O

    def key(self, tid: str, kid: str, signed_with: Callable[[Any], bool] | None = None) -> Any:
        """The public key ``kid`` of tenant ``tid``; fetches at most once per cool-down.

        ``signed_with(key)`` tells whether the token was signed with ``key``: for a tenant
        never seen, a key already published for a verified tenant vouches for it."""
        vouched = self._vouched(tid, kid, signed_with)
        now = self.clock()
        with self._lock:
            entry, admitted = self._admit(tid, vouched)
            key = entry.keys.get(kid)
            stale = now - entry.fetched_at >= MAX_AGE
            wait = self._cooldown if entry.keys else min(self._cooldown, FIRST_FETCH_RETRY)
            start = (key is None or stale) and now - entry.tried_at >= wait
            if start and not (admitted or vouched or tid in self._verified):
                if not self._budget.take():  # an unverified tenant's refresh costs too
                    if key is not None:
                        return key
                    raise self._budget_exhausted()
            if start:
                entry.tried_at = now
        if key is not None and not start:
            return key  # fresh; or stale while another caller refreshes (or too soon to)
        try:
            keys = entry.loads.get(start=start)  # join the fetch under way, or start one
        except DependencyUnavailable:
            if key is not None:
                return key  # stale, and Entra is slow or down: keep serving what we know
            raise
        key = (keys if keys is not None else entry.keys).get(kid)
        if key is None:
            if not entry.keys or entry.fetched_at < entry.tried_at:
                # no keys, or the last refresh failed: Entra may publish this kid by now
                # (a key roll during an outage), so the token cannot be judged yet: 503
                raise unavailable()
            raise UnknownKey(kid)
        return key

    def probe(self, tid: str) -> None:
        """Raise unless tenant ``tid``'s discovery and key set were fetched within the
        refresh cool-down: from the cache when they were, else by one fetch now (joined with
        one under way, bounded by ``deadline``). For readiness checks (:mod:`obo.readiness`)
        of the configured home tenant, which is admitted without the discovery budget;
        repeated probes ask Entra at most once per cool-down, as token validation does."""
        now = self.clock()
        with self._lock:
            entry, _ = self._admit(tid, vouched=True)
            if now - entry.fetched_at < self._cooldown:
                return
            start = now - entry.tried_at >= FIRST_FETCH_RETRY
            if start:
                entry.tried_at = now
        entry.loads.get(start=start)  # raises Entra's failure (remembered for a moment)
        if self.clock() - entry.fetched_at >= self._cooldown:
            raise unavailable()  # the refresh failed and kept the known keys (_refresh)

    def verified(self, tid: str) -> None:
        """A token of ``tid`` passed the signature, issuer and audience checks: the tenant is
        real, and from now on only other verified tenants can evict it."""
        with self._lock:
            if tid in self._verified:
                self._verified.move_to_end(tid)
                return
            entry = self._probation.pop(tid, None)
            if entry is None:
                return  # evicted meanwhile: the next token admits it again
            self._verified[tid] = entry
            while len(self._verified) > self._max_verified:
                self._verified.popitem(last=False)
            self._share(entry.keys)

    # -- admission ----------------------------------------------------------------------
    def _vouched(self, tid: str, kid: str, signed_with: Callable[[Any], bool] | None) -> bool:
        if signed_with is None or tid in self._verified or tid in self._probation:
            return False
        key = self._shared.get(kid)
        return key is not None and signed_with(key)

    def _admit(self, tid: str, vouched: bool) -> tuple[_TenantKeys, bool]:
        """The tenant's entry, and whether it was created now (its first fetch is paid)."""
        if self._absent.get(tid.encode()) is not None:
            raise no_such_tenant(tid)
        for tier in (self._verified, self._probation):
            entry = tier.get(tid)
            if entry is not None:
                tier.move_to_end(tid)
                return entry, False
        if not vouched and not self._budget.take():
            raise self._budget_exhausted()
        entry = self._probation[tid] = _TenantKeys(self, tid)
        while len(self._probation) > self._max_probation:
            self._probation.popitem(last=False)
        return entry, True

    def _budget_exhausted(self) -> DependencyUnavailable:
        return DependencyUnavailable(
            Code.DISCOVERY_BUDGET_SPENT,
            "Too many tenants this API has not seen before are being looked up; try again shortly.",
            retry_after=max(1, math.ceil(self._budget.wait())),
        )

    def _share(self, keys: dict[str, Any]) -> None:
        for kid, key in keys.items():
            self._shared[kid] = key
            self._shared.move_to_end(kid)
        while len(self._shared) > MAX_SHARED_KEYS:
            self._shared.popitem(last=False)

    # -- fetching (on a SharedLoad worker) ------------------------------------------------
    def _refresh(self, tid: str, entry: _TenantKeys) -> dict[str, Any]:
        try:
            keys = fetch_keys(self._session, self._host, tid)
        except Unauthorized:  # Entra does not know the tenant
            with self._lock:
                for tier in (self._verified, self._probation):
                    if tier.get(tid) is entry:
                        del tier[tid]
                self._absent.put(tid.encode(), True, self.clock() + self._absent_for)
            raise
        except DependencyUnavailable:
            if not entry.keys:
                raise
            log.warning("keeping tenant %s's known signing keys: refresh failed", tid)
            return entry.keys  # Entra's guidance
        entry.fetched_at = self.clock()
        with self._lock:
            if tid in self._verified:
                self._share(keys)
        return keys
