"""The caller's access token as the On-Behalf-Of grant's ``assertion`` (RFC 7523 section 2.1;
"Microsoft identity platform and OAuth 2.0 On-Behalf-Of flow", first case), read once per
request.

One value goes from authentication to the validator, the exchange, the caches and the
downstream client: the token as it arrived (what Entra and the shared cache's HKDF keys need)
and its SHA-256, computed once (what the validator and the in-process cache key on). Its
``repr`` never shows the token, so neither a log line nor a traceback can. "Client
assertion" is a different thing: API 1's own proof to Entra (:mod:`obo.credentials`).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class UserAssertion:
    raw: str
    digest: bytes = field(init=False)  # SHA-256 of ``raw``: a key that replays nothing

    def __post_init__(self) -> None:
        object.__setattr__(self, "digest", hashlib.sha256(self.raw.encode()).digest())

    def __repr__(self) -> str:
        return f"UserAssertion(sha256={self.digest.hex()[:12]}...)"
