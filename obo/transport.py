"""The outbound HTTPS session: pooled connections, explicit timeouts, optional extra CA, and
nothing of any user.

Every user's calls share the session, so it must carry no per-user state (docs/security.md,
"No state shared between users"): its cookie jar never stores a cookie (a ``JSESSIONID`` or
an affinity cookie that API 2 set for one user would otherwise ride along with the next
user's request), it has no session-level auth (not even ``~/.netrc``, which ``requests``
reads when ``trust_env`` is on), and it never follows a redirect (no history, no user token
re-sent to wherever a ``Location`` points). Only pooled connections are reused.

``requests`` lets ``REQUESTS_CA_BUNDLE`` override ``Session.verify``; passing ``verify`` on
every call (below) keeps ``OBO_CA_BUNDLE`` in force while proxies from the environment
still apply.
"""

from __future__ import annotations

import hashlib
import tempfile
from http.cookiejar import Cookie, DefaultCookiePolicy
from pathlib import Path
from typing import Any

import certifi
import requests
from requests.adapters import HTTPAdapter
from requests.auth import AuthBase
from requests.cookies import RequestsCookieJar

CONNECT_TIMEOUT = 3.05
READ_TIMEOUT = 10.0


class _RefuseAll(DefaultCookiePolicy):
    """http.cookiejar's policy hook: no cookie is ever accepted or returned."""

    def set_ok(self, cookie: Cookie, request: Any) -> bool:
        return False

    def return_ok(self, cookie: Cookie, request: Any) -> bool:
        return False


class NoCookies(RequestsCookieJar):
    """A jar that stays empty: every way of storing a cookie ends in ``set_cookie``."""

    def __init__(self) -> None:
        super().__init__(policy=_RefuseAll())

    def set_cookie(self, cookie: Cookie, *args: Any, **kwargs: Any) -> None:
        return None


class _NoAuth(AuthBase):
    """Explicit "no auth", so ``requests`` never falls back to ``~/.netrc`` for a host."""

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        return request


class Session(requests.Session):
    """A pooled session whose ``verify`` and timeout apply to every request, and which keeps
    nothing between requests but its connections."""

    timeout: tuple[float, float] = (CONNECT_TIMEOUT, READ_TIMEOUT)

    def __init__(self) -> None:
        super().__init__()
        self.cookies = NoCookies()

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        kwargs.setdefault("verify", self.verify)
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self.timeout
        kwargs["allow_redirects"] = False  # a 3xx is an answer, never followed
        kwargs["auth"] = _NoAuth()  # callers put Authorization in headers, per request
        kwargs["cookies"] = None
        return super().request(method, url, *args, **kwargs)

    def resolve_redirects(self, *args: Any, **kwargs: Any) -> Any:
        """Nothing to follow. ``requests`` prepares the next request of a 3xx even with
        ``allow_redirects=False`` (``Response.next``), and a ``Location`` with a bad port then
        raises ValueError out of ``send``; a 3xx here is only ever an answer."""
        return iter(())


def trust_store(extra_ca: str | None) -> str | bool:
    """The public roots plus ``extra_ca`` (one file, built once), or ``True`` for the defaults."""
    if not extra_ca:
        return True
    content = Path(certifi.where()).read_text() + "\n" + Path(extra_ca).read_text()
    digest = hashlib.sha256(content.encode()).hexdigest()[:16]
    bundle = Path(tempfile.gettempdir()) / f"obo-ca-{digest}.pem"
    if not bundle.exists():
        bundle.write_text(content)
    return str(bundle)


def new_session(
    extra_ca: str | None, pool_size: int = 32, read_timeout: float = READ_TIMEOUT
) -> Session:
    session = Session()
    session.timeout = (CONNECT_TIMEOUT, read_timeout)
    session.verify = trust_store(extra_ca)
    adapter = HTTPAdapter(pool_connections=8, pool_maxsize=pool_size)
    session.mount("https://", adapter)
    session.headers["User-Agent"] = "obo-middle-tier/0.1"
    return session


def azure_transport(
    session: Session, connection_timeout: float | None = None, read_timeout: float | None = None
) -> Any:
    """An azure-core transport (Key Vault clients, azure-identity) over ``session``.

    azure-core's ``RequestsTransport`` otherwise creates its own ``requests.Session``, with a
    cookie jar shared by every request the client makes. Given a session it uses it as is
    (``session_owner=False``: closing a client leaves it open); it passes ``verify`` and the
    timeouts on each call, so the session's trust store and (unless given) timeouts are
    handed over explicitly.
    See azure-core ``azure/core/pipeline/transport/_requests_basic.py``.
    """
    from azure.core.pipeline.transport import RequestsTransport

    return RequestsTransport(
        session=session,
        session_owner=False,
        connection_verify=session.verify,
        connection_timeout=connection_timeout or session.timeout[0],
        read_timeout=read_timeout or session.timeout[1],
    )


def json_object(response: requests.Response) -> dict[str, Any]:
    """The answer's JSON object, or ValueError for anything else: not JSON, nested too deep,
    or another JSON type (a proxy's page, an array, a string, ``null``)."""
    try:
        body = response.json()
    except RecursionError:
        raise ValueError("the answer's JSON is nested too deep") from None
    if not isinstance(body, dict):
        raise ValueError("the answer is not a JSON object")
    return body
