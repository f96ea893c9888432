"""A throw-away certificate authority and a server certificate for 127.0.0.1.

Generated at start so every run gets fresh keys; the CA file is what ``OBO_CA_BUNDLE``
points at, the same way a TLS-inspecting proxy's CA would be configured in production.
"""

from __future__ import annotations

import ssl
import tempfile
from pathlib import Path

import trustme


class LocalCA:
    """One CA per stack; the server context is shared by all stand-ins."""

    def __init__(self, directory: Path | None = None) -> None:
        self._ca = trustme.CA(organization_name="OBO devstack")
        self._leaf = self._ca.issue_cert("127.0.0.1", "localhost", "0.0.1")
        self.directory = directory or Path(tempfile.mkdtemp(prefix="obo-devstack-"))
        self.ca_file = self.directory / "devstack-ca.pem"
        self._ca.cert_pem.write_to_path(str(self.ca_file))

    def server_context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        self._leaf.configure_cert(ctx)
        return ctx

    def server_files(self) -> tuple[Path, Path]:
        """The server certificate chain and key as PEM files, for servers that read files
        (a TLS ``redis-server`` standing in for Azure Managed Redis)."""
        chain, key = self.directory / "server-chain.pem", self.directory / "server-key.pem"
        chain.write_bytes(b"".join(blob.bytes() for blob in self._leaf.cert_chain_pems))
        self._leaf.private_key_pem.write_to_path(str(key))
        return chain, key
