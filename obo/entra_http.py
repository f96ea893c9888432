"""MSAL's ``http_client`` for Entra: the shared session, with two changes that matter.

- 429/5xx become :class:`~obo.entra_answer.EntraUnavailable` instead of responses. MSAL's
  throttle memory is keyed by URL, client and scope, not by user: an answer it never sees
  cannot be replayed to another user, and each caller gets its own 503. MSAL also remembers,
  under that same key, *any* answer that carries ``Retry-After``
  (msal/throttled_http_client.py), a 200 with one user's token included, so the header is
  removed from every answer MSAL does see.
- No redirects: the user's token and the client assertion are never re-posted elsewhere.
- Every other answer must be a JSON object (Entra's endpoints answer nothing else, errors
  included) and a discovery document must name its endpoints as strings; anything else (a
  proxy's HTML page, an array, a string, ``null``) raises ``EntraAnswerUnreadable`` before
  MSAL reads it, so it crashes nothing and MSAL never logs the raw text.
- A timeout or a failed connection raises ``EntraTimeout`` / ``EntraUnreachable``.

All are :class:`~obo.entra_answer.EntraFailure` subclasses, which
:func:`obo.entra_answer.entra_failures` turns into the API's errors. With a
:class:`obo.trace.RequestTrace` it also notes what each token request carried (names,
never values).
"""

from __future__ import annotations

from typing import Any

import requests

from obo.entra_answer import (
    EntraAnswerUnreadable,
    EntraTimeout,
    EntraUnavailable,
    EntraUnreachable,
)
from obo.trace import RequestTrace

# What MSAL reads from a tenant's OpenID configuration (msal/authority.py)
_DISCOVERY_FIELDS = ("authorization_endpoint", "token_endpoint")


class EntraHttpClient:
    def __init__(self, session: requests.Session, trace: RequestTrace | None = None) -> None:
        self._session = session
        self.trace = trace

    def post(self, url: str, **kwargs: Any) -> Any:
        if self.trace is not None:
            self.trace.note(kwargs.get("data"))
        return self._checked(self._send("POST", url, kwargs))

    def get(self, url: str, **kwargs: Any) -> Any:
        """MSAL's GETs are discovery (instance and tenant metadata): an unreadable answer
        is told apart from an unreadable token answer (OBO5006, not OBO5003)."""
        try:
            response = self._checked(self._send("GET", url, kwargs))
        except EntraAnswerUnreadable as exc:
            exc.discovery = True
            raise
        if response.status_code == 200 and url.split("?")[0].endswith(
            "/.well-known/openid-configuration"
        ):
            document = response.json()
            if not all(isinstance(document.get(f), str) for f in _DISCOVERY_FIELDS):
                raise EntraAnswerUnreadable(
                    200, "a discovery document without its endpoints", discovery=True
                )
        return response

    def _send(self, method: str, url: str, kwargs: dict[str, Any]) -> Any:
        # never re-post the user's token and the client assertion to wherever a 307 points
        kwargs["allow_redirects"] = False
        try:
            return self._session.request(method, url, **kwargs)
        except requests.Timeout as exc:  # before ConnectionError: ConnectTimeout is both
            raise EntraTimeout(f"{method} timed out") from exc
        except requests.ConnectionError as exc:
            raise EntraUnreachable(f"{method} failed to connect") from exc

    def close(self) -> None:  # the session outlives any one MSAL client
        pass

    @staticmethod
    def _checked(response: Any) -> Any:
        if response.status_code == 429 or response.status_code >= 500:
            try:
                body = response.json()
            except (ValueError, RecursionError):
                body = None
            if not isinstance(body, dict):
                body = {}
            raise EntraUnavailable(response.status_code, retry_after(response.headers), body)
        try:
            body = response.json()
        except (ValueError, RecursionError):  # not JSON, undecodable, or nested too deep
            raise EntraAnswerUnreadable(response.status_code, "no JSON") from None
        if not isinstance(body, dict):
            raise EntraAnswerUnreadable(response.status_code, f"a JSON {_kind(body)}")
        response.headers.pop("Retry-After", None)  # or MSAL replays it to other users
        return response


def _kind(value: Any) -> str:
    return {list: "array", str: "string", type(None): "null", bool: "boolean"}.get(
        type(value), "number"
    )


def retry_after(headers: Any) -> int:
    try:
        return max(1, min(int(headers.get("Retry-After", "5")), 300))
    except ValueError:
        return 5
