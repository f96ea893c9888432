"""Validate the caller's access token in a fixed order, before anything reaches Entra.

1. read the compact JWT (:mod:`obo.jwt_segments`, no trust yet) and refuse what can never be
   exchanged On-Behalf-Of, with the reason Entra would give: B2C, ID tokens, app-only
   tokens, other audiences;
2. the tenant (``tid``) must be allowed, so unknown tenants cause no key fetches (with
   ``*``, :mod:`obo.jwks` bounds what a made-up ``tid`` can cost);
3. the signature with the tenant's published key, algorithm pinned to RS256 (no ``none``,
   no HMAC, never a key from the token's own ``jwk``/``jku``/``x5u`` header);
4. issuer per tenant and cloud, audience, ``exp``/``nbf`` with a small leeway; 5. only then
   the delegated scope.

Every claim rule is a function in :mod:`obo.token_rules`, shared with ``python -m obo
diagnose``; this module raises the first finding and owns the signature, the one check
that needs the tenant's keys.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import jwt

from obo import jwt_segments, token_rules
from obo.cache import ExpiringLru
from obo.claims import tenant_id
from obo.claims import token_kind as token_kind  # re-exported: callers import it from here
from obo.codes import Code
from obo.config import Settings
from obo.errors import InsufficientScope, OboError, Unauthorized
from obo.jwks import KeySource, UnknownKey
from obo.token_rules import LEEWAY
from obo.user_assertion import UserAssertion

# A validated token is remembered by its SHA-256 (same bytes, same verdict) for at most this
# long, so a key Entra withdraws stops being honoured within minutes, not at token expiry.
REMEMBER_FOR = 600.0
MAX_REMEMBERED = 200_000
log = logging.getLogger("obo.validation")


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

        Only the canonical spelling of a token is ever remembered, so one token is one cache
        entry here and in the exchange's cache: a respelling has another SHA-256, misses, and
        is refused below before anything is stored (hence the look-up may come first, which
        keeps the strict reading off the warm path). Any failure to read the untrusted token
        is a 401, whatever the JSON or JWT library raises (issue 9, finding 5).
        """
        digest = assertion.digest
        caller = self._validated.get(digest)
        if caller is not None:
            if caller.expires_at + LEEWAY < self._clock():
                raise _expired()
            return caller
        token = assertion.raw
        try:
            jwt_segments.split_canonical(token)
        except jwt_segments.MalformedToken as exc:
            raise _malformed(exc) from None
        try:
            caller = self._validate(token)
        except OboError:
            raise
        except Exception as exc:  # noqa: BLE001 - untrusted input must never become a 500
            log.warning("token refused: reading it raised %s", type(exc).__name__)
            raise Unauthorized(
                Code.TOKEN_UNREADABLE, "The bearer token could not be read."
            ) from None
        remember_until = min(caller.expires_at + LEEWAY, self._clock() + REMEMBER_FOR)
        self._validated.put(digest, caller, remember_until)
        return caller

    def _validate(self, token: str) -> Caller:
        header, claims = peek(token)
        context = token_rules.Context(self._settings, self._clock)
        self._enforce(token_rules.UNSIGNED, header, claims, context)
        tid = tenant_id(claims)
        assert tid is not None  # the tenant_named rule refused the token otherwise
        claims = self._verify_signature(token, header, tid, context)
        self._enforce(token_rules.SIGNED, header, claims, context)
        self._keys.verified(tid)  # Entra signed a token for this API in this tenant
        self._enforce(token_rules.IN_USE, header, claims, context)
        return _caller(claims, tid)

    def _enforce(
        self,
        rules: tuple[token_rules.Rule, ...],
        header: Mapping[str, Any],
        claims: Mapping[str, Any],
        context: token_rules.Context,
    ) -> None:
        finding = token_rules.first(rules, header, claims, context)
        if finding is not None:
            raise self._refusal(finding)

    def _refusal(self, finding: token_rules.Finding) -> OboError:
        """The error API 1 answers for ``finding``: 403 ``insufficient_scope`` naming the
        scopes for a missing scope (RFC 6750 section 3.1), else 401 ``invalid_token``."""
        if finding.code is Code.SCOPE_MISSING:
            wanted = tuple(sorted(self._settings.required_scopes))
            return InsufficientScope(finding.code, finding.message, wanted)
        return _unauthorized(finding)

    # -- the signature: the one check that needs the tenant's published keys -------------
    def _verify_signature(
        self, token: str, header: Mapping[str, Any], tid: str, context: token_rules.Context
    ) -> dict[str, Any]:
        self._enforce(token_rules.SIGNING, header, {}, context)  # alg RS256, a kid
        try:
            key = self._keys.key(
                tid, str(header["kid"]), signed_with=lambda known: _signed_with(token, known)
            )
        except UnknownKey:
            raise Unauthorized(
                Code.UNKNOWN_SIGNING_KEY,
                "The token is signed with a key its tenant does not publish.",
            ) from None
        try:
            return jwt.decode(
                token,
                key,
                algorithms=["RS256"],
                audience=list(self._settings.audiences),
                # exp, nbf and the required claims are token_rules', which diagnose shares
                options={"verify_exp": False, "verify_nbf": False, "verify_iat": False},
            )
        except jwt.InvalidSignatureError:
            raise Unauthorized(Code.BAD_SIGNATURE, "The token's signature is not valid.") from None
        except jwt.InvalidAudienceError:
            raise Unauthorized(
                Code.WRONG_AUDIENCE, "The token's audience is not this API."
            ) from None
        except (jwt.PyJWTError, ValueError, TypeError, RecursionError) as exc:
            raise Unauthorized(
                Code.MALFORMED_TOKEN, f"The token is not a valid JWT ({type(exc).__name__})."
            ) from None


def _caller(claims: Mapping[str, Any], tid: str) -> Caller:
    return Caller(
        tid=tid,
        oid=str(claims["oid"]),
        scopes=frozenset(str(claims["scp"]).split()),
        audience=str(claims["aud"]),
        client_app=str(claims.get("azp") or claims.get("appid") or ""),
        version=str(claims.get("ver", "1.0")),
        expires_at=float(claims["exp"]),
        guest="idp" in claims or claims.get("acct") == 1,
        name=str(claims.get("name", "")),
        username=str(claims.get("preferred_username") or claims.get("upn") or ""),
    )


def _unauthorized(finding: token_rules.Finding) -> Unauthorized:
    return Unauthorized(finding.code, finding.message, **finding.extra)


def _expired() -> Unauthorized:
    return _unauthorized(token_rules.expired())


def _signed_with(token: str, key: Any) -> bool:
    """Whether ``key`` verifies the token's RS256 signature (nothing else is checked)."""
    try:
        jwt.PyJWS().decode(token, key, algorithms=["RS256"])
    except (jwt.PyJWTError, ValueError, TypeError):
        return False
    return True


def peek(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Header and claims without trusting them: only to refuse early with a precise reason.
    The token must be a canonical compact JWS (:mod:`obo.jwt_segments` says why)."""
    try:
        return jwt_segments.read(token)
    except jwt_segments.MalformedToken as exc:
        raise _malformed(exc) from None


def _malformed(exc: jwt_segments.MalformedToken) -> Unauthorized:
    return Unauthorized(
        Code.MALFORMED_TOKEN, f"The bearer token is not a well-formed JWT: {exc.reason}."
    )
