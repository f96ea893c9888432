"""Key Vault stand-in: certificates and their backing secrets, behind Key Vault's auth.

Follows Microsoft's Key Vault documentation:

- "Azure Key Vault REST API: Get Certificate / Get Certificate Versions": ``GET
  /certificates/{name}/[{version}]`` is a CertificateBundle (``id``, ``kid``, ``sid``, ``x5t``
  = base64url SHA-1 of the DER, ``cer`` = base64 DER, ``attributes``; the latest form also
  ``policy`` with ``key_props`` and ``secret_props.contentType``); ``/versions`` is a page
  ``{"value": [...], "nextLink": ...}``.
- "Azure Key Vault REST API: Get Secret" with "About Azure Key Vault certificates": the secret
  named like the certificate holds key + certificate, as PEM (``application/x-pem-file``) or
  base64 PKCS#12 (``application/x-pkcs12``), with ``kid`` and ``managed: true``.
- An empty version (``/certificates/{name}/``, what the SDK sends) means the latest; unknown
  names/versions are 404 ``CertificateNotFound``/``SecretNotFound``; the secret of a disabled
  version is 403 ``Forbidden`` (inner ``SecretDisabled``); its certificate is still returned,
  with ``enabled: false``.
- "Authentication in Key Vault: the bearer challenge": no token -> 401 with ``WWW-Authenticate:
  Bearer authorization="<authority>/<tenant>", resource="<resource>"``; a bad token (signature,
  issuer, lifetime, audience) -> 401 with the same challenge; a caller without a role -> 403
  ``ForbiddenByRbac`` ("Azure Key Vault RBAC guide"). Errors are ``{"error": {"code",
  "message"}}``.

The challenge resource is ``https://0.0.1:<port>``: the SDK requires the vault host to end with
the resource host (``x.vault.azure.net`` / ``vault.azure.net``); ``127.0.0.1:<port>`` does, so
clients keep that check on.
"""

from __future__ import annotations

import base64
import collections
import re
import threading
import uuid
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs12

from devstack.directory import KEY_VAULT_APP_ID, Directory, Tenant, VerifyError
from devstack.httpserver import Request, Response, Service
from devstack.keys import thumbprints

PEM, PKCS12 = "application/x-pem-file", "application/x-pkcs12"
API_VERSION = re.compile(r"^(\d+\.\d+|\d{4}-\d{2}-\d{2})(-preview(\.\d+)?)?$")
READ_CERTIFICATE = "Microsoft.KeyVault/vaults/certificates/read"
READ_SECRET = "Microsoft.KeyVault/vaults/secrets/getSecret/action"


@dataclass
class CertificateVersion:
    version: str
    private_key: rsa.RSAPrivateKey
    certificate: x509.Certificate
    content_type: str
    created: int
    updated: int
    issuer: str = "Unknown"  # imported certificates; "Self" for ones the vault generated
    enabled: bool = True


class KeyVault(Service):
    name = "keyvault"

    def __init__(self, directory: Directory, tenant: Tenant, readers: set[str]) -> None:
        super().__init__()
        self.directory, self.tenant, self.readers = directory, tenant, readers
        self._certificates: dict[str, list[CertificateVersion]] = {}  # oldest first
        self._store = threading.RLock()
        self.secret_reads: collections.Counter[tuple[str, str]] = collections.Counter()
        self.route("GET", "/certificates/{name}/versions", "certificate_versions", self._versions)
        for pattern in (
            "/certificates/{name}",
            "/certificates/{name}/",
            "/certificates/{name}/{version}",
        ):
            self.route("GET", pattern, "get_certificate", self._get_certificate)
        for pattern in ("/secrets/{name}", "/secrets/{name}/", "/secrets/{name}/{version}"):
            self.route("GET", pattern, "get_secret", self._get_secret)

    @property
    def resource(self) -> str:
        return "https://0.0.1:" + self.base_url.rsplit(":", 1)[-1]

    @property
    def challenge(self) -> str:
        authority = f"{self.directory.authority_host}/{self.tenant.id}"
        return f'Bearer authorization="{authority}", resource="{self.resource}"'

    # -- runtime API for tests and the stack ---------------------------------------------
    def import_certificate(
        self,
        name: str,
        private_key: rsa.RSAPrivateKey,
        certificate: x509.Certificate,
        content_type: str = PEM,
        *,
        issuer: str = "Unknown",
    ) -> str:
        """Add a version (it becomes the latest) and return its version id."""
        if content_type not in (PEM, PKCS12):
            raise ValueError(f"unsupported content type {content_type}")
        now = int(self.directory.clock())
        entry = CertificateVersion(
            uuid.uuid4().hex, private_key, certificate, content_type, now, now, issuer
        )
        with self._store:
            self._certificates.setdefault(name, []).append(entry)
        return entry.version

    def create_certificate_version(
        self,
        name: str,
        subject: str = "CN=obo-middle-tier",
        content_type: str = PEM,
    ) -> tuple[str, rsa.RSAPrivateKey, x509.Certificate]:
        """Rotation: a fresh key and self-signed certificate as the new latest version."""
        key, cert = self.directory.new_certificate(subject)
        return self.import_certificate(name, key, cert, content_type, issuer="Self"), key, cert

    def disable_version(self, name: str, version: str, enabled: bool = False) -> None:
        with self._store:
            entry = self._find(name, version)
            if entry is None:
                raise KeyError(f"{name}/{version}")
            entry.enabled, entry.updated = enabled, int(self.directory.clock())

    def reset_counters(self) -> None:
        super().reset_counters()
        with self._lock:
            self.secret_reads.clear()

    # -- handlers -----------------------------------------------------------------------
    def _read(self, req: Request, action: str, kind: str) -> CertificateVersion | Response:
        """The version a read names, once Key Vault's checks pass; else the refusal or 404."""
        if refused := self._refuse(req, action):
            return refused
        name, version = req.params["name"], req.params.get("version", "")
        entry = self._find(name, version)
        if entry is None:
            return _not_found(f"{kind.capitalize()}NotFound", kind, name, version)
        return entry

    def _get_certificate(self, req: Request) -> Response:
        entry = self._read(req, READ_CERTIFICATE, "certificate")
        if isinstance(entry, Response):
            return entry
        name = req.params["name"]
        der = entry.certificate.public_bytes(serialization.Encoding.DER)
        bundle = {
            **self._item(name, entry),
            "kid": self._id("keys", name, entry),
            "sid": self._id("secrets", name, entry),
            "cer": _b64(der),
        }
        if not req.params.get("version"):  # the latest carries the policy (Get Certificate)
            bundle["policy"] = self._policy(name, entry)
        return Response.json(bundle)

    def _versions(self, req: Request) -> Response:
        if refused := self._refuse(req, READ_CERTIFICATE):
            return refused
        name = req.params["name"]
        with self._store:
            entries = list(self._certificates.get(name, []))
        size = max(1, min(25, int(req.query.get("maxresults") or 25)))
        start = int(req.query.get("$skiptoken") or 0)
        page = [self._item(name, e) for e in entries[start : start + size]]
        next_link = None
        if start + size < len(entries):
            next_link = (
                f"{self.base_url}/certificates/{name}/versions?api-version="
                f"{req.query['api-version']}&maxresults={size}&$skiptoken={start + size}"
            )
        return Response.json({"value": page, "nextLink": next_link})

    def _get_secret(self, req: Request) -> Response:
        entry = self._read(req, READ_SECRET, "secret")
        if isinstance(entry, Response):
            return entry
        name = req.params["name"]
        if not entry.enabled:
            return _kv_error(
                403,
                "Forbidden",
                "Operation get is not allowed on a disabled secret.",
                inner="SecretDisabled",
            )
        with self._lock:
            self.secret_reads[(name, entry.version)] += 1
        return Response.json(
            {
                "value": _secret_value(entry),
                "contentType": entry.content_type,
                "id": self._id("secrets", name, entry),
                "kid": self._id("keys", name, entry),
                "managed": True,
                "attributes": _attributes(entry),
                "tags": {},
            }
        )

    # -- authentication and authorization -------------------------------------------------
    def _refuse(self, req: Request, action: str) -> Response | None:
        """Key Vault's checks, in its order: api-version, bearer token, role assignment."""
        version = req.query.get("api-version", "")
        if not API_VERSION.match(version):
            return _kv_error(
                400, "BadParameter", f"The specified version ({version}) is not recognized."
            )
        scheme, _, token = req.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return self._unauthorized("AKV10000: Request is missing a Bearer or PoP token.")
        try:
            claims = self.directory.verify(token.strip(), self.tenant)
        except VerifyError as exc:  # wrong tenant or key, bad signature, expired
            return self._unauthorized(f"Token validation failed ({exc.reason}).")
        audiences = (self.resource, "https://vault.azure.net", KEY_VAULT_APP_ID)
        if claims.get("aud") not in audiences:
            return self._unauthorized(
                f"AKV10022: Invalid audience. Expected {self.resource}, found: {claims.get('aud')}."
            )
        if claims.get("oid") not in self.readers:
            caller = f"appid={claims.get('appid') or claims.get('azp')};oid={claims.get('oid')}"
            return _kv_error(
                403,
                "Forbidden",
                "Caller is not authorized to perform action on resource.\r\n"
                f"Caller: {caller};iss={claims.get('iss')}\r\nAction: '{action}'\r\n"
                "Assignment: (not found)\r\n",
                inner="ForbiddenByRbac",
            )
        return None

    def _unauthorized(self, message: str) -> Response:
        return _kv_error(401, "Unauthorized", message, headers={"WWW-Authenticate": self.challenge})

    # -- shapes -------------------------------------------------------------------------
    def _find(self, name: str, version: str) -> CertificateVersion | None:
        with self._store:
            entries = self._certificates.get(name, [])
            if not version:
                return entries[-1] if entries else None
            return next((e for e in entries if e.version == version.lower()), None)

    def _id(self, kind: str, name: str, entry: CertificateVersion) -> str:
        return f"{self.base_url}/{kind}/{name}/{entry.version}"

    def _item(self, name: str, entry: CertificateVersion) -> dict[str, object]:
        return {
            "id": self._id("certificates", name, entry),
            "x5t": thumbprints(entry.certificate)[0],
            "attributes": _attributes(entry),
            "tags": {},
        }

    def _policy(self, name: str, entry: CertificateVersion) -> dict[str, object]:
        cert = entry.certificate
        days = (cert.not_valid_after_utc - cert.not_valid_before_utc).days
        return {
            "id": f"{self.base_url}/certificates/{name}/policy",
            "key_props": {
                "exportable": True,
                "kty": "RSA",
                "key_size": entry.private_key.key_size,
                "reuse_key": False,
            },
            "secret_props": {"contentType": entry.content_type},
            "x509_props": {
                "subject": cert.subject.rfc4514_string(),
                "ekus": [],
                "key_usage": [],
                "validity_months": max(1, round(days / 30.4)),
            },
            "lifetime_actions": [
                {"trigger": {"lifetime_percentage": 80}, "action": {"action_type": "EmailContacts"}}
            ],
            "issuer": {"name": entry.issuer},
            "attributes": {"enabled": True, "created": entry.created, "updated": entry.updated},
        }


def _attributes(entry: CertificateVersion) -> dict[str, object]:
    cert = entry.certificate
    return {
        "enabled": entry.enabled,
        "nbf": int(cert.not_valid_before_utc.timestamp()),
        "exp": int(cert.not_valid_after_utc.timestamp()),
        "created": entry.created,
        "updated": entry.updated,
        "recoveryLevel": "Recoverable+Purgeable",
        "recoverableDays": 90,
    }


def _secret_value(entry: CertificateVersion) -> str:
    if entry.content_type == PKCS12:
        pfx = pkcs12.serialize_key_and_certificates(
            None, entry.private_key, entry.certificate, None, serialization.NoEncryption()
        )
        return _b64(pfx)
    key = entry.private_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return (key + entry.certificate.public_bytes(serialization.Encoding.PEM)).decode()


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _not_found(code: str, kind: str, name: str, version: str) -> Response:
    ref = f"{name}/{version}" if version else name
    return _kv_error(
        404,
        code,
        (
            f"A {kind} with (name/id) {ref} was not found in this key vault. If you recently "
            f"deleted this {kind} you may be able to recover it using the correct recovery "
            "command. For help resolving this issue, please see https://go.microsoft.com/fwlink/?linkid=2125182"
        ),
    )


def _kv_error(
    status: int,
    code: str,
    message: str,
    *,
    inner: str | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    error: dict[str, object] = {"code": code, "message": message}
    if inner:
        error["innererror"] = {"code": inner}
    return Response.json({"error": error}, status, headers)
