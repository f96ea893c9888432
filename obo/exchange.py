"""The On-Behalf-Of exchange: one MSAL client per tenant authority, results cached per user.

- The authority is ``{host}/{tid}`` from the validated token, never ``/common``: a guest's
  token is issued by the resource tenant, and only that tenant can exchange it.
- MSAL's throttle memory is keyed by URL, client and scope, not by user, so the HTTP client
  handed to MSAL (:mod:`obo.entra_http`) raises on 429/5xx: each caller gets its own 503.
- Results are cached under a hash of (token, tenant, scopes, claims); concurrent misses for
  the same key share one call to Entra.
- For a SAML-only downstream (``OBO_DOWNSTREAM_TOKEN_TYPE``) the same exchange asks for a
  SAML assertion, on v2 through MSAL or on v1 through :class:`obo.saml.V1Client`.
- Every exchange logs one record without tokens; ``OBO_TRACE=verbose`` adds the names of
  the parameters sent and the client assertion's header (thumbprints, certificate subject).
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import msal
import requests

from obo.cache import ExpiringLru, SingleFlight
from obo.config import Settings
from obo.credentials import ClientCredential, CredentialSource
from obo.entra_errors import (
    certificate_rejected,
    codes,
    entra_error,
    error_name,
    ids,
    issued_token,
)
from obo.entra_http import EntraAnswerUnreadable, EntraHttpClient, EntraUnavailable
from obo.errors import DependencyFailed, DependencyTimeout, DependencyUnavailable, OboError
from obo.logsafe import printable
from obo.saml import TOKEN_TYPES, V1Client, authorization, decode_assertion
from obo.trace import RequestTrace
from obo.validation import Caller

log = logging.getLogger("obo.exchange")

REFRESH_MARGIN = 300.0  # stop serving a cached token this many seconds before it expires
MAX_CACHED_USERS = 200_000


@dataclass(frozen=True)
class OboToken:
    """What the downstream call sends: the whole ``Authorization`` value, and until when."""

    authorization: str
    expires_at: float

    def __repr__(self) -> str:
        return f"OboToken(expires_at={self.expires_at})"


class _NoTokenCache(msal.TokenCache):  # type: ignore[misc]
    """Nothing kept in MSAL: OBO results (and refresh tokens) would only pile up there."""

    def add(self, event: dict[str, Any], now: Any = None) -> None:
        return None


class Exchanger:
    def __init__(
        self,
        settings: Settings,
        credentials: CredentialSource,
        session: requests.Session,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._settings = settings
        self._credentials = credentials
        self._trace = RequestTrace() if settings.trace_verbose else None
        self._http = EntraHttpClient(session, self._trace)
        self._v1 = (
            V1Client(settings.authority_host, settings.client_id, self._http, clock)
            if settings.downstream_token_type != "jwt" and settings.saml_endpoint == "v1"
            else None
        )
        self._clock = clock
        self._apps: dict[tuple[str, str], msal.ConfidentialClientApplication] = {}
        self._apps_lock = threading.Lock()
        self._discovery_cache: dict[Any, Any] = {}
        self._cache: ExpiringLru[OboToken] = ExpiringLru(MAX_CACHED_USERS, clock)
        self._flight: SingleFlight[OboToken] = SingleFlight()
        self.scopes = list(settings.downstream_scopes)

    def token_for(self, caller: Caller, assertion: str, claims: str | None = None) -> OboToken:
        key = _cache_key(assertion, caller.tid, self.scopes, claims)
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        return self._flight.run(
            key, lambda: self._exchange_and_cache(key, caller, assertion, claims)
        )

    def forget(self, caller: Caller, assertion: str, claims: str | None = None) -> None:
        """Drop a cached token the downstream API refused (CAE); the next call re-exchanges."""
        self._cache.discard(_cache_key(assertion, caller.tid, self.scopes, claims))

    def _exchange_and_cache(
        self, key: bytes, caller: Caller, assertion: str, claims: str | None
    ) -> OboToken:
        cached = self._cache.get(key)  # a leader that finished just before us
        if cached is not None:
            return cached
        token = self._exchange(caller, assertion, claims)
        # never beyond the incoming token's own life: the user's session bounds ours
        usable_until = min(token.expires_at, caller.expires_at) - REFRESH_MARGIN
        if usable_until > self._clock():
            self._cache.put(key, token, usable_until)
        return token

    def _exchange(self, caller: Caller, assertion: str, claims: str | None) -> OboToken:
        credential = self._credentials.current()
        result = self._acquire(credential, caller, assertion, claims)
        if certificate_rejected(result):
            fresh = self._credentials.reload(credential.version)
            if fresh.version != credential.version:  # the same credential would fail the same
                log.warning(
                    "Entra no longer accepts credential %s (%s); retrying once with %s",
                    printable(credential.version),
                    codes(result),
                    printable(fresh.version),
                )
                result = self._acquire(fresh, caller, assertion, claims)
        if "access_token" in result:
            return OboToken(result["authorization"], self._clock() + result["lifetime"])
        raise entra_error(result, self.scopes)

    def _authorization(self, issued: str) -> str:
        kind = self._settings.downstream_token_type
        if kind == "jwt":
            return f"Bearer {issued}"
        return authorization(decode_assertion(issued, kind))

    def _request(
        self, credential: ClientCredential, caller: Caller, assertion: str, claims: str | None
    ) -> dict[str, Any]:
        kind = self._settings.downstream_token_type
        if self._v1 is not None:
            return self._v1.on_behalf_of(
                credential, caller.tid, assertion, self._settings.saml_resource, kind, claims
            )
        extra = {"data": {"requested_token_type": TOKEN_TYPES[kind]}} if kind != "jwt" else {}
        app = self._app(caller.tid, credential)
        result: dict[str, Any] = app.acquire_token_on_behalf_of(
            assertion, self.scopes, claims_challenge=claims, **extra
        )
        return result

    def _acquire(
        self, credential: ClientCredential, caller: Caller, assertion: str, claims: str | None
    ) -> dict[str, Any]:
        started = time.perf_counter()
        if self._trace is not None:
            self._trace.start()
        result: dict[str, Any] = {}
        outcome = "failed"
        try:
            result = self._request(credential, caller, assertion, claims)
            if "access_token" in result:  # a malformed or wrong-type answer fails right here
                issued, result["lifetime"] = issued_token(result)
                result["authorization"] = self._authorization(issued)
            outcome = "ok" if "access_token" in result else error_name(result) or "malformed"
            return result
        except OboError as exc:  # no credential (OBO4xxx), or an answer we cannot use
            outcome = exc.code
            raise
        except EntraUnavailable as exc:
            result, outcome = exc.body, f"entra_{exc.status}"
            raise DependencyUnavailable(
                "OBO5001",
                f"Entra ID answered {exc.status} to the token exchange; try again later.",
                retry_after=exc.retry_after,
                **ids(exc.body),
            ) from exc
        except EntraAnswerUnreadable as exc:
            outcome = "unreadable"
            raise DependencyFailed(
                "OBO5003",
                f"Entra ID answered the token exchange (or its discovery) with {exc.status} "
                f"and {exc.why}, not the JSON object it documents.",
                public_detail="Entra ID's answer to the token exchange could not be read.",
            ) from exc
        except requests.Timeout as exc:
            outcome = "timeout"
            raise DependencyTimeout(
                "OBO5005", "Entra ID did not answer the token exchange in time."
            ) from exc
        except (requests.ConnectionError, ValueError) as exc:
            # MSAL raises ValueError when tenant discovery fails (Entra unreachable or refusing)
            outcome = "unreachable"
            raise DependencyUnavailable(
                "OBO5002", "Entra ID is unreachable for the token exchange.", retry_after=5
            ) from exc
        finally:
            self._log(credential, caller, outcome, result, started)

    def _log(
        self,
        credential: ClientCredential,
        caller: Caller,
        outcome: str,
        result: dict[str, Any],
        started: float,
    ) -> None:
        """The exchange's one record: who, for what, with which answer; never a token."""
        record: dict[str, Any] = {
            "authority": self._settings.authority(caller.tid),
            "client_id": self._settings.client_id,
            "scopes": self.scopes,
            "token_type": self._settings.downstream_token_type,
            "tid": caller.tid,
            "oid": caller.oid,
            "aud": caller.audience,
            "azp": caller.client_app,
            "ver": caller.version,
            "outcome": outcome,
            "aadsts": codes(result),
            **ids(result),
            "credential": credential.version,
            "ms": round((time.perf_counter() - started) * 1000, 1),
        }
        if self._trace is not None:
            record["requests"] = self._trace.collect()
        log.info("obo exchange", extra={"obo": record})

    def _app(self, tid: str, credential: ClientCredential) -> msal.ConfidentialClientApplication:
        key = (tid, credential.version)
        app = self._apps.get(key)
        if app is not None:
            return app
        with self._apps_lock:
            app = self._apps.get(key)
            if app is None:
                # clients for an older certificate version are dropped with it
                self._apps = {k: v for k, v in self._apps.items() if k[1] == credential.version}
                app = msal.ConfidentialClientApplication(
                    self._settings.client_id,
                    authority=self._settings.authority(tid),
                    client_credential=credential.msal_credential(),
                    http_client=self._http,
                    http_cache=self._discovery_cache,
                    token_cache=_NoTokenCache(),
                    instance_discovery=_is_public_cloud(self._settings.authority_host),
                )
                self._apps[key] = app
            return app


def _cache_key(assertion: str, tid: str, scopes: list[str], claims: str | None) -> bytes:
    material = json.dumps([assertion, tid, sorted(scopes), claims or ""]).encode()
    return hashlib.sha256(material).digest()


def _is_public_cloud(host: str) -> bool:
    return host.rstrip("/") in ("https://login.microsoftonline.com", "https://login.windows.net")
