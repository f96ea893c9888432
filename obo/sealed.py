"""Shared-cache entries sealed under a key that only the user's own token yields.

An entry's Redis key name and its AES-256-GCM key are both HKDF-SHA256 outputs (RFC 5869)
of the incoming assertion, separated by different ``info`` labels (RFC 5869 section 3.2:
"info" binds the derived key to its use), so knowing a key name tells nothing about the
encryption key. The name is also the AES-GCM associated data (NIST SP 800-38D), so a
ciphertext copied under another name does not decrypt. Without the assertion, a Redis dump
holds random-looking names and ciphertexts; docs/security.md gives the full argument.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

VERSION = b"\x01"  # first byte of every sealed value: a later format can coexist
NAME_PREFIX = "obo:v1:"
_NAME_LABEL = b"obo-middle-tier shared cache v1: key name\x00"
_KEY_LABEL = b"obo-middle-tier shared cache v1: AES-256-GCM key\x00"
_NONCE_BYTES = 12  # the 96-bit nonce SP 800-38D recommends; random, one seal per nonce


@dataclass(frozen=True)
class Sealed:
    """What the shared cache holds for one user's result: an OBO token and until when."""

    authorization: str = field(repr=False)
    expires_at: float  # the downstream token's own expiry
    usable_until: float  # expires_at and the caller's exp, minus the refresh margin


class EntryKeys:
    """The Redis names and the AES key of one (assertion, partition) entry."""

    __slots__ = ("_aead", "lock", "name")

    def __init__(self, assertion: str, partition: str) -> None:
        material = assertion.encode()
        context = partition.encode()
        # {hash tag}: the entry and its lock fall in one slot on a clustered Redis
        self.name = NAME_PREFIX + "{" + _hkdf(material, _NAME_LABEL + context).hex() + "}"
        self.lock = self.name + ":lock"
        self._aead = AESGCM(_hkdf(material, _KEY_LABEL + context))

    def __repr__(self) -> str:
        return f"EntryKeys(name={self.name!r})"

    def seal(self, entry: Sealed) -> bytes:
        plain = json.dumps([entry.authorization, entry.expires_at, entry.usable_until]).encode()
        nonce = os.urandom(_NONCE_BYTES)
        return VERSION + nonce + self._aead.encrypt(nonce, plain, self.name.encode())

    def open(self, blob: bytes) -> Sealed | None:
        """The entry, or ``None`` when it is not ours to read (other key, tampered, old format)."""
        if blob[:1] != VERSION or len(blob) < 1 + _NONCE_BYTES + 16:
            return None
        nonce, sealed = blob[1 : 1 + _NONCE_BYTES], blob[1 + _NONCE_BYTES :]
        try:
            authorization, expires_at, usable_until = json.loads(
                self._aead.decrypt(nonce, sealed, self.name.encode())
            )
        except (InvalidTag, ValueError):
            return None
        return Sealed(str(authorization), float(expires_at), float(usable_until))


def _hkdf(material: bytes, info: bytes) -> bytes:
    # No salt: the assertion is a signed JWT, already high in entropy (RFC 5869 section 3.1).
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(material)
