"""Every error the API returns, each knowing its HTTP face (RFC 9457 problem+json).

    OboError
    ├── ConfigurationError        500  OBO1xxx  a setting is missing or invalid
    ├── BadRequest                400  OBO2xxx  the request itself (e.g. a downstream path)
    │   └── MethodNotAllowed      405  OBO2xxx  a method the route does not relay (Allow)
    ├── Unauthorized              401  OBO2xxx/OBO3xxx  no, malformed or rejected bearer token
    │   └── ClaimsChallenge       401  OBO5xxx/OBO6xxx  re-authenticate with these claims
    ├── Forbidden                 403  OBO3xxx/OBO5xxx  missing scope, missing consent
    └── DependencyError                OBO4xxx/OBO5xxx/OBO6xxx  Key Vault, Entra, API 2
        ├── DependencyUnavailable 503  with Retry-After
        ├── DependencyFailed      502
        └── DependencyTimeout     504

Codes are stable and searchable: OBO1xxx configuration, OBO2xxx request, OBO3xxx token
validation, OBO4xxx credential (Key Vault), OBO5xxx exchange (Entra), OBO6xxx downstream.
Entra's ``AADSTS…`` codes pass through unchanged. A ``detail`` never holds a token or key.
"""

from __future__ import annotations

import base64
import json
from typing import Any

# A stable, non-dereferenceable URI per code; docs/troubleshooting.md explains each code.
PROBLEM_TYPE = "urn:obo-middle-tier:problem:"


class OboError(Exception):
    status = 500
    title = "Internal error"

    def __init__(self, code: str, detail: str, **extra: Any) -> None:
        super().__init__(f"{code}: {detail}")
        self.code = code
        self.detail = detail
        self.extra = {k: v for k, v in extra.items() if v is not None}

    def headers(self) -> dict[str, str]:
        return {}

    def problem(self) -> dict[str, Any]:
        return {
            "type": PROBLEM_TYPE + self.code,
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
            "code": self.code,
            **self.extra,
        }

    def render(self) -> tuple[int, dict[str, str], bytes]:
        headers = {
            "Content-Type": "application/problem+json",
            "Cache-Control": "no-store",
            **self.headers(),
        }
        return self.status, headers, json.dumps(self.problem()).encode()


class ConfigurationError(OboError):
    status = 500
    title = "The API is not configured correctly"


class BadRequest(OboError):
    status = 400
    title = "Bad request"


class MethodNotAllowed(BadRequest):
    """405 with the ``Allow`` header RFC 9110 section 15.5.6 requires."""

    status = 405
    title = "Method not allowed"

    def __init__(self, code: str, detail: str, allow: tuple[str, ...]) -> None:
        super().__init__(code, detail)
        self.allow = allow

    def headers(self) -> dict[str, str]:
        return {"Allow": ", ".join(self.allow)}


class Unauthorized(OboError):
    """401 with ``WWW-Authenticate: Bearer`` (RFC 6750 section 3)."""

    status = 401
    title = "Unauthorized"

    def __init__(self, code: str, detail: str, *, token_presented: bool = True, **extra: Any):
        super().__init__(code, detail, **extra)
        self.token_presented = token_presented

    def headers(self) -> dict[str, str]:
        if not self.token_presented:  # RFC 6750 3.1: no error code when no credentials sent
            return {"WWW-Authenticate": 'Bearer realm="api"'}
        return {
            "WWW-Authenticate": f'Bearer realm="api", error="invalid_token", '
            f'error_description="{_quote(self.detail)}"'
        }


class ClaimsChallenge(Unauthorized):
    """Step-up needed (MFA, Conditional Access, CAE): the client re-authenticates with claims."""

    title = "Additional claims required"

    def __init__(self, code: str, detail: str, claims: str, **extra: Any) -> None:
        super().__init__(code, detail, claims=claims, **extra)
        self.claims = claims

    def headers(self) -> dict[str, str]:
        encoded = base64.b64encode(self.claims.encode()).decode()
        return {
            "WWW-Authenticate": f'Bearer realm="api", error="insufficient_claims", '
            f'claims="{encoded}"'
        }


class Forbidden(OboError):
    status = 403
    title = "Forbidden"


class InsufficientScope(Forbidden):
    title = "Insufficient scope"

    def __init__(self, code: str, detail: str, scopes: tuple[str, ...]) -> None:
        super().__init__(code, detail, required_scopes=list(scopes))
        self.scopes = scopes

    def headers(self) -> dict[str, str]:
        return {
            "WWW-Authenticate": f'Bearer realm="api", error="insufficient_scope", '
            f'scope="{" ".join(self.scopes)}"'
        }


class DependencyError(OboError):
    status = 502
    title = "A service this API depends on failed"


class DependencyFailed(DependencyError):
    status = 502


class DependencyUnavailable(DependencyError):
    status = 503
    title = "A service this API depends on is unavailable"

    def __init__(self, code: str, detail: str, retry_after: int = 5, **extra: Any) -> None:
        super().__init__(code, detail, **extra)
        self.retry_after = max(1, int(retry_after))

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)}


class DependencyTimeout(DependencyError):
    status = 504
    title = "A service this API depends on timed out"


def _quote(text: str) -> str:
    """RFC 6750 error_description allows a narrow character set; keep it header-safe."""
    return "".join(c for c in text if 0x20 <= ord(c) <= 0x7E and c not in '"\\')[:300]
