"""All stand-ins together: one CA, six services on free loopback ports, and the settings
that point the function app at them."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from typing import Any

from devstack.directory import Directory, FederatedCredential
from devstack.entra import Entra
from devstack.graph import GraphApi
from devstack.httpserver import Server
from devstack.identity import ManagedIdentityEndpoint
from devstack.keyvault import KeyVault
from devstack.orders import OrdersApi
from devstack.samlapi import SamlApi
from devstack.seed import ORDERS_RESOURCE, SAML_ENTITY_ID, Seed, build
from devstack.tls import LocalCA

CERTIFICATE_NAME = "obo-api-cert"


class DevStack:
    """Start with ``with DevStack() as stack:``; ``stack.settings()`` is the app's environment."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.ca = LocalCA()
        self.seed: Seed = build(Directory(clock))
        self.directory = self.seed.directory
        self.entra = Entra(self.directory)
        self.graph = GraphApi(self.directory)
        self.orders = OrdersApi(self.directory, self.seed.other_api, self.seed.contoso)
        self.saml_api = SamlApi(
            self.directory,
            SAML_ENTITY_ID,
            self.seed.contoso,
            self.seed.saml_app.saml_recipient or "",
        )
        self.vault = KeyVault(
            self.directory,
            self.seed.contoso,
            readers={self.directory.principal_id(self.seed.function_identity, self.seed.contoso)},
        )
        self.identity = ManagedIdentityEndpoint(
            self.directory,
            self.seed.contoso,
            self.seed.function_identity,
            header_secret=secrets.token_urlsafe(16),
        )
        self._servers: list[Server] = []

    def start(self) -> DevStack:
        tls = self.ca.server_context()
        for service in (self.entra, self.graph, self.saml_api, self.vault, self.orders):
            self._servers.append(Server(service, tls))
        self._servers.append(Server(self.identity, None))  # App Service's endpoint is plain HTTP
        self.directory.authority_host = self.entra.base_url
        self.identity.allow_resource(self.vault.resource, self.seed.key_vault)
        # Secretless mode: API 1 trusts the Function App's identity as a federated credential.
        self.seed.api.federated_credentials.append(
            FederatedCredential(
                issuer=self.directory.issuer_v2(self.seed.contoso.id),
                subject=self.identity.object_id,
            )
        )
        seed = self.seed
        self.vault.import_certificate(CERTIFICATE_NAME, seed.api_key, seed.api_certificate)
        return self

    def reset(self) -> None:
        """Every stand-in back to its seeded behaviour: no injected faults, zeroed counters,
        no pending claims challenge, no test switch left on. Tests call it around each test;
        the directory (users, consents, certificates) is left as it is."""
        for service in (
            self.entra,
            self.vault,
            self.identity,
            self.graph,
            self.saml_api,
            self.orders,
        ):
            service.clear_faults()
            service.reset_counters()
        self.graph.clear_claims()
        self.entra.ignore_requested_token_type = False

    def stop(self) -> None:
        for server in self._servers:
            server.stop()
        self._servers.clear()

    def __enter__(self) -> DevStack:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def settings(self, **overrides: str) -> dict[str, str]:
        """The app settings for the function app, as ``local.settings.json`` would hold them."""
        seed = self.seed
        values = {
            "OBO_TENANT_ID": seed.contoso.id,
            "OBO_CLIENT_ID": seed.api.app_id,
            "OBO_AUTHORITY_HOST": self.entra.base_url,
            "OBO_ALLOWED_TENANTS": f"{seed.contoso.id},{seed.fabrikam.id},{seed.tailspin.id}",
            "OBO_KEY_VAULT_URL": self.vault.base_url,
            "OBO_CERTIFICATE_NAME": CERTIFICATE_NAME,
            "OBO_DOWNSTREAM_BASE_URL": f"{self.graph.base_url}/v1.0",
            "OBO_DOWNSTREAM_SCOPES": "https://graph.microsoft.com/User.Read",
            # named downstream APIs: Graph for /api/profile, and Contoso's own Orders API
            "OBO_DOWNSTREAM__GRAPH__BASE_URL": f"{self.graph.base_url}/v1.0",
            "OBO_DOWNSTREAM__GRAPH__SCOPES": "https://graph.microsoft.com/User.Read "
            "https://graph.microsoft.com/GroupMember.Read.All",
            "OBO_DOWNSTREAM__ORDERS__BASE_URL": self.orders.base_url,
            "OBO_DOWNSTREAM__ORDERS__SCOPES": f"{ORDERS_RESOURCE}/Orders.Read",
            "OBO_DOWNSTREAM__ORDERS__RELAY": "true",
            "OBO_CA_BUNDLE": str(self.ca.ca_file),
            # azure-identity's own variables: App Service managed identity, user-assigned.
            "IDENTITY_ENDPOINT": self.identity.endpoint,
            "IDENTITY_HEADER": self.identity.header_secret,
            "AZURE_CLIENT_ID": seed.function_identity.app_id,
        }
        values.update(overrides)
        return values

    def saml_overrides(self, token_type: str = "saml2", endpoint: str = "v1") -> dict[str, str]:
        """What ``settings`` needs changed for JWT-to-SAML exchange with the SAML-only API."""
        return {
            "OBO_DOWNSTREAM_TOKEN_TYPE": token_type,
            "OBO_SAML_ENDPOINT": endpoint,
            "OBO_DOWNSTREAM_SCOPES": f"{SAML_ENTITY_ID}/.default",
            "OBO_DOWNSTREAM_BASE_URL": self.saml_api.base_url,
        }
