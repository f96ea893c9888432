"""A tenant's signing keys from Entra: OpenID Connect discovery, then its ``jwks_uri``.

Entra's answer for a tenant it does not know is a 400 ``invalid_tenant`` with AADSTS90002
(MSAL's ``authority.tenant_discovery`` notes the same), sometimes a 404: that is the
caller's doing, a 401. Any other failure is Entra's: a 503 with ``Retry-After``.
"""

from __future__ import annotations

import json
from typing import Any

import jwt
import requests
from jwt.algorithms import RSAAlgorithm

from obo.codes import Code
from obo.errors import DependencyUnavailable, Unauthorized
from obo.transport import json_object

FIRST_FETCH_RETRY = 5.0  # a tenant whose first fetch failed is retried this much later


def unavailable() -> DependencyUnavailable:
    return DependencyUnavailable(
        Code.KEYS_UNAVAILABLE,
        "The signing keys of the token's tenant could not be fetched from Entra ID; "
        "try again shortly.",
        retry_after=int(FIRST_FETCH_RETRY),
    )


def no_such_tenant(tid: str) -> Unauthorized:
    return Unauthorized(
        Code.UNKNOWN_TENANT,
        f"Entra ID does not know the token's tenant {tid} (AADSTS90002).",
        aadsts="AADSTS90002",
        tid=tid,
    )


def fetch_keys(session: requests.Session, host: str, tid: str) -> dict[str, Any]:
    """``kid -> RSA public key`` of tenant ``tid``."""
    try:
        discovery = session.get(f"{host}/{tid}/v2.0/.well-known/openid-configuration")
        _raise_for(discovery, tid)
        jwks_uri = json_object(discovery).get("jwks_uri")
        if not isinstance(jwks_uri, str):
            raise ValueError("jwks_uri is not a string")
        response = session.get(jwks_uri)
        _raise_for(response, tid)
        return _rsa_keys(json_object(response))
    except (requests.RequestException, ValueError, KeyError, TypeError) as exc:
        raise unavailable() from exc


def _raise_for(response: requests.Response, tid: str) -> None:
    if response.status_code == 404:
        raise no_such_tenant(tid)
    if response.status_code == 400:
        try:
            body = response.json()
        except (ValueError, RecursionError):
            body = None
        if isinstance(body, dict):
            codes = body.get("error_codes")
            if body.get("error") == "invalid_tenant" or (
                isinstance(codes, list) and 90002 in codes
            ):
                raise no_such_tenant(tid)
    response.raise_for_status()


def _rsa_keys(body: Any) -> dict[str, Any]:
    entries = body.get("keys") if isinstance(body, dict) else None
    keys: dict[str, Any] = {}
    for jwk in entries if isinstance(entries, list) else []:
        if not isinstance(jwk, dict) or jwk.get("kty") != "RSA" or jwk.get("use", "sig") != "sig":
            continue
        kid = jwk.get("kid")
        if not isinstance(kid, str) or not kid:
            continue
        try:
            keys[kid] = RSAAlgorithm.from_jwk(json.dumps(jwk))
        except (jwt.PyJWTError, ValueError, TypeError):
            continue  # one malformed key does not hide the others
    if not keys:
        raise ValueError("the key set holds no RSA signing keys")
    return keys
