"""A local host for ``function_app.py``'s HTTP functions, standing in for Core Tools.

Core Tools cannot be installed here, so this serves the HTTP triggers as ``func start`` does,
following Microsoft's documentation:

* "Azure Functions HTTP trigger": route, methods and ``authLevel`` come from each function's
  ``httpTrigger`` binding (the JSON the worker hands the host, ``get_raw_bindings()``); no
  route means the function name, no methods means all. Locally, authorization is disabled
  whatever the level says: this host does not check keys either, but ``routes()`` reports
  each level so tests can check what Azure will enforce.
* "host.json reference for Azure Functions 2.x": ``extensions.http.routePrefix`` (default
  ``api``; an ``AzureFunctionsJobHost__extensions__http__routePrefix`` setting overrides it)
  and ``extensions.http.customHeaders``.
* "Routing in ASP.NET Core" (the host's route templates): ``{name}``, ``{name?}``,
  ``{name=default}``, catch-all ``{*name}``, constraints (``int``, ``alpha``, ``guid``,
  ``bool``, ``min(n)``, ``length(n)``...; unknown ones are logged and ignored), literals
  match case-insensitively. As in Kestrel, the path is decoded except ``%2F`` and dot
  segments are removed before routing.

It serves through devstack's one HTTP server (``httpserver.Server``: threads, Nagle off, a
listen backlog, repeated header fields joined, chunked bodies). A failing function gives a
500 with a generic body; the traceback goes only to this host's log, as on the real host.
``python -m devstack.functions_host [--port 7071]`` runs it by hand, with
``local.settings.json``, and refuses to start while the app's settings are incomplete (naming
each one) instead of answering every request with a 500.
"""

from __future__ import annotations

import asyncio
import importlib.util
import inspect
import json
import logging
import os
import posixpath
import re
import sys
import threading
import urllib.parse
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any, TextIO

import azure.functions as func

from devstack.httpserver import Request, Response, Server, run_cli

log = logging.getLogger("devstack.functions_host")
ALL_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")
_GUID = r"[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}"
_PARAM = re.compile(r"\{(\*{1,2})?(\w+)((?::[^:{}=?]+(?:\([^)]*\))?)*)(\?)?(?:=([^}]*))?\}")
_CONSTRAINT = re.compile(r":(\w+)(?:\(([^)]*)\))?")


def _check(name: str, arg: str | None, value: str) -> bool | None:
    """One ASP.NET Core route constraint; ``None`` when it is unknown or malformed."""
    lo, _, hi = (arg or "").partition(",")
    number = re.fullmatch(r"-?\d+", value) is not None
    checks = {
        "int": lambda: number,
        "long": lambda: number,
        "alpha": lambda: re.fullmatch(r"[A-Za-z]+", value) is not None,
        "guid": lambda: re.fullmatch(r"\{?" + _GUID + r"\}?", value, re.I) is not None,
        "bool": lambda: value.lower() in ("true", "false"),
        "decimal": lambda: re.fullmatch(r"-?\d+(\.\d+)?", value) is not None,
        "min": lambda: number and int(value) >= int(lo),
        "max": lambda: number and int(value) <= int(lo),
        "range": lambda: number and int(lo) <= int(value) <= int(hi),
        "minlength": lambda: len(value) >= int(lo),
        "maxlength": lambda: len(value) <= int(lo),
        "length": lambda: int(lo) <= len(value) <= int(hi or lo),
        "regex": lambda: re.search(arg or "", value, re.I) is not None,
    }
    try:
        return bool(checks[name.lower()]())
    except (KeyError, ValueError, re.error):
        return None


@dataclass
class Route:
    """One HTTP function as the host registers it."""

    name: str
    template: str  # the route as written, without the prefix
    path: str  # the URL path template including the prefix
    methods: tuple[str, ...]
    auth_level: str  # "anonymous", "function" or "admin": reported, not enforced locally
    function: Any = field(repr=False)
    trigger_arg: str = "req"
    regex: re.Pattern[str] = field(init=False, repr=False)
    constraints: dict[str, list[tuple[str, str | None]]] = field(init=False, repr=False)
    defaults: dict[str, str] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.constraints, self.defaults, parts = {}, {}, []
        for segment in [s for s in self.path.split("/") if s]:
            whole = _PARAM.fullmatch(segment)
            if whole and (whole.group(1) or whole.group(4) or whole.group(5) is not None):
                self._param(whole)  # catch-all, optional or defaulted: the segment may be absent
                body = ".*" if whole.group(1) else "[^/]+"
                parts.append(f"(?:/(?P<{whole.group(2)}>{body}))?")
                continue
            pieces, last = [], 0
            for m in _PARAM.finditer(segment):
                pieces += [re.escape(segment[last : m.start()]), f"(?P<{m.group(2)}>[^/]+?)"]
                self._param(m)
                last = m.end()
            pieces.append(re.escape(segment[last:]))
            parts.append("/" + "".join(pieces))
        self.regex = re.compile("^" + "".join(parts) + "/?$", re.IGNORECASE | re.DOTALL)

    def _param(self, m: re.Match[str]) -> None:
        self.constraints[m.group(2)] = _CONSTRAINT.findall(m.group(3) or "")
        for constraint, arg in self.constraints[m.group(2)]:
            if _check(constraint, arg or None, "1") is None:
                log.warning("route %r: constraint %r ignored (unknown)", self.template, constraint)
        if m.group(5) is not None:
            self.defaults[m.group(2)] = m.group(5)

    def match(self, path: str) -> dict[str, str] | None:
        m = self.regex.match(path)
        if m is None:
            return None
        values = {k: v for k, v in m.groupdict().items() if v}
        for name, constraints in self.constraints.items():
            for constraint, arg in constraints:
                if name in values and _check(constraint, arg or None, values[name]) is False:
                    return None
        return {**self.defaults, **values}


def load_app(module_path: Path) -> func.FunctionRegister:
    """Import the app module as the worker does (by name, its folder on ``sys.path``; an
    already imported module of that file is reused) and find its one app."""
    module = sys.modules.get(module_path.stem)
    if module is None or Path(getattr(module, "__file__", "") or "").resolve() != module_path:
        spec = importlib.util.spec_from_file_location(module_path.stem, module_path)
        if spec is None or spec.loader is None:
            raise ImportError(f"cannot import {module_path}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_path.stem] = module
        spec.loader.exec_module(module)
    apps = [v for v in vars(module).values() if isinstance(v, func.FunctionRegister)]
    if len(apps) != 1:
        raise ValueError(f"{module_path} must define exactly one FunctionApp, found {len(apps)}")
    return apps[0]


def build_routes(app: func.FunctionRegister, prefix: str) -> list[Route]:
    routes = []
    for fn in app.get_functions():
        bindings = [json.loads(raw) for raw in fn.get_raw_bindings()]
        trigger = next((b for b in bindings if b.get("type") == "httpTrigger"), None)
        if trigger is None:
            continue  # timers, queues...: not served over HTTP
        name = str(fn.get_function_name())
        template = str(trigger.get("route") or name).strip("/")
        methods = tuple(str(m).upper() for m in trigger.get("methods") or ALL_METHODS)
        path = "/" + "/".join(p for p in (prefix.strip("/"), template) if p)
        level = str(trigger.get("authLevel") or "function").lower()
        routes.append(Route(name, template, path, methods, level, fn, trigger.get("name") or "req"))
    return routes


def _clean_path(raw: str) -> str:
    """Kestrel's view of the path: decoded except ``%2F``, dot segments removed."""
    decoded = urllib.parse.unquote(re.sub("%2[fF]", "%252F", raw))
    normal = posixpath.normpath("/" + decoded) if decoded else "/"
    return normal.replace("//", "/") + ("/" if decoded.endswith("/") and normal != "/" else "")


class FunctionsHost:
    """``with FunctionsHost(port=0) as host: requests.get(host.url + "/api/health")``."""

    def __init__(
        self,
        module_path: str | Path | None = None,
        port: int = 7071,
        *,
        stream: TextIO | None = None,
    ) -> None:
        root = Path(__file__).resolve().parent.parent
        self.module_path = Path(module_path or root / "function_app.py").resolve()
        self.port, self.stream = port, stream
        self.base_url = ""  # set by the server once the port is bound
        self._server: Server | None = None
        self._routes: list[Route] = []
        self.host_json: dict[str, Any] = {}
        self._saved: tuple[str | None, ModuleType | None] | None = None

    @property
    def url(self) -> str:
        return self.base_url or f"http://127.0.0.1:{self.port}"

    def routes(self) -> list[Route]:
        return list(self._routes)

    def route_prefix(self) -> str:
        env = os.environ.get("AzureFunctionsJobHost__extensions__http__routePrefix")
        http = self.host_json.get("extensions", {}).get("http", {})
        return env if env is not None else str(http.get("routePrefix", "api"))

    def start(self) -> FunctionsHost:
        host_file = self.module_path.parent / "host.json"
        self.host_json = json.loads(host_file.read_text()) if host_file.exists() else {}
        folder, stem = str(self.module_path.parent), self.module_path.stem
        self._saved = (folder if folder not in sys.path else None, sys.modules.get(stem))
        if self._saved[0]:
            sys.path.insert(0, folder)
        try:
            self._routes = build_routes(load_app(self.module_path), self.route_prefix())
            self._server = Server(self, None, self.port, access_log=log)
        except BaseException:
            self._restore()
            raise
        self.port = self._server.port
        lines = [
            f"  {r.name}: [{','.join(r.methods)}] http://localhost:{self.port}{r.path}"
            for r in self._routes
        ]
        print("\nFunctions:\n\n" + "\n".join(lines) + "\n", file=self.stream or sys.stdout)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None
            self.base_url = ""
        self._restore()

    def _restore(self) -> None:
        """Leave ``sys.path`` and ``sys.modules`` as they were, so that another app file
        with the same name (tests) or a plain ``import function_app`` finds the right one."""
        if self._saved is None:
            return
        (added, previous), self._saved = self._saved, None
        if added in sys.path:
            sys.path.remove(added)
        if previous is None:
            sys.modules.pop(self.module_path.stem, None)
        else:
            sys.modules[self.module_path.stem] = previous

    def __enter__(self) -> FunctionsHost:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- one request ----------------------------------------------------------------------
    def respond(self, request: Request) -> Response:
        """What the server calls; a bug here answers a generic 500 and is logged."""
        try:
            return self._route(request.method, request.target, request.headers, request.body)
        except Exception:  # a bug here must answer, not hang the client
            log.exception("request failed in the host")
            return Response(500, b"Internal Server Error")

    def _route(self, method: str, target: str, headers: dict[str, str], body: bytes) -> Response:
        split = urllib.parse.urlsplit(target)
        path, allowed = _clean_path(split.path), set[str]()
        for route in self._routes:
            values = route.match(path)
            if values is None:
                continue
            if method not in route.methods:
                allowed.update(route.methods)
                continue
            query: dict[str, str] = {}
            for key, value in urllib.parse.parse_qsl(split.query, keep_blank_values=True):
                query[key] = f"{query[key]},{value}" if key in query else value
            host = headers.get("host", self.url.removeprefix("http://"))
            request = func.HttpRequest(
                method,
                f"http://{host}{target}",
                headers=headers,
                params=query,
                route_params=values,
                body=body,
            )
            return self._invoke(route, request)
        if allowed:
            return Response(405, b"", {"Allow": ", ".join(sorted(allowed))})
        return Response(404)

    def _invoke(self, route: Route, request: func.HttpRequest) -> Response:
        user_function = route.function.get_user_function()
        kwargs: dict[str, Any] = {route.trigger_arg: request}
        if "context" in inspect.signature(user_function).parameters:
            kwargs["context"] = SimpleNamespace(
                invocation_id=str(uuid.uuid4()),
                function_name=route.name,
                function_directory=str(self.module_path.parent),
                trace_context=None,
                retry_context=None,
            )
        try:
            result = user_function(**kwargs)
            result = asyncio.run(result) if inspect.iscoroutine(result) else result
            result = func.HttpResponse(result) if isinstance(result, str) else result
            if not isinstance(result, func.HttpResponse):
                raise TypeError(f"returned {type(result).__name__}, not func.HttpResponse")
        except Exception:
            log.exception("Executed 'Functions.%s' (Failed)", route.name)
            plain = {"Content-Type": "text/plain; charset=utf-8"}
            return Response(500, b"Internal Server Error", plain)
        headers = dict(result.headers.items())
        if not any(k.lower() == "content-type" for k in headers):
            text = result.mimetype.startswith("text/")
            charset = f"; charset={result.charset}" if text else ""
            headers["Content-Type"] = result.mimetype + charset
        custom = self.host_json.get("extensions", {}).get("http", {}).get("customHeaders", {})
        return Response(result.status_code, result.get_body(), {**custom, **headers})


def app_problems(host: FunctionsHost) -> list[str]:
    """What the started app would refuse on its first request, at start-up instead: each
    setting obo cannot read, then what ``OnBehalfOf.check()`` refuses (a downstream API a
    function uses that no setting defines). Empty when the app can serve."""
    from obo.config import Settings
    from obo.errors import ConfigurationError
    from obo.functions import OnBehalfOf

    _, refused = Settings.partial(os.environ)
    if refused:
        return list(refused.values())
    module = sys.modules.get(host.module_path.stem)
    for value in vars(module).values() if module else ():
        if isinstance(value, OnBehalfOf):
            try:
                value.check()
            except ConfigurationError as exc:
                return [exc.detail]
    return []


def main(argv: list[str] | None = None) -> int:
    """``python -m devstack.functions_host [--port 7071] [--app PATH]``; like Core Tools it
    first loads ``local.settings.json`` ``Values`` into the environment."""
    import argparse

    prog = "python -m devstack.functions_host"
    parser = argparse.ArgumentParser(
        prog=prog, description="Serve function_app.py like func start."
    )
    parser.add_argument("--port", type=int, default=7071, help="0 picks a free port")
    parser.add_argument("--app", default=None, help="path of function_app.py")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    host = FunctionsHost(args.app, args.port)
    settings = host.module_path.parent / "local.settings.json"
    values = json.loads(settings.read_text()).get("Values", {}) if settings.exists() else {}
    for key, value in values.items():
        os.environ.setdefault(key, str(value))

    def serve() -> int:
        with host:
            problems = app_problems(host)
            if problems:
                source = settings if settings.exists() else f"{settings} (missing)"
                print(
                    f"{prog}: the app cannot start; fix these settings in {source} or the "
                    "environment:\n"
                    + "\n".join(f"  {p}" for p in problems)
                    + "\nFor the offline stand-ins, run `python3 -m devstack serve` instead.",
                    file=sys.stderr,
                )
                return 1
            print(f"Serving {host.url} until Ctrl+C.", flush=True)
            threading.Event().wait()
        return 0

    return run_cli(prog, args.port, serve)


if __name__ == "__main__":
    sys.exit(main())
