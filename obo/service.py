"""The pipeline's parts, built once per process from the settings: bearer → validate → tid
authority → credential → OBO → API 2.

One key source, one validator, one credential source (a single Key Vault read), one
exchanger (one MSAL client per tenant) and one downstream caller per API, whatever the
number of downstream APIs. :class:`obo.functions.OnBehalfOf` builds it lazily and hands
its parts to each request through :class:`obo.clients.DownstreamApi`.

Its network seams can be handed in, as httpx takes a ``transport`` and
Microsoft.Identity.Web an ``IMsalHttpClientFactory``: ``session`` carries every outbound
call (signing keys, Entra, Key Vault, the identity endpoint, the downstream APIs), and
``identity_factory`` builds the azure-identity credential used for Key Vault or as the
federated credential.
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
from obo.user_assertion import UserAssertion
from obo.validation import Caller, TokenValidator


class OboService:
    def __init__(
        self,
        settings: Settings,
        *,
        session: Session | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        identity_factory: Callable[[], Any] | None = None,
        read_timeout: float = READ_TIMEOUT,
    ) -> None:
        """``read_timeout`` applies to the session built here when none is given."""
        self.settings = settings
        if session is None:
            session = new_session(settings.ca_bundle, read_timeout=read_timeout)
        self.keys = KeySource(session, settings.authority_host, clock)
        self.validator = TokenValidator(settings, self.keys, clock)
        self.credentials = _credential_source(settings, identity_factory, clock, session)
        self.exchanger = Exchanger(settings, self.credentials, session, clock)
        self.downstream = {
            name: Downstream(api.base_url, session, sleep) for name, api in settings.apis.items()
        }

    def authenticate(self, headers: Mapping[str, str]) -> tuple[Caller, UserAssertion]:
        """The validated caller and their token (the OBO assertion), or an Unauthorized."""
        with telemetry.span("obo.validate") as span:
            assertion = UserAssertion(bearer_token(_header(headers, "Authorization")))
            caller = self.validator.validate(assertion)
            span.set_attribute("obo.tenant_id", caller.tid)
            return caller, assertion


def _credential_source(
    settings: Settings,
    identity_factory: Callable[[], Any] | None,
    clock: Callable[[], float],
    session: Session,
) -> CredentialSource:
    """The source ``OBO_CLIENT_CREDENTIAL`` names, on the shared cookie-less session."""
    if settings.client_credential == "managed_identity":
        return ManagedIdentitySource(settings, identity_factory, clock, session=session)
    return CertificateSource(settings, identity_factory, clock, session=session)


def _header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    if value is None:  # plain dicts (tests, other hosts) may not be case-insensitive
        value = next((v for k, v in headers.items() if k.lower() == name.lower()), None)
    return value
