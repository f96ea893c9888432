"""RSA signing keys and X.509 certificates for the stand-ins, generated at run time."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import uuid
from dataclasses import dataclass, field

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def new_rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def self_signed(key: rsa.RSAPrivateKey, subject: str, days: int = 365) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    now = dt.datetime.now(dt.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .sign(key, hashes.SHA256())
    )


def thumbprints(cert: x509.Certificate) -> tuple[str, str]:
    """(x5t, x5t#S256) as base64url, the way Entra and MSAL put them in JWT headers."""
    der = cert.public_bytes(serialization.Encoding.DER)
    return b64url(hashlib.sha1(der).digest()), b64url(hashlib.sha256(der).digest())


@dataclass
class SigningKey:
    """A tenant's token-signing key, published in its JWKS like Entra's (kid = x5t)."""

    private_key: rsa.RSAPrivateKey = field(default_factory=new_rsa_key)
    certificate: x509.Certificate | None = None

    def __post_init__(self) -> None:
        if self.certificate is None:
            self.certificate = self_signed(self.private_key, f"devstack signing {uuid.uuid4()}")
        self.kid = thumbprints(self.certificate)[0]

    def jwk(self) -> dict[str, object]:
        assert self.certificate is not None
        public = jwt.algorithms.RSAAlgorithm.to_jwk(self.private_key.public_key(), as_dict=True)
        der = self.certificate.public_bytes(serialization.Encoding.DER)
        return {
            "kty": "RSA",
            "use": "sig",
            "kid": self.kid,
            "x5t": self.kid,
            "n": public["n"],
            "e": public["e"],
            "x5c": [base64.b64encode(der).decode()],
        }

    def sign(self, claims: dict[str, object], headers: dict[str, object] | None = None) -> str:
        merged = {"typ": "JWT", "kid": self.kid, "x5t": self.kid, **(headers or {})}
        return jwt.encode(claims, self.private_key, algorithm="RS256", headers=merged)
