"""The On-Behalf-Of exchange: one MSAL client per tenant authority, results cached per user.

- The authority is ``{host}/{tid}`` from the validated token, never ``/common``: a guest's
  token is issued by the resource tenant, and only that tenant can exchange it.
- MSAL's throttle memory is keyed by URL, client and scope, not by user, so the HTTP client
  handed to MSAL (:mod:`obo.entra_http`) raises on 429/5xx: each caller gets its own 503.
- Results are cached per (user's token, tenant, API) in :mod:`obo.fleet_cache`: in this
  process, and with ``OBO_CACHE_URL`` in Redis for every instance; concurrent misses for the
  same key share one call to Entra, across the fleet.
- Entra's JSON is read once into an :class:`obo.entra_answer.EntraAnswer`; whatever goes
  wrong on the way becomes the API's error in one place, ``entra_failures``.
- For a SAML-only downstream (``OBO_DOWNSTREAM_TOKEN_TYPE``) the same exchange asks for a
  SAML assertion, on v2 through MSAL or on v1 through :class:`obo.saml.V1Client`.
- One exchanger serves every downstream API (:class:`obo.config.DownstreamSettings`, passed
  per call as Microsoft.Identity.Web passes scopes to ``GetAccessTokenForUserAsync``): one
  credential, one MSAL client per tenant and one cache, where each (user, API) pair has its
  own entry because the API's scopes (and a SAML token type) are part of the key.
- Every exchange logs one record without tokens; ``OBO_TRACE=verbose`` adds the names of
  the parameters sent and the client assertion's header (thumbprints, certificate subject).
"""

from __future__ import annotations

import functools
import json
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import msal
import requests

from obo import telemetry
from obo.cache import OboToken
from obo.codes import Code
from obo.config import DownstreamSettings, Settings
from obo.credentials import ClientCredential, CredentialSource
from obo.entra_answer import (
    NO_ANSWER,
    EntraAnswer,
    EntraFailure,
    EntraRefused,
    EntraUnreachable,
    entra_failures,
)
from obo.entra_http import EntraHttpClient
from obo.errors import DependencyTimeout, OboError
from obo.fleet_cache import TieredCache, shared_store
from obo.logsafe import printable
from obo.saml import TOKEN_TYPES, V1Client, authorization, decode_assertion
from obo.shared_load import SharedLoad
from obo.trace import RequestTrace
from obo.user_assertion import UserAssertion
from obo.validation import Caller

log = logging.getLogger("obo.exchange")

MAX_APPS = 10_000  # MSAL clients, one per tenant (obo.jwks keeps as many verified tenants)
DISCOVERY_DEADLINE = 8.0  # nobody waits longer for MSAL's tenant discovery
DISCOVERY_FAILURE_MEMO = 5.0  # a failed discovery is answered at once for this long


class _NoTokenCache(msal.TokenCache):  # type: ignore[misc]
    """Nothing kept in MSAL: OBO results (and refresh tokens) would only pile up there."""

    def add(self, event: dict[str, Any], now: Any = None) -> None:
        return None


class Exchanger:
    """``token_for(caller, assertion, api=...)``: the cache, else one exchange
    (:meth:`_exchange`), whose token requests (:meth:`_acquire`) each answer an
    :class:`~obo.entra_answer.EntraAnswer` or raise an ``EntraFailure``, which
    :func:`~obo.entra_answer.entra_failures` turns into the API's error."""

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
        self._v1 = V1Client(settings.authority_host, settings.client_id, self._http, clock)
        self._clock = clock
        self._apps: OrderedDict[tuple[str, str], SharedLoad[msal.ConfidentialClientApplication]]
        self._apps = OrderedDict()
        self._apps_lock = threading.Lock()  # the map only; never held across the network
        self._cache = TieredCache(shared_store(settings, clock), clock)
        self._default = settings.default_api

    def token_for(
        self, caller: Caller, assertion: UserAssertion, *, api: DownstreamSettings | None = None
    ) -> OboToken:
        """The token for ``api`` (the default API when None) on behalf of ``caller``: from
        L1, L2 (``OBO_CACHE_URL``) or one exchange."""
        api = api or self._default
        attributes = {"obo.tenant_id": caller.tid, "obo.api": api.name}
        with telemetry.span("obo.exchange", **attributes) as span:
            try:
                token, layer = self._cache.get(
                    assertion,
                    _partition(caller, api),
                    caller.expires_at,
                    lambda: self._exchange(caller, assertion, api),
                )
            except Exception:
                telemetry.cache_lookup(span, "miss")  # only an exchange can fail
                raise
            telemetry.cache_lookup(span, layer)
            return token

    def forget(
        self, caller: Caller, assertion: UserAssertion, *, api: DownstreamSettings | None = None
    ) -> None:
        """Drop a cached token the downstream API refused (CAE), here and in the shared
        cache; the next call re-exchanges."""
        self._cache.forget(assertion, _partition(caller, api or self._default))

    def _exchange(
        self, caller: Caller, assertion: UserAssertion, api: DownstreamSettings
    ) -> OboToken:
        """One exchange; a certificate Entra no longer accepts is replaced (once) by the
        newest version in Key Vault, and the request sent again with it."""
        with entra_failures(api.scopes):
            credential = self._credentials.current()
            try:
                return self._acquire(credential, caller, assertion, api)
            except EntraRefused as refused:
                if not refused.answer.certificate_rejected:
                    raise
                fresh = self._credentials.reload(credential.version)
                if fresh.version == credential.version:  # the same one would fail the same
                    raise
                log.warning(
                    "Entra no longer accepts credential %s (%s); retrying once with %s",
                    printable(credential.version),
                    list(refused.answer.codes),
                    printable(fresh.version),
                )
                return self._acquire(fresh, caller, assertion, api)

    def _acquire(
        self,
        credential: ClientCredential,
        caller: Caller,
        assertion: UserAssertion,
        api: DownstreamSettings,
    ) -> OboToken:
        """One token request, timed and logged whatever its outcome."""
        started = time.perf_counter()
        if self._trace is not None:
            self._trace.start()
        answer, outcome = NO_ANSWER, "failed"
        try:
            answer = self._request(credential, caller, assertion, api)
            token = OboToken(
                self._authorization(answer.token, api), self._clock() + answer.lifetime
            )
            outcome = "ok"
            return token
        except EntraFailure as exc:
            answer, outcome = exc.answer, exc.outcome
            raise
        except OboError as exc:  # no credential (OBO4xxx), or an answer we cannot use
            outcome = exc.code
            raise
        finally:
            telemetry.exchange_duration(time.perf_counter() - started, api.name, outcome == "ok")
            self._log(credential, caller, api, outcome, answer, started)

    def _request(
        self,
        credential: ClientCredential,
        caller: Caller,
        assertion: UserAssertion,
        api: DownstreamSettings,
    ) -> EntraAnswer:
        kind = api.token_type
        if kind != "jwt" and self._settings.saml_endpoint == "v1":
            body = self._v1.on_behalf_of(
                credential, caller.tid, assertion.raw, api.saml_resource, kind
            )
        else:
            extra = {"data": {"requested_token_type": TOKEN_TYPES[kind]}} if kind != "jwt" else {}
            app = self._app(caller.tid, credential)
            body = app.acquire_token_on_behalf_of(assertion.raw, list(api.scopes), **extra)
        return EntraAnswer.read(body)

    @staticmethod
    def _authorization(issued: str, api: DownstreamSettings) -> str:
        kind = api.token_type
        if kind == "jwt":
            return f"Bearer {issued}"
        return authorization(decode_assertion(issued, kind))

    def _log(
        self,
        credential: ClientCredential,
        caller: Caller,
        api: DownstreamSettings,
        outcome: str,
        answer: EntraAnswer,
        started: float,
    ) -> None:
        """The exchange's one record: who, for what, with which answer; never a token."""
        record: dict[str, Any] = {
            "authority": self._settings.authority(caller.tid),
            "client_id": self._settings.client_id,
            "api": api.name,
            "scopes": list(api.scopes),
            "token_type": api.token_type,
            "tid": caller.tid,
            "oid": caller.oid,
            "aud": caller.audience,
            "azp": caller.client_app,
            "ver": caller.version,
            "outcome": outcome,
            "aadsts": list(answer.codes),
            **answer.ids,
            "credential": credential.version,
            "ms": round((time.perf_counter() - started) * 1000, 1),
        }
        if self._trace is not None:
            record["requests"] = json.dumps(self._trace.collect())
        # One flat attribute per field: the OpenTelemetry log handler keeps str, number and
        # list values as customDimensions in Application Insights, and drops a nested dict.
        log.info("obo exchange", extra={f"obo.{name}": value for name, value in record.items()})

    def _app(self, tid: str, credential: ClientCredential) -> msal.ConfidentialClientApplication:
        """The tenant's MSAL client. Building one runs MSAL's tenant discovery over the
        network, so it runs without ``_apps_lock`` held, once per tenant however many wait,
        and a failed discovery is answered at once for a few seconds (SharedLoad)."""
        key = (tid, credential.version)
        with self._apps_lock:
            builder = self._apps.get(key)
            if builder is None:
                # clients for an older certificate version are dropped with it
                for stale in [k for k in self._apps if k[1] != credential.version]:
                    del self._apps[stale]
                builder = self._apps[key] = SharedLoad(
                    lambda: self._new_app(tid, credential),
                    deadline=DISCOVERY_DEADLINE,
                    remember_failure=DISCOVERY_FAILURE_MEMO,
                    too_slow=lambda: DependencyTimeout(
                        Code.ENTRA_TIMEOUT, "Entra ID did not answer tenant discovery in time."
                    ),
                    clock=self._clock,
                    name="msal-discovery",
                )
                while len(self._apps) > MAX_APPS:
                    self._apps.popitem(last=False)
            self._apps.move_to_end(key)
        app = builder.value or builder.get()
        assert app is not None  # get() starts a build when none is under way
        return app

    def _new_app(
        self, tid: str, credential: ClientCredential
    ) -> msal.ConfidentialClientApplication:
        # Each client keeps its own http_cache: MSAL guards it with a lock per client, so a
        # dict shared by several clients would be changed by several threads at once.
        try:
            return msal.ConfidentialClientApplication(
                self._settings.client_id,
                authority=self._settings.authority(tid),
                client_credential=credential.msal_credential(),
                http_client=self._http,
                token_cache=_NoTokenCache(),
                instance_discovery=_is_public_cloud(self._settings.authority_host),
            )
        except ValueError as exc:
            if not _raised_in(exc, "msal.authority"):
                raise
            # MSAL's instance or tenant discovery refused (msal/authority.py raises
            # ValueError for a 4xx discovery answer or an unknown instance)
            raise EntraUnreachable("tenant discovery failed") from exc


def _partition(caller: Caller, api: DownstreamSettings) -> str:
    """What besides the assertion tells entries apart: one entry per (user, tenant, API).
    An API is its scopes and a SAML token type (an assertion and an access token for the
    same ``/.default`` are different tokens)."""
    return _partition_of(caller.tid, tuple(api.scopes), api.token_type)


@functools.lru_cache(maxsize=4096)
def _partition_of(tid: str, scopes: tuple[str, ...], token_type: str) -> str:
    """Memoised: the same few (tenant, API) pairs on every request of the warm path."""
    named = sorted(scopes)
    if token_type != "jwt":
        named.append(f"token_type={token_type}")
    return json.dumps([tid, named])


def _raised_in(exc: BaseException, module: str) -> bool:
    """Whether ``exc`` was raised while ``module`` was running (its traceback passes there)."""
    frame = exc.__traceback__
    while frame is not None:
        if frame.tb_frame.f_globals.get("__name__") == module:
            return True
        frame = frame.tb_next
    return False


def _is_public_cloud(host: str) -> bool:
    return host.rstrip("/") in ("https://login.microsoftonline.com", "https://login.windows.net")
