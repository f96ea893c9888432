"""Managed identity stand-in (placeholder: being written)."""

from __future__ import annotations

from devstack.directory import App, Directory, Tenant
from devstack.httpserver import Service


class ManagedIdentityEndpoint(Service):
    name = "identity"

    def __init__(self, directory: Directory, tenant: Tenant, identity: App, header_secret: str) -> None:
        super().__init__()
        self.directory, self.tenant, self.identity, self.header_secret = directory, tenant, identity, header_secret

    @property
    def endpoint(self) -> str:
        return f"{self.base_url}/msi/token"

    def allow_resource(self, resource_uri: str, app: App) -> None:
        pass
