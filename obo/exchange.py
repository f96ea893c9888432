"""The On-Behalf-Of exchange: one MSAL client per tenant authority, results cached per user.

- The authority is ``{host}/{tid}`` from the validated token, never ``/common``: a guest's
  token is issued by the resource tenant, and only that tenant can exchange it.
- MSAL's throttle memory is keyed by URL, client and scope, not by user, so the HTTP client
  handed to MSAL (:mod:`obo.entra_http`) raises on 429/5xx: each caller gets its own 503.
- Results are cached per (token, tenant, scopes, claims) in :mod:`obo.fleet_cache`: in this
  process, and with ``OBO_CACHE_URL`` in Redis for every instance; concurrent misses for the
  same key share one call to Entra, across the fleet.
- For a SAML-only downstream (``OBO_DOWNSTREAM_TOKEN_TYPE``) the same exchange asks for a
  SAML assertion, on v2 through MSAL or on v1 through :class:`obo.saml.V1Client`.
- Every exchange logs one record without tokens; ``OBO_TRACE=verbose`` adds the names of
  the parameters sent and the client assertion's header (thumbprints, certificate subject).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import msal
import requests

from obo.cache import OboToken
from obo.config import Settings
from obo.credentials import ClientCredential, CredentialSource
from obo.entra_errors import certificate_rejected, codes, entra_error, ids
from obo.entra_http import EntraHttpClient, EntraUnavailable
from obo.errors import DependencyTimeout, DependencyUnavailable, OboError
from obo.fleet_cache import TieredCache, shared_store
from obo.saml import TOKEN_TYPES, V1Client, authorization, decode_assertion
from obo.trace import RequestTrace
from obo.validation import Caller

log = logging.getLogger("obo.exchange")

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
        self.scopes = list(settings.downstream_scopes)
        self._cache = TieredCache(shared_store(settings, clock), clock)

    def token_for(self, caller: Caller, assertion: str, claims: str | None = None) -> OboToken:
        """The OBO token for this caller: from L1, L2 (``OBO_CACHE_URL``) or one exchange."""
        return self._cache.get(
            assertion,
            self._partition(caller, claims),
            caller.expires_at,
            lambda: self._exchange(caller, assertion, claims),
        )

    def forget(self, caller: Caller, assertion: str, claims: str | None = None) -> None:
        """Drop a cached token the downstream API refused (CAE), here and in the shared
        cache; the next call re-exchanges."""
        self._cache.forget(assertion, self._partition(caller, claims))

    def _partition(self, caller: Caller, claims: str | None) -> str:
        """What besides the assertion tells entries apart: one entry per (user, tenant,
        downstream scopes, claims)."""
        return json.dumps([caller.tid, sorted(self.scopes), claims or ""])

    def _exchange(self, caller: Caller, assertion: str, claims: str | None) -> OboToken:
        credential = self._credentials.current()
        result = self._acquire(credential, caller, assertion, claims)
        if certificate_rejected(result):
            fresh = self._credentials.reload(credential.version)
            if fresh.version != credential.version:  # the same credential would fail the same
                log.warning(
                    "Entra no longer accepts credential %s (%s); retrying once with %s",
                    credential.version,
                    codes(result),
                    fresh.version,
                )
                result = self._acquire(fresh, caller, assertion, claims)
        if "access_token" in result:
            expires_at = self._clock() + _seconds(result.get("expires_in"))
            return OboToken(result["authorization"], expires_at)
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
            if "access_token" in result:  # a SAML answer that is not one fails right here
                result["authorization"] = self._authorization(str(result["access_token"]))
            outcome = "ok" if "access_token" in result else str(result.get("error"))
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


def _is_public_cloud(host: str) -> bool:
    return host.rstrip("/") in ("https://login.microsoftonline.com", "https://login.windows.net")


def _seconds(value: Any) -> float:
    """``expires_in``: a number on v2, a string on v1; anything else means "do not cache"."""
    try:
        return max(0.0, float(value or 0))
    except (TypeError, ValueError):
        return 0.0
