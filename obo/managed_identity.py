"""Secretless mode: the Function App's managed identity token as API 1's client assertion.

API 1 has a federated identity credential naming the identity (issuer = its tenant's v2
issuer, subject = its object id, audience = ``api://AzureADTokenExchange`` or the national
cloud's), so Entra accepts the identity's token for that audience in place of a certificate
assertion. Nothing secret exists; azure-identity caches and renews the token.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from obo.codes import Code
from obo.config import Settings
from obo.credentials import ClientCredential
from obo.errors import DependencyTimeout, DependencyUnavailable
from obo.shared_load import SharedLoad
from obo.transport import Session, azure_transport, new_session

IDENTITY_RETRY_AFTER = 5  # seconds a caller is asked to wait after an identity failure
IDENTITY_FAILURE_MEMO = 5.0  # a failure is answered at once for this long, then retried
IDENTITY_DEADLINE = 8.0  # nobody waits longer for the identity endpoint (retries included)
REFRESH_MARGIN = 300.0  # ask for a new token this long before the one in hand expires
MIN_VALIDITY = 60.0  # while the endpoint fails, a token with this much life left still serves


@dataclass(frozen=True)
class ManagedIdentityAssertion:
    """The managed identity's token as API 1's client assertion (federated credential)."""

    get_token: Callable[[], str] = field(repr=False)
    version: str = "managed-identity"

    def msal_credential(self) -> dict[str, Any]:
        return {"client_assertion": self.get_token}  # MSAL calls it for every request

    def assertion(self, client_id: str, audience: str, now: float) -> str:
        return self.get_token()


class ManagedIdentitySource:
    """One credential for the process. Its token is reused until ``REFRESH_MARGIN`` before
    expiry; then one caller at a time asks the identity endpoint, the others share that
    answer, and a failure is answered at once for ``IDENTITY_FAILURE_MEMO`` seconds
    (:class:`obo.shared_load.SharedLoad`) while the token in hand, if still valid, is used."""

    def __init__(
        self,
        settings: Settings,
        identity_factory: Callable[[], Any] | None = None,
        clock: Callable[[], float] = time.time,
        *,
        session: Session | None = None,
    ) -> None:
        self._scope = settings.federation_audience + "/.default"
        # through a session that keeps no cookies (obo.transport), not azure-core's own
        session = session or new_session(settings.ca_bundle)
        client_id = settings.managed_identity_client_id
        self._identity_factory = identity_factory or (lambda: _managed_identity(session, client_id))
        self._clock = clock
        self._identity: Any = None  # azure-identity's credential, built on first use
        self._current = ManagedIdentityAssertion(self._token)
        self._tokens: SharedLoad[Any] = SharedLoad(
            self._fetch,
            deadline=IDENTITY_DEADLINE,
            remember_failure=IDENTITY_FAILURE_MEMO,
            too_slow=lambda: DependencyTimeout(
                Code.IDENTITY_TIMEOUT, "The managed identity endpoint timed out."
            ),
            clock=clock,
            name="managed-identity-token",
        )

    def current(self) -> ClientCredential:
        return self._current

    def reload(self, rejected_version: str) -> ClientCredential:
        return self._current

    def _token(self) -> str:
        held = self._tokens.value  # azure.core.credentials.AccessToken
        now = self._clock()
        if held is not None and held.expires_on - REFRESH_MARGIN > now:
            return str(held.token)
        try:
            fresh = self._tokens.get()
        except (DependencyUnavailable, DependencyTimeout):
            if held is not None and held.expires_on - MIN_VALIDITY > now:
                return str(held.token)  # the endpoint is down; Entra still accepts this one
            raise
        assert fresh is not None  # get() starts a fetch when none is under way
        return str(fresh.token)

    def _fetch(self) -> Any:
        from azure.core.exceptions import AzureError, ServiceResponseTimeoutError

        try:
            if self._identity is None:  # only ever built on the one loading thread
                self._identity = self._identity_factory()
            return self._identity.get_token(self._scope)
        except ServiceResponseTimeoutError as exc:
            raise DependencyTimeout(
                Code.IDENTITY_TIMEOUT, "The managed identity endpoint timed out."
            ) from exc
        # MSAL raises ValueError on non-JSON, and AttributeError/TypeError/KeyError on JSON
        # of another shape (an array, a number, a list where a string belongs)
        except (AzureError, ValueError, OSError, TypeError, AttributeError, KeyError) as exc:
            # azure-identity reports "no such identity" and "endpoint failing" alike
            # (CredentialUnavailableError), so one answer names both causes.
            raise DependencyUnavailable(
                Code.NO_IDENTITY_TOKEN,
                f"No managed identity token for {self._scope} (API 1's federated credential): "
                "the identity endpoint failed, or has no such identity (assign it to the "
                "Function App; AZURE_CLIENT_ID = its client id; outside Azure use "
                "OBO_CLIENT_CREDENTIAL=certificate).",
                public_detail="No managed identity token for the API's federated credential.",
                retry_after=IDENTITY_RETRY_AFTER,
            ) from exc


def _managed_identity(session: Session, client_id: str | None) -> Any:
    from azure.identity import ManagedIdentityCredential

    # Only a managed identity can be API 1's federated credential; a developer sign-in cannot.
    return ManagedIdentityCredential(
        client_id=client_id,  # AZURE_CLIENT_ID, read once into Settings
        retry_total=1,  # a user is waiting: worst case about 2 x 3 s, then 503/504
        retry_backoff_factor=0.2,
        transport=azure_transport(session, connection_timeout=2, read_timeout=3),
    )
