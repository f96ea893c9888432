"""What a call answers (:class:`Result`), and the one place an error becomes an answer
(:func:`error_result`).

Every refusal of this API is RFC 9457 ``application/problem+json``: the error renders its
own status, headers (``WWW-Authenticate``, ``Retry-After``) and body (:mod:`obo.errors`);
this module only logs it once, at a level that says whose fault it was.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import Any

from obo.errors import OboError

log = logging.getLogger("obo")


@dataclass
class Result:
    """An HTTP answer: API 2's (from a downstream call), or this API's (a problem)."""

    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)  # what may reach the caller
    # API 2's own Location, resolved: for code using the library (a pre-authenticated
    # download URL, say), never relayed to callers as is
    location: str | None = None

    def json(self) -> Any:
        """The body as JSON (``ValueError`` if it is not JSON)."""
        return json.loads(self.body)

    @property
    def content_type(self) -> str:
        value = next((v for k, v in self.headers.items() if k.lower() == "content-type"), "")
        return value.split(";")[0].strip().lower()


def error_result(exc: OboError) -> Result:
    """``exc`` as the answer to the caller, logged without a token (a 4xx is the caller's
    doing: warning; a 5xx is ours or a dependency's: error)."""
    level = logging.WARNING if exc.status < 500 else logging.ERROR
    log.log(level, "request refused: %s %s", exc.code, exc.detail)
    status, headers, body = exc.render()
    return Result(status, body, headers)
