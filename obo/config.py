"""One frozen settings object, read from app settings and validated once at start-up.

What each setting is (name, parser, default, documentation) is declared once, in
:mod:`obo.settings_table`. This module reads them, each on its own, then applies the rules
that involve several settings, each written once in :meth:`Settings._read`. A refused
setting never stops the others from being read: ``from_env`` raises the first refusal (in
the table's order), ``partial`` returns them all.

The ``OBO_`` prefix keeps the app's own registration apart from azure-identity's
``AZURE_CLIENT_ID``/``AZURE_TENANT_ID``, which mean the managed identity (DESIGN.md).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TypeVar
from urllib.parse import urlsplit

from obo.codes import Code
from obo.errors import ConfigurationError
from obo.setting_parsers import invalid
from obo.settings_table import (
    ALLOWED_TENANTS,
    AUDIENCES,
    AUTHORITY_HOST,
    BASE_URL,
    BUILT_IN_APIS,
    CA_BUNDLE,
    CACHE_URL,
    CERTIFICATE_NAME,
    CLIENT_CREDENTIAL,
    CLIENT_CREDENTIALS,
    CLIENT_ID,
    DEFAULT_API,
    DOWNSTREAM_KEYS,
    DOWNSTREAM_PREFIX,
    KEY_VAULT_URL,
    MANAGED_IDENTITY_CLIENT_ID,
    RELAY,
    REQUIRED_SCOPES,
    SAML_ENDPOINT,
    SCOPES,
    SETTINGS,
    TENANT_ID,
    TOKEN_TYPE,
    TOKEN_TYPES,
    TRACE,
    UNSET_ID,
    ClientCredentialKind,
    SamlEndpoint,
    Setting,
    TokenType,
    TraceLevel,
    api_setting,
    named_api_setting,
)

__all__ = [
    "API_KEYS",
    "CLIENT_CREDENTIALS",
    "DEFAULT_API",
    "DOWNSTREAM_PREFIX",
    "SETTING_NAMES",
    "TOKEN_TYPES",
    "UNSET_ID",
    "DownstreamSettings",
    "Settings",
]

T = TypeVar("T")

# Every setting the code reads; infra/ and local.settings.sample.json must use these names.
SETTING_NAMES = tuple(s.name for s in SETTINGS)
API_KEYS = tuple(k.key for k in DOWNSTREAM_KEYS)
# Scopes that name no resource: Entra adds them to any request (OpenID Connect).
_OIDC_SCOPES = frozenset({"openid", "profile", "email", "offline_access"})
_MULTI_TENANT = {"common", "organizations", "consumers"}
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
    token_type: TokenType
    relay: bool  # reachable through /api/apis/<name>/{*path}

    def setting(self, key: str) -> str:
        """The app setting that holds ``key`` (``BASE_URL``, ``SCOPES``...) for this API."""
        return api_setting(self.name, key)

    @property
    def saml_resource(self) -> str:
        """The SAML application's entity ID: the one scope without ``/.default``."""
        return self.scopes[0].removesuffix("/.default")


@dataclass(frozen=True)
class Settings:
    """The app settings, typed; each attribute's setting is in :mod:`obo.settings_table`."""

    tenant_id: str
    client_id: str
    authority_host: str
    allowed_tenants: frozenset[str] | None  # None means any tenant ("*")
    excluded_tenants: frozenset[str]  # "*,-<guid>": any tenant but these
    audiences: frozenset[str]
    required_scopes: frozenset[str]
    client_credential: ClientCredentialKind
    key_vault_url: str  # empty with the managed identity credential
    certificate_name: str
    apis: Mapping[str, DownstreamSettings]  # by name; "default" always, "graph" built in
    saml_endpoint: SamlEndpoint
    trace: TraceLevel
    ca_bundle: str | None
    cache_url: str | None = field(repr=False)  # may hold a password
    managed_identity_client_id: str | None  # AZURE_CLIENT_ID: a user-assigned identity

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """The settings, or :class:`ConfigurationError` for the first refused one."""
        settings, refused = cls._read(os.environ if env is None else env)
        if refused:
            raise refused[0]
        return settings

    @classmethod
    def partial(cls, env: Mapping[str, str]) -> tuple[Settings, dict[str, str]]:
        """Settings even when some are missing or invalid (for offline tools such as
        ``python -m obo diagnose``): those hold placeholders (``UNSET_ID``...) and are
        returned, by name, with the reason ``from_env`` refuses them. A named downstream
        API with a refused setting is read as if it had none (``graph`` stays built in)."""
        settings, refused = cls._read(env)
        return settings, {str(e.extra["setting"]): e.detail for e in refused}

    @classmethod
    def _read(cls, env: Mapping[str, str]) -> tuple[Settings, list[ConfigurationError]]:
        r = _Reading(env)
        tenant_id, client_id = r.need(TENANT_ID), r.need(CLIENT_ID)
        # Rules across settings, after each is parsed on its own:
        # OBO_ALLOWED_TENANTS defaults to OBO_TENANT_ID, OBO_AUDIENCES to the client id's forms,
        allowed, excluded = r.get(ALLOWED_TENANTS) or (frozenset({tenant_id}), frozenset())
        audiences = r.get(AUDIENCES) or frozenset({client_id, f"api://{client_id}"})
        # and the Key Vault settings are read only with the certificate credential.
        credential = r.need(CLIENT_CREDENTIAL)
        certificate = credential == "certificate"
        settings = cls(
            tenant_id=tenant_id,
            client_id=client_id,
            authority_host=r.need(AUTHORITY_HOST),
            allowed_tenants=allowed,
            excluded_tenants=excluded,
            audiences=audiences,
            required_scopes=r.need(REQUIRED_SCOPES),
            client_credential=credential,
            key_vault_url=r.need(KEY_VAULT_URL) if certificate else "",
            certificate_name=r.need(CERTIFICATE_NAME) if certificate else "",
            apis=_downstream_apis(r),
            saml_endpoint=r.need(SAML_ENDPOINT),
            trace=r.need(TRACE),
            ca_bundle=r.get(CA_BUNDLE),
            cache_url=r.get(CACHE_URL),
            managed_identity_client_id=r.get(MANAGED_IDENTITY_CLIENT_ID),
        )
        return settings, r.refusals()

    @property
    def default_api(self) -> DownstreamSettings:
        """The API the ``OBO_DOWNSTREAM_*`` settings describe (``/api/me``, the relay)."""
        return self.apis[DEFAULT_API]

    @property
    def saml_resource(self) -> str:
        return self.default_api.saml_resource

    @property
    def trace_verbose(self) -> bool:
        """Exchange records add parameter names and the assertion's header."""
        return self.trace == "verbose"

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


class _Reading:
    """One pass over the app settings. Each is parsed on its own; a refused one is kept with
    its reason and replaced by its placeholder, so one pass finds every refusal."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = env
        self.refused: dict[str, ConfigurationError] = {}

    def get(self, setting: Setting[T], value: str | None = None) -> T | None:
        """``setting``'s value (from ``value`` when given, else the environment); None when
        unset and optional."""
        raw = (self.env.get(setting.name) if value is None else value) or ""
        raw = raw.strip() or setting.default
        if not raw:
            if setting.required:
                return self.refuse(setting, invalid(setting.name, setting.required))
            return None
        try:
            return setting.parse(setting.name, raw)
        except ConfigurationError as exc:
            return self.refuse(setting, exc)

    def need(self, setting: Setting[T], value: str | None = None) -> T:
        """The value of a setting that has a default, or is required and has a placeholder."""
        found = self.get(setting, value)
        if found is None:
            raise TypeError(f"{setting.name}: the table gives no default and no placeholder")
        return found

    def refuse(self, setting: Setting[T], error: ConfigurationError) -> T | None:
        if setting.secret:  # not even the log sees any part of the value
            error = ConfigurationError(error.code, error.public_detail, setting=setting.name)
        self.record(error)
        return setting.fallback()

    def record(self, error: ConfigurationError) -> None:
        self.refused.setdefault(str(error.extra["setting"]), error)

    def refusals(self) -> list[ConfigurationError]:
        """In the table's order (the docs' order), named downstream APIs last."""
        rank = {s.name: i for i, s in enumerate(SETTINGS)}
        return sorted(self.refused.values(), key=lambda e: rank.get(e.extra["setting"], len(rank)))


def _downstream_apis(r: _Reading) -> dict[str, DownstreamSettings]:
    """``default`` from ``OBO_DOWNSTREAM_*``, ``graph`` built in, and every API named by an
    ``OBO_DOWNSTREAM__<NAME>__<KEY>`` setting. A named API with a refused setting is read as
    if it had no settings: a built-in one keeps its built-in values, another is left out."""
    named: dict[str, dict[str, str]] = {name: {} for name in BUILT_IN_APIS}
    spoiled: set[str] = set()
    for setting, value in r.env.items():
        if not setting.upper().startswith(DOWNSTREAM_PREFIX):
            continue
        api = setting[len(DOWNSTREAM_PREFIX) :].partition("__")[0].lower()
        found = named_api_setting(setting)
        if found is None:
            spoiled.add(api)
            r.record(
                invalid(
                    setting,
                    f"is not a downstream API setting: use {DOWNSTREAM_PREFIX}<NAME>__<KEY>, NAME "
                    "made of letters, digits and single underscores, KEY one of "
                    f"{', '.join(API_KEYS)}",
                )
            )
        elif api == DEFAULT_API:
            spoiled.add(api)
            r.record(invalid(setting, "cannot be set: the default API is OBO_DOWNSTREAM_<KEY>"))
        else:
            named.setdefault(api, {})[found[1].key] = value or ""
    apis = {
        DEFAULT_API: _api(
            r,
            DEFAULT_API,
            {
                k.key: r.env.get(api_setting(DEFAULT_API, k.key)) or ""
                for k in DOWNSTREAM_KEYS
                if k.of_default_api
            },
        )
    }
    for name, given in sorted(named.items()):
        before = len(r.refused)
        read = None if name in spoiled else _api(r, name, given)
        if read is not None and len(r.refused) == before:
            apis[name] = read
        elif name in BUILT_IN_APIS:
            apis[name] = _api(r, name, {})  # as if it had no settings
    return apis


def _api(r: _Reading, name: str, given: Mapping[str, str]) -> DownstreamSettings:
    """One API's settings, each checked on its own, then together."""
    base_url = r.need(BASE_URL.setting(name), given.get("BASE_URL", ""))
    scopes = r.need(SCOPES.setting(name), given.get("SCOPES", ""))
    token_type = r.need(TOKEN_TYPE.setting(name), given.get("TOKEN_TYPE", ""))
    relay = name != DEFAULT_API and r.need(RELAY.setting(name), given.get("RELAY", ""))
    scopes = _scopes_of_one_token(r, name, scopes, token_type)
    return DownstreamSettings(name, base_url, scopes, token_type, relay)


def _scopes_of_one_token(
    r: _Reading, api: str, scopes: tuple[str, ...], token_type: TokenType
) -> tuple[str, ...]:
    """One token is issued for one resource (else Entra answers AADSTS28000); a SAML
    assertion for a whole application, asked for as ``<entity id>/.default``."""
    setting = SCOPES.setting(api)
    if token_type != "jwt" and (len(scopes) != 1 or not scopes[0].endswith("/.default")):
        return (
            r.refuse(
                setting,
                invalid(
                    setting.name,
                    "must be exactly one '<entity id>/.default' when "
                    f"{api_setting(api, 'TOKEN_TYPE')} asks for SAML (a SAML assertion is "
                    "issued for the whole application)",
                ),
            )
            or ()
        )
    resources = {_resource(s) for s in scopes} - {None}
    if len(resources) > 1:
        return (
            r.refuse(
                setting,
                ConfigurationError(
                    Code.SCOPES_SPAN_RESOURCES,
                    f"Setting {setting.name} names scopes of {len(resources)} resources; one "
                    "token is issued for one resource (Entra would answer AADSTS28000). Declare "
                    f"another downstream API ({DOWNSTREAM_PREFIX}<NAME>__SCOPES) for the other "
                    "one.",
                    setting=setting.name,
                ),
            )
            or ()
        )
    return scopes


def _resource(scope: str) -> str | None:
    """The resource a scope belongs to; a bare name is Microsoft Graph's (Entra's rule)."""
    if scope in _OIDC_SCOPES:
        return None
    resource, _, _ = scope.rpartition("/")
    return resource.rstrip("/") or "https://graph.microsoft.com"
