"""Calls the real function handlers with real ``azure.functions.HttpRequest`` objects."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import azure.functions as func

import function_app

# Indexed once, as the worker does (a second get_functions() refuses every name as a duplicate).
FUNCTIONS = {f.get_function_name(): f for f in function_app.app.get_functions()}
HANDLERS = {name: f.get_user_function() for name, f in FUNCTIONS.items()}


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def www_authenticate(self) -> str:
        return self.headers.get("WWW-Authenticate", "")


def call(
    route: str,
    token: str | None = None,
    *,
    method: str = "GET",
    headers: dict[str, str] | None = None,
    query: dict[str, str] | None = None,
    body: bytes = b"",
) -> Reply:
    sent = dict(headers or {})
    if token is not None:
        sent["Authorization"] = f"Bearer {token}"
    route_params: dict[str, str] = {}
    name = route
    if route.startswith("downstream/"):
        name = "downstream"
        route_params["path"] = route.removeprefix("downstream/")
    elif route.startswith("apis/"):  # apis/{name}/{*path}
        name = "relay"
        route_params["name"], _, route_params["path"] = route.removeprefix("apis/").partition("/")
    request = func.HttpRequest(
        method,
        f"http://localhost:7071/api/{route}",
        headers=sent,
        params=query or {},
        route_params=route_params,
        body=body,
    )
    response = HANDLERS[name](request)
    return Reply(response.status_code, dict(response.headers), response.get_body())


def through(service: Any, token: str, path: str = "me", method: str = "GET") -> Any:
    """One request through ``service`` itself, not function_app's: for tests that run several
    services (instances) side by side. Answers a ``Result``, errors as problem+json."""
    from obo.clients import DownstreamApi
    from obo.errors import OboError
    from obo.responses import error_result

    try:
        caller, assertion = service.authenticate({"Authorization": f"Bearer {token}"})
        api = DownstreamApi(service, service.settings.default_api, caller, assertion)
        return api.request(method, path)
    except OboError as exc:
        return error_result(exc)


def run_module(*args: str, timeout: float = 300) -> Any:
    """``python -m <args>`` from the project's root, as a person runs the README's commands:
    the finished process, its output captured as text."""
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    return subprocess.run(
        [sys.executable, "-m", *args], cwd=root, capture_output=True, text=True, timeout=timeout
    )
