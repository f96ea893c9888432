"""The shared-cache tests' helpers: a real redis-server or a clear skip, and the encodings
a token could hide in at rest."""

from __future__ import annotations

import base64
import os
import shutil

import pytest

from devstack.redis_server import INSTALL_HINT, RedisServer, free_port

__all__ = ["RedisServer", "encodings", "free_port", "require_redis_server"]


def require_redis_server() -> None:
    """Without redis-server: a clear skip locally, a failure in CI (``CI=true``)."""
    if shutil.which("redis-server") is None:
        reason = (
            f"redis-server is not installed ({INSTALL_HINT}); python3 -m devstack test "
            "installs it when run as root"
        )
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(reason)
        pytest.skip(reason)


def encodings(secret: str) -> list[str]:
    """``secret`` as raw text, base64, base64url and hex, and base64 of a middle part at
    each of the three alignments (a token embedded in a longer encoded value)."""
    raw = secret.encode()
    middle = raw[len(raw) // 3 : len(raw) // 3 + 48]
    shapes = [
        secret,
        base64.b64encode(raw).decode(),
        base64.urlsafe_b64encode(raw).decode(),
        raw.hex(),
        raw.hex().upper(),
    ]
    for shift in range(3):
        shapes.append(base64.b64encode(middle[shift:])[4:40].decode())
        shapes.append(base64.urlsafe_b64encode(middle[shift:])[4:40].decode())
    return shapes
