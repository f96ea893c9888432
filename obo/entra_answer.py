"""Entra's answer to a token request, read once (:class:`EntraAnswer`); what can go wrong
asking for it (:class:`EntraFailure`); and :func:`entra_failures`, the one place where those
become the API's errors, as httpx's ``map_httpcore_exceptions`` turns the transport's errors
into its own (encode/httpx, ``httpx/_transports/default.py``).

Nothing in an answer is trusted to have the documented type ("Microsoft identity platform
and OAuth 2.0 On-Behalf-Of flow", success and error responses; RFC 6749 section 5): a proxy,
a gateway or a bug can put an array, a number or a nested object anywhere, and such a value
must become a 502 with a code, never a 500 or ``Authorization: Bearer {'nested': ...}``.
Refusals keep Entra's AADSTS code; :mod:`obo.aadsts` adds its meaning and fix.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from obo.aadsts import describe
from obo.codes import Code
from obo.errors import (
    ClaimsChallenge,
    DependencyFailed,
    DependencyTimeout,
    DependencyUnavailable,
    Forbidden,
    OboError,
)

# invalid_client answers that mean "your certificate is not (or no longer) accepted"
CERTIFICATE_REJECTED = frozenset({700027, 700024, 7000214, 1000502, 700021})
# RFC 6750 section 2.1 b64token: what may follow "Bearer " in a header
_B64TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]+=*")
_ERROR_NAME = re.compile(r"[a-z][a-z0-9_]{0,63}")  # RFC 6749 5.2 error codes are like this
_ID = re.compile(r"[0-9A-Fa-f-]{8,64}")  # Entra's correlation and trace ids are GUIDs
_AADSTS = re.compile(r"[0-9]{1,9}")
# Entra's access tokens live 60-90 minutes by default, at most a day by policy (CAE: 28 h).
MAX_LIFETIME = 2 * 24 * 3600.0
MAX_TOKEN_LENGTH = 256 * 1024  # a SAML assertion with many attributes, base64url


@dataclass(frozen=True)
class EntraAnswer:
    """What Entra answered to one token request, each field of its documented type or empty:
    the token and its lifetime, or the refusal (``error``, AADSTS ``codes``, a claims
    challenge); the ids a support case needs either way."""

    token: str = field(default="", repr=False)  # access_token: a JWT or a base64url assertion
    lifetime: float = 0.0  # expires_in, seconds
    error: str | None = None  # RFC 6749 5.2 ``error``
    codes: tuple[int, ...] = ()  # AADSTS numbers from ``error_codes``
    ids: Mapping[str, str] = field(default_factory=dict)  # correlation_id, trace_id
    challenge: bool = False  # the client must sign in again with ``claims``
    claims: str = ""
    suberror: str | None = None

    @classmethod
    def read(cls, body: Mapping[str, Any]) -> EntraAnswer:
        """The answer with its token; :class:`EntraRefused` for an answer without one, and
        OBO5004 for a token or lifetime that is not what Entra documents."""
        if "access_token" not in body:
            raise EntraRefused(cls.refusal(body))
        token, lifetime = _issued_token(body)
        return cls(token=token, lifetime=lifetime, codes=_codes(body), ids=_ids(body))

    @classmethod
    def refusal(cls, body: Mapping[str, Any]) -> EntraAnswer:
        """An error answer's fields (any JSON object reads, odd types read as absent)."""
        error = body.get("error")
        claims = body.get("claims")
        suberror = body.get("suberror")
        named = isinstance(error, str) and _ERROR_NAME.fullmatch(error)
        return cls(
            error=error if named else None,
            codes=_codes(body),
            ids=_ids(body),
            challenge=bool(claims) or error == "interaction_required",
            claims=claims if isinstance(claims, str) else "",
            suberror=suberror
            if isinstance(suberror, str) and _ERROR_NAME.fullmatch(suberror)
            else None,
        )

    @property
    def certificate_rejected(self) -> bool:
        """Entra no longer accepts the client certificate (another version may be in use)."""
        rejected = CERTIFICATE_REJECTED.intersection(self.codes)
        return self.error == "invalid_client" and bool(rejected)


NO_ANSWER = EntraAnswer()


# -- what can go wrong: raised below the exchange, mapped in entra_failures ---------------
class EntraFailure(Exception):
    """A token request (or MSAL's tenant discovery) that got no usable answer, before it
    becomes the API's error. ``outcome`` names it in the exchange's log record."""

    outcome = "failed"
    answer = NO_ANSWER  # what Entra said, when it said something


class EntraRefused(EntraFailure):
    """Entra answered with an error (RFC 6749 section 5.2), or with neither token nor error."""

    def __init__(self, answer: EntraAnswer) -> None:
        super().__init__(f"Entra refused: {answer.error}")
        self.answer = answer
        self.outcome = answer.error or "malformed"


class EntraUnavailable(EntraFailure):
    """429 or 5xx: never handed to MSAL (:mod:`obo.entra_http` says why)."""

    def __init__(self, status: int, retry_after: int, body: Mapping[str, Any]) -> None:
        super().__init__(f"Entra answered {status}")
        self.status, self.retry_after = status, retry_after
        self.answer = EntraAnswer.refusal(body)
        self.outcome = f"entra_{status}"


class EntraAnswerUnreadable(EntraFailure):
    """Entra's answer is not the JSON object its endpoint documents."""

    outcome = "unreadable"

    def __init__(self, status: int, why: str, *, discovery: bool = False) -> None:
        super().__init__(f"Entra answered {status} with {why}")
        self.status, self.why, self.discovery = status, why, discovery


class EntraTimeout(EntraFailure):
    outcome = "timeout"


class EntraUnreachable(EntraFailure):
    """No connection to Entra, or MSAL's tenant discovery failed."""

    outcome = "unreachable"


@contextmanager
def entra_failures(scopes: Sequence[str]) -> Iterator[None]:
    """The one place where a failed token request becomes the API's error (the AADSTS code
    passed through for Entra's refusals). The API's own errors (no credential, an answer
    that is not usable) pass unchanged."""
    try:
        yield
    except EntraRefused as exc:
        raise _refused(exc.answer, scopes) from exc
    except EntraUnavailable as exc:
        raise DependencyUnavailable(
            Code.ENTRA_THROTTLED,
            f"Entra ID answered {exc.status} to the token exchange; try again later.",
            retry_after=exc.retry_after,
            **exc.answer.ids,
        ) from exc
    except EntraAnswerUnreadable as exc:
        raise DependencyFailed(
            Code.DISCOVERY_UNREADABLE if exc.discovery else Code.ENTRA_ANSWER_UNREADABLE,
            f"Entra ID answered the token exchange (or its discovery) with {exc.status} "
            f"and {exc.why}, not the JSON object it documents.",
            public_detail="Entra ID's answer to the token exchange could not be read.",
        ) from exc
    except EntraTimeout as exc:
        raise DependencyTimeout(
            Code.ENTRA_TIMEOUT, "Entra ID did not answer the token exchange in time."
        ) from exc
    except EntraUnreachable as exc:
        raise DependencyUnavailable(
            Code.ENTRA_UNREACHABLE, "Entra ID is unreachable for the token exchange.", retry_after=5
        ) from exc


def _refused(answer: EntraAnswer, scopes: Sequence[str]) -> OboError:
    found = answer.codes
    if not found and answer.error is None:  # neither a token nor an error: not an answer
        return _malformed("it holds neither access_token nor error")
    code = f"AADSTS{found[0]}" if found else str(answer.error)
    known = describe(found[0]) if found else None
    summary = known.meaning if known else "Entra ID refused the token exchange."
    fix = known.fix if known else None
    if answer.challenge:
        return ClaimsChallenge(
            code,
            f"{summary} The client must acquire a new token with the claims challenge and retry.",
            claims=answer.claims,
            suberror=answer.suberror,
            **answer.ids,
        )
    if 65001 in found:
        # The scopes are configuration: the log names them, the caller's body does not.
        return Forbidden(
            code,
            "An administrator must grant consent for this API to call the downstream API with "
            f"the scopes {' '.join(scopes)} in the user's tenant (admin consent), then retry.",
            public_detail="An administrator must grant consent for this API to call the "
            "downstream API in the user's tenant (admin consent), then retry.",
            fix=fix,
            **answer.ids,
        )
    return DependencyFailed(code, summary, fix=fix, error=answer.error, **answer.ids)


# -- reading fields of any type -----------------------------------------------------------
def _codes(body: Mapping[str, Any]) -> tuple[int, ...]:
    """The AADSTS numbers in ``error_codes``; an odd type (a number, a string, objects) or
    an odd element yields nothing rather than a crash or a wrong code."""
    raw = body.get("error_codes")
    if not isinstance(raw, list):
        return ()
    found = []
    for code in raw:
        if isinstance(code, int) and not isinstance(code, bool) and 0 < code < 10**9:
            found.append(code)
        elif isinstance(code, str) and _AADSTS.fullmatch(code):
            found.append(int(code))
    return tuple(found)


def _ids(body: Mapping[str, Any]) -> dict[str, str]:
    """Entra's correlation and trace ids: what a support case and the sign-in logs need.
    Only GUID-shaped values are quoted (they reach the caller's body and the log)."""
    return {
        k: v
        for k in ("correlation_id", "trace_id")
        if isinstance(v := body.get(k), str) and _ID.fullmatch(v)
    }


def _issued_token(body: Mapping[str, Any]) -> tuple[str, float]:
    """The ``access_token`` and its ``expires_in`` (seconds; a number on v2, a numeric string
    on v1), or OBO5004 when either is not what Entra documents."""
    token = body.get("access_token")
    if not isinstance(token, str) or not token or len(token) > MAX_TOKEN_LENGTH:
        raise _malformed("its access_token is not a non-empty string")
    if not _B64TOKEN.fullmatch(token):
        raise _malformed("its access_token holds characters no token has")
    lifetime = _number(body.get("expires_in"))
    if lifetime is None or not 0 < lifetime <= MAX_LIFETIME:
        raise _malformed("its expires_in is missing or not a lifetime in seconds")
    return token, lifetime


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        number = float(value)
    except (ValueError, OverflowError):
        return None
    return number if math.isfinite(number) else None


def _malformed(why: str) -> DependencyFailed:
    return DependencyFailed(
        Code.ENTRA_ANSWER_UNUSABLE,
        f"Entra ID's answer to the token exchange is not usable: {why}.",
        public_detail="Entra ID's answer to the token exchange is not usable.",
    )
