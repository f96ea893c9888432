"""The pipeline: bearer → validate → tid authority → Key Vault credential → OBO → API 2.

Built once per process from the settings, lazily, so importing ``function_app`` stays
cheap for cold starts and a bad setting answers a clear problem instead of failing import.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from obo.bearer import bearer_token
from obo.config import Settings
from obo.credentials import CertificateSource, CredentialSource
from obo.downstream import Downstream, Result, forwarded_headers, safe_method, safe_path
from obo.errors import OboError
from obo.exchange import Exchanger
from obo.jwks import KeySource
from obo.managed_identity import ManagedIdentitySource
from obo.transport import READ_TIMEOUT, new_session
from obo.validation import TokenValidator

log = logging.getLogger("obo")


@dataclass
class ApiRequest:
    method: str
    headers: Mapping[str, str]  # case-insensitive mapping expected
    query: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""


class OboService:
    def __init__(
        self,
        settings: Settings,
        *,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        credential_factory: Callable[[], Any] | None = None,
        read_timeout: float = READ_TIMEOUT,
    ) -> None:
        self.settings = settings
        session = new_session(settings.ca_bundle, read_timeout=read_timeout)
        self.keys = KeySource(session, settings.authority_host, clock)
        self.validator = TokenValidator(settings, self.keys, clock)
        self.credentials = _credential_source(settings, credential_factory, clock)
        self.exchanger = Exchanger(settings, self.credentials, session, clock)
        self.downstream = Downstream(settings.downstream_base_url, session, sleep)

    def me(self, request: ApiRequest) -> Result:
        return self.relay(request, "me", method="GET")

    def relay(self, request: ApiRequest, path: str, *, method: str | None = None) -> Result:
        """Call ``path`` on API 2 as the signed-in user; errors become problem responses."""
        try:
            assertion = bearer_token(_header(request.headers, "Authorization"))
            caller = self.validator.validate(assertion)
            # before the exchange: a request that cannot be relayed costs Entra nothing
            path = safe_path(path)
            safe_method(method or request.method)
            forwarded_headers(request.headers)
            obo = self.exchanger.token_for(caller, assertion)
            try:
                return self.downstream.call(
                    method or request.method,
                    path,
                    obo.authorization,
                    query=request.query,
                    headers=request.headers,
                    body=request.body,
                )
            except OboError as exc:
                if exc.code == "OBO6004":  # CAE revoked this token: never serve it again
                    self.exchanger.forget(caller, assertion)
                raise
        except OboError as exc:
            return problem(exc)


def _credential_source(
    settings: Settings,
    credential_factory: Callable[[], Any] | None = None,
    clock: Callable[[], float] = time.time,
) -> CredentialSource:
    """The source ``OBO_CLIENT_CREDENTIAL`` names."""
    if settings.client_credential == "managed_identity":
        return ManagedIdentitySource(settings, credential_factory)
    return CertificateSource(settings, credential_factory, clock)


def problem(exc: OboError) -> Result:
    level = logging.WARNING if exc.status < 500 else logging.ERROR
    log.log(level, "request refused: %s %s", exc.code, exc.detail)
    status, headers, body = exc.render()
    return Result(status, body, headers)


def _header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    if value is None:  # plain dicts (tests, other hosts) may not be case-insensitive
        value = next((v for k, v in headers.items() if k.lower() == name.lower()), None)
    return value


_service: OboService | None = None
_lock = threading.Lock()


def get_service() -> OboService:
    """The process-wide service, built on first use (raises ConfigurationError if misconfigured)."""
    global _service
    if _service is None:
        with _lock:
            if _service is None:
                _service = OboService(Settings.from_env())
    return _service


def reset_service(service: OboService | None = None) -> None:
    """Replace the process-wide service (tests, or after changing settings)."""
    global _service
    with _lock:
        _service = service
