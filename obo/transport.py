"""The one outbound HTTPS session: connection pooling, explicit timeouts, optional extra CA.

``requests`` lets ``REQUESTS_CA_BUNDLE`` override ``Session.verify``; passing ``verify`` on
every call (below) keeps ``OBO_CA_BUNDLE`` in force while proxies from the environment
still apply.
"""

from __future__ import annotations

import hashlib
import tempfile
from pathlib import Path
from typing import Any

import certifi
import requests
from requests.adapters import HTTPAdapter

CONNECT_TIMEOUT = 3.05
READ_TIMEOUT = 10.0


class Session(requests.Session):
    """A pooled session whose ``verify`` and timeout apply to every request."""

    timeout: tuple[float, float] = (CONNECT_TIMEOUT, READ_TIMEOUT)

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        kwargs.setdefault("verify", self.verify)
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self.timeout
        return super().request(method, url, *args, **kwargs)


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
