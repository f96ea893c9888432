"""Calls to API 2 with the OBO token: a path that cannot leave the base URL, a safe subset
of headers, bounded retries of idempotent requests, and errors mapped to 401/4xx/502/504.
Redirects are never followed; a ``Location`` is relayed only as a relay path
(:mod:`obo.redirects`)."""

from __future__ import annotations

import base64
import re
import time
from collections.abc import Callable, Mapping

import requests

from obo.errors import BadRequest, ClaimsChallenge, DependencyFailed, DependencyTimeout
from obo.logsafe import loggable_url
from obo.redirects import relay_path, resolved
from obo.responses import Result

IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
RETRY_STATUSES = frozenset({429, 502, 503, 504})
MAX_ATTEMPTS = 3
MAX_RETRY_WAIT = 4.0  # seconds; a longer Retry-After is relayed instead of waited out
FORWARDED_REQUEST_HEADERS = (
    "accept",
    "accept-language",
    "content-type",
    "if-match",
    "if-none-match",
    "prefer",
    "consistencylevel",
    "client-request-id",
)
RELAYED_RESPONSE_HEADERS = (
    "content-type",
    "etag",
    "retry-after",
    "request-id",
    "client-request-id",
    "preference-applied",
    "location",
)
# one path segment: RFC 3986 unreserved and sub-delims, minus anything that could re-anchor
_SEGMENT = re.compile(r"[A-Za-z0-9\-._~!$'()*+,;=:]+")
_CLAIMS = re.compile(r'claims="([^"]*)"')


def safe_path(path: str) -> str:
    """``path`` relative to the base URL, or 400: no scheme, ``..``, ``@``, ``%``, ``\\``."""
    segments = path.split("/")
    if (
        not path
        or path.startswith("/")
        or len(path) > 2048
        or any(not _SEGMENT.fullmatch(s) or s in (".", "..") for s in segments)
    ):
        raise BadRequest(
            "OBO2101",
            "The downstream path must be relative, made of plain segments (letters, digits and "
            "-._~!$'()*+,;=:), without '..', '@', '%', '\\\\' or empty segments.",
        )
    if ":" in segments[0]:
        raise BadRequest("OBO2101", "The downstream path must not start with a scheme.")
    return path


class Downstream:
    def __init__(
        self,
        base_url: str,
        session: requests.Session,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._base = base_url.rstrip("/")
        self._session = session
        self._sleep = sleep

    def call(
        self,
        method: str,
        path: str,
        authorization: str,
        *,
        query: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        body: bytes = b"",
        external_redirects: bool = False,
    ) -> Result:
        """API 2's answer. A redirect outside the base URL is OBO6007 (502) unless
        ``external_redirects``: then it is returned, its target in ``Result.location``."""
        url = f"{self._base}/{safe_path(path)}"
        outgoing = {
            k: v for k, v in (headers or {}).items() if k.lower() in FORWARDED_REQUEST_HEADERS
        }
        outgoing["Authorization"] = authorization  # only the OBO token, never the caller's
        attempts = MAX_ATTEMPTS if method in IDEMPOTENT else 1
        for attempt in range(1, attempts + 1):
            try:
                response = self._session.request(
                    method,
                    url,
                    params=dict(query or {}),
                    headers=outgoing,
                    data=body or None,
                    allow_redirects=False,
                )
            except requests.Timeout as exc:
                raise DependencyTimeout(
                    "OBO6002", "The downstream API did not answer in time."
                ) from exc
            except requests.RequestException as exc:
                raise DependencyFailed("OBO6003", "The downstream API is unreachable.") from exc
            wait = _retry_wait(response, attempt)
            if response.status_code in RETRY_STATUSES and attempt < attempts and wait is not None:
                self._sleep(wait)
                continue
            return self._result(response, external_redirects)
        raise AssertionError("unreachable")  # pragma: no cover

    def _result(self, response: requests.Response, external_redirects: bool) -> Result:
        status = response.status_code
        if status == 401:
            challenge = response.headers.get("WWW-Authenticate", "")
            match = _CLAIMS.search(challenge)
            if "insufficient_claims" in challenge and match:
                claims = _decode_claims(match.group(1))
                raise ClaimsChallenge(
                    "OBO6004",
                    "The downstream API requires additional claims (continuous access "
                    "evaluation); the client must sign in again with this claims challenge.",
                    claims=claims,
                )
        if status >= 500:
            raise DependencyFailed(
                "OBO6001",
                f"The downstream API failed with status {status}.",
                downstream_status=status,
            )
        relayed = {
            k: v for k, v in response.headers.items() if k.lower() in RELAYED_RESPONSE_HEADERS
        }
        location = response.headers.get("Location")
        if location is None:
            return Result(status, response.content, relayed)
        target = resolved(location, response.url)
        relayed = {k: v for k, v in relayed.items() if k.lower() != "location"}
        rewritten = relay_path(target, self._base, safe_path) if target else None
        if rewritten is not None:
            relayed["Location"] = rewritten
        elif 300 <= status < 400 and not external_redirects:
            raise DependencyFailed(
                "OBO6007",
                f"The downstream API answered {status} redirecting outside "
                f"OBO_DOWNSTREAM_BASE_URL (to {loggable_url(target or '')}); not relayed.",
                public_detail="The downstream API answered with a redirect this API does "
                "not relay.",
                downstream_status=status,
            )
        # a redirect's body repeats its target (and API 2's origin): never relayed
        content = b"" if 300 <= status < 400 else response.content
        return Result(status, content, relayed, location=target)


def _retry_wait(response: requests.Response, attempt: int) -> float | None:
    """Seconds to wait before retrying, or None when the server asks for too long a pause."""
    header = response.headers.get("Retry-After")
    if header is None:
        return min(0.2 * 2.0 ** (attempt - 1), MAX_RETRY_WAIT)
    try:
        seconds = float(header)
    except ValueError:
        return None
    return seconds if 0 <= seconds <= MAX_RETRY_WAIT else None


def _decode_claims(value: str) -> str:
    try:
        return base64.b64decode(value + "=" * (-len(value) % 4)).decode()
    except (ValueError, UnicodeDecodeError):
        return value
