"""Every error the API returns, each knowing its HTTP face (RFC 9457 problem+json).

    OboError
    ├── ConfigurationError        500  OBO1xxx  a setting is missing or invalid
    ├── BadRequest                400  OBO2xxx  the request itself (e.g. a downstream path)
    │   └── MethodNotAllowed      405  OBO2xxx  a method the route does not relay (Allow)
    ├── NotFound                  404  OBO2xxx  no such relay
    ├── Unauthorized              401  OBO2xxx/OBO3xxx  no, malformed or rejected bearer token
    │   └── ClaimsChallenge       401  OBO5xxx/OBO6xxx  re-authenticate with these claims
    ├── Forbidden                 403  OBO3xxx/OBO5xxx  missing scope, missing consent
    └── DependencyError                OBO4xxx/OBO5xxx/OBO6xxx  Key Vault, Entra, API 2
        ├── DependencyUnavailable 503  with Retry-After
        ├── DependencyFailed      502
        │   └── DownstreamError   502  OBO6005  API 2 answered 4xx to a client call
        └── DependencyTimeout     504

Codes are stable and searchable: OBO1xxx configuration, OBO2xxx request, OBO3xxx token
validation, OBO4xxx credential (Key Vault), OBO5xxx exchange (Entra), OBO6xxx downstream.
Entra's ``AADSTS…`` codes pass through unchanged. A ``detail`` never holds a token or key.

Two audiences read an error: the caller reads ``public_detail`` (the body and
``WWW-Authenticate``), operators read ``detail`` (the log). They differ where the specifics
are configuration an attacker should not learn (a Key Vault URL, a certificate name, scopes,
file paths): the caller gets the code and a generic sentence, the log names what to fix.
Both are made printable (control characters escaped), since details quote values from
tokens and from Entra that nothing has verified (docs/security.md).
"""

from __future__ import annotations

import base64
import json
from typing import Any

from obo.logsafe import printable

# A stable, non-dereferenceable URI per code; docs/troubleshooting.md explains each code.
PROBLEM_TYPE = "urn:obo-middle-tier:problem:"


class OboError(Exception):
    status = 500
    title = "Internal error"

    def __init__(
        self, code: str, detail: str, *, public_detail: str | None = None, **extra: Any
    ) -> None:
        detail = printable(detail, limit=2000)
        super().__init__(f"{code}: {detail}")
        self.code = code
        self.detail = detail  # for operators: what the log says
        self.public_detail = detail if public_detail is None else printable(public_detail)
        self.extra = {k: v for k, v in extra.items() if v is not None}

    def headers(self) -> dict[str, str]:
        return {}

    def body(self) -> dict[str, Any]:
        """The problem+json members (RFC 9457 section 3) the caller reads."""
        return {
            "type": PROBLEM_TYPE + self.code,
            "title": self.title,
            "status": self.status,
            "detail": self.public_detail,
            "code": self.code,
            **self.extra,
        }

    def render(self) -> tuple[int, dict[str, str], bytes]:
        headers = {
            "Content-Type": "application/problem+json",
            "Cache-Control": "no-store",
            **self.headers(),
        }
        return self.status, headers, json.dumps(self.body()).encode()


class ConfigurationError(OboError):
    status = 500
    title = "The API is not configured correctly"


class BadRequest(OboError):
    status = 400
    title = "Bad request"


class NotFound(OboError):
    status = 404
    title = "Not found"


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
            f'error_description="{_quote(self.public_detail)}"'
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


class DownstreamError(DependencyFailed):
    """API 2 refused a call made with :class:`obo.DownstreamApi`'s ``get``/``post``...

    ``response`` is what API 2 answered (status, headers, body, ``json()``) for a handler
    that wants to act on it; left unhandled, it is a 502 naming the API, its status and the
    ``error.code`` of its body (Graph's and OAuth's shapes), never the body itself.
    """

    def __init__(self, api: str, response: Any) -> None:
        status = int(response.status)
        super().__init__(
            "OBO6005",
            f"The downstream API '{api}' answered {status}.",
            api=api,
            downstream_status=status,
            downstream_code=_error_code(response.body),
        )
        self.api = api
        self.response = response


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


def _error_code(body: bytes) -> str | None:
    """``error.code`` (Graph, OData) or ``error`` (OAuth) of a JSON body, if it is a short
    identifier: enough to search the API's docs, nothing the user sent."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None
    error = data.get("error") if isinstance(data, dict) else None
    code = error.get("code") if isinstance(error, dict) else error
    if isinstance(code, str) and 0 < len(code) <= 64 and code.replace("_", "").isalnum():
        return code
    return None


def _quote(text: str) -> str:
    """RFC 6750 error_description allows a narrow character set; keep it header-safe."""
    return "".join(c for c in text if 0x20 <= ord(c) <= 0x7E and c not in '"\\')[:300]
