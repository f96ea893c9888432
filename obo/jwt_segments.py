"""The caller's token read as a compact JWS, strictly, before anything trusts or caches it.

- **One text per token.** Both caches (validated tokens, OBO results) key on the token's
  text, so every other spelling of the same token would cost its own Entra exchange and cache
  entry (issue 9, finding 4). Compact JWS segments are base64url *without padding* (RFC 7515
  section 2 and appendix C); RFC 4648 section 3.5 lets decoders reject non-zero pad bits.
  Only the canonical spelling passes here: alphabet ``A-Z a-z 0-9 - _``, no ``=``, no
  whitespace, no length of 1 mod 4, zero trailing bits. PyJWT made segment decoding strict in
  2.14.0 (GHSA-hxm8-2xgr-2p9m, its CHANGELOG.rst) but still accepts ``=`` padding, so the
  product checks this itself whatever the library version.
- **Any reading error is the caller's.** Header and claims must be UTF-8 JSON objects
  (RFC 7515 section 5.2 steps 3-4, RFC 7519 section 7.2). Duplicate member names are refused,
  the first option RFC 7515 section 4 offers, so this reading can never disagree with PyJWT's
  (last one wins). Depth, number size, ``NaN``/``Infinity``, lone surrogates and control
  characters are refused too: none occurs in a token Entra signs, and each has crashed or
  misled a JSON consumer somewhere (``RecursionError``, ``OverflowError``, log forging).
- **Bounded before decoding:** the whole token, the header and the signature have size limits.
"""

from __future__ import annotations

import base64
import json
import math
import re
from typing import Any

MAX_TOKEN_LENGTH = 16 * 1024  # Entra tokens with many groups stay well below this
MAX_HEADER_LENGTH = 4096  # encoded; Entra sends about 200, a header with an x5c chain about 2,000
MAX_SIGNATURE_LENGTH = 1024  # an RS256 signature with a 4096-bit key is 683 characters
MAX_DEPTH = 8  # nesting of arrays and objects; Entra's claims nest two levels at most
MAX_NUMBER_DIGITS = 32  # NumericDate values have 10; float() of any such number is finite

# header.payload.signature; the signature may be empty (alg "none" gets its own refusal)
_COMPACT = re.compile(r"([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]*)")
_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
# The last character of a segment of length 2 or 3 (mod 4) carries 4 or 2 unused bits.
_UNUSED_BITS_MASK = {2: 0b001111, 3: 0b000011}
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class MalformedToken(ValueError):
    """The token is not a canonical compact JWS; ``reason`` is fixed text, never token data."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def split_canonical(token: str) -> tuple[str, str, str]:
    """The three segments of ``token``, or :class:`MalformedToken` if any is not canonical."""
    if len(token) > MAX_TOKEN_LENGTH:
        raise MalformedToken("it is larger than 16 KiB")
    match = _COMPACT.fullmatch(token)
    if match is None:
        raise MalformedToken("it is not a JWT (three dot-separated parts of unpadded base64url)")
    header, payload, signature = match.groups()
    if len(header) > MAX_HEADER_LENGTH or len(signature) > MAX_SIGNATURE_LENGTH:
        raise MalformedToken("its header or signature is too large")
    for name, segment in (("header", header), ("payload", payload), ("signature", signature)):
        if not _canonical(segment):
            raise MalformedToken(f"its {name} is not canonical base64url")
    return header, payload, signature


def read(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Header and claims of ``token``, unverified, or :class:`MalformedToken`."""
    header, payload, _ = split_canonical(token)
    return _json_object(header, "header"), _json_object(payload, "payload")


def _canonical(segment: str) -> bool:
    """Whether ``segment`` (already known to use only the alphabet) is the one encoding of
    its bytes: not 1 mod 4 long, and no bits set that a decoder would drop."""
    tail = len(segment) % 4
    if tail == 1:
        return False
    mask = _UNUSED_BITS_MASK.get(tail)
    return mask is None or not _ALPHABET.index(segment[-1]) & mask


def _json_object(segment: str, name: str) -> dict[str, Any]:
    # cannot fail: split_canonical checked the alphabet and the length
    raw = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    try:
        text = raw.decode("utf-8")  # strict: no other encoding, no invalid sequence
        value = json.loads(
            text,
            object_pairs_hook=_object_without_duplicates,
            parse_constant=_refuse_constant,
            parse_int=_bounded_int,
            parse_float=_finite_float,
        )
    except MalformedToken as exc:
        raise MalformedToken(f"its {name} {exc.reason}") from None
    except (ValueError, RecursionError):  # UnicodeDecodeError and JSONDecodeError included
        raise MalformedToken(f"its {name} is not UTF-8 JSON") from None
    if not isinstance(value, dict):
        raise MalformedToken(f"its {name} is not a JSON object")
    problem = _unreadable_part(value)
    if problem:
        raise MalformedToken(f"its {name} {problem}")
    return value


def _object_without_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    value = dict(pairs)
    if len(value) != len(pairs):
        raise MalformedToken("repeats a member name")
    return value


def _refuse_constant(name: str) -> float:
    raise MalformedToken("holds NaN or Infinity")


def _bounded_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_NUMBER_DIGITS:
        raise MalformedToken("holds a number that is too large")
    return int(text)


def _finite_float(text: str) -> float:
    if len(text) > MAX_NUMBER_DIGITS + 8:
        raise MalformedToken("holds a number that is too large")
    value = float(text)
    if not math.isfinite(value):
        raise MalformedToken("holds a number that is too large")
    return value


def _unreadable_part(value: dict[str, Any]) -> str | None:
    """Why the parsed JSON cannot be trusted to be handled safely, or None. Iterative, so
    the check itself has no recursion limit to hit."""
    pending: list[tuple[Any, int]] = [(value, 1)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, dict | list):
            if depth > MAX_DEPTH:
                return "nests too deeply"
            children = list(item.items()) if isinstance(item, dict) else [(None, v) for v in item]
            for key, child in children:
                if key is not None and _bad_text(key):
                    return "holds a control character or a lone surrogate"
                pending.append((child, depth + 1))
        elif isinstance(item, str) and _bad_text(item):
            return "holds a control character or a lone surrogate"
    return None


def _bad_text(text: str) -> bool:
    if _CONTROL.search(text):
        return True
    if text.isascii():
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate from a \\ud800-style escape
        return True
    return False
