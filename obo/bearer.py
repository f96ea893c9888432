"""The ``Authorization: Bearer`` header, parsed strictly (RFC 6750 section 2.1).

``credentials = "Bearer" 1*SP b64token``: the scheme is matched case-insensitively in ASCII
only (RFC 9110 section 11.1), the separator is spaces only, and the value around it may carry
only the optional whitespace (SP, HTAB) that RFC 9110 section 5.5 allows. Anything else is a
401 before the token is looked at, with no guess at what the caller meant.
"""

from __future__ import annotations

import re

from obo.codes import Code
from obo.errors import Unauthorized
from obo.jwt_segments import MAX_TOKEN_LENGTH

# RFC 6750 b64token: 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
_B64TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]+=*")
_OWS = " \t"


def bearer_token(authorization: str | None) -> str:
    """The credential from an ``Authorization`` header value, or a precise 401."""
    value = (authorization or "").strip(_OWS)
    if not value:
        raise Unauthorized(
            Code.NO_AUTHORIZATION,
            "Send the user's access token for this API in an "
            "'Authorization: Bearer <token>' header.",
            token_presented=False,
        )
    if len(value) > MAX_TOKEN_LENGTH + 16:
        raise Unauthorized(Code.AUTHORIZATION_TOO_LARGE, "The Authorization header is too large.")
    scheme, _, credential = value.partition(" ")
    if not scheme.isascii() or scheme.lower() != "bearer":
        raise Unauthorized(
            Code.NOT_BEARER,
            "Only the Bearer authentication scheme is accepted.",
            token_presented=False,
        )
    credential = credential.lstrip(" ")
    if not credential:
        raise Unauthorized(Code.NOT_ONE_BEARER_TOKEN, "The Bearer credential is empty.")
    if not _B64TOKEN.fullmatch(credential):
        raise Unauthorized(
            Code.NOT_ONE_BEARER_TOKEN,
            "The Authorization header must carry exactly one Bearer token.",
        )
    return credential
