"""Every app setting, declared once: name, parser, default, documentation, secrecy.

:class:`obo.config.Settings` reads its values through this table, ``Settings.partial`` uses
its placeholders, docs/configuration.md shows the tables :func:`markdown`,
:func:`named_api_markdown` and :func:`identity_markdown` render (tests/project/test_docs.py
keeps them equal), and tests/project/test_infra.py compares the names with what infra/
deploys.

Downstream APIs are a pattern, not fixed names: each :class:`ApiKey` is
``OBO_DOWNSTREAM_<KEY>`` for the API named ``default`` and ``OBO_DOWNSTREAM__<NAME>__<KEY>``
for any other (``__`` is how Azure app settings spell a level of hierarchy, "Configure app
settings", learn.microsoft.com/azure/app-service/configure-common), like
Microsoft.Identity.Web's ``DownstreamApis`` section.

azure-identity's own variables (``AZURE_CLIENT_ID``) stay out of the ``OBO_`` table
(DESIGN.md: reusing them for API 1 would send the wrong identity to Key Vault); the one the
app passes on is in :data:`IDENTITY_SETTINGS`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Any, Generic, Literal, TypeVar, get_args

from obo import setting_parsers as p

T = TypeVar("T")

ClientCredentialKind = Literal["certificate", "managed_identity"]
TokenType = Literal["jwt", "saml2", "saml1"]  # saml*: JWT-to-SAML exchange (obo/saml.py)
SamlEndpoint = Literal["v1", "v2"]  # which token endpoint asks for SAML
TraceLevel = Literal["basic", "verbose"]
CLIENT_CREDENTIALS: tuple[ClientCredentialKind, ...] = get_args(ClientCredentialKind)
TOKEN_TYPES: tuple[TokenType, ...] = get_args(TokenType)
SAML_ENDPOINTS: tuple[SamlEndpoint, ...] = get_args(SamlEndpoint)
TRACE_LEVELS: tuple[TraceLevel, ...] = get_args(TraceLevel)

UNSET_ID = "00000000-0000-0000-0000-000000000000"  # Settings.partial's stand-in for a GUID
UNSET_URL = "https://unset.invalid"  # ... for a URL (RFC 2606: .invalid never resolves)
DEFAULT_API = "default"
DOWNSTREAM_PREFIX = "OBO_DOWNSTREAM__"  # + <NAME>__<KEY>: a named downstream API
_API_NAME = re.compile(r"[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)*")


@dataclass(frozen=True)
class Setting(Generic[T]):
    """One app setting: what the code, the docs and the infra test know about it."""

    name: str
    parse: p.Parser[T]  # a non-blank value -> typed; raises OBO1001/1002 naming the setting
    format: str  # docs: what the value looks like
    doc: str  # docs: what it does
    default: str = ""  # taken when the setting is unset or blank; "" = none
    required: str = ""  # why an unset setting is refused; "" = it may be unset
    default_doc: str = ""  # docs: the default when it is not a literal value
    placeholder: str = ""  # Settings.partial's stand-in for a refused value (else default)
    secret: bool = False  # may hold a password: refusals never show any part of the value
    deployed: bool = True  # infra/ sets it; False for a local-only setting

    def fallback(self) -> T | None:
        """The value ``Settings.partial`` uses when this setting is refused."""
        stand_in = self.placeholder or self.default
        return self.parse(self.name, stand_in) if stand_in else None


@dataclass(frozen=True)
class ApiKey(Generic[T]):
    """One key of every downstream API: ``OBO_DOWNSTREAM_<KEY>`` of the default API,
    ``OBO_DOWNSTREAM__<NAME>__<KEY>`` of a named one."""

    key: str
    parse: p.Parser[T]
    format: str
    doc: str
    default: str = ""  # for every API but the built-in ones (BUILT_IN_APIS)
    required: str = ""
    placeholder: str = ""  # stand-in for a refused value (a named API is then left out)
    of_default_api: bool = True  # False: only a named API has it

    def setting(self, api: str) -> Setting[T]:
        """This key of ``api``, with that API's default."""
        built_in = BUILT_IN_APIS.get("graph" if api == DEFAULT_API else api, {})
        default = built_in.get(self.key, self.default)
        return Setting(
            api_setting(api, self.key),
            self.parse,
            self.format,
            self.doc,
            default=default,
            required="" if default else self.required,
            placeholder=self.placeholder,
        )


def api_setting(api: str, key: str) -> str:
    """The app setting that holds ``key`` (``BASE_URL``, ``SCOPES``...) for API ``api``."""
    if api == DEFAULT_API:
        return f"OBO_DOWNSTREAM_{key}"
    return f"{DOWNSTREAM_PREFIX}{api.upper()}__{key}"


def named_api_setting(name: str) -> tuple[str, ApiKey[Any]] | None:
    """(API name in lower case, key) of an ``OBO_DOWNSTREAM__<NAME>__<KEY>`` setting, or
    None when ``name`` has that prefix but not that shape (names are case-insensitive)."""
    api, _, key = name[len(DOWNSTREAM_PREFIX) :].upper().partition("__")
    found = next((k for k in DOWNSTREAM_KEYS if k.key == key), None)
    if not _API_NAME.fullmatch(api) or found is None:
        return None
    return api.lower(), found


# Graph is known by name, as in Microsoft.Identity.Web's AddMicrosoftGraph: it needs no
# settings unless another cloud or more scopes are wanted. The default API is Graph too.
BUILT_IN_APIS = {
    "graph": {
        "BASE_URL": "https://graph.microsoft.com/v1.0",
        "SCOPES": "https://graph.microsoft.com/User.Read",
    }
}

BASE_URL = ApiKey(
    "BASE_URL",
    p.https_url,
    "`https://` URL",
    "the API's base URL: only paths below it can be reached (the default API's through "
    '`/api/me`, `/api/downstream/{path}`, `apis["default"]`)',
    required="is required (the downstream API's https:// URL)",
    placeholder=UNSET_URL,
)
SCOPES = ApiKey(
    "SCOPES",
    p.api_scopes,
    "scopes separated by spaces or commas",
    "the delegated scopes requested for the API, all of **one** resource (else `OBO1002` at "
    "start-up); `<resource>/.default` asks for everything consented",
    required="must name at least one scope",
    placeholder="unset/.default",
)
TOKEN_TYPE = ApiKey(
    "TOKEN_TYPE",
    p.choice(TOKEN_TYPES),
    "`jwt`, `saml2` or `saml1`",
    "`saml2`/`saml1`: the API accepts only SAML; OBO asks Entra for a SAML 2.0 or 1.1 "
    "assertion (`requested_token_type`), and the API's scopes must then be exactly "
    "`<entity id>/.default`. See [JWT-to-SAML](#jwt-to-saml-exchange) (`OBO_SAML_ENDPOINT` "
    "applies to every API)",
    default="jwt",
)
RELAY = ApiKey(
    "RELAY",
    p.flag,
    "`true` or `false`",
    "`true` opens `/api/apis/<name>/{*path}` (relaying, below)",
    default="false",
    of_default_api=False,
)
DOWNSTREAM_KEYS: tuple[ApiKey[Any], ...] = (BASE_URL, SCOPES, TOKEN_TYPE, RELAY)

TENANT_ID = Setting(
    "OBO_TENANT_ID",
    p.guid,
    "GUID",
    "the tenant of API 1's registration",
    required="is required",
    placeholder=UNSET_ID,
)
CLIENT_ID = Setting(
    "OBO_CLIENT_ID",
    p.guid,
    "GUID",
    "API 1's application (client) id; the OBO `client_id`",
    required="is required",
    placeholder=UNSET_ID,
)
AUTHORITY_HOST = Setting(
    "OBO_AUTHORITY_HOST",
    p.https_url,
    "`https://` URL",
    "national clouds: `https://login.microsoftonline.us`, Azure China "
    "`https://login.partner.microsoftonline.cn` (the issuer of its v2 tokens). "
    "Instance discovery is on only for the public cloud hosts.",
    default="https://login.microsoftonline.com",
)
ALLOWED_TENANTS = Setting(
    "OBO_ALLOWED_TENANTS",
    p.tenants,
    "GUIDs separated by commas or spaces; or `*`, optionally followed by exclusions `-<GUID>`",
    "checked before any key is fetched for a tenant. Guests carry the resource tenant's "
    "`tid`, so a single-tenant API needs only its own tenant. `*` admits any tenant (a "
    "multi-tenant SaaS); each tenant is still validated against its own issuer and keys, and "
    "discovering tenants never seen is rate-limited "
    "([security](security.md#tenants-and-key-discovery)). **`*` also admits personal "
    "Microsoft accounts** (tenant `9188040d-6c67-4c5b-b112-36a304b66dad`) when API 1's "
    "registration has `signInAudience` `AzureADandPersonalMicrosoftAccount` or "
    "`PersonalMicrosoftAccount`; `*,-9188040d-6c67-4c5b-b112-36a304b66dad` admits every "
    "Entra tenant but them.",
    default_doc="`OBO_TENANT_ID`",
    placeholder="*",
)
AUDIENCES = Setting(
    "OBO_AUDIENCES",
    p.words,
    "values separated by commas or spaces",
    "v2 tokens carry the client id; v1 tokens the App ID URI. Add your App ID URI if it is "
    "not `api://<client id>`.",
    default_doc="`OBO_CLIENT_ID` and `api://OBO_CLIENT_ID`",
)
REQUIRED_SCOPES = Setting(
    "OBO_REQUIRED_SCOPES",
    p.delegated_scopes,
    "scope names",
    "the caller's token must carry at least one (`scp`); else `403 insufficient_scope`",
    default="access_as_user",
)
CLIENT_CREDENTIAL = Setting(
    "OBO_CLIENT_CREDENTIAL",
    p.choice(CLIENT_CREDENTIALS),
    "`certificate` or `managed_identity`",
    "how API 1 authenticates to Entra: the Key Vault certificate, or "
    "([secretless](#secretless-mode)) the Function App's managed identity token through a "
    "federated identity credential",
    default="certificate",
)
_WITH_CERTIFICATE = (
    "is required with OBO_CLIENT_CREDENTIAL=certificate (the default); "
    "secretless deployments set OBO_CLIENT_CREDENTIAL=managed_identity"
)
KEY_VAULT_URL = Setting(
    "OBO_KEY_VAULT_URL",
    p.https_url,
    "`https://` URL",
    "e.g. `https://kv-obo.vault.azure.net`; read only with the `certificate` credential",
    required=_WITH_CERTIFICATE,
    default_doc="required with `certificate`",
    placeholder=UNSET_URL,
)
CERTIFICATE_NAME = Setting(
    "OBO_CERTIFICATE_NAME",
    p.certificate_name,
    "Key Vault name",
    "certificate whose secret (same name) holds the private key, PEM or PKCS#12; read only "
    "with the `certificate` credential",
    required=_WITH_CERTIFICATE,
    default_doc="required with `certificate`",
    placeholder="unset",
)
DOWNSTREAM_BASE_URL = BASE_URL.setting(DEFAULT_API)
DOWNSTREAM_SCOPES = SCOPES.setting(DEFAULT_API)
DOWNSTREAM_TOKEN_TYPE = TOKEN_TYPE.setting(DEFAULT_API)
SAML_ENDPOINT = Setting(
    "OBO_SAML_ENDPOINT",
    p.choice(SAML_ENDPOINTS),
    "`v1` or `v2`",
    "only with SAML: `v1` posts to `/oauth2/token` with `resource=<entity id>` (the path "
    "Microsoft documents), `v2` posts to `/oauth2/v2.0/token` with "
    "`scope=<entity id>/.default` through MSAL",
    default="v1",
)
TRACE = Setting(
    "OBO_TRACE",
    p.choice(TRACE_LEVELS),
    "`basic` or `verbose`",
    "`verbose` adds to each exchange record the names of the parameters sent to Entra and "
    "the client assertion's header (`alg`, `x5t`, `x5t#S256`, the `x5c` certificate's subject "
    "and expiry); never a value, token, signature or key",
    default="basic",
)
CA_BUNDLE = Setting(
    "OBO_CA_BUNDLE",
    p.existing_file,
    "file path",
    "added to the public roots for Entra, Key Vault the downstream API and `rediss://` Redis "
    "(TLS-inspecting proxy, the local stand-ins). Do not set it in Azure unless you need it.",
    deployed=False,
)
CACHE_URL = Setting(
    "OBO_CACHE_URL",
    p.redis_url,
    "`redis://[:password@]host[:port][/db]` or `rediss://…`",
    "OBO results shared by every instance through Redis, encrypted per user. `rediss://` "
    "without a password authenticates with Microsoft Entra ID as the managed identity "
    "(`AZURE_CLIENT_ID` for a user-assigned one), as Azure Managed Redis with access keys "
    "disabled requires. See [shared cache](#shared-cache-redis).",
    default_doc="none: each instance caches alone",
    secret=True,
)

# The app's own settings, in the order of the docs (from_env reports the first refused one).
SETTINGS: tuple[Setting[Any], ...] = (
    TENANT_ID,
    CLIENT_ID,
    AUTHORITY_HOST,
    ALLOWED_TENANTS,
    AUDIENCES,
    REQUIRED_SCOPES,
    CLIENT_CREDENTIAL,
    KEY_VAULT_URL,
    CERTIFICATE_NAME,
    DOWNSTREAM_BASE_URL,
    DOWNSTREAM_SCOPES,
    DOWNSTREAM_TOKEN_TYPE,
    SAML_ENDPOINT,
    TRACE,
    CA_BUNDLE,
    CACHE_URL,
)

# azure-identity's variable, read once into Settings and handed to what builds a managed
# identity credential itself (secretless mode, Redis's Entra login).
MANAGED_IDENTITY_CLIENT_ID = Setting(
    "AZURE_CLIENT_ID",
    p.verbatim,
    "client id (GUID)",
    "the **user-assigned** managed identity's client id (`infra/` sets it): azure-identity "
    "reads it for Key Vault, and the app passes it on to the secretless credential and to "
    "Redis's Entra login (`Settings.managed_identity_client_id`)",
    default_doc="none: the system-assigned identity",
)
IDENTITY_SETTINGS: tuple[Setting[Any], ...] = (MANAGED_IDENTITY_CLIENT_ID,)


def markdown() -> str:
    """The settings reference in docs/configuration.md (a test keeps the two equal)."""
    rows = [_row(s) for s in SETTINGS]
    last_default_api = max(i for i, s in enumerate(SETTINGS) if s.name.startswith("OBO_DOWN"))
    keys = ", ".join(f"`__{k.key}`" for k in DOWNSTREAM_KEYS[1:])
    pattern = (
        f"| `{DOWNSTREAM_PREFIX}<NAME>__{DOWNSTREAM_KEYS[0].key}`, {keys} | as the default "
        "API's; `RELAY` is `true` or `false` | see [named downstream APIs](#named-downstream-apis) "
        "| any number of further downstream APIs, one per resource |"
    )
    rows.insert(last_default_api + 1, pattern)
    return "\n".join([*_HEADER, *rows])


def named_api_markdown() -> str:
    """The keys of a named downstream API, in docs/configuration.md."""
    rows = []
    for key in DOWNSTREAM_KEYS:
        setting = key.setting("<NAME>")
        default = f"`{key.default}`" if key.default else "required"
        built_in = [f"`{n}`: `{v[key.key]}`" for n, v in BUILT_IN_APIS.items() if key.key in v]
        default += f" ({', '.join(built_in)})" if built_in else ""
        rows.append(_row(replace(setting, default_doc=default)))
    return "\n".join([*_HEADER, *rows])


def identity_markdown() -> str:
    """azure-identity's settings the app reads, in docs/configuration.md."""
    return "\n".join([*_HEADER, *(_row(s) for s in IDENTITY_SETTINGS)])


_HEADER = ("| setting | format | default | notes |", "|---|---|---|---|")


def _row(s: Setting[Any]) -> str:
    default = s.default_doc or (f"`{s.default}`" if s.default else "")
    default = default or ("required" if s.required else "none")
    doc = s.doc
    if s.secret:
        doc += " The value may hold a password: a refused one is reported by name only."
    return f"| `{s.name}` | {s.format} | {default} | {doc} |"
