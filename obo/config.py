"""One frozen settings object, read from app settings and validated once at start-up.

The ``OBO_`` prefix keeps the app's own registration apart from azure-identity's
``AZURE_CLIENT_ID``/``AZURE_TENANT_ID``, which mean the managed identity (DESIGN.md).

Downstream APIs are named, like Microsoft.Identity.Web's ``DownstreamApis`` section: the
``OBO_DOWNSTREAM_*`` settings are the API named ``default``, and
``OBO_DOWNSTREAM__<NAME>__<KEY>`` adds another (``__`` is how Azure app settings spell a
level of hierarchy, "Configure app settings", learn.microsoft.com/azure/app-service).
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
from obo.logsafe import loggable_url

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
DEFAULT_API = "default"
DOWNSTREAM_PREFIX = "OBO_DOWNSTREAM__"  # + <NAME>__<KEY>: a named downstream API
API_KEYS = ("BASE_URL", "SCOPES", "TOKEN_TYPE", "RELAY")
_API_NAME = re.compile(r"[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)*")
# Graph is known by name, as in Microsoft.Identity.Web's AddMicrosoftGraph: it needs no
# settings unless another cloud or more scopes are wanted (docs/configuration.md).
_BUILT_IN = {
    "graph": {
        "BASE_URL": "https://graph.microsoft.com/v1.0",
        "SCOPES": "https://graph.microsoft.com/User.Read",
    }
}
# Scopes that name no resource: Entra adds them to any request (OpenID Connect).
_OIDC_SCOPES = frozenset({"openid", "profile", "email", "offline_access"})
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
class DownstreamSettings:
    """One downstream API ("API 2"): where it is, and what the OBO token is asked for."""

    name: str
    base_url: str
    scopes: tuple[str, ...]
    token_type: str = "jwt"  # "saml2"/"saml1": JWT-to-SAML exchange (obo/saml.py)
    relay: bool = False  # reachable through /api/apis/<name>/{*path}

    def setting(self, key: str) -> str:
        """The app setting that holds ``key`` (``BASE_URL``, ``SCOPES``...) for this API."""
        if self.name == DEFAULT_API:
            return f"OBO_DOWNSTREAM_{key}"
        return f"{DOWNSTREAM_PREFIX}{self.name.upper()}__{key}"

    @property
    def saml_resource(self) -> str:
        """The SAML application's entity ID: the one scope without ``/.default``."""
        return self.scopes[0].removesuffix("/.default")


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
    apis: Mapping[str, DownstreamSettings]  # by name; "default" always, "graph" built in
    ca_bundle: str | None
    saml_endpoint: str = "v1"  # which token endpoint asks for SAML: "v1" (resource) or "v2"
    trace_verbose: bool = False  # exchange records add parameter names and assertion header
    client_credential: str = "certificate"  # or "managed_identity" (secretless, obo/credentials)
    excluded_tenants: frozenset[str] = frozenset()  # "*,-<guid>": any tenant but these
    cache_url: str | None = None  # Redis shared by all instances (fleet_cache); may hold a password

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env

        def get(name: str, default: str = "") -> str:
            return (env.get(name) or default).strip()

        tenant_id = _guid("OBO_TENANT_ID", get("OBO_TENANT_ID"))
        client_id = _guid("OBO_CLIENT_ID", get("OBO_CLIENT_ID"))
        allowed, excluded = _tenants(get("OBO_ALLOWED_TENANTS", tenant_id))
        audiences = frozenset(_split(get("OBO_AUDIENCES"))) or frozenset(
            {client_id, f"api://{client_id}"}
        )
        scopes = frozenset(_split(get("OBO_REQUIRED_SCOPES", "access_as_user")))
        if not scopes:
            raise _invalid("OBO_REQUIRED_SCOPES", "must name at least one delegated scope")
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
            raise _invalid(
                "OBO_CA_BUNDLE", "names a file that does not exist", f"(path: {ca_bundle!r})"
            )
        return cls(
            tenant_id=tenant_id,
            client_id=client_id,
            authority_host=_https_url(
                "OBO_AUTHORITY_HOST", get("OBO_AUTHORITY_HOST", "https://login.microsoftonline.com")
            ),
            allowed_tenants=allowed,
            excluded_tenants=excluded,
            audiences=audiences,
            required_scopes=scopes,
            key_vault_url=key_vault_url,
            certificate_name=certificate_name,
            apis=_downstream_apis(env),
            ca_bundle=ca_bundle,
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
                if name in refused:
                    raise
                refused[name] = exc.detail
                if name.upper().startswith(DOWNSTREAM_PREFIX):  # leave that API out
                    api = name.upper()[len(DOWNSTREAM_PREFIX) :].partition("__")[0]
                    prefix = f"{DOWNSTREAM_PREFIX}{api}__"
                    patched = {k: v for k, v in patched.items() if not k.upper().startswith(prefix)}
                elif name in _PLACEHOLDERS:
                    patched[name] = _PLACEHOLDERS[name]
                else:
                    raise

    @property
    def default_api(self) -> DownstreamSettings:
        """The API the ``OBO_DOWNSTREAM_*`` settings describe (``/api/me``, the relay)."""
        return self.apis[DEFAULT_API]

    @property
    def downstream_base_url(self) -> str:
        return self.default_api.base_url

    @property
    def downstream_scopes(self) -> tuple[str, ...]:
        return self.default_api.scopes

    @property
    def downstream_token_type(self) -> str:
        return self.default_api.token_type

    @property
    def saml_resource(self) -> str:
        return self.default_api.saml_resource

    @property
    def federation_audience(self) -> str:
        """What the managed identity's token is requested for when it is API 1's credential."""
        host = urlsplit(self.authority_host).hostname or ""
        return _FEDERATION_AUDIENCES.get(host, "api://AzureADTokenExchange")

    def tenant_allowed(self, tid: str) -> bool:
        if tid in self.excluded_tenants:
            return False
        return self.allowed_tenants is None or tid in self.allowed_tenants

    def authority(self, tid: str) -> str:
        """The tenant-specific authority: never /common or /organizations (guests, multi-tenant)."""
        if tid.lower() in _MULTI_TENANT:
            raise ValueError("a tenant-specific authority is required")
        return f"{self.authority_host}/{tid}"


def _tenants(value: str) -> tuple[frozenset[str] | None, frozenset[str]]:
    """``OBO_ALLOWED_TENANTS``: GUIDs, or ``*`` (any tenant) optionally followed by
    ``-<guid>`` exclusions, e.g. ``*,-9188040d-6c67-4c5b-b112-36a304b66dad`` for any Entra
    tenant but personal Microsoft accounts. Returns (allowed or None for any, excluded)."""
    name = "OBO_ALLOWED_TENANTS"
    parts = _split(value)
    if not parts:
        raise _invalid(name, "names no tenant")
    if parts[0] != "*":
        if any(p == "*" or p.startswith("-") for p in parts):
            raise _invalid(name, "may hold '*' only first, and '-<tenant id>' only after '*'")
        return frozenset(_guid(name, p) for p in parts), frozenset()
    if not all(p.startswith("-") for p in parts[1:]):
        raise _invalid(name, "after '*' may only list exclusions, '-<tenant id>'")
    return None, frozenset(_guid(name, p[1:]) for p in parts[1:])


def _downstream_apis(env: Mapping[str, str]) -> dict[str, DownstreamSettings]:
    """``default`` from ``OBO_DOWNSTREAM_*``, ``graph`` built in, and every API named by an
    ``OBO_DOWNSTREAM__<NAME>__<KEY>`` setting (names are case-insensitive)."""
    named: dict[str, dict[str, str]] = {}
    for setting, value in env.items():
        if not setting.upper().startswith(DOWNSTREAM_PREFIX):
            continue
        name, _, key = setting[len(DOWNSTREAM_PREFIX) :].upper().partition("__")
        if not _API_NAME.fullmatch(name) or key not in API_KEYS:
            raise _invalid(
                setting,
                f"is not a downstream API setting: use {DOWNSTREAM_PREFIX}<NAME>__<KEY>, NAME "
                "made of letters, digits and single underscores, KEY one of "
                f"{', '.join(API_KEYS)}",
            )
        if name.lower() == DEFAULT_API:
            raise _invalid(setting, "cannot be set: the default API is OBO_DOWNSTREAM_<KEY>")
        named.setdefault(name.lower(), {})[key] = (value or "").strip()
    default_values = {
        key: (env.get(f"OBO_DOWNSTREAM_{key}") or "").strip() for key in API_KEYS[:3]
    }
    apis = {DEFAULT_API: _api(DEFAULT_API, {**_BUILT_IN["graph"], **_given(default_values)})}
    for name, built_in in _BUILT_IN.items():
        named[name] = {**built_in, **_given(named.get(name, {}))}
    for name, values in sorted(named.items()):
        apis[name] = _api(name, values)
    return apis


def _given(values: Mapping[str, str]) -> dict[str, str]:
    return {k: v for k, v in values.items() if v}


def _api(name: str, values: Mapping[str, str]) -> DownstreamSettings:
    """One API's settings, checked: the errors name the setting, never echo its value."""
    setting = DownstreamSettings(name, "", ()).setting
    if not values.get("BASE_URL"):
        raise _invalid(setting("BASE_URL"), "is required (the downstream API's https:// URL)")
    base_url = _https_url(setting("BASE_URL"), values["BASE_URL"])
    scopes = tuple(_split(values.get("SCOPES", "")))
    if not scopes:
        raise _invalid(setting("SCOPES"), "must name at least one scope")
    token_type = (values.get("TOKEN_TYPE") or "jwt").lower()
    if token_type not in TOKEN_TYPES:
        raise _invalid(setting("TOKEN_TYPE"), f"must be one of {', '.join(TOKEN_TYPES)}")
    if token_type != "jwt" and (len(scopes) != 1 or not scopes[0].endswith("/.default")):
        raise _invalid(
            setting("SCOPES"),
            f"must be exactly one '<entity id>/.default' when {setting('TOKEN_TYPE')} asks for "
            "SAML (a SAML assertion is issued for the whole application)",
        )
    resources = {_resource(s) for s in scopes} - {None}
    if len(resources) > 1:
        raise ConfigurationError(
            "OBO1002",
            f"Setting {setting('SCOPES')} names scopes of {len(resources)} resources; one "
            "token is issued for one resource (Entra would answer AADSTS28000). Declare "
            f"another downstream API ({DOWNSTREAM_PREFIX}<NAME>__SCOPES) for the other one.",
            setting=setting("SCOPES"),
        )
    relay = (values.get("RELAY") or "false").lower()
    if relay not in ("true", "false"):
        raise _invalid(setting("RELAY"), "must be true or false")
    return DownstreamSettings(name, base_url, scopes, token_type, relay == "true")


def _resource(scope: str) -> str | None:
    """The resource a scope belongs to; a bare name is Microsoft Graph's (Entra's rule)."""
    if scope in _OIDC_SCOPES:
        return None
    resource, _, _ = scope.rpartition("/")
    return resource.rstrip("/") or "https://graph.microsoft.com"


def _split(value: str) -> list[str]:
    return [part for part in _SPLIT.split(value) if part]


def _invalid(name: str, why: str, for_operators: str = "") -> ConfigurationError:
    """OBO1001 naming the setting and the rule, never the refused value: it may be a secret
    pasted into the wrong setting, or a URL with a SAS. ``for_operators`` (the log only) may
    add what is safe to show, such as a URL without its query."""
    public = f"Setting {name} {why}."
    detail = f"{public} {for_operators}" if for_operators else public
    return ConfigurationError("OBO1001", detail, public_detail=public, setting=name)


def _choice(name: str, value: str, allowed: tuple[str, ...]) -> str:
    if value.lower() not in allowed:
        raise _invalid(name, f"must be one of {', '.join(allowed)}")
    return value.lower()


def _guid(name: str, value: str) -> str:
    if not value:
        raise _invalid(name, "is required")
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise _invalid(name, "must be a GUID") from None


def _https_url(name: str, value: str) -> str:
    if not value:
        raise _invalid(name, "is required")
    try:
        parts = urlsplit(value)
        valid = parts.scheme == "https" and bool(parts.hostname) and not parts.query
        valid = valid and not parts.fragment and not parts.username and not parts.password
        parts.port  # noqa: B018 - raises ValueError on a port that is not a number
    except ValueError:
        valid = False
    if not valid:
        raise _invalid(
            name,
            "must be an https:// URL without query, fragment or user name",
            f"(got {loggable_url(value)})",
        )
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
