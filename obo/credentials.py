"""How API 1 proves itself to Entra: a certificate from Key Vault (here), or (secretless,
:mod:`obo.managed_identity`) a token of the Function App's managed identity that API 1
trusts as a federated credential.

- ``certificate``: the certificates client gives the public part and version; the secret of
  the same name holds the private key (PEM or PKCS#12), as Key Vault documents for
  certificates. Loaded once per process, re-read when a newer version may exist or Entra
  stops accepting ours.
- ``managed_identity``: no secret anywhere. The client assertion is the identity's token for
  ``api://AzureADTokenExchange`` (per cloud), which Entra matches against API 1's federated
  identity credential (issuer, subject = the identity's object id, audience).

Both sources hand out a :class:`ClientCredential`: what MSAL takes, a client assertion for
the requests MSAL cannot make (the v1 endpoint), and a version that names the credential.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs12

from obo.codes import Code
from obo.config import Settings
from obo.errors import DependencyError, DependencyFailed, DependencyTimeout, DependencyUnavailable
from obo.logsafe import loggable_url
from obo.shared_load import SharedLoad
from obo.transport import Session, azure_transport, new_session

log = logging.getLogger("obo.credentials")

VERSION_CHECK_INTERVAL = 3600.0  # look for a newer certificate version at most hourly
VERSION_CHECK_RETRY = 60  # a failed look is retried this much later; the certificate stays
KEY_VAULT_RETRY_AFTER = 5
KEY_VAULT_FAILURE_MEMO = 5.0  # a failed load is answered at once (503) for this long
# No request waits longer than this for Key Vault (one load: certificate, then its secret),
# well inside the Functions timeout (host.json: 30 s) with Entra's two calls around it.
KEY_VAULT_DEADLINE = 8.0
ASSERTION_LIFETIME = 600  # seconds; Entra accepts client assertions of up to 10 minutes


class ClientCredential(Protocol):
    @property
    def version(self) -> str:
        """Names the credential in logs and keys MSAL clients; never secret."""
        ...

    def msal_credential(self) -> dict[str, Any]: ...

    def assertion(self, client_id: str, audience: str, now: float) -> str:
        """A client assertion for ``audience`` (a token endpoint), for requests MSAL cannot
        make."""
        ...


class CredentialSource(Protocol):
    def current(self) -> ClientCredential: ...

    def reload(self, rejected_version: str) -> ClientCredential: ...


@dataclass(frozen=True)
class ClientCertificate:
    version: str
    private_key_pem: str
    certificate_pem: str
    x5t_sha256: str  # base64url, as it appears in the assertion header
    x5t: str  # SHA-1 thumbprint, base64url (v1 requests' assertion header)
    x5c: str  # the DER certificate, standard base64

    def msal_credential(self) -> dict[str, Any]:
        """With ``public_certificate`` MSAL sends ``x5c`` (subject name + issuer auth)."""
        return {"private_key": self.private_key_pem, "public_certificate": self.certificate_pem}

    def assertion(self, client_id: str, audience: str, now: float) -> str:
        """What MSAL builds (RFC 7523, PS256, ``x5t``/``x5t#S256``/``x5c`` header)."""
        issued = int(now)
        headers = {"x5t": self.x5t, "x5t#S256": self.x5t_sha256, "x5c": [self.x5c]}
        claims = {
            "aud": audience,
            "iss": client_id,
            "sub": client_id,
            "jti": str(uuid.uuid4()),
            "nbf": issued,
            "iat": issued,
            "exp": issued + ASSERTION_LIFETIME,
        }
        return jwt.encode(claims, self._signing_key, algorithm="PS256", headers=headers)

    @functools.cached_property
    def _signing_key(self) -> Any:
        """The parsed key, once per certificate: parsing a PEM checks the RSA key, which
        costs about 40 ms, far more than signing (about 1 ms)."""
        return serialization.load_pem_private_key(self.private_key_pem.encode(), password=None)

    def __repr__(self) -> str:  # never print the key
        return f"ClientCertificate(version={self.version!r}, x5t#S256={self.x5t_sha256!r})"


def parse_certificate(
    version: str, secret_value: str, content_type: str | None
) -> ClientCertificate:
    """The private key and leaf certificate from a Key Vault secret (PEM or PKCS#12)."""
    if content_type == "application/x-pkcs12":
        key, cert, _ = pkcs12.load_key_and_certificates(base64.b64decode(secret_value), None)
    else:
        data = secret_value.encode()
        key = serialization.load_pem_private_key(data, password=None)
        certs = x509.load_pem_x509_certificates(data)
        cert = next((c for c in certs if c.public_key() == key.public_key()), None)
    if key is None or cert is None:
        raise ValueError("the secret holds no private key with its certificate")
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    der = cert.public_bytes(serialization.Encoding.DER)
    return ClientCertificate(
        version=version,
        private_key_pem=key_pem,
        certificate_pem=cert.public_bytes(serialization.Encoding.PEM).decode(),
        x5t_sha256=_b64url(hashlib.sha256(der).digest()),
        x5t=_b64url(hashlib.sha1(der).digest()),  # noqa: S324 - a thumbprint, not a MAC
        x5c=base64.b64encode(der).decode(),
    )


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


class CertificateSource:
    """The current certificate; one Key Vault load at a time, its outcome shared.

    - First use, or Entra refused the certificate: callers wait (at most
      ``KEY_VAULT_DEADLINE`` seconds) for one shared load; a failure is answered at once
      (503 with ``Retry-After``) for ``KEY_VAULT_FAILURE_MEMO`` seconds, then retried.
    - The hourly look for a newer version is an optimisation, not a need: when it fails
      (Key Vault down) the current certificate stays in use and the look is retried in
      ``VERSION_CHECK_RETRY`` seconds, as :mod:`obo.jwks` does for signing keys. Only a
      certificate Entra refused (:meth:`reload`) makes a Key Vault failure the caller's.
    """

    def __init__(
        self,
        settings: Settings,
        identity_factory: Callable[[], Any] | None = None,
        clock: Callable[[], float] = time.time,
        deadline: float | None = None,
        *,
        session: Session | None = None,
    ) -> None:
        deadline = KEY_VAULT_DEADLINE if deadline is None else deadline
        self._settings = settings
        # Key Vault and the identity endpoint are called through a session that keeps no
        # cookies (obo.transport), never through azure-core's own cookie-keeping one.
        self._session = session or new_session(settings.ca_bundle)
        # the azure-identity credential that signs the app in to Key Vault
        self._identity_factory = identity_factory or (
            lambda: _azure_identity(azure_transport(self._session))
        )
        self._clock = clock
        self._next_check = float("-inf")
        self._lock = threading.Lock()  # guards _next_check and _futile; never held across I/O
        self._futile: tuple[str, float] | None = None  # (version, until): reloading gave it back
        self._clients: tuple[Any, Any] | None = None
        self._loads: SharedLoad[ClientCertificate] = SharedLoad(
            self._load_and_schedule,
            deadline=deadline,
            remember_failure=KEY_VAULT_FAILURE_MEMO,
            too_slow=lambda: DependencyTimeout(
                Code.KEY_VAULT_TIMEOUT, f"Key Vault did not answer within {deadline:g} s."
            ),
            clock=clock,
            name="key-vault-load",
        )

    def current(self) -> ClientCertificate:
        cert = self._loads.value
        if cert is None:
            return self._shared_load()
        with self._lock:
            due = self._clock() >= self._next_check
            if due:  # one caller looks; the others keep using the certificate meanwhile
                self._next_check = self._clock() + VERSION_CHECK_RETRY
        if due:
            try:
                return self._shared_load()
            except DependencyError as exc:
                log.warning(
                    "Key Vault version check failed (%s); still using certificate %s, "
                    "next look in %d s",
                    exc.code,
                    cert.version,
                    VERSION_CHECK_RETRY,
                )
        return self._loads.value or cert

    def reload(self, rejected_version: str) -> ClientCertificate:
        """Entra refused ``rejected_version``: read the latest (once, however many ask)."""
        cert = self._loads.value
        if cert is not None and cert.version != rejected_version:
            return cert  # someone already replaced it
        with self._lock:
            futile = self._futile
        if cert is not None and futile is not None:
            version, until = futile
            if version == rejected_version and self._clock() < until:
                return cert  # Key Vault just said there is nothing newer; do not ask again
        fresh = self._shared_load()
        if fresh.version == rejected_version:
            with self._lock:
                self._futile = (rejected_version, self._clock() + KEY_VAULT_FAILURE_MEMO)
        return fresh

    def _shared_load(self) -> ClientCertificate:
        cert = self._loads.get()
        assert cert is not None  # get() starts a load when none is under way
        return cert

    def _load_and_schedule(self) -> ClientCertificate:
        cert = self._load()
        with self._lock:
            self._next_check = self._clock() + VERSION_CHECK_INTERVAL
        return cert

    def _load(self) -> ClientCertificate:
        from azure.core.exceptions import (
            ClientAuthenticationError,
            DecodeError,
            HttpResponseError,
            ResourceNotFoundError,
            ServiceRequestError,
            ServiceResponseError,
            ServiceResponseTimeoutError,
        )

        certificates, secrets = self._key_vault_clients()
        name = self._settings.certificate_name
        # Operators read where (the log); callers only learn that the credential failed.
        where = f"certificate '{name}' in {loggable_url(self._settings.key_vault_url)}"
        try:
            properties = certificates.get_certificate(name)
            version = str(properties.properties.version)
            secret = secrets.get_secret(name, properties.properties.version)
            value, content_type = secret.value, secret.properties.content_type
        except ServiceResponseTimeoutError as exc:
            raise DependencyTimeout(
                Code.KEY_VAULT_TIMEOUT,
                f"Key Vault timed out reading the {where}.",
                public_detail="Key Vault did not answer in time for the API's credential.",
            ) from exc
        except (ServiceRequestError, ServiceResponseError) as exc:
            raise DependencyUnavailable(
                Code.KEY_VAULT_UNREACHABLE,
                f"Key Vault is unreachable ({where}).",
                public_detail="Key Vault is unreachable for the API's credential.",
                retry_after=KEY_VAULT_RETRY_AFTER,
            ) from exc
        except ResourceNotFoundError as exc:
            raise DependencyFailed(
                Code.CERTIFICATE_NOT_FOUND,
                f"Key Vault has no {where}.",
                public_detail="The API's certificate was not found in Key Vault.",
            ) from exc
        except ClientAuthenticationError as exc:
            raise DependencyUnavailable(
                Code.NO_IDENTITY_TOKEN,
                "No managed identity token for Key Vault (check IDENTITY_ENDPOINT and "
                "AZURE_CLIENT_ID in Azure, or 'az login' locally).",
                public_detail="No managed identity token for Key Vault.",
                retry_after=KEY_VAULT_RETRY_AFTER,
            ) from exc
        except (DecodeError, ValueError, TypeError, AttributeError) as exc:
            # DecodeError: no JSON (a proxy's page); the others: JSON of another shape
            raise _unreadable(where) from exc
        except HttpResponseError as exc:
            status = exc.status_code or 0
            if status == 429 or status >= 500:
                raise DependencyUnavailable(
                    Code.KEY_VAULT_THROTTLED,
                    f"Key Vault answered {status} reading the {where}.",
                    public_detail=f"Key Vault answered {status} for the API's credential.",
                    retry_after=KEY_VAULT_RETRY_AFTER,
                ) from exc
            raise DependencyFailed(
                Code.KEY_VAULT_FORBIDDEN,
                f"Key Vault refused to read the {where} ({status}). Grant the Function App's "
                "identity 'Key Vault Certificate User' and 'Key Vault Secrets User' on the vault.",
                public_detail=f"Key Vault refused to read the API's credential ({status}).",
            ) from exc
        if not isinstance(value, str):  # Key Vault's secret bundle always holds a string
            raise _unreadable(where)
        try:
            return parse_certificate(version, value, content_type)
        except (ValueError, TypeError) as exc:
            raise DependencyFailed(
                Code.NO_PRIVATE_KEY,
                f"The {where} holds no usable private key with its certificate.",
                public_detail="The API's credential in Key Vault is not usable.",
            ) from exc

    def _key_vault_clients(self) -> tuple[Any, Any]:
        if self._clients is None:
            from azure.keyvault.certificates import CertificateClient
            from azure.keyvault.secrets import SecretClient

            identity = self._identity_factory()
            options: dict[str, Any] = {
                # One quick retry of a dropped connection. A 429/5xx is not retried here:
                # azure-core would sleep its whole Retry-After while users wait; the caller
                # gets the 503 instead, and the failure is remembered (SharedLoad).
                "retry_total": 1,
                "retry_status": 0,
                "retry_backoff_factor": 0.2,
                # the same trust store as every other outbound call, and no cookie jar
                "transport": azure_transport(
                    self._session, read_timeout=min(5.0, self._session.timeout[1])
                ),
            }
            url = self._settings.key_vault_url
            self._clients = (
                CertificateClient(url, identity, **options),
                SecretClient(url, identity, **options),
            )
        return self._clients


def _unreadable(where: str) -> DependencyFailed:
    return DependencyFailed(
        Code.KEY_VAULT_ANSWER_UNREADABLE,
        f"Key Vault's answer reading the {where} is not what it documents.",
        public_detail="Key Vault's answer for the API's credential could not be read.",
    )


def _azure_identity(transport: Any) -> Any:
    from azure.identity import DefaultAzureCredential

    # Managed identity in Azure, developer sign-in (Azure CLI, VS Code) locally.
    return DefaultAzureCredential(exclude_interactive_browser_credential=True, transport=transport)
