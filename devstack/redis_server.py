"""A local ``redis-server`` (Debian's package) standing in for Azure Managed Redis.

Started on a free loopback port with ``--save '' --appendonly no`` (nothing written to
disk), never the system service; ``DEBUG`` is allowed from loopback so tests can stall it
(``DEBUG SLEEP``) the way a hung server would. With ``tls=`` it listens with TLS only, as
Azure Managed Redis does on port 10000.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import redis

INSTALL_HINT = "apt-get update && apt-get install -y redis-server"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RedisServer:
    """``with RedisServer() as server:``; ``stop()``/``start()`` keep the port; ``admin()``
    talks to it directly."""

    def __init__(
        self, *, password: str | None = None, tls: tuple[Path, Path] | None = None
    ) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise FileNotFoundError(f"redis-server is not installed: {INSTALL_HINT}")
        self.binary = binary
        self.port = free_port()
        self.password = password
        self.tls = tls  # (certificate chain, private key)
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
        options: dict[str, Any] = {"socket_timeout": 10, "single_connection_client": True}
        if self.tls:
            options.update(ssl=True, ssl_cert_reqs="none")
        return redis.Redis("127.0.0.1", self.port, password=self.password, **options)

    def start(self) -> RedisServer:
        args = [
            self.binary,
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(self.folder),
            "--enable-debug-command",
            "local",
        ]
        if self.tls:
            cert, key = self.tls
            args += [
                "--port",
                "0",
                "--tls-port",
                str(self.port),
                "--tls-cert-file",
                str(cert),
                "--tls-key-file",
                str(key),
                "--tls-auth-clients",
                "no",
            ]
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
        """Killed, as a crash would: no goodbye to its clients."""
        if self._process is not None:
            self._process.kill()
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
