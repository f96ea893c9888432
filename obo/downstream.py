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

from obo.codes import Code
from obo.errors import (
    BadRequest,
    DependencyFailed,
    DependencyTimeout,
    DownstreamChallenge,
    MethodNotAllowed,
)
from obo.logsafe import loggable_url
from obo.redirects import relay_path, resolved
from obo.responses import Result

RELAYED_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")  # function_app.py's downstream route
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
# One path segment: ASCII letters, digits and RFC 3986 unreserved/sub-delims, without ';'
# (servlet path parameters) or '&'. See safe_path and docs/security.md#path-containment.
_SEGMENT = re.compile(r"[A-Za-z0-9\-._~!$'()*+,=:]+")
MAX_PATH_LENGTH = 2048
# RFC 9110 section 5.5 field-value, visible ASCII only (as Kestrel accepts by default): what
# requests and http.client send unchanged; CR/LF/NUL would split or end the header.
_FIELD_VALUE = re.compile(r"(?:[\x21-\x7e](?:[\t\x20-\x7e]*[\x21-\x7e])?)?")
_CLAIMS = re.compile(r'claims="([^"]*)"')


def safe_path(path: str) -> str:
    r"""``path`` relative to the base URL, or 400 (OBO2101) unless it passes an allow-list.

    The path must reach API 2 as a child of the base URL under every normalisation a
    mainstream server applies before it resolves ``.`` and ``..``:

    - Tomcat strips ``;parameters`` from each segment, then %-decodes, then turns ``\`` into
      ``/`` (``allowBackslash``), merges ``//`` and resolves dot segments: ``..;x`` is ``..``
      (apache/tomcat ``CoyoteAdapter.parsePathParameters``/``normalize``,
      ``org/apache/tomcat/util/http/RequestUtil.normalize``). Jetty's ``URIUtil.decodePath``
      and ``canonicalPath`` do the same and also read ``%u002e`` (``UriCompliance``:
      ``AMBIGUOUS_PATH_PARAMETER``, ``UTF16_ENCODINGS``). Spring Security's
      ``StrictHttpFirewall`` rejects ``;``, ``%2e``, ``%2f``, ``%25``, ``\``, ``//`` and
      non-printable characters for exactly this reason.
    - nginx's ``ngx_http_parse_complex_uri`` decodes ``%XX`` before it resolves dot segments,
      merges slashes (``merge_slashes``), ends a ``..`` at ``?`` or ``#`` as at ``/``, and on
      Windows reads ``\`` as ``/`` and drops a segment's trailing dot.
    - IIS and ASP.NET Core (Kestrel ``PathNormalizer``) decode before removing dot segments;
      Windows path normalisation trims trailing dots and spaces (``...`` and ``.. `` become
      ``..`` or nothing) and reads ``..::$INDEX_ALLOCATION`` as ``..``; some decoders read
      ``+`` as a space (IIS request filtering's ``allowDoubleEscaping``).
    - Anything outside ASCII could be folded by NFKC (U+FF0E is ``.``, U+2025 is ``..``) or
      be the result of decoding overlong UTF-8 (``%c0%ae``).

    Hence the allow-list: at most 2048 characters, no leading ``/``, segments non-empty and
    made of ``A-Z a-z 0-9 - . _ ~ ! $ ' ( ) * + , = :`` only; the part of a segment before its
    first ``:`` must hold a character other than ``.`` and ``+``; the first segment has no
    ``:`` (a scheme). ``%``, ``;``, ``\``, ``@``, ``?``, ``#``, whitespace, controls and
    non-ASCII never pass, so no decoder on the way can produce a new separator or dot.
    """
    segments = path.split("/")
    if (
        not path
        or len(path) > MAX_PATH_LENGTH
        or any(not _SEGMENT.fullmatch(s) or _dot_like(s) for s in segments)
    ):
        raise BadRequest(
            Code.PATH_REFUSED,
            "The downstream path must be relative and made of non-empty segments of letters, "
            "digits and -._~!$'()*+,=: where no segment is only dots (before any ':'); "
            "'..', ';', '%', '\\', '@' and empty segments are refused.",
        )
    if ":" in segments[0]:
        raise BadRequest(Code.PATH_REFUSED, "The downstream path must not start with a scheme.")
    return path


def _dot_like(segment: str) -> bool:
    """Whether some server could read ``segment`` as ``.``, ``..`` or nothing: its part
    before the first ``:`` (an NTFS stream name) is only dots and pluses (spaces, to some)."""
    return not segment.partition(":")[0].strip(".+")


def safe_method(method: str) -> str:
    """``method`` if the downstream route relays it, else 405: a host only routes these, and
    any other word would reach API 2 (or break the HTTP client) with the user's token."""
    if method not in RELAYED_METHODS:
        raise MethodNotAllowed(
            Code.METHOD_NOT_RELAYED,
            f"Only {', '.join(RELAYED_METHODS)} are relayed.",
            RELAYED_METHODS,
        )
    return method


def forwarded_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """The caller's headers API 2 may see (an allow-list), or 400 if one of them could not
    be sent as it is (control characters, non-ASCII, surrounding whitespace)."""
    forwarded = {}
    for name, value in headers.items():
        if name.lower() not in FORWARDED_REQUEST_HEADERS:
            continue
        if not _FIELD_VALUE.fullmatch(value):
            raise BadRequest(
                Code.HEADER_NOT_RELAYABLE,
                f"The {name.lower()} header cannot be relayed: only visible ASCII characters "
                "and inner spaces are allowed.",
            )
        forwarded[name] = value
    return forwarded


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
        method = safe_method(method)
        outgoing = forwarded_headers(headers or {})
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
                    Code.DOWNSTREAM_TIMEOUT, "The downstream API did not answer in time."
                ) from exc
            except requests.RequestException as exc:
                raise DependencyFailed(
                    Code.DOWNSTREAM_UNREACHABLE, "The downstream API is unreachable."
                ) from exc
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
                raise DownstreamChallenge(
                    Code.DOWNSTREAM_CLAIMS_CHALLENGE,
                    "The downstream API requires additional claims (continuous access "
                    "evaluation); the client must sign in again with this claims challenge.",
                    claims=claims,
                )
        if status >= 500:
            raise DependencyFailed(
                Code.DOWNSTREAM_FAILED,
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
                Code.DOWNSTREAM_REDIRECT,
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
