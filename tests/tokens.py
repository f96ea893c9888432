"""One builder per malformed or hostile token (keys generated at test time)."""

from __future__ import annotations

import base64
import json

import jwt
from cryptography.hazmat.primitives import serialization

from devstack.keys import SigningKey


def _b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def claims_of(token: str) -> dict:
    return jwt.decode(token, options={"verify_signature": False})


def alg_none(valid: str) -> str:
    header = {"alg": "none", "typ": "JWT"}
    return f"{_b64(header)}.{_b64(claims_of(valid))}."


def hs256_with_public_key(valid: str, signing_key: SigningKey) -> str:
    """The classic confusion attack: HMAC keyed with the RSA public key PEM."""
    public_pem = signing_key.private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    header = {"alg": "HS256", "typ": "JWT", "kid": signing_key.kid}
    signing_input = f"{_b64(header)}.{_b64(claims_of(valid))}".encode()
    import hashlib
    import hmac

    mac = hmac.new(public_pem, signing_input, hashlib.sha256).digest()
    return signing_input.decode() + "." + base64.urlsafe_b64encode(mac).rstrip(b"=").decode()


def tampered(valid: str, **changes: object) -> str:
    """Claims changed after signing: the signature no longer matches."""
    header, _, signature = valid.split(".")
    return f"{header}.{_b64({**claims_of(valid), **changes})}.{signature}"


def resigned_with(valid: str, key: SigningKey, *, kid: str | None = None, **header: object) -> str:
    """Same claims, signed by ``key`` (optionally claiming another key's kid)."""
    return jwt.encode(
        claims_of(valid),
        key.private_key,
        algorithm="RS256",
        headers={"kid": kid or key.kid, **header},
    )


def signed_raw(header: bytes, payload: bytes, key: SigningKey) -> str:
    """Any header and payload bytes (duplicate names, deep nesting, not even JSON), with a
    valid RS256 signature by ``key``: the reader must refuse them even when signed."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    signing_input = f"{_b64raw(header)}.{_b64raw(payload)}"
    signature = key.private_key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
    return f"{signing_input}.{_b64raw(signature)}"


def _b64raw(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


# Signed claims of a type Entra never issues: a 401 or 403, never a 500 (and diagnose agrees).
ODD_CLAIMS = [
    {"aud": ["x", "y"]},
    {"aud": None},
    {"tid": 42},
    {"tid": None},
    {"oid": 7},
    {"scp": ["access_as_user"]},
    {"exp": "soon"},
    {"nbf": "later"},
    {"ver": 2},
]
# Odd, but in claims the API does not read: the token stays usable.
IRRELEVANT_ODD_CLAIMS = [{"idtyp": ["app"]}, {"acr": 5}, {"amr": "pwd"}, {"xms_cc": {}}]
