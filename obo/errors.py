"""Every error the API returns, each knowing its HTTP face (RFC 9457 problem+json).

    OboError
    ├── ConfigurationError           500
    │     OBO1001  a setting is missing or invalid
    │     OBO1002  one API's scopes name several resources
    │     OBO1003  a function's downstream API has no settings
    │     OBO1004  a handler used an undeclared downstream API
    ├── BadRequest                   400
    │   │ OBO2101  downstream path outside the allow-list
    │   │ OBO2105  forwarded header not relayable
    │   └── MethodNotAllowed         405
    │         OBO2104  method not relayed
    ├── NotFound                     404
    │     OBO2102  no downstream API relayed under this name
    ├── Unauthorized                 401
    │   │ OBO2001  no Authorization header
    │   │ OBO2002  not the Bearer scheme
    │   │ OBO2003  not exactly one Bearer token
    │   │ OBO2004  Authorization header too large
    │   │ OBO3001  not a well-formed JWT
    │   │ OBO3002  algorithm is not RS256
    │   │ OBO3003  signed with a key the tenant does not publish
    │   │ OBO3004  signature invalid
    │   │ OBO3005  issuer is not the token's tenant
    │   │ OBO3006  tenant not admitted
    │   │ OBO3007  audience is another API
    │   │ OBO3008  expired
    │   │ OBO3009  not valid yet
    │   │ OBO3010  an ID token
    │   │ OBO3011  an app-only token
    │   │ OBO3012  an Azure AD B2C token
    │   │ OBO3013  a token for Microsoft Graph
    │   │ OBO3015  no valid tid
    │   │ OBO3016  no oid
    │   │ OBO3017  a field Entra always issues is missing or mistyped
    │   │ OBO3018  reading the token failed unexpectedly
    │   │ OBO3021  Entra ID does not know the tenant
    │   └── ClaimsChallenge          401  and Entra's codes as sent (AADSTS..., OAuth errors)
    │       └── DownstreamChallenge  401
    │             OBO6004  the downstream API sent a claims challenge
    ├── Forbidden                    403  and Entra's codes as sent (AADSTS..., OAuth errors)
    │   └── InsufficientScope        403
    │         OBO3014  the required scope is missing
    └── DependencyError              502
        ├── DependencyFailed         502  and Entra's codes as sent (AADSTS..., OAuth errors)
        │   │ OBO4002  Key Vault refused the identity
        │   │ OBO4003  certificate not found
        │   │ OBO4006  the secret holds no usable private key
        │   │ OBO4009  Key Vault's answer is not what it documents
        │   │ OBO5003  Entra's token answer is not a JSON object
        │   │ OBO5004  Entra's token answer is unusable
        │   │ OBO5006  Entra's discovery answer is not what it documents
        │   │ OBO5010  Entra's answer is not the SAML asked for
        │   │ OBO6001  the downstream API failed
        │   │ OBO6003  the downstream API is unreachable
        │   │ OBO6006  the downstream API's JSON is not valid
        │   │ OBO6007  the downstream API redirected elsewhere
        │   └── DownstreamError      502
        │         OBO6005  the downstream API answered outside 2xx
        ├── DependencyUnavailable    503
        │   │ OBO3020  the tenant's signing keys are unavailable
        │   │ OBO3022  too many new tenants at once
        │   │ OBO4001  Key Vault unreachable
        │   │ OBO4004  no managed identity token
        │   │ OBO4007  Key Vault answered 429 or 5xx
        │   │ OBO5001  Entra answered 429 or 5xx
        │   │ OBO5002  Entra unreachable
        │   └── RememberedFailure    503  a 503 or 504 code again, from memory
        └── DependencyTimeout        504
              OBO4005  Key Vault timed out
              OBO4008  the managed identity endpoint timed out
              OBO5005  Entra timed out
              OBO6002  the downstream API timed out

Each class takes a member of the registry, :class:`obo.codes.Code`, whose entry names the
class that raises it (the tree above is rendered from there, tests/unit/test_codes.py keeps the
two equal). Codes are stable and searchable: OBO1xxx configuration, OBO2xxx request,
OBO3xxx token validation, OBO4xxx credential (Key Vault, managed identity), OBO5xxx exchange
(Entra), OBO6xxx downstream. Entra's ``AADSTS…`` codes pass through unchanged. A
``detail`` never holds a token or key. Callers catch a class, never compare a code
(docs/troubleshooting.md lists every code; the ``type`` URI ends with it).

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
import re
from typing import TYPE_CHECKING, Any, ClassVar

from obo.logsafe import printable

if TYPE_CHECKING:
    from obo.codes import Code

# A stable, non-dereferenceable URI per code; docs/troubleshooting.md explains each code.
PROBLEM_TYPE = "urn:obo-middle-tier:problem:"
# What Entra puts where the API's code goes: AADSTS<n>, or an RFC 6749 section 5.2 error name
_ENTRA_CODE = re.compile(r"AADSTS[0-9]{1,9}|[a-z][a-z0-9_]{0,63}")


class OboError(Exception):
    """``code`` is a :class:`obo.codes.Code` member (a registered ``"OBO…"`` string is
    looked up while raise sites move to members; an unknown one raises here, so a typo fails
    the first test that reaches it). ``code`` is then the code as sent, ``registered`` its
    registry entry: ``None`` for Entra's codes, which only the classes that turn Entra's
    answers into errors pass through (``passes_entra_codes``)."""

    status = 500
    title = "Internal error"
    passes_entra_codes: ClassVar[bool] = False
    replays: ClassVar[bool] = False  # carries other classes' codes (RememberedFailure)

    def __init__(
        self, code: Code | str, detail: str, *, public_detail: str | None = None, **extra: Any
    ) -> None:
        detail = printable(detail, limit=2000)
        self.registered = _registered(type(self), code)
        self.code: str = self.registered.value if self.registered else str(code)
        super().__init__(f"{self.code}: {detail}")
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

    def __init__(self, code: Code | str, detail: str, allow: tuple[str, ...]) -> None:
        super().__init__(code, detail)
        self.allow = allow

    def headers(self) -> dict[str, str]:
        return {"Allow": ", ".join(self.allow)}


class Unauthorized(OboError):
    """401 with ``WWW-Authenticate: Bearer`` (RFC 6750 section 3)."""

    status = 401
    title = "Unauthorized"

    def __init__(
        self, code: Code | str, detail: str, *, token_presented: bool = True, **extra: Any
    ) -> None:
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
    passes_entra_codes = True  # AADSTS50076, interaction_required...

    def __init__(self, code: Code | str, detail: str, claims: str, **extra: Any) -> None:
        super().__init__(code, detail, claims=claims, **extra)
        self.claims = claims

    def headers(self) -> dict[str, str]:
        encoded = base64.b64encode(self.claims.encode()).decode()
        return {
            "WWW-Authenticate": f'Bearer realm="api", error="insufficient_claims", '
            f'claims="{encoded}"'
        }


class DownstreamChallenge(ClaimsChallenge):
    """API 2 refused the OBO token with a claims challenge (continuous access evaluation:
    a revoked session, a new location...): besides answering 401, the token must never be
    served again (:class:`obo.clients.DownstreamApi` forgets it)."""

    passes_entra_codes = False


class Forbidden(OboError):
    status = 403
    title = "Forbidden"
    passes_entra_codes = True  # AADSTS65001: no consent


class InsufficientScope(Forbidden):
    title = "Insufficient scope"
    passes_entra_codes = False

    def __init__(self, code: Code | str, detail: str, scopes: tuple[str, ...]) -> None:
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
    passes_entra_codes = True  # Entra's refusals of the exchange (invalid_grant, AADSTS...)


class DownstreamError(DependencyFailed):
    """API 2 refused a call made with :class:`obo.DownstreamApi`'s ``get``/``post``...

    ``response`` is what API 2 answered (status, headers, body, ``json()``) for a handler
    that wants to act on it; left unhandled, it is a 502 naming the API, its status and the
    ``error.code`` of its body (Graph's and OAuth's shapes), never the body itself.
    """

    passes_entra_codes = False

    def __init__(self, api: str, response: Any) -> None:
        from obo.codes import Code

        status = int(response.status)
        super().__init__(
            Code.DOWNSTREAM_REFUSED,
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

    def __init__(self, code: Code | str, detail: str, retry_after: int = 5, **extra: Any) -> None:
        super().__init__(code, detail, **extra)
        self.retry_after = max(1, int(retry_after))

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)}


class RememberedFailure(DependencyUnavailable):
    """A dependency failed (503) or was too slow (504) moments ago and is not asked again
    yet: the same code, answered at once as a 503 with the rest of the window as
    ``Retry-After`` (:class:`obo.shared_load.SharedLoad`), so the operator still finds the
    cause under the code the first request got."""

    replays = True


class DependencyTimeout(DependencyError):
    status = 504
    title = "A service this API depends on timed out"


def _registered(cls: type[OboError], code: Code | str) -> Code | None:
    """``code``'s registry entry, checked against the class raising it; ``None`` for an
    Entra code the class passes through. A mismatch is a bug in a raise site: it raises."""
    from obo.codes import Code, lookup  # the registry names the classes above

    if not isinstance(code, Code) and not code.startswith("OBO"):
        if cls.passes_entra_codes and _ENTRA_CODE.fullmatch(code):
            return None
        raise ValueError(f"{cls.__name__} does not pass on {code!r} as Entra's code")
    entry = code if isinstance(code, Code) else lookup(code)
    raisers = (DependencyUnavailable, DependencyTimeout) if cls.replays else ()
    if entry.error is not cls and not issubclass(entry.error, raisers):
        raise TypeError(f"{entry.value} is raised as {entry.error.__name__}, not {cls.__name__}")
    return entry


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
