"""Reading Entra's token-endpoint answers: the token and its lifetime, AADSTS codes, the ids
to quote, and the API's error for a refusal (the AADSTS code passed through, meaning and fix
from obo.aadsts).

Nothing in an answer is trusted to have the documented type ("Microsoft identity platform
and OAuth 2.0 On-Behalf-Of flow", success and error responses; RFC 6749 section 5): a proxy,
a gateway or a bug can put an array, a number or a nested object anywhere, and such a value
must become a 502 with a code, never a 500 or ``Authorization: Bearer {'nested': ...}``.
"""

from __future__ import annotations

import math
import re
from typing import Any

from obo.aadsts import describe
from obo.errors import ClaimsChallenge, DependencyFailed, Forbidden

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


def codes(result: dict[str, Any]) -> list[int]:
    """The AADSTS numbers in ``error_codes``; an odd type (a number, a string, objects) or
    an odd element yields nothing rather than a crash or a wrong code."""
    raw = result.get("error_codes")
    if not isinstance(raw, list):
        return []
    found = []
    for code in raw:
        if isinstance(code, int) and not isinstance(code, bool) and 0 < code < 10**9:
            found.append(code)
        elif isinstance(code, str) and _AADSTS.fullmatch(code):
            found.append(int(code))
    return found


def error_name(result: dict[str, Any]) -> str | None:
    """``error`` (``invalid_grant``...), or None when it is missing or not an error code."""
    error = result.get("error")
    return error if isinstance(error, str) and _ERROR_NAME.fullmatch(error) else None


def ids(body: dict[str, Any]) -> dict[str, str]:
    """Entra's correlation and trace ids: what a support case and the sign-in logs need.
    Only GUID-shaped values are quoted (they reach the caller's body and the log)."""
    return {
        k: v
        for k in ("correlation_id", "trace_id")
        if isinstance(v := body.get(k), str) and _ID.fullmatch(v)
    }


def certificate_rejected(result: dict[str, Any]) -> bool:
    return error_name(result) == "invalid_client" and bool(
        CERTIFICATE_REJECTED.intersection(codes(result))
    )


def issued_token(result: dict[str, Any]) -> tuple[str, float]:
    """The ``access_token`` and its ``expires_in`` (seconds; a number on v2, a numeric string
    on v1), or OBO5004 when either is not what Entra documents."""
    token = result.get("access_token")
    if not isinstance(token, str) or not token or len(token) > MAX_TOKEN_LENGTH:
        raise _malformed("its access_token is not a non-empty string")
    if not _B64TOKEN.fullmatch(token):
        raise _malformed("its access_token holds characters no token has")
    lifetime = _number(result.get("expires_in"))
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
        "OBO5004",
        f"Entra ID's answer to the token exchange is not usable: {why}.",
        public_detail="Entra ID's answer to the token exchange is not usable.",
    )


def entra_error(result: dict[str, Any], scopes: list[str]) -> Exception:
    """Entra's error answer as the API's error (the AADSTS code passed through)."""
    found = codes(result)
    error = error_name(result)
    if not found and error is None:  # neither a token nor an error: not an answer at all
        return _malformed("it holds neither access_token nor error")
    code = f"AADSTS{found[0]}" if found else str(error)
    quoted = ids(result)
    known = describe(found[0]) if found else None
    summary = known.meaning if known else "Entra ID refused the token exchange."
    fix = known.fix if known else None
    claims = result.get("claims")
    if claims or error == "interaction_required":
        suberror = result.get("suberror")
        return ClaimsChallenge(
            code,
            f"{summary} The client must acquire a new token with the claims challenge and retry.",
            claims=claims if isinstance(claims, str) else "",
            suberror=suberror if isinstance(suberror, str) and _ERROR_NAME.fullmatch(suberror)
            else None,
            **quoted,
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
            **quoted,
        )
    return DependencyFailed(code, summary, fix=fix, error=error, **quoted)
