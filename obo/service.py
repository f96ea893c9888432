"""The pipeline's parts, built once per process from the settings: bearer → validate → tid
authority → credential → OBO → API 2.

One key source, one validator, one credential source (a single Key Vault read), one
exchanger (one MSAL client per tenant) and one downstream caller per API, whatever the
number of downstream APIs. :class:`obo.functions.OnBehalfOf` builds it lazily and hands
its parts to each request through :class:`obo.clients.DownstreamApi`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from obo import telemetry
from obo.bearer import bearer_token
from obo.config import Settings
from obo.credentials import CertificateSource, CredentialSource
from obo.downstream import Downstream
from obo.exchange import Exchanger
from obo.jwks import KeySource
from obo.managed_identity import ManagedIdentitySource
from obo.transport import READ_TIMEOUT, Session, new_session
from obo.validation import Caller, TokenValidator


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
        self.credentials = _credential_source(settings, credential_factory, clock, session)
        self.exchanger = Exchanger(settings, self.credentials, session, clock)
        self.downstream = {
            name: Downstream(api.base_url, session, sleep) for name, api in settings.apis.items()
        }

    def authenticate(self, headers: Mapping[str, str]) -> tuple[Caller, str]:
        """The validated caller and their token (the OBO assertion), or an Unauthorized."""
        with telemetry.span("obo.validate") as span:
            assertion = bearer_token(_header(headers, "Authorization"))
            caller = self.validator.validate(assertion)
            span.set_attribute("obo.tenant_id", caller.tid)
            return caller, assertion


def _credential_source(
    settings: Settings,
    credential_factory: Callable[[], Any] | None = None,
    clock: Callable[[], float] = time.time,
    session: Session | None = None,
) -> CredentialSource:
    """The source ``OBO_CLIENT_CREDENTIAL`` names, on the shared cookie-less session."""
    if settings.client_credential == "managed_identity":
        return ManagedIdentitySource(settings, credential_factory, clock, session=session)
    return CertificateSource(settings, credential_factory, clock, session=session)


def _header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    if value is None:  # plain dicts (tests, other hosts) may not be case-insensitive
        value = next((v for k, v in headers.items() if k.lower() == name.lower()), None)
    return value
