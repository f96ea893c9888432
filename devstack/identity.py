"""Managed identity stand-in: the App Service / Azure Functions local token endpoint.

Follows "App Service managed identity REST protocol" (Microsoft Learn: "How to use managed
identities for App Service and Azure Functions", section "REST endpoint reference"), which
is what azure-identity's ``ManagedIdentityCredential`` (through MSAL's
``_obtain_token_on_app_service``) and ``DefaultAzureCredential`` speak when the
``IDENTITY_ENDPOINT`` and ``IDENTITY_HEADER`` environment variables are set:

    GET {IDENTITY_ENDPOINT}?resource=<uri>&api-version=2019-08-01
        [&client_id=|&mi_res_id=|&object_id=]
    X-IDENTITY-HEADER: {IDENTITY_HEADER}

Success is ``{"access_token", "expires_on" (epoch seconds as a string), "resource",
"token_type": "Bearer", "client_id"}``. Failures use App Service's error shape
``{"statusCode", "message", "correlationId"}`` (the fields MSAL reads):

- header missing -> 400, header wrong -> 401, api-version other than 2019-08-01 -> 400 (the
  documentation gives no bodies for these; statuses follow what the platform answers);
- an identity selector that is not this identity (or none, when the app has no
  system-assigned identity) -> 400 "Unable to load the proper Managed Identity.";
- a resource that is not allowed (``allow_resource``, plus Key Vault and the token exchange
  audience) or has no service principal in the tenant -> 400 carrying Entra's AADSTS500011
  message ("Microsoft Entra authentication and authorization error codes").

The token is the one Entra would mint for the identity's service principal: an app-only
token signed by the tenant key, ``aud`` = the resource as requested.
"""

from __future__ import annotations

import datetime as dt
import uuid

import jwt

from devstack.directory import (
    KEY_VAULT_APP_ID,
    TOKEN_EXCHANGE_APP_ID,
    App,
    Directory,
    Tenant,
    stable_id,
)
from devstack.httpserver import Request, Response, Service

API_VERSION = "2019-08-01"
# Resources every tenant can issue managed identity tokens for, looked up in the directory.
DEFAULT_RESOURCES = {
    "https://vault.azure.net": KEY_VAULT_APP_ID,
    "api://AzureADTokenExchange": TOKEN_EXCHANGE_APP_ID,
}
NO_IDENTITY = "Unable to load the proper Managed Identity."


class ManagedIdentityEndpoint(Service):
    """The endpoint for one user-assigned identity (optionally also the system-assigned one)."""

    name = "identity"

    def __init__(
        self,
        directory: Directory,
        tenant: Tenant,
        identity: App,
        header_secret: str,
        *,
        system_assigned: bool = False,
    ) -> None:
        super().__init__()
        self.directory, self.tenant, self.identity = directory, tenant, identity
        self.header_secret = header_secret
        self.system_assigned = system_assigned  # answer requests that name no identity
        self.resource_id = (
            f"/subscriptions/{stable_id('subscription:obo')}/resourceGroups/rg-obo/providers"
            f"/Microsoft.ManagedIdentity/userAssignedIdentities/{identity.name}"
        )
        self._resources: dict[str, App] = {}
        self.route("GET", "/msi/token", "token", self._token)

    @property
    def endpoint(self) -> str:
        return f"{self.base_url}/msi/token"

    @property
    def object_id(self) -> str:
        return self.directory.principal_id(self.identity, self.tenant)

    def allow_resource(self, resource_uri: str, app: App) -> None:
        """Let the identity get tokens for ``resource_uri`` (an App ID URI of ``app``)."""
        with self._lock:
            self._resources[resource_uri.rstrip("/")] = app

    # -- the protocol -------------------------------------------------------------------
    def _token(self, req: Request) -> Response:
        secret = req.headers.get("x-identity-header")
        if secret is None:
            return _error(400, "The request is missing the X-IDENTITY-HEADER header.")
        if secret != self.header_secret:
            return _error(401, "The X-IDENTITY-HEADER value is not valid.")
        version = req.query.get("api-version", "")
        if version != API_VERSION:
            return _error(400, f"The api-version '{version}' is not supported; use {API_VERSION}.")
        requested = req.query.get("resource", "").strip()
        if not requested:
            return _error(400, "The request is missing the required 'resource' parameter.")
        if not self._is_this_identity(req.query):
            return _error(400, NO_IDENTITY)
        audience = requested.removesuffix("/.default")
        app = self._resource_app(audience.rstrip("/"))
        if app is None:
            return _error(400, self._aadsts500011(requested))
        token = self.directory.app_token(self.tenant, self.identity, app, resource_uri=audience)
        expires = jwt.decode(token, options={"verify_signature": False})["exp"]
        return Response.json(
            {
                "access_token": token,
                "expires_on": str(expires),
                "resource": requested,
                "token_type": "Bearer",
                "client_id": self.identity.app_id,
            },
            headers={"Cache-Control": "no-store"},
        )

    def _is_this_identity(self, query: dict[str, str]) -> bool:
        known = {
            "client_id": self.identity.app_id,
            "object_id": self.object_id,
            "mi_res_id": self.resource_id,
        }
        chosen = [(name, value) for name, value in query.items() if name in known and value]
        if not chosen:
            return self.system_assigned
        # GUIDs and ARM resource ids compare case-insensitively.
        return len(chosen) == 1 and chosen[0][1].lower() == known[chosen[0][0]].lower()

    def _resource_app(self, resource: str) -> App | None:
        with self._lock:
            app = self._resources.get(resource)
        if app is None and resource in DEFAULT_RESOURCES:
            found = self.directory.resource_by_identifier(resource)
            if found is not None and found.app_id == DEFAULT_RESOURCES[resource]:
                app = found
        if app is None or (self.tenant.id, app.app_id) not in self.directory.service_principals:
            return None
        return app

    def _aadsts500011(self, resource: str) -> str:
        moment = dt.datetime.fromtimestamp(self.directory.clock(), dt.UTC)
        now = moment.strftime("%Y-%m-%d %H:%M:%SZ")
        return (
            f"AADSTS500011: The resource principal named {resource} was not found in the tenant "
            f"named {self.tenant.domain}. This can happen if the application has not been "
            "installed by the administrator of the tenant or consented to by any user in the "
            "tenant. You might have sent your authentication request to the wrong tenant.\r\n"
            f"Trace ID: {uuid.uuid4()}\r\nCorrelation ID: {uuid.uuid4()}\r\nTimestamp: {now}"
        )


def _error(status: int, message: str) -> Response:
    """App Service's error body: the fields MSAL turns into ``error_description``."""
    body = {"statusCode": status, "message": message, "correlationId": str(uuid.uuid4())}
    return Response.json(body, status)
