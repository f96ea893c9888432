"""The ``Authorization: Bearer`` header, parsed strictly (RFC 6750 section 2.1)."""

from __future__ import annotations

import re

from obo.errors import Unauthorized

MAX_TOKEN_LENGTH = 16 * 1024  # Entra tokens with many groups stay well below this
# RFC 6750 b64token: 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
_B64TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]+=*")


def bearer_token(authorization: str | None) -> str:
    """The credential from an ``Authorization`` header value, or a precise 401."""
    if authorization is None or not authorization.strip():
        raise Unauthorized(
            "OBO2001",
            "Send the user's access token for this API in an "
            "'Authorization: Bearer <token>' header.",
            token_presented=False,
        )
    if len(authorization) > MAX_TOKEN_LENGTH + 16:
        raise Unauthorized("OBO2004", "The Authorization header is too large.")
    scheme, _, credential = authorization.strip().partition(" ")
    if scheme.lower() != "bearer":
        raise Unauthorized(
            "OBO2002",
            "Only the Bearer authentication scheme is accepted.",
            token_presented=False,
        )
    credential = credential.strip()
    if not credential:
        raise Unauthorized("OBO2003", "The Bearer credential is empty.")
    if not _B64TOKEN.fullmatch(credential):
        raise Unauthorized(
            "OBO2003", "The Authorization header must carry exactly one Bearer token."
        )
    return credential
