"""A real ``redis-server`` (Debian's package) on a free loopback port, for the shared-cache tests.

Started with ``--save '' --appendonly no`` (nothing written to disk) and ``DEBUG`` allowed
from loopback, so tests can stall it (``DEBUG SLEEP``) as a hung server would.
"""

from __future__ import annotations

import base64
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
import redis

BINARY = "redis-server"


def require_redis_server() -> str:
    """The binary's path; without it, a clear skip locally and a failure in CI."""
    path = shutil.which(BINARY)
    if path is None:
        reason = (
            "redis-server is not installed: `apt-get install -y redis-server` "
            "(python3 -m devstack test installs it when run as root)"
        )
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RedisServer:
    """``start()``/``stop()``/``restart()`` on one port; ``admin`` talks to it directly."""

    def __init__(self, *, password: str | None = None, tls: tuple[Path, Path] | None = None) -> None:
        self.binary = require_redis_server()
        self.port = free_port()
        self.password = password
        self.tls = tls  # (certificate chain, private key): TLS only, no plain port
        self.folder = Path(tempfile.mkdtemp(prefix="obo-redis-"))
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        scheme = "rediss" if self.tls else "redis"
        return f"{scheme}://127.0.0.1:{self.port}/0"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def admin(self) -> redis.Redis:
        """One connection, authenticated once: it stays so when a test changes the password."""
        options: dict = {"socket_timeout": 10, "single_connection_client": True}
        if self.tls:
            options.update(ssl=True, ssl_cert_reqs="none")
        return redis.Redis("127.0.0.1", self.port, password=self.password, **options)

    def start(self) -> RedisServer:
        args = [
            self.binary, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
            "--dir", str(self.folder), "--enable-debug-command", "local",
        ]
        if self.tls:
            cert, key = self.tls
            args += ["--port", "0", "--tls-port", str(self.port), "--tls-cert-file", str(cert),
                     "--tls-key-file", str(key), "--tls-auth-clients", "no"]
        else:
            args += ["--port", str(self.port)]
        if self.password:
            args += ["--requirepass", self.password]
        self._process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 15
        while True:
            try:
                self.admin().ping()
                return self
            except redis.RedisError:
                if self._process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"redis-server did not start on port {self.port}") from None
                time.sleep(0.05)

    def stop(self) -> None:
        if self._process is not None:
            self._process.kill()  # as a crash would: no goodbye to clients
            self._process.wait(10)
            self._process = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
        shutil.rmtree(self.folder, ignore_errors=True)


def encodings(secret: str) -> list[str]:
    """``secret`` as raw text, base64, base64url and hex, and base64 of a middle part at
    each of the three alignments (a token embedded in a longer encoded value)."""
    raw = secret.encode()
    middle = raw[len(raw) // 3 : len(raw) // 3 + 48]
    shapes = [secret, base64.b64encode(raw).decode(), base64.urlsafe_b64encode(raw).decode(),
              raw.hex(), raw.hex().upper()]
    for shift in range(3):
        shapes.append(base64.b64encode(middle[shift:])[4:40].decode())
        shapes.append(base64.urlsafe_b64encode(middle[shift:])[4:40].decode())
    return shapes
