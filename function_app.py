"""Azure Functions entry point: adapts HTTP requests to the OBO pipeline in ``obo/``."""

import json
from collections.abc import Callable

import azure.functions as func

from obo.downstream import Result
from obo.errors import OboError
from obo.service import ApiRequest, OboService, get_service, problem

app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)


def _request(req: func.HttpRequest) -> ApiRequest:
    return ApiRequest(req.method.upper(), req.headers, dict(req.params), req.get_body() or b"")


def _serve(
    req: func.HttpRequest, call: Callable[[OboService, ApiRequest], Result]
) -> func.HttpResponse:
    try:
        result = call(get_service(), _request(req))
    except OboError as exc:  # configuration errors surface on first use
        result = problem(exc)
    return func.HttpResponse(result.body, status_code=result.status, headers=result.headers)


@app.route(route="me", methods=["GET"])
def me(req: func.HttpRequest) -> func.HttpResponse:
    """The downstream API's /me for the signed-in user."""
    return _serve(req, lambda service, request: service.me(request))


@app.route(route="downstream/{*path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
def downstream(req: func.HttpRequest) -> func.HttpResponse:
    """Any call under OBO_DOWNSTREAM_BASE_URL, as the signed-in user."""
    path = req.route_params.get("path") or ""
    return _serve(req, lambda service, request: service.relay(request, path))


@app.route(route="health", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def health(req: func.HttpRequest) -> func.HttpResponse:
    """Liveness only: says nothing about settings, tenants or credentials."""
    return func.HttpResponse(
        json.dumps({"status": "ok"}),
        mimetype="application/json",
        headers={"Cache-Control": "no-store"},
    )
