"""Azure Functions entry point: routes only, written with obo's public API (docs/adopting.md)."""

import json
from typing import Any

import azure.functions as func

from obo import Caller, DownstreamApis, OnBehalfOf, Result

app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)
obo = OnBehalfOf()  # the pipeline, built from the app settings on first use
EVERY_METHOD = ["GET", "POST", "PUT", "PATCH", "DELETE"]


@app.route(route="profile", methods=["GET"])
@obo.authorize(apis=["graph"])
def profile(req: func.HttpRequest, caller: Caller, apis: DownstreamApis) -> dict[str, Any]:
    """The caller's Graph profile and the names of the groups they are a direct member of:
    two Graph calls, one token exchange (cached for the next request)."""
    graph = apis["graph"]
    me = graph.get("me")
    member_of = graph.get("me/memberOf", query={"$select": "displayName"})
    groups = [
        entry.get("displayName")
        for entry in member_of.get("value", [])
        if entry.get("@odata.type") == "#microsoft.graph.group"
    ]
    fields = ("id", "displayName", "userPrincipalName", "mail", "jobTitle")
    return {**{k: me.get(k) for k in fields}, "tenantId": caller.tid, "groups": groups}


@app.route(route="me", methods=["GET"])
@obo.authorize(apis=["default"])
def me(req: func.HttpRequest, apis: DownstreamApis) -> Result:
    """The default downstream API's /me for the signed-in user, relayed as is."""
    return apis["default"].relay(req, "me")


@app.route(route="downstream/{*path}", methods=EVERY_METHOD)
@obo.authorize(apis=["default"])
def downstream(req: func.HttpRequest, apis: DownstreamApis) -> Result:
    """Any call under OBO_DOWNSTREAM_BASE_URL, as the signed-in user."""
    return apis["default"].relay(req, req.route_params.get("path") or "")


@app.route(route="apis/{name}/{*path}", methods=EVERY_METHOD)
@obo.authorize()
def relay(req: func.HttpRequest, apis: DownstreamApis) -> Result:
    """Any call under a named API's base URL, if it opted in (OBO_DOWNSTREAM__<NAME>__RELAY)."""
    api = apis.relayable(req.route_params.get("name") or "")
    return api.relay(req, req.route_params.get("path") or "")


@app.route(route="health", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def health(req: func.HttpRequest) -> func.HttpResponse:
    """Liveness only: says nothing about settings, tenants or credentials."""
    return func.HttpResponse(
        json.dumps({"status": "ok"}),
        mimetype="application/json",
        headers={"Cache-Control": "no-store"},
    )


@app.route(route="ready", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
def ready(req: func.HttpRequest) -> func.HttpResponse:
    """Readiness, for operators (a function key): settings, Entra, the credential; 200 or 503."""
    return obo.readiness()
