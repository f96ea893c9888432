"""Key Vault stand-in (placeholder: being written)."""

from __future__ import annotations

from devstack.directory import Directory, Tenant
from devstack.httpserver import Service


class KeyVault(Service):
    name = "keyvault"

    def __init__(self, directory: Directory, tenant: Tenant, readers: set[str]) -> None:
        super().__init__()
        self.directory, self.tenant, self.readers = directory, tenant, readers

    @property
    def resource(self) -> str:
        return "https://0.0.1:" + self.base_url.rsplit(":", 1)[-1]

    def import_certificate(self, name, private_key, certificate, content_type="application/x-pem-file") -> str:
        return "placeholder"
