"""The one threaded HTTP(S) server of devstack, and the stand-ins' routing, faults and counters.

:class:`Server` serves anything with a ``respond(Request)`` method on loopback: each stand-in
(a :class:`Service`) over TLS, and the local Functions host (``functions_host.py``) over plain
HTTP, as ``func start`` does.

Each stand-in is a :class:`Service`: a list of routes plus the switches a test flips to make it
slow, throttled, failing, unreachable, answering garbage, or setting cookies the way load
balancers and real services do. Counters record every request by route name and tenant, and
the ``Cookie`` header each request carried, so a test can assert exactly which calls reached
the stand-in and what state they brought along.
"""

from __future__ import annotations

import collections
import errno
import json
import logging
import re
import ssl
import sys
import threading
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol

log = logging.getLogger("devstack.httpserver")


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # lower-cased names
    body: bytes
    params: dict[str, str] = field(default_factory=dict)
    target: str = ""  # the request-target as sent (RFC 9112 section 3.2), query included

    def form(self) -> dict[str, str]:
        pairs = urllib.parse.parse_qsl(self.body.decode("utf-8", "replace"), keep_blank_values=True)
        return dict(pairs)

    def json(self) -> Any:
        return json.loads(self.body or b"null")


@dataclass
class Response:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    set_cookies: list[str] = field(default_factory=list)  # one Set-Cookie field each

    @classmethod
    def json(cls, data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
        merged = {"Content-Type": "application/json; charset=utf-8", **(headers or {})}
        return cls(status, json.dumps(data).encode(), merged)


Handler = Callable[[Request], Response]


@dataclass
class Fault:
    """What the next matching requests should suffer. ``count=None`` means until cleared."""

    status: int | None = None
    retry_after: int | None = None
    latency: float = 0.0
    drop: bool = False
    count: int | None = None
    route: str | None = None  # only requests to this route name, or all when None
    body: bytes | None = None  # answer this instead of the service's own body (a proxy's page)
    content_type: str = "text/html"  # of ``body``; "application/json" for malformed JSON answers
    headers: dict[str, str] = field(default_factory=dict)  # added to the answer, whichever it is


class Service:
    """Routes plus faults and counters; ``serve`` puts it on a free loopback port."""

    name = "service"

    def __init__(self) -> None:
        self._routes: list[tuple[str, re.Pattern[str], str, Handler]] = []
        self._faults: list[Fault] = []
        self._lock = threading.Lock()
        self.counters: collections.Counter[tuple[str, str]] = collections.Counter()
        self.answers: collections.Counter[tuple[str, int]] = collections.Counter()
        # (route name, Cookie header or None) of recent requests: what state clients sent back
        self.cookies_received: collections.deque[tuple[str, str | None]] = collections.deque(
            maxlen=10_000
        )
        # Set-Cookie values added to every answer while set (session and affinity cookies)
        self.set_cookies: list[str] = []
        self.base_url = ""

    # -- routing -------------------------------------------------------------------
    def respond(self, request: Request) -> Response | None:
        """What :class:`Server` calls: the routed answer with this service's cookies."""
        _, response = self.dispatch(request)
        if response is not None:
            response.set_cookies += self.set_cookies
        return response

    def route(self, method: str, pattern: str, name: str, handler: Handler) -> None:
        regex = re.compile("^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", pattern) + "$")
        self._routes.append((method, regex, name, handler))

    def dispatch(self, request: Request) -> tuple[str, Response | None]:
        name, response = self._route(request)
        if response is not None:
            with self._lock:
                self.answers[(name, response.status)] += 1
        return name, response

    def _route(self, request: Request) -> tuple[str, Response | None]:
        allowed = False
        for method, regex, name, handler in self._routes:
            match = regex.match(request.path)
            if not match:
                continue
            allowed = True
            if method != request.method:
                continue
            request.params = match.groupdict()
            tenant = request.params.get("tenant", "-")
            self.counters[(name, tenant)] += 1
            self.cookies_received.append((name, request.headers.get("cookie")))
            fault = self._take_fault(name)
            if fault is None:
                return name, handler(request)
            if fault.latency:
                time.sleep(fault.latency)
            if fault.drop:
                return name, None
            if fault.status and fault.body is not None:  # a proxy's page, a malformed answer
                response = Response(fault.status, fault.body, {"Content-Type": fault.content_type})
            elif fault.status:
                response = self.fault_response(fault)
            else:
                response = handler(request)
            response.headers.update(fault.headers)
            return name, response
        status = 405 if allowed else 404
        return "-", Response.json({"error": {"code": "NotFound", "message": request.path}}, status)

    def fault_response(self, fault: Fault) -> Response:
        headers = {"Retry-After": str(fault.retry_after)} if fault.retry_after is not None else {}
        return Response.json({"error": "temporarily_unavailable"}, fault.status or 503, headers)

    # -- fault switches ------------------------------------------------------------
    def inject(self, fault: Fault) -> None:
        with self._lock:
            self._faults.append(fault)

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()
            self.set_cookies = []

    def _take_fault(self, route_name: str) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.route not in (None, route_name):
                    continue
                if fault.count is not None:
                    fault.count -= 1
                    if fault.count <= 0:
                        self._faults.remove(fault)
                return fault
        return None

    # -- counters ------------------------------------------------------------------
    def calls(self, route_name: str, tenant: str | None = None) -> int:
        with self._lock:
            return sum(
                n
                for (name, t), n in self.counters.items()
                if name == route_name and tenant in (None, t)
            )

    def answered(self, route_name: str, status: int) -> int:
        """How many requests to ``route_name`` were answered with ``status``."""
        with self._lock:
            return self.answers[(route_name, status)]

    def cookies(self, route_name: str | None = None) -> list[str | None]:
        """The ``Cookie`` header (None when absent) of each recent request, oldest first."""
        with self._lock:
            return [c for name, c in self.cookies_received if route_name in (None, name)]

    def reset_counters(self) -> None:
        with self._lock:
            self.counters.clear()
            self.answers.clear()
            self.cookies_received.clear()


class Responder(Protocol):
    """What a :class:`Server` serves; ``base_url`` is set once the port is bound."""

    base_url: str

    def respond(self, request: Request) -> Response | None:
        """The answer, or ``None`` to drop the connection without one."""
        ...


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out at once: no 40 ms delayed-ACK stalls
    server: _ThreadingServer

    def log_message(self, format: str, *args: Any) -> None:
        if self.server.access_log is not None:  # the stand-ins are quiet: tests read counters
            self.server.access_log.debug("%s " + format, self.address_string(), *args)

    def _headers(self) -> dict[str, str]:
        """Lower-cased names; a repeated field is joined with ", " (RFC 9110 section 5.3)."""
        headers: dict[str, str] = {}
        for key, value in self.headers.items():
            key = key.lower()
            headers[key] = f"{headers[key]}, {value}" if key in headers else value
        return headers

    def _body(self) -> bytes:
        """The content, by Content-Length or chunked (RFC 9112 section 7.1)."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks = []
            while size := int(self.rfile.readline().split(b";")[0].strip() or b"0", 16):
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                pass  # trailer fields
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _handle(self) -> None:
        url = urllib.parse.urlsplit(self.path)
        request = Request(
            method=self.command,
            path=url.path,
            query=dict(urllib.parse.parse_qsl(url.query, keep_blank_values=True)),
            headers=self._headers(),
            body=self._body(),
            target=self.path,
        )
        try:
            response = self.server.responder.respond(request)
        except Exception as exc:  # a bug in a stand-in must be loud, not a hang
            log.exception("%s %s failed in the stand-in", self.command, url.path)
            response = Response.json({"error": "standin_bug", "detail": repr(exc)}, 500)
        if response is None:  # a dropped connection
            self.close_connection = True
            self.connection.shutdown(2)
            return
        self.send_response(response.status)
        for key, value in response.headers.items():
            self.send_header(key, value)
        for cookie in response.set_cookies:
            self.send_header("Set-Cookie", cookie)
        self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(response.body)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _handle


class _ThreadingServer(ThreadingHTTPServer):
    request_queue_size = 256  # bursts of concurrent clients in tests and benchmarks
    daemon_threads = True

    def __init__(self, port: int, responder: Responder, access_log: logging.Logger | None) -> None:
        self.responder, self.access_log = responder, access_log
        super().__init__(("127.0.0.1", port), _Handler)


class Server:
    """``responder`` served on a loopback port (0: a free one) until ``stop``; HTTPS with
    ``tls``. ``access_log`` gets one DEBUG line per request (the Functions host's log)."""

    def __init__(
        self,
        responder: Responder,
        tls: ssl.SSLContext | None,
        port: int = 0,
        *,
        access_log: logging.Logger | None = None,
    ) -> None:
        self._httpd = _ThreadingServer(port, responder, access_log)
        if tls is not None:
            # The handshake runs in the request thread, so one slow client cannot stall accept().
            self._httpd.socket = tls.wrap_socket(
                self._httpd.socket, server_side=True, do_handshake_on_connect=False
            )
        scheme = "https" if tls is not None else "http"
        self.port = self._httpd.server_address[1]
        self.url = f"{scheme}://127.0.0.1:{self.port}"
        responder.base_url = self.url
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


def run_cli(prog: str, port: int, body: Callable[[], int]) -> int:
    """Run a serving command: Ctrl+C and a busy port end with one line, not a traceback."""
    try:
        return body()
    except KeyboardInterrupt:
        print("Stopped.", file=sys.stderr)
        return 0
    except OSError as exc:
        if exc.errno != errno.EADDRINUSE:
            raise
        print(
            f"{prog}: port {port} is already in use (another serve, demo or func start?); "
            "stop it, or pass --port N (0 picks a free port).",
            file=sys.stderr,
        )
        return 1
