"""What becomes of a ``Location`` from API 2 (docs/security.md, "Redirects from downstream
APIs").

Relayed as is, an absolute ``Location`` would make API 1 an open redirect under its own name
and tell every caller where API 2 lives. So a ``Location`` that resolves (RFC 9110 section
10.2.2, RFC 3986 section 5.2) to a path under ``OBO_DOWNSTREAM_BASE_URL`` that the relay
itself would accept becomes the matching relay path, ``/api/downstream/<rest>``; any other
is not relayed (``None``). Nothing here follows a redirect: the user's token goes only to
the base URL, on the request the user made.
"""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urljoin, urlsplit

from obo.errors import OboError

# function_app.py's "downstream/{*path}" route under host.json's routePrefix "api"
RELAY_PREFIX = "/api/downstream/"
_DEFAULT_PORTS = {"https": 443, "http": 80}


def resolved(location: str, request_url: str) -> str | None:
    """``location`` as an absolute URL (relative to ``request_url``), or None when it is not
    one a client could follow (an invalid IPv6 literal, a port that is not a number...)."""
    try:
        target = urljoin(request_url, location.strip())
        urlsplit(target).port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        return None
    return target


def relay_path(target: str, base_url: str, accept: Callable[[str], str]) -> str | None:
    """The relay path for the absolute URL ``target``, or None when it lies outside
    ``base_url`` or ``accept`` (the relay's own path rule, :func:`obo.downstream.safe_path`)
    refuses what follows the base path."""
    parts, base = urlsplit(target), urlsplit(base_url)
    if (
        parts.scheme.lower() != base.scheme.lower()
        or parts.username is not None
        or parts.password is not None
        or (parts.hostname or "").lower() != (base.hostname or "").lower()
        or _port(parts.scheme, parts.port) != _port(base.scheme, base.port)
    ):
        return None
    prefix = base.path.rstrip("/") + "/"
    if not parts.path.startswith(prefix):
        return None
    try:
        rest = accept(parts.path[len(prefix) :])
    except OboError:
        return None
    return RELAY_PREFIX + rest + (f"?{parts.query}" if parts.query else "")


def _port(scheme: str, port: int | None) -> int | None:
    return port if port is not None else _DEFAULT_PORTS.get(scheme.lower())
