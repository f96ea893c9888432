"""Signing keys per tenant, from OpenID Connect discovery, cached and refreshed with care.

Entra's guidance: refresh the key set when a token names an unknown ``kid``, not more
often than every 5 minutes, and keep serving the known keys if a refresh fails.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import Any

import requests
from jwt.algorithms import RSAAlgorithm
from jwt.exceptions import PyJWTError

from obo.errors import DependencyUnavailable
from obo.transport import json_object

REFRESH_COOLDOWN = 300.0  # seconds between refreshes of one tenant's keys
MAX_AGE = 24 * 3600.0  # refresh known keys at least daily so retired keys drop out
MAX_TENANTS = 10_000
FIRST_FETCH_RETRY = 5.0


def _unavailable() -> DependencyUnavailable:
    return DependencyUnavailable(
        "OBO3020",
        "The signing keys of the token's tenant could not be fetched from Entra ID; "
        "try again shortly.",
        retry_after=int(FIRST_FETCH_RETRY),
    )


class UnknownKey(Exception):
    """The token names a key the tenant does not publish (even after a refresh)."""


class _TenantKeys:
    def __init__(self) -> None:
        self.keys: dict[str, Any] = {}
        self.fetched_at = float("-inf")  # last successful fetch
        self.tried_at = float("-inf")  # last attempt, successful or not
        self.lock = threading.Lock()


class KeySource:
    def __init__(
        self,
        session: requests.Session,
        authority_host: str,
        clock: Callable[[], float] = time.time,
        cooldown: float = REFRESH_COOLDOWN,
    ) -> None:
        self._session = session
        self._host = authority_host
        self._clock = clock
        self._cooldown = cooldown
        self._tenants: dict[str, _TenantKeys] = {}
        self._lock = threading.Lock()

    def key(self, tid: str, kid: str) -> Any:
        """The public key ``kid`` of tenant ``tid``; fetches at most once per cool-down."""
        entry = self._entry(tid)
        key = entry.keys.get(kid)
        now = self._clock()
        if key is not None and now - entry.fetched_at < MAX_AGE:
            return key
        with entry.lock:  # one refresh per tenant at a time; others wait and reuse it
            key = entry.keys.get(kid)
            stale = now - entry.fetched_at >= MAX_AGE
            # With no keys at all (Entra was down at first use) retry sooner than the cool-down.
            wait = self._cooldown if entry.keys else min(self._cooldown, FIRST_FETCH_RETRY)
            if (key is None or stale) and now - entry.tried_at >= wait:
                entry.tried_at = now
                try:
                    entry.keys = self._fetch(tid)
                    entry.fetched_at = now
                except (requests.RequestException, ValueError, KeyError) as exc:
                    if not entry.keys:
                        raise _unavailable() from exc
                    # keep serving the keys we know (Entra's guidance)
                key = entry.keys.get(kid)
                if not entry.keys:
                    raise _unavailable()
        if key is None:
            raise UnknownKey(kid)
        return key

    def _entry(self, tid: str) -> _TenantKeys:
        with self._lock:
            entry = self._tenants.get(tid)
            if entry is None:
                if len(self._tenants) >= MAX_TENANTS:
                    self._tenants.pop(next(iter(self._tenants)))
                entry = self._tenants[tid] = _TenantKeys()
            return entry

    def _fetch(self, tid: str) -> dict[str, Any]:
        discovery = self._session.get(f"{self._host}/{tid}/v2.0/.well-known/openid-configuration")
        discovery.raise_for_status()
        jwks_uri = json_object(discovery).get("jwks_uri")
        if not isinstance(jwks_uri, str):
            raise ValueError("the discovery document names no jwks_uri")
        response = self._session.get(jwks_uri)
        response.raise_for_status()
        listed = json_object(response).get("keys")
        keys: dict[str, Any] = {}
        for jwk in listed if isinstance(listed, list) else []:  # skip what is not an RSA key
            if not isinstance(jwk, dict) or not isinstance(jwk.get("kid"), str):
                continue
            if jwk.get("kty") != "RSA" or jwk.get("use", "sig") != "sig":
                continue
            try:
                keys[jwk["kid"]] = RSAAlgorithm.from_jwk(json.dumps(jwk))
            except (PyJWTError, ValueError, TypeError):
                continue
        if not keys:
            raise ValueError("the key set holds no RSA signing keys")
        return keys
