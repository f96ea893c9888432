"""One frozen settings object, read from app settings and validated once at start-up.

The ``OBO_`` prefix keeps the app's own registration apart from azure-identity's
``AZURE_CLIENT_ID``/``AZURE_TENANT_ID``, which mean the managed identity (DESIGN.md).
"""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from obo.errors import ConfigurationError

# Every setting the code reads; infra/ and local.settings.sample.json must use these names.
SETTING_NAMES = (
    "OBO_TENANT_ID",
    "OBO_CLIENT_ID",
    "OBO_AUTHORITY_HOST",
    "OBO_ALLOWED_TENANTS",
    "OBO_AUDIENCES",
    "OBO_REQUIRED_SCOPES",
    "OBO_CLIENT_CREDENTIAL",
    "OBO_KEY_VAULT_URL",
    "OBO_CERTIFICATE_NAME",
    "OBO_DOWNSTREAM_BASE_URL",
    "OBO_DOWNSTREAM_SCOPES",
    "OBO_DOWNSTREAM_TOKEN_TYPE",
    "OBO_SAML_ENDPOINT",
    "OBO_TRACE",
    "OBO_CA_BUNDLE",
    "OBO_CACHE_URL",
)

UNSET_ID = "00000000-0000-0000-0000-000000000000"
# What Settings.partial puts in place of a refused setting, so the others can still be read.
_PLACEHOLDERS = {
    "OBO_TENANT_ID": UNSET_ID,
    "OBO_CLIENT_ID": UNSET_ID,
    "OBO_AUTHORITY_HOST": "https://login.microsoftonline.com",
    "OBO_ALLOWED_TENANTS": "*",
    "OBO_AUDIENCES": "",
    "OBO_REQUIRED_SCOPES": "access_as_user",
    "OBO_CLIENT_CREDENTIAL": "certificate",
    "OBO_KEY_VAULT_URL": "https://unset.invalid",
    "OBO_CERTIFICATE_NAME": "unset",
    "OBO_DOWNSTREAM_BASE_URL": "https://unset.invalid",
    "OBO_DOWNSTREAM_SCOPES": "unset/.default",
    "OBO_DOWNSTREAM_TOKEN_TYPE": "jwt",
    "OBO_SAML_ENDPOINT": "v1",
    "OBO_TRACE": "basic",
    "OBO_CA_BUNDLE": "",
    "OBO_CACHE_URL": "",
}
_SPLIT = re.compile(r"[\s,]+")
_MULTI_TENANT = {"common", "organizations", "consumers"}
TOKEN_TYPES = ("jwt", "saml2", "saml1")
CLIENT_CREDENTIALS = ("certificate", "managed_identity")
# The audience of a managed identity token used as a federated credential, per cloud.
_FEDERATION_AUDIENCES = {
    "login.microsoftonline.us": "api://AzureADTokenExchangeUSGov",
    "login.chinacloudapi.cn": "api://AzureADTokenExchangeChina",
    "login.partner.microsoftonline.cn": "api://AzureADTokenExchangeChina",
}


@dataclass(frozen=True)
class Settings:
    tenant_id: str
    client_id: str
    authority_host: str
    allowed_tenants: frozenset[str] | None  # None means any tenant ("*")
    audiences: frozenset[str]
    required_scopes: frozenset[str]
    key_vault_url: str  # empty with the managed identity credential
    certificate_name: str
    downstream_base_url: str
    downstream_scopes: tuple[str, ...]
    ca_bundle: str | None
    downstream_token_type: str = "jwt"  # "saml2"/"saml1": JWT-to-SAML exchange (obo/saml.py)
    saml_endpoint: str = "v1"  # which token endpoint asks for SAML: "v1" (resource) or "v2"
    trace_verbose: bool = False  # exchange records add parameter names and assertion header
    client_credential: str = "certificate"  # or "managed_identity" (secretless, obo/credentials)
    cache_url: str | None = None  # Redis shared by all instances (fleet_cache); may hold a password

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env

        def get(name: str, default: str = "") -> str:
            return (env.get(name) or default).strip()

        tenant_id = _guid("OBO_TENANT_ID", get("OBO_TENANT_ID"))
        client_id = _guid("OBO_CLIENT_ID", get("OBO_CLIENT_ID"))
        allowed_raw = get("OBO_ALLOWED_TENANTS", tenant_id)
        allowed = (
            None
            if allowed_raw == "*"
            else frozenset(_guid("OBO_ALLOWED_TENANTS", t) for t in _split(allowed_raw))
        )
        audiences = frozenset(_split(get("OBO_AUDIENCES"))) or frozenset(
            {client_id, f"api://{client_id}"}
        )
        scopes = frozenset(_split(get("OBO_REQUIRED_SCOPES", "access_as_user")))
        downstream_scopes = tuple(
            _split(get("OBO_DOWNSTREAM_SCOPES", "https://graph.microsoft.com/User.Read"))
        )
        if not scopes:
            raise _invalid("OBO_REQUIRED_SCOPES", "must name at least one delegated scope")
        if not downstream_scopes:
            raise _invalid("OBO_DOWNSTREAM_SCOPES", "must name at least one scope")
        token_type = _choice(
            "OBO_DOWNSTREAM_TOKEN_TYPE", get("OBO_DOWNSTREAM_TOKEN_TYPE", "jwt"), TOKEN_TYPES
        )
        if token_type != "jwt" and (
            len(downstream_scopes) != 1 or not downstream_scopes[0].endswith("/.default")
        ):
            raise _invalid(
                "OBO_DOWNSTREAM_SCOPES",
                "must be exactly one '<entity id>/.default' when OBO_DOWNSTREAM_TOKEN_TYPE "
                "asks for SAML (a SAML assertion is issued for the whole application)",
            )
        credential = _choice(
            "OBO_CLIENT_CREDENTIAL", get("OBO_CLIENT_CREDENTIAL", "certificate"), CLIENT_CREDENTIALS
        )
        key_vault_url = certificate_name = ""  # not used with the managed identity credential
        if credential == "certificate":
            for name in ("OBO_KEY_VAULT_URL", "OBO_CERTIFICATE_NAME"):
                if not get(name):
                    raise _invalid(
                        name,
                        "is required with OBO_CLIENT_CREDENTIAL=certificate (the default); "
                        "secretless deployments set OBO_CLIENT_CREDENTIAL=managed_identity",
                    )
            key_vault_url = _https_url("OBO_KEY_VAULT_URL", get("OBO_KEY_VAULT_URL"))
            certificate_name = _certificate_name(get("OBO_CERTIFICATE_NAME"))
        ca_bundle = get("OBO_CA_BUNDLE") or None
        if ca_bundle and not Path(ca_bundle).is_file():
            raise _invalid("OBO_CA_BUNDLE", f"file {ca_bundle!r} does not exist")
        return cls(
            tenant_id=tenant_id,
            client_id=client_id,
            authority_host=_https_url(
                "OBO_AUTHORITY_HOST", get("OBO_AUTHORITY_HOST", "https://login.microsoftonline.com")
            ),
            allowed_tenants=allowed,
            audiences=audiences,
            required_scopes=scopes,
            key_vault_url=key_vault_url,
            certificate_name=certificate_name,
            downstream_base_url=_https_url(
                "OBO_DOWNSTREAM_BASE_URL",
                get("OBO_DOWNSTREAM_BASE_URL", "https://graph.microsoft.com/v1.0"),
            ),
            downstream_scopes=downstream_scopes,
            ca_bundle=ca_bundle,
            downstream_token_type=token_type,
            saml_endpoint=_choice(
                "OBO_SAML_ENDPOINT", get("OBO_SAML_ENDPOINT", "v1"), ("v1", "v2")
            ),
            trace_verbose=_choice(
                "OBO_TRACE", get("OBO_TRACE", "basic"), ("basic", "verbose")
            ) == "verbose",
            client_credential=credential,
            cache_url=_cache_url(get("OBO_CACHE_URL")),
        )

    @classmethod
    def partial(cls, env: Mapping[str, str]) -> tuple[Settings, dict[str, str]]:
        """Settings even when some are missing or invalid (for offline tools such as
        ``python -m obo diagnose``): those are replaced by placeholders and returned, by
        name, with the reason ``from_env`` refused them."""
        patched, refused = dict(env), dict[str, str]()
        while True:
            try:
                return cls.from_env(patched), refused
            except ConfigurationError as exc:
                name = str(exc.extra.get("setting"))
                if name in refused or name not in _PLACEHOLDERS:
                    raise
                refused[name] = exc.detail
                patched[name] = _PLACEHOLDERS[name]

    @property
    def saml_resource(self) -> str:
        """The SAML application's entity ID: the one downstream scope without ``/.default``."""
        return self.downstream_scopes[0].removesuffix("/.default")

    @property
    def federation_audience(self) -> str:
        """What the managed identity's token is requested for when it is API 1's credential."""
        host = urlsplit(self.authority_host).hostname or ""
        return _FEDERATION_AUDIENCES.get(host, "api://AzureADTokenExchange")

    def tenant_allowed(self, tid: str) -> bool:
        return self.allowed_tenants is None or tid in self.allowed_tenants

    def authority(self, tid: str) -> str:
        """The tenant-specific authority: never /common or /organizations (guests, multi-tenant)."""
        if tid.lower() in _MULTI_TENANT:
            raise ValueError("a tenant-specific authority is required")
        return f"{self.authority_host}/{tid}"


def _split(value: str) -> list[str]:
    return [part for part in _SPLIT.split(value) if part]


def _invalid(name: str, why: str) -> ConfigurationError:
    return ConfigurationError("OBO1001", f"Setting {name} {why}.", setting=name)


def _choice(name: str, value: str, allowed: tuple[str, ...]) -> str:
    if value.lower() not in allowed:
        raise _invalid(name, f"must be one of {', '.join(allowed)}, got {value[:40]!r}")
    return value.lower()


def _guid(name: str, value: str) -> str:
    if not value:
        raise _invalid(name, "is required")
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise _invalid(name, f"must be a GUID, got {value[:40]!r}") from None


def _https_url(name: str, value: str) -> str:
    if not value:
        raise _invalid(name, "is required")
    parts = urlsplit(value)
    if parts.scheme != "https" or not parts.hostname or parts.query or parts.fragment:
        raise _invalid(name, f"must be an https:// URL without query, got {value[:80]!r}")
    return value.rstrip("/")


def _certificate_name(value: str) -> str:
    if not value:
        raise _invalid("OBO_CERTIFICATE_NAME", "is required")
    if not re.fullmatch(r"[0-9A-Za-z-]{1,127}", value):
        raise _invalid("OBO_CERTIFICATE_NAME", "may hold only letters, digits and dashes")
    return value


def _cache_url(value: str) -> str | None:
    """``redis://`` or ``rediss://``; the value is never echoed (it may carry a password)."""
    if not value:
        return None
    usage = (
        "must be redis://[:password@]host[:port][/db] or rediss://... "
        "(rediss:// without a password: Entra ID as the managed identity)"
    )
    try:
        parts = urlsplit(value)
        port = parts.port  # raises on a port that is not a number in range
    except ValueError:
        raise _invalid("OBO_CACHE_URL", usage) from None
    path = parts.path.strip("/")
    if (
        parts.scheme not in ("redis", "rediss")
        or not parts.hostname
        or parts.query
        or parts.fragment
        or port == 0
        or (path and not path.isdigit())
    ):
        raise _invalid("OBO_CACHE_URL", usage)
    return value
