"""Validate the caller's access token in a fixed order, before anything reaches Entra.

1. decode the compact JWT (no trust yet) and refuse what can never be exchanged On-Behalf-Of,
   with the reason Entra would give: B2C, ID tokens, app-only tokens, other audiences;
2. the tenant (``tid``) must be allowed, so unknown tenants cause no key fetches (with
   ``*``, :mod:`obo.jwks` bounds what a made-up ``tid`` can cost);
3. the signature with the tenant's published key, algorithm pinned to RS256 (no ``none``,
   no HMAC, never a key from the token's own ``jwk``/``jku``/``x5u`` header);
4. issuer per tenant (v1 ``https://sts.windows.net/{tid}/``, v2 ``{host}/{tid}/v2.0``),
   audience, ``exp``/``nbf`` with a small leeway; 5. only then the delegated scope.
"""

from __future__ import annotations

import logging
import math
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import jwt

from obo import jwt_segments
from obo.cache import ExpiringLru
from obo.config import Settings
from obo.errors import InsufficientScope, OboError, Unauthorized
from obo.jwks import KeySource, UnknownKey
from obo.user_assertion import UserAssertion

LEEWAY = 60  # seconds of clock skew tolerated on exp/nbf
# A validated token is remembered by its SHA-256 (same bytes, same verdict) for at most this
# long, so a key Entra withdraws stops being honoured within minutes, not at token expiry.
REMEMBER_FOR = 600.0
MAX_REMEMBERED = 200_000
log = logging.getLogger("obo.validation")
GRAPH_AUDIENCES = frozenset({"https://graph.microsoft.com", "00000003-0000-0000-c000-000000000000"})


@dataclass(frozen=True, slots=True)
class Caller:
    """What the API knows about the user once the token is validated (never the token)."""

    tid: str
    oid: str
    scopes: frozenset[str]
    audience: str
    client_app: str  # azp (v2) or appid (v1)
    version: str
    expires_at: float
    guest: bool
    name: str = ""
    username: str = ""


class TokenValidator:
    def __init__(
        self, settings: Settings, keys: KeySource, clock: Callable[[], float] = time.time
    ) -> None:
        self._settings = settings
        self._keys = keys
        self._clock = clock
        self._validated: ExpiringLru[Caller] = ExpiringLru(MAX_REMEMBERED, clock)

    def validate(self, assertion: UserAssertion) -> Caller:
        """The caller behind the token; a token seen before (its SHA-256, computed once per
        request) is only re-checked for expiry.

        Only the canonical spelling of a token gets this far, so one token is one cache entry
        here and in the exchange's cache. Any failure to read the untrusted token is a 401,
        whatever the JSON or JWT library raises (issue 9, finding 5).
        """
        token = assertion.raw
        try:
            jwt_segments.split_canonical(token)
        except jwt_segments.MalformedToken as exc:
            raise _malformed(exc) from None
        digest = assertion.digest
        caller = self._validated.get(digest)
        if caller is not None:
            if caller.expires_at + LEEWAY < self._clock():
                raise _expired()
            return caller
        try:
            caller = self._validate(token)
        except OboError:
            raise
        except Exception as exc:  # noqa: BLE001 - untrusted input must never become a 500
            log.warning("token refused: reading it raised %s", type(exc).__name__)
            raise Unauthorized("OBO3001", "The bearer token could not be read.") from None
        remember_until = min(caller.expires_at + LEEWAY, self._clock() + REMEMBER_FOR)
        self._validated.put(digest, caller, remember_until)
        return caller

    def _validate(self, token: str) -> Caller:
        header, claims = peek(token)
        self._refuse_unexchangeable(header, claims)
        tid = _tenant(claims)
        if not self._settings.tenant_allowed(tid):
            raise Unauthorized(
                "OBO3006",
                f"Users of tenant {tid} may not call this API (OBO_ALLOWED_TENANTS).",
                tid=tid,
            )
        claims = self._verify_signature(token, header, tid)
        self._check_issuer(claims, tid)
        self._keys.verified(tid)  # Entra signed a token for this API in this tenant
        self._check_lifetime(claims)
        return self._authorize(claims, tid)

    # -- 1. what can never be exchanged -----------------------------------------------
    def _refuse_unexchangeable(self, header: Mapping[str, Any], claims: Mapping[str, Any]) -> None:
        expected = " or ".join(sorted(self._settings.audiences))
        kind = token_kind(header, claims, self._settings.audiences)
        if kind == "b2c":
            raise Unauthorized(
                "OBO3012",
                "This token comes from Azure AD B2C, which does not support the On-Behalf-Of "
                "flow. Call the downstream API from the client with its own token, or use an "
                "Entra ID (workforce) tenant for this API.",
            )
        aud = claims.get("aud")
        if not isinstance(aud, str):  # Entra's tokens carry exactly one audience
            raise Unauthorized("OBO3007", f"The token's audience must be one string ({expected}).")
        if kind == "graph":
            raise Unauthorized(
                "OBO3013",
                f"This is an access token for Microsoft Graph (aud '{aud}'); this API needs a "
                f"token whose audience is {expected}. Request the scope "
                f"api://{self._settings.client_id}/access_as_user. Entra would refuse the "
                "exchange (AADSTS500131; Graph tokens also fail signature checks, AADSTS50013).",
                aadsts="AADSTS500131",
            )
        if kind == "id_token":
            raise Unauthorized(
                "OBO3010",
                "This is an ID token. Send the access token for this API (scope "
                f"api://{self._settings.client_id}/access_as_user), not the ID token: an ID "
                "token proves a sign-in to the client app and cannot be exchanged.",
            )
        if kind == "app_only":
            raise Unauthorized(
                "OBO3011",
                "This is an app-only token (no 'scp'; client credentials or managed identity). "
                "The On-Behalf-Of flow needs a delegated token from a signed-in user.",
            )
        if aud not in self._settings.audiences:
            raise Unauthorized(
                "OBO3007",
                f"The token's audience is '{aud}', but this API expects {expected}. Entra "
                "would answer AADSTS500131 (assertion audience does not match the client app). "
                "Request a token for this API's scope, not for another app.",
                aadsts="AADSTS500131",
            )

    # -- 3. signature -------------------------------------------------------------------
    def _verify_signature(self, token: str, header: Mapping[str, Any], tid: str) -> dict[str, Any]:
        if header.get("alg") != "RS256":
            raise Unauthorized(
                "OBO3002",
                f"Token algorithm '{header.get('alg')}' is not accepted; Entra signs RS256.",
            )
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise Unauthorized("OBO3003", "The token names no signing key (kid).")
        try:
            key = self._keys.key(tid, kid, signed_with=lambda known: _signed_with(token, known))
        except UnknownKey:
            raise Unauthorized(
                "OBO3003", "The token is signed with a key its tenant does not publish."
            ) from None
        try:
            return jwt.decode(
                token,
                key,
                algorithms=["RS256"],
                audience=list(self._settings.audiences),
                options={
                    "verify_exp": False,
                    "verify_nbf": False,
                    "verify_iat": False,
                    "require": ["exp", "iss", "aud", "tid"],
                },
            )
        except jwt.InvalidSignatureError:
            raise Unauthorized("OBO3004", "The token's signature is not valid.") from None
        except jwt.InvalidAudienceError:
            raise Unauthorized("OBO3007", "The token's audience is not this API.") from None
        except (jwt.PyJWTError, ValueError, TypeError, RecursionError) as exc:
            raise Unauthorized(
                "OBO3001", f"The token is not a valid JWT ({type(exc).__name__})."
            ) from None

    # -- 4. issuer, lifetime ------------------------------------------------------------
    def _check_issuer(self, claims: Mapping[str, Any], tid: str) -> None:
        version = str(claims.get("ver", "1.0"))
        expected = (
            f"{self._settings.authority_host}/{tid}/v2.0"
            if version == "2.0"
            else f"https://sts.windows.net/{tid}/"
        )
        if claims.get("iss") != expected:
            raise Unauthorized(
                "OBO3005",
                f"The token's issuer is not tenant {tid}'s (expected '{expected}' for a "
                f"v{version} token).",
            )

    def _check_lifetime(self, claims: Mapping[str, Any]) -> None:
        now = self._clock()
        exp, nbf = _numeric_date(claims.get("exp")), _numeric_date(claims.get("nbf", 0))
        if exp is None or nbf is None:
            raise Unauthorized("OBO3001", "The token's exp/nbf claims are not numbers.")
        if exp + LEEWAY < now:
            raise _expired()
        if nbf - LEEWAY > now:
            raise Unauthorized("OBO3009", "The token is not valid yet (nbf is in the future).")

    # -- 5. scope -----------------------------------------------------------------------
    def _authorize(self, claims: Mapping[str, Any], tid: str) -> Caller:
        oid = claims.get("oid")
        if not isinstance(oid, str) or not oid:
            raise Unauthorized("OBO3015", "The token carries no user object id (oid).")
        scp = claims.get("scp")
        scopes = frozenset(scp.split()) if isinstance(scp, str) else frozenset()
        required = self._settings.required_scopes
        if not scopes & required:
            wanted = tuple(sorted(required))
            raise InsufficientScope(
                "OBO3014",
                f"The token lacks the delegated scope {' or '.join(wanted)} this API requires.",
                wanted,
            )
        return Caller(
            tid=tid,
            oid=oid,
            scopes=scopes,
            audience=str(claims["aud"]),
            client_app=str(claims.get("azp") or claims.get("appid") or ""),
            version=str(claims.get("ver", "1.0")),
            expires_at=float(claims["exp"]),
            guest="idp" in claims or claims.get("acct") == 1,
            name=str(claims.get("name", "")),
            username=str(claims.get("preferred_username") or claims.get("upn") or ""),
        )


def _signed_with(token: str, key: Any) -> bool:
    """Whether ``key`` verifies the token's RS256 signature (nothing else is checked)."""
    try:
        jwt.PyJWS().decode(token, key, algorithms=["RS256"])
    except (jwt.PyJWTError, ValueError, TypeError):
        return False
    return True


def _numeric_date(value: Any) -> float | None:
    """A JSON number (RFC 7519 section 2, NumericDate) as seconds, or None: never a bool, a
    string such as "nan", or a value ``float()`` cannot hold."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        seconds = float(value)
    except OverflowError:
        return None
    return seconds if math.isfinite(seconds) else None


def _expired() -> Unauthorized:
    return Unauthorized(
        "OBO3008",
        "The token has expired; the client should acquire a new one (Entra would answer "
        "AADSTS500133).",
        aadsts="AADSTS500133",
    )


def token_kind(
    header: Mapping[str, Any], claims: Mapping[str, Any], audiences: frozenset[str] | None
) -> str:
    """``delegated``, ``id_token``, ``app_only``, ``graph`` or ``b2c``, from the unverified
    header and claims; ``audiences=None`` when API 1's audiences are unknown (diagnose)."""
    iss, aud, acr = (str(claims.get(name, "")) for name in ("iss", "aud", "acr"))
    if ".b2clogin.com/" in iss or "tfp" in claims or acr.lower().startswith("b2c_"):
        return "b2c"
    if "nonce" in header or aud in GRAPH_AUDIENCES:
        return "graph"  # Graph signs over a hashed header nonce: only Graph can verify these
    has_scp, has_roles, app = "scp" in claims, "roles" in claims, claims.get("idtyp") == "app"
    foreign = audiences is not None and aud not in audiences
    if not (has_scp or has_roles or app) and ("nonce" in claims or "at_hash" in claims or foreign):
        return "id_token"
    # Without scp it is never a user's delegated token (v1 app tokens carry no idtyp).
    return "delegated" if has_scp and not app else "app_only"


def peek(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Header and claims without trusting them: only to refuse early with a precise reason.
    The token must be a canonical compact JWS (:mod:`obo.jwt_segments` says why)."""
    try:
        return jwt_segments.read(token)
    except jwt_segments.MalformedToken as exc:
        raise _malformed(exc) from None


def _malformed(exc: jwt_segments.MalformedToken) -> Unauthorized:
    return Unauthorized("OBO3001", f"The bearer token is not a well-formed JWT: {exc.reason}.")


def _tenant(claims: Mapping[str, Any]) -> str:
    tid = claims.get("tid")
    try:
        return str(uuid.UUID(str(tid)))
    except ValueError:
        raise Unauthorized("OBO3015", "The token carries no valid tenant id (tid).") from None
