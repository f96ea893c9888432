"""The claim rules a caller's token must pass, each written once and returning a finding.

PyJWT's ``api_jwt.py`` has one method per claim rule (``_validate_exp``, ``_validate_iss``,
``_validate_aud``) that every decode path calls. Here each rule is a function of the parsed
header and claims and a :class:`Context`, returning a :class:`Finding` or None: the validator
(:mod:`obo.validation`) raises the first finding, ``python -m obo diagnose``
(:mod:`obo.diagnose`) reports them all, so the two can never disagree. Reading the token
(canonical base64url, JSON) comes first, in :mod:`obo.jwt_segments`; the signature, which
needs the tenant's keys, stays in the validator between :data:`UNSIGNED`/:data:`SIGNING`
and :data:`SIGNED`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from obo.claims import (
    Claims,
    Header,
    numeric_date,
    relative,
    tenant_id,
    tenant_named_in,
    token_kind,
    v1_issuer,
)
from obo.codes import Code
from obo.config import Settings

LEEWAY = 60  # seconds of clock skew tolerated on exp/nbf
_AS_ISSUED = "Send the access token exactly as Entra issued it."


@dataclass(frozen=True)
class Finding:
    """One reason API 1 cannot use a token.

    ``message`` is the detail API 1 answers with, ``extra`` the members it adds to that
    problem+json body. ``aadsts`` is what Entra would answer were it asked to exchange the
    token, and ``fix`` what to do: both for ``diagnose``, which has no answer to relay.
    """

    code: Code
    message: str
    fix: str = ""  # empty: the AADSTS table's fix applies (obo/aadsts.py)
    aadsts: int | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)
    conclusive: bool = False  # nothing after it is worth reporting (B2C: there is no OBO)


@dataclass(frozen=True)
class Context:
    """What a token is judged against: API 1's settings and the time. ``unknown`` names the
    settings ``diagnose`` could not read; a rule that needs one of them says nothing."""

    settings: Settings
    clock: Callable[[], float]
    unknown: frozenset[str] = frozenset()

    def knows(self, setting: str) -> bool:
        return setting not in self.unknown

    @property
    def audiences(self) -> frozenset[str] | None:
        return self.settings.audiences if self.knows("OBO_CLIENT_ID") else None

    @property
    def client_id(self) -> str:
        return self.settings.client_id if self.knows("OBO_CLIENT_ID") else "<API 1 client id>"

    @property
    def expected_audiences(self) -> str:
        audiences = self.audiences
        return " or ".join(sorted(audiences)) if audiences else "API 1's client id"

    def ask(self) -> str:
        scope = f"api://{self.client_id}/{sorted(self.settings.required_scopes)[0]}"
        return f"Have the client request API 1's scope {scope} and send that access token."


Rule = Callable[[Header, Claims, Context], Finding | None]


# -- 1. what can never be exchanged (unverified: it only refuses) -------------------------
def exchangeable(header: Header, claims: Claims, context: Context) -> Finding | None:
    """A delegated access token for API 1: not B2C, Graph, an ID or an app-only token."""
    kind = token_kind(header, claims, context.audiences)
    if kind == "b2c":
        return Finding(
            Code.B2C_TOKEN,
            "This token comes from Azure AD B2C, which does not support the On-Behalf-Of "
            "flow. Call the downstream API from the client with its own token, or use an "
            "Entra ID (workforce) tenant for this API.",
            "Call the downstream API from the client with a token of its own for that API, or "
            "move API 1 and its users to an Entra ID (workforce) tenant.",
            conclusive=True,
        )
    aud, expected, client = claims.get("aud"), context.expected_audiences, context.client_id
    if not isinstance(aud, str):  # Entra's tokens carry exactly one audience
        return Finding(
            Code.FIELD_MISSING_OR_MISTYPED,
            f"The token's audience must be one string ({expected}).",
            context.ask(),
            500131,
        )
    ours = context.audiences is not None and aud in context.audiences
    not_user = 50027 if ours else 500131  # Entra checks the audience before the token type
    if kind == "graph":  # Entra checks the signature first, which only Graph can verify
        return Finding(
            Code.GRAPH_TOKEN,
            f"This is an access token for Microsoft Graph (aud '{aud}'); this API needs a "
            f"token whose audience is {expected}. Request the scope "
            f"api://{client}/access_as_user. Entra would refuse the "
            "exchange (AADSTS500131; Graph tokens also fail signature checks, AADSTS50013).",
            context.ask(),
            50013,
            {"aadsts": "AADSTS500131"},
        )
    if kind == "id_token":
        return Finding(
            Code.ID_TOKEN,
            "This is an ID token. Send the access token for this API (scope "
            f"api://{client}/access_as_user), not the ID token: an ID "
            "token proves a sign-in to the client app and cannot be exchanged.",
            f"Send the access token for API 1 (scope api://{client}/access_as_user), not the "
            "ID token.",
            not_user,
        )
    if kind == "app_only":
        return Finding(
            Code.APP_ONLY_TOKEN,
            "This is an app-only token (no 'scp'; client credentials or managed identity). "
            "The On-Behalf-Of flow needs a delegated token from a signed-in user.",
            "Send the access token a signed-in user obtained for API 1.",
            not_user,
        )
    if context.audiences is not None and not ours:
        return Finding(
            Code.WRONG_AUDIENCE,
            f"The token's audience is '{aud}', but this API expects {expected}. Entra "
            "would answer AADSTS500131 (assertion audience does not match the client app). "
            "Request a token for this API's scope, not for another app.",
            context.ask(),
            500131,
            {"aadsts": "AADSTS500131"},
        )
    return None


# -- 2. the tenant, before any of its keys is fetched ---------------------------------------
def tenant_named(header: Header, claims: Claims, context: Context) -> Finding | None:
    if tenant_id(claims) is None:  # every later rule reads the tenant
        return Finding(
            Code.NO_TENANT_ID,
            "The token carries no valid tenant id (tid).",
            "Only tokens from an Entra ID tenant can be exchanged.",
        )
    return None


def tenant_allowed(header: Header, claims: Claims, context: Context) -> Finding | None:
    tid = tenant_id(claims)
    if tid is None or not context.knows("OBO_ALLOWED_TENANTS"):
        return None
    if context.settings.tenant_allowed(tid):
        return None
    return Finding(
        Code.TENANT_NOT_ALLOWED,
        f"Users of tenant {tid} may not call this API (OBO_ALLOWED_TENANTS).",
        f"Add {tid} to OBO_ALLOWED_TENANTS (or * for any tenant) if its users may call API 1; "
        "an admin there consents to API 1.",
        extra={"tid": tid},
    )


# -- 3. the header's part of the signature check (the key itself is the validator's) ---------
def algorithm(header: Header, claims: Claims, context: Context) -> Finding | None:
    if header.get("alg") == "RS256":
        return None
    return Finding(
        Code.ALGORITHM_REFUSED,
        f"Token algorithm '{header.get('alg')}' is not accepted; Entra signs RS256.",
        "Only tokens Entra signed are accepted.",
    )


def key_named(header: Header, claims: Claims, context: Context) -> Finding | None:
    kid = header.get("kid")
    if isinstance(kid, str) and kid:
        return None
    return Finding(
        Code.FIELD_MISSING_OR_MISTYPED, "The token names no signing key (kid).", _AS_ISSUED
    )


# -- 4. what the signature vouches for ---------------------------------------------------------
def required_claims(header: Header, claims: Claims, context: Context) -> Finding | None:
    """PyJWT's ``require`` option, kept here so that ``diagnose`` applies it too."""
    if all(claims.get(name) is not None for name in ("exp", "iss", "aud", "tid")):
        return None
    return Finding(
        Code.FIELD_MISSING_OR_MISTYPED,
        "The token is not a valid JWT (MissingRequiredClaimError).",
        _AS_ISSUED,
    )


def issuer(header: Header, claims: Claims, context: Context) -> Finding | None:
    """The tenant's own issuer: ``{host}/{tid}/v2.0`` for v2, the cloud's STS for v1."""
    tid = tenant_id(claims)
    if tid is None or not context.knows("OBO_AUTHORITY_HOST"):
        return None
    host, iss = context.settings.authority_host, claims.get("iss")
    version = str(claims.get("ver", "1.0"))
    expected = f"{host}/{tid}/v2.0" if version == "2.0" else v1_issuer(host, tid)
    if iss == expected:
        return None
    named = tenant_named_in(str(iss))
    cause = (
        f"The issuer names tenant {named} but tid is {tid}, whose keys cannot verify it"
        if named and named != tid
        else f"Tenant {tid} issues v{version} tokens as '{expected}', not '{iss}'"
    )
    return Finding(
        Code.WRONG_ISSUER,
        f"The token's issuer is not tenant {tid}'s (expected '{expected}' for a v{version} token).",
        f"{cause}. Send a token tenant {tid} issued for API 1; check that OBO_AUTHORITY_HOST "
        f"({host}) is the token's cloud.",
        50013,
    )


# -- 5. lifetime, then what the user's token allows -------------------------------------------
def lifetime_numbers(header: Header, claims: Claims, context: Context) -> Finding | None:
    exp, nbf = claims.get("exp"), claims.get("nbf", 0)  # a missing exp: required_claims
    if (exp is not None and numeric_date(exp) is None) or numeric_date(nbf) is None:
        return Finding(
            Code.FIELD_MISSING_OR_MISTYPED,
            "The token's exp/nbf claims are not numbers.",
            _AS_ISSUED,
        )
    return None


def not_expired(header: Header, claims: Claims, context: Context) -> Finding | None:
    exp = numeric_date(claims.get("exp"))
    if exp is None or exp + LEEWAY >= context.clock():
        return None
    return expired()


def expired() -> Finding:
    """Also what the validator answers for a remembered token that has since expired."""
    return Finding(
        Code.EXPIRED,
        "The token has expired; the client should acquire a new one (Entra would answer "
        "AADSTS500133).",
        aadsts=500133,
        extra={"aadsts": "AADSTS500133"},
    )


def valid_yet(header: Header, claims: Claims, context: Context) -> Finding | None:
    nbf, now = numeric_date(claims.get("nbf", 0)), context.clock()
    if nbf is None or nbf - LEEWAY <= now:
        return None
    return Finding(
        Code.NOT_YET_VALID,
        "The token is not valid yet (nbf is in the future).",
        f"It becomes valid in {relative(nbf - now)}: check the clocks of the client and of "
        "this machine.",
        500133,
    )


def user_object(header: Header, claims: Claims, context: Context) -> Finding | None:
    oid = claims.get("oid")
    if not _users_token_for_api(header, claims, context) or (isinstance(oid, str) and oid):
        return None
    return Finding(
        Code.NO_OBJECT_ID,
        "The token carries no user object id (oid).",
        "Send a token a user obtained by signing in.",
    )


def scope(header: Header, claims: Claims, context: Context) -> Finding | None:
    if not context.knows("OBO_REQUIRED_SCOPES") or not _users_token_for_api(
        header, claims, context
    ):
        return None
    scp, required = claims.get("scp"), context.settings.required_scopes
    if frozenset(scp.split() if isinstance(scp, str) else ()) & required:
        return None
    return Finding(
        Code.SCOPE_MISSING,
        f"The token lacks the delegated scope {' or '.join(sorted(required))} this API requires.",
        f"Have the client request api://{context.client_id}/{sorted(required)[0]}; the user or "
        f"an admin of tenant {tenant_id(claims)} consents to it.",
    )


def _users_token_for_api(header: Header, claims: Claims, context: Context) -> bool:
    """Only a user's token for API 1 is asked for its user and scope (the validator never
    gets this far with another; ``diagnose`` would only repeat the first finding)."""
    aud, audiences = claims.get("aud"), context.audiences
    return (
        isinstance(aud, str)
        and audiences is not None
        and aud in audiences
        and token_kind(header, claims, audiences) == "delegated"
    )


# -- the order: the validator runs the phases around the signature, diagnose all at once -------
UNSIGNED: tuple[Rule, ...] = (exchangeable, tenant_named, tenant_allowed)
SIGNING: tuple[Rule, ...] = (algorithm, key_named)
SIGNED: tuple[Rule, ...] = (required_claims, issuer)
IN_USE: tuple[Rule, ...] = (lifetime_numbers, not_expired, valid_yet, user_object, scope)
RULES: tuple[Rule, ...] = UNSIGNED + SIGNING + SIGNED + IN_USE


def first(
    rules: Iterable[Rule], header: Header, claims: Claims, context: Context
) -> Finding | None:
    """The first finding of ``rules``, in order: what the validator refuses with."""
    return next((f for rule in rules if (f := rule(header, claims, context)) is not None), None)


def findings(header: Header, claims: Claims, context: Context) -> list[Finding]:
    """Every finding of every rule, in the validator's order, up to a conclusive one."""
    found: list[Finding] = []
    for rule in RULES:
        finding = rule(header, claims, context)
        if finding is not None:
            found.append(finding)
            if finding.conclusive:
                break
    return found
