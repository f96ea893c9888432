"""The registry of the API's own error codes: one entry, one cause (issue 10).

Each member carries its code, the error class that raises it (hence its HTTP status), a
short title, and the troubleshooting row: what it means and what to do. The table in
docs/troubleshooting.md ("The project's codes") and the tree at the top of
:mod:`obo.errors` are rendered from here, and tests/unit/test_codes.py keeps both equal to it.

Codes come in bands, as Microsoft.Identity.Web numbers its messages (IDW101xx
configuration, IDW102xx authorization, IDW103xx token validation; AzureAD/
microsoft-identity-web, src/Microsoft.Identity.Web.TokenAcquisition/IDWebErrorMessage.cs):
OBO1xxx configuration, OBO2xxx the request, OBO3xxx the caller's token and its keys,
OBO4xxx API 1's own credential (Key Vault, managed identity), OBO5xxx the exchange with
Entra, OBO6xxx the downstream API. A code that shipped keeps its meaning; when one turned
out to name two causes, the first keeps the code and the other got a new one in the same
band (the table says "formerly"). A code is never reused (OBO2103 is retired). Entra's
``AADSTS…`` codes are not here: they pass through as Entra sent them (:mod:`obo.aadsts`).
"""

from __future__ import annotations

import re
from enum import Enum
from typing import Any

from obo.errors import (
    BadRequest,
    ConfigurationError,
    DependencyFailed,
    DependencyTimeout,
    DependencyUnavailable,
    DownstreamChallenge,
    DownstreamError,
    InsufficientScope,
    MethodNotAllowed,
    NotFound,
    OboError,
    Unauthorized,
)


class Code(Enum):
    """What a raise site passes to its error class (``raise
    Unauthorized(Code.NO_AUTHORIZATION, "...")``); ``.value`` is the code on the wire."""

    error: type[OboError]
    title: str
    meaning: str
    fix: str

    def __new__(cls, code: str, error: type[OboError], title: str, meaning: str, fix: str) -> Any:
        if not re.fullmatch(r"OBO[1-6][0-9]{3}", code):
            raise ValueError(f"{code}: the project's codes are OBO1xxx to OBO6xxx")
        member = object.__new__(cls)
        member._value_ = code
        member.error, member.title, member.meaning, member.fix = error, title, meaning, fix
        return member

    @property
    def status(self) -> int:
        """The HTTP status: its error class's, so the two cannot disagree."""
        return self.error.status

    # -- OBO1xxx: configuration ----------------------------------------------------------
    SETTING_INVALID = (
        "OBO1001",
        ConfigurationError,
        "a setting is missing or invalid",
        "a setting is missing or invalid (the detail and the log's `setting` name it)",
        "fix the app setting; see configuration.md",
    )
    SCOPES_SPAN_RESOURCES = (
        "OBO1002",
        ConfigurationError,
        "one API's scopes name several resources",
        "one downstream API's scopes name more than one resource (Entra would answer AADSTS28000)",
        "split them: one named API per resource (configuration.md, named downstream APIs)",
    )
    API_UNDEFINED = (
        "OBO1003",
        ConfigurationError,
        "a function's downstream API has no settings",
        "a function calls a downstream API that no setting defines (the detail names the "
        "function and the setting)",
        "set `OBO_DOWNSTREAM__<NAME>__BASE_URL` and `__SCOPES`, or fix the name in "
        "`@obo.authorize(apis=...)`",
    )
    API_UNDECLARED = (
        "OBO1004",
        ConfigurationError,
        "a handler used an undeclared downstream API",
        "a handler used a downstream API it did not declare",
        "add the name to `@obo.authorize(apis=[...])`",
    )

    # -- OBO2xxx: the request --------------------------------------------------------------
    NO_AUTHORIZATION = (
        "OBO2001",
        Unauthorized,
        "no Authorization header",
        "no `Authorization` header",
        "send `Authorization: Bearer <access token for API 1>`",
    )
    NOT_BEARER = (
        "OBO2002",
        Unauthorized,
        "not the Bearer scheme",
        "not the Bearer scheme",
        "use `Bearer`",
    )
    NOT_ONE_BEARER_TOKEN = (
        "OBO2003",
        Unauthorized,
        "not exactly one Bearer token",
        "empty or more than one credential, or characters RFC 6750 forbids (also Unicode "
        "whitespace, CR/LF)",
        "send exactly one token",
    )
    AUTHORIZATION_TOO_LARGE = (
        "OBO2004",
        Unauthorized,
        "Authorization header too large",
        "header larger than 16 KiB",
        "reduce group claims (groups overage)",
    )
    PATH_REFUSED = (
        "OBO2101",
        BadRequest,
        "downstream path outside the allow-list",
        "the downstream path is outside the allow-list: `..` or any segment of only dots "
        "(before a `:`), `;`, `%`, `\\`, `@`, non-ASCII, a scheme, an empty segment "
        "([path containment](security.md#path-containment))",
        "send a plain relative path",
    )
    NO_RELAY = (
        "OBO2102",
        NotFound,
        "no downstream API relayed under this name",
        "`/api/apis/{name}/...` names no API that allows relaying (the same answer whether "
        "or not the API exists)",
        "set `OBO_DOWNSTREAM__<NAME>__RELAY=true`, or check the name",
    )
    METHOD_NOT_RELAYED = (
        "OBO2104",
        MethodNotAllowed,
        "method not relayed",
        "a method the downstream route does not relay (`Allow` lists GET, POST, PUT, PATCH, "
        "DELETE)",
        "use one of those",
    )
    HEADER_NOT_RELAYABLE = (
        "OBO2105",
        BadRequest,
        "forwarded header not relayable",
        "a forwarded header (`Accept`, `Content-Type`, `If-Match`...) holds characters HTTP "
        "cannot carry as is: controls, CR/LF, non-ASCII, leading or trailing whitespace",
        "send visible ASCII",
    )

    # -- OBO3xxx: the caller's token -------------------------------------------------------
    MALFORMED_TOKEN = (
        "OBO3001",
        Unauthorized,
        "not a well-formed JWT",
        "not a well-formed JWT: not canonical unpadded base64url in each part, header or "
        "claims not a UTF-8 JSON object, repeated names, too deep, NaN (the detail says "
        "which; [reading the token](security.md#reading-the-callers-token))",
        "send the access token exactly as Entra issued it, not an opaque, truncated or "
        "re-encoded string",
    )
    ALGORITHM_REFUSED = (
        "OBO3002",
        Unauthorized,
        "algorithm is not RS256",
        "algorithm is not RS256 (`none`, HMAC...)",
        "only Entra-signed tokens are accepted",
    )
    UNKNOWN_SIGNING_KEY = (
        "OBO3003",
        Unauthorized,
        "signed with a key the tenant does not publish",
        "signed with a key the tenant does not publish (even after a refresh)",
        "a token from another tenant or a forgery; get a new token",
    )
    BAD_SIGNATURE = (
        "OBO3004",
        Unauthorized,
        "signature invalid",
        "signature invalid",
        "the token was altered",
    )
    WRONG_ISSUER = (
        "OBO3005",
        Unauthorized,
        "issuer is not the token's tenant",
        "issuer is not the token's tenant in the cloud of `OBO_AUTHORITY_HOST` (v1: "
        "`https://sts.windows.net/{tid}/`, in Azure China `https://sts.chinacloudapi.cn/{tid}/`; "
        "v2: `<OBO_AUTHORITY_HOST>/{tid}/v2.0`)",
        "a token minted elsewhere, or `OBO_AUTHORITY_HOST` names another cloud than the "
        "token's (Azure China: `https://login.partner.microsoftonline.cn`)",
    )
    TENANT_NOT_ALLOWED = (
        "OBO3006",
        Unauthorized,
        "tenant not admitted",
        "the token's tenant is not in `OBO_ALLOWED_TENANTS` (or is excluded with `*,-<tid>`)",
        "add the tenant, or `*` for a multi-tenant API",
    )
    WRONG_AUDIENCE = (
        "OBO3007",
        Unauthorized,
        "audience is another API",
        "audience is another API (Entra: AADSTS500131)",
        "request API 1's scope `api://<API 1>/access_as_user`",
    )
    EXPIRED = (
        "OBO3008",
        Unauthorized,
        "expired",
        "expired (Entra: AADSTS500133)",
        "acquire a new token (MSAL `acquire_token_silent`)",
    )
    NOT_YET_VALID = (
        "OBO3009",
        Unauthorized,
        "not valid yet",
        "not valid yet",
        "check the client's clock",
    )
    ID_TOKEN = (
        "OBO3010",
        Unauthorized,
        "an ID token",
        "an **ID token** was sent",
        "send the access token for API 1, not the ID token",
    )
    APP_ONLY_TOKEN = (
        "OBO3011",
        Unauthorized,
        "an app-only token",
        "an **app-only** token (client credentials, managed identity)",
        "OBO needs a user's delegated token",
    )
    B2C_TOKEN = (
        "OBO3012",
        Unauthorized,
        "an Azure AD B2C token",
        "an **Azure AD B2C** token",
        "B2C does not support OBO: call API 2 from the client with its own token, or use an "
        "Entra ID tenant",
    )
    GRAPH_TOKEN = (
        "OBO3013",
        Unauthorized,
        "a token for Microsoft Graph",
        "a token for **Microsoft Graph**",
        "request API 1's scope instead (Entra: AADSTS500131, and AADSTS50013 since Graph "
        "tokens cannot be verified)",
    )
    SCOPE_MISSING = (
        "OBO3014",
        InsufficientScope,
        "the required scope is missing",
        "the token lacks the required scope (the API's `OBO_REQUIRED_SCOPES`, or the "
        "function's `@obo.authorize(scopes=...)`)",
        "consent/request `access_as_user` (or the scope the detail names)",
    )
    NO_TENANT_ID = (
        "OBO3015",
        Unauthorized,
        "no valid tid",
        "no valid `tid` (a GUID)",
        "only user tokens from Entra ID work",
    )
    NO_OBJECT_ID = (
        "OBO3016",
        Unauthorized,
        "no oid",
        "no user object id (`oid`); formerly OBO3015",
        "only user tokens from Entra ID work",
    )
    FIELD_MISSING_OR_MISTYPED = (
        "OBO3017",
        Unauthorized,
        "a field Entra always issues is missing or mistyped",
        "a field every Entra token carries is missing or of another type: no `kid` in the "
        "header, no `exp` or `iss`, `exp`/`nbf` not JSON numbers, `aud` not one string (the "
        "detail says which); formerly OBO3001, OBO3003 (`kid`) or OBO3007 (`aud`)",
        "send the access token exactly as Entra issued it; this one was not minted by Entra ID",
    )
    TOKEN_UNREADABLE = (
        "OBO3018",
        Unauthorized,
        "reading the token failed unexpectedly",
        "reading the token raised an error no rule anticipated (the log names its type); "
        "formerly OBO3001",
        "send the access token as Entra issued it; if it is one, report the log line",
    )
    KEYS_UNAVAILABLE = (
        "OBO3020",
        DependencyUnavailable,
        "the tenant's signing keys are unavailable",
        "the tenant's signing keys could not be fetched",
        "Entra unreachable; retry after `Retry-After` (the failure is remembered for 5 s: no "
        "new fetch before)",
    )
    UNKNOWN_TENANT = (
        "OBO3021",
        Unauthorized,
        "Entra ID does not know the tenant",
        "Entra ID does not know the token's tenant (its discovery answered AADSTS90002 "
        "`invalid_tenant`, or 404)",
        "a forged or mistyped `tid`; remembered for 10 minutes without asking Entra again. A "
        "tenant created minutes ago: wait that long",
    )
    DISCOVERY_BUDGET_SPENT = (
        "OBO3022",
        DependencyUnavailable,
        "too many new tenants at once",
        "too many tenants never seen before are being looked up (the discovery budget, "
        "`OBO_ALLOWED_TENANTS=*` only)",
        "retry after `Retry-After`; tenants already served are unaffected. Sustained: someone "
        "is sending tokens naming random tenants, see "
        "[security](security.md#tenants-and-key-discovery)",
    )

    # -- OBO4xxx: API 1's credential -------------------------------------------------------
    KEY_VAULT_UNREACHABLE = (
        "OBO4001",
        DependencyUnavailable,
        "Key Vault unreachable",
        "Key Vault unreachable (no connection, or it dropped)",
        "retry; check networking (private endpoint, firewall). One load is shared by all "
        "waiting requests and its failure answered at once for 5 s",
    )
    KEY_VAULT_FORBIDDEN = (
        "OBO4002",
        DependencyFailed,
        "Key Vault refused the identity",
        "Key Vault refused the identity",
        "grant *Key Vault Certificate User* and *Key Vault Secrets User*",
    )
    CERTIFICATE_NOT_FOUND = (
        "OBO4003",
        DependencyFailed,
        "certificate not found",
        "certificate not found",
        "check `OBO_CERTIFICATE_NAME` / `OBO_KEY_VAULT_URL`",
    )
    NO_IDENTITY_TOKEN = (
        "OBO4004",
        DependencyUnavailable,
        "no managed identity token",
        "no managed identity token (for Key Vault, or in secretless mode for API 1's "
        "federated credential): the identity endpoint failed, has no such identity, or "
        "answered something that is not a token; azure-identity does not tell these apart",
        "in Azure check the identity and `AZURE_CLIENT_ID`; locally `az login` (certificate "
        "mode only)",
    )
    KEY_VAULT_TIMEOUT = (
        "OBO4005",
        DependencyTimeout,
        "Key Vault timed out",
        "Key Vault timed out, or did not answer within 8 s",
        "retry; for 5 s afterwards the same code comes back at once as a 503 with `Retry-After`",
    )
    NO_PRIVATE_KEY = (
        "OBO4006",
        DependencyFailed,
        "the secret holds no usable private key",
        "the certificate's secret holds no usable private key with its certificate",
        "the certificate must be exportable (PEM or PKCS#12 secret)",
    )
    KEY_VAULT_THROTTLED = (
        "OBO4007",
        DependencyUnavailable,
        "Key Vault answered 429 or 5xx",
        "Key Vault answered 429 (throttling) or 5xx; formerly OBO4001",
        "retry after `Retry-After`; its failure is answered at once for 5 s",
    )
    IDENTITY_TIMEOUT = (
        "OBO4008",
        DependencyTimeout,
        "the managed identity endpoint timed out",
        "secretless mode: the managed identity endpoint timed out, or did not answer within "
        "about 6 s; formerly OBO4005",
        "retry; for 5 s afterwards the same code comes back at once as a 503 with `Retry-After`",
    )
    KEY_VAULT_ANSWER_UNREADABLE = (
        "OBO4009",
        DependencyFailed,
        "Key Vault's answer is not what it documents",
        "Key Vault's answer is not what it documents (a proxy's page, JSON of another shape, a "
        "secret without a string value); formerly OBO4006",
        "check what answers at `OBO_KEY_VAULT_URL` (a proxy or gateway in the way)",
    )

    # -- OBO5xxx: the exchange with Entra --------------------------------------------------
    ENTRA_THROTTLED = (
        "OBO5001",
        DependencyUnavailable,
        "Entra answered 429 or 5xx",
        "Entra answered 429/5xx to the exchange",
        "retry after `Retry-After`; other users are unaffected",
    )
    ENTRA_UNREACHABLE = (
        "OBO5002",
        DependencyUnavailable,
        "Entra unreachable",
        "Entra unreachable",
        "outbound networking, DNS, proxy (`OBO_CA_BUNDLE`)",
    )
    ENTRA_ANSWER_UNREADABLE = (
        "OBO5003",
        DependencyFailed,
        "Entra's token answer is not a JSON object",
        "Entra's answer to the token exchange is not the JSON object it documents (HTML, an "
        "array, a string, `null`)",
        "a proxy or gateway in the way; check `OBO_AUTHORITY_HOST` and outbound networking; "
        "the log has the status and shape",
    )
    ENTRA_ANSWER_UNUSABLE = (
        "OBO5004",
        DependencyFailed,
        "Entra's token answer is unusable",
        "Entra's token answer is JSON but unusable: `access_token` not a non-empty token "
        "string, `expires_in` missing or not a lifetime (0 < s ≤ 2 days), or neither a token "
        "nor an `error`",
        "a proxy rewriting answers, or an Entra incident; nothing was sent to API 2",
    )
    ENTRA_TIMEOUT = (
        "OBO5005",
        DependencyTimeout,
        "Entra timed out",
        "Entra timed out (the exchange, or MSAL's tenant discovery after 8 s)",
        "retry",
    )
    DISCOVERY_UNREADABLE = (
        "OBO5006",
        DependencyFailed,
        "Entra's discovery answer is not what it documents",
        "Entra's answer to MSAL's discovery (instance discovery, the tenant's OpenID "
        "configuration) is not the JSON object it documents, or names no endpoints; "
        "formerly OBO5003",
        "a proxy or gateway in the way; check `OBO_AUTHORITY_HOST` and outbound networking; "
        "the log has the status and shape",
    )
    NOT_SAML = (
        "OBO5010",
        DependencyFailed,
        "Entra's answer is not the SAML asked for",
        "Entra's answer is not the SAML assertion asked for (a JWT, or the other SAML version)",
        "`OBO_SAML_ENDPOINT=v1`; configure SAML single sign-on on the downstream's "
        "enterprise application",
    )

    # -- OBO6xxx: the downstream API -------------------------------------------------------
    DOWNSTREAM_FAILED = (
        "OBO6001",
        DependencyFailed,
        "the downstream API failed",
        "the downstream API failed (5xx)",
        "see `downstream_status`",
    )
    DOWNSTREAM_TIMEOUT = (
        "OBO6002",
        DependencyTimeout,
        "the downstream API timed out",
        "the downstream API timed out",
        "retry",
    )
    DOWNSTREAM_UNREACHABLE = (
        "OBO6003",
        DependencyFailed,
        "the downstream API is unreachable",
        "the downstream API is unreachable",
        "check `OBO_DOWNSTREAM_BASE_URL`",
    )
    DOWNSTREAM_CLAIMS_CHALLENGE = (
        "OBO6004",
        DownstreamChallenge,
        "the downstream API sent a claims challenge",
        "the downstream API sent a claims challenge (CAE)",
        "the client signs in again with the `claims` and retries",
    )
    DOWNSTREAM_REFUSED = (
        "OBO6005",
        DownstreamError,
        "the downstream API answered outside 2xx",
        "your function called a downstream API (`get`, `post`...) and it answered outside "
        "2xx; `api`, `downstream_status` and `downstream_code` say which and why",
        "fix the call or the API's permissions; or catch `DownstreamError` in the handler",
    )
    DOWNSTREAM_JSON_INVALID = (
        "OBO6006",
        DependencyFailed,
        "the downstream API's JSON is not valid",
        "the downstream API answered with a JSON content type but a body that is not JSON",
        "a proxy or gateway in the way; call it with `request()` to see the raw answer",
    )
    DOWNSTREAM_REDIRECT = (
        "OBO6007",
        DependencyFailed,
        "the downstream API redirected elsewhere",
        "the downstream API redirected outside `OBO_DOWNSTREAM_BASE_URL` (e.g. Graph's 302 "
        "to a pre-authenticated download URL); not relayed",
        "see [security.md](security.md#redirects-from-downstream-apis): use the library with "
        "`external_redirects=True` in your own handler",
    )


_BY_VALUE: dict[str, Code] = {member.value: member for member in Code}


def lookup(code: str) -> Code:
    """The entry of a code as sent (``"OBO3001"``); ``ValueError`` if there is none."""
    try:
        return _BY_VALUE[code]
    except KeyError:
        raise ValueError(f"{code!r} is not a registered code (obo/codes.py)") from None


def markdown() -> str:
    """The table in docs/troubleshooting.md, "The project's codes" (a test keeps the two
    equal: edit the entries above, then paste this)."""
    lines = ["| code | status | meaning | what to do |", "|---|---|---|---|"]
    lines += [f"| {c.value} | {c.status} | {c.meaning} | {c.fix} |" for c in Code]
    return "\n".join(lines)


def tree() -> str:
    """The error classes as a tree, each with the codes it raises: the top of obo/errors.py
    (a test keeps the two equal)."""
    lines = [OboError.__name__]
    _branch(OboError, "", lines)
    return "\n".join(lines)


_STATUS_COLUMN = 32


def _branch(parent: type[OboError], prefix: str, lines: list[str]) -> None:
    children = [c for c in parent.__subclasses__() if c.__module__ == OboError.__module__]
    for index, cls in enumerate(children):
        last = index == len(children) - 1
        head = f"{prefix}{'└── ' if last else '├── '}{cls.__name__}"
        lines.append(f"{head:<{_STATUS_COLUMN}} {cls.status}{_carries(cls)}")
        inner = prefix + ("    " if last else "│   ")
        rail = inner + ("│ " if cls.__subclasses__() else "  ")
        lines += [f"{rail}{c.value}  {c.title}" for c in Code if c.error is cls]
        _branch(cls, inner, lines)


def _carries(cls: type[OboError]) -> str:
    if cls.passes_entra_codes:
        return "  and Entra's codes as sent (AADSTS..., OAuth errors)"
    if cls.replays:
        return "  a 503 or 504 code again, from memory"
    return ""
