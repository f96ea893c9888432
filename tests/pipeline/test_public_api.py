"""The public API (obo/__init__.py): ``@obo.authorize`` on your own functions, per-function
scopes, named downstream API clients, typed downstream errors, sync and async handlers."""

from __future__ import annotations

import asyncio
import inspect
import json
import typing

import azure.functions as func
import pytest

import obo as public
from devstack.httpserver import Fault
from obo import AsyncDownstreamApis, Caller, DownstreamApis, DownstreamError, OnBehalfOf
from obo.errors import ConfigurationError

app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)
mine = OnBehalfOf()


# docs/adopting.md's example, verbatim
@app.route(route="dashboard", methods=["GET"])
@mine.authorize(scopes=["Dashboard.Read"], apis=["graph", "orders"])
def dashboard(req: func.HttpRequest, caller: Caller, apis: DownstreamApis) -> dict:
    me = apis["graph"].get("me")  # parsed JSON
    try:
        orders = apis["orders"].get("orders")["value"]
    except DownstreamError as exc:  # the Orders API said no (4xx)
        if exc.response.status != 403:
            raise  # -> 502 problem+json, OBO6005
        orders = []
    return {"name": me["displayName"], "oid": caller.oid, "orders": len(orders)}


bp = func.Blueprint()


@bp.route(route="blueprinted", methods=["GET"])
@mine.authorize(apis=["default"])
def blueprinted(req: func.HttpRequest, apis: DownstreamApis) -> dict:
    return apis["default"].get("me")


app.register_functions(bp)


@app.route(route="order", methods=["POST"])
@mine.authorize(apis=["orders"])
def order(req: func.HttpRequest, apis: DownstreamApis) -> dict:
    return apis["orders"].post("orders", json={"item": "Stapler"})  # needs Orders.ReadWrite


@app.route(route="order-or-not", methods=["POST"])
@mine.authorize(apis=["orders"])
def order_or_not(req: func.HttpRequest, apis: DownstreamApis) -> dict:
    try:
        return apis["orders"].post("orders", json={"item": "Stapler"})
    except DownstreamError as exc:
        return {"refused": exc.response.status, "code": exc.response.json()["error"]["code"]}


@app.route(route="raw", methods=["GET"])
@mine.authorize(apis=["orders"])
def raw(req: func.HttpRequest, apis: DownstreamApis) -> dict:
    missing = apis["orders"].request("GET", "orders/no-such-order")
    body = apis["orders"].get(req.params.get("path", "orders"))
    return {"status": missing.status, "type": type(body).__name__}


@app.route(route="admin", methods=["GET"])
@mine.authorize(scopes=["Admin.Everything", "Admin.Read"])
def admin(req: func.HttpRequest, caller: Caller) -> dict:
    return {"scopes": sorted(caller.scopes)}


@app.route(route="undeclared", methods=["GET"])
@mine.authorize(apis=["graph"])
def undeclared(req: func.HttpRequest, apis: DownstreamApis) -> dict:
    return apis["orders"].get("orders")


@app.route(route="together", methods=["GET"])
@mine.authorize(apis=["graph"])
async def together(req: func.HttpRequest, context: func.Context, apis: AsyncDownstreamApis) -> dict:
    graph = apis["graph"]
    me, groups = await asyncio.gather(graph.get("me"), graph.get("me/memberOf"))
    return {"name": me["displayName"], "groups": len(groups["value"]), "fn": context.function_name}


HANDLERS = {f.get_function_name(): f.get_user_function() for f in app.get_functions()}


class Context:
    function_name = "together"


def invoke(
    name: str, token: str | None, method: str = "GET", **params: str
) -> tuple[int, dict, dict]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    request = func.HttpRequest(
        method, f"http://localhost/api/{name}", headers=headers, params=params, body=b""
    )
    handler = HANDLERS[name]
    if inspect.iscoroutinefunction(handler):
        response = asyncio.run(handler(req=request, context=Context()))
    else:
        response = handler(request)
    return response.status_code, dict(response.headers), json.loads(response.get_body())


@pytest.fixture
def mine_serves(service):
    mine.use(service)
    yield service
    mine.use(None)


@pytest.fixture
def alice(stack) -> str:
    return stack.seed.user_token(stack.seed.alice, scopes=["access_as_user", "Dashboard.Read"])


def test_the_public_names_are_exported_and_nothing_else():
    exported = "AsyncDownstreamApi AsyncDownstreamApis Caller DownstreamApi DownstreamApis"
    assert sorted(public.__all__) == sorted(
        f"{exported} DownstreamError OboError OnBehalfOf Result".split()
    )
    assert all(hasattr(public, name) for name in public.__all__)


def test_handler_gets_the_caller_and_a_client_per_named_api(mine_serves, stack, alice):
    status, headers, body = invoke("dashboard", alice)
    assert status == 200, body
    assert body == {
        "name": "Alice",
        "oid": stack.seed.alice.object_ids[stack.seed.contoso.id],
        "orders": 2,
    }
    assert headers["Cache-Control"] == "no-store"
    assert stack.entra.calls("token") == 2  # one exchange per downstream API
    assert (stack.graph.calls("me"), stack.orders.calls("orders")) == (1, 1)
    # one credential for every API: the certificate was read from Key Vault once
    assert stack.vault.answered("get_certificate", 200) == 1
    assert len(mine_serves.exchanger._apps) == 1  # one MSAL client for the tenant


def test_each_user_and_api_pair_has_its_own_cache_entry(mine_serves, stack, alice):
    assert invoke("dashboard", alice)[0] == 200
    stack.entra.reset_counters()
    again = stack.seed.user_token(stack.seed.alice, scopes=["access_as_user", "Dashboard.Read"])
    assert invoke("dashboard", again)[0] == 200
    assert stack.entra.calls("token") == 2  # a new token of the same user: both APIs exchange
    stack.entra.reset_counters()
    assert invoke("dashboard", alice)[0] == 200
    assert stack.entra.calls("token") == 0  # both served from the cache


def test_the_examples_scope_is_required(mine_serves, stack):
    status, headers, body = invoke("dashboard", stack.seed.user_token(stack.seed.alice))
    assert (status, body["code"]) == (403, "OBO3014")
    assert 'scope="Dashboard.Read"' in headers["WWW-Authenticate"]
    assert stack.entra.calls("token") == 0


def test_the_example_handles_a_refusal_of_its_own_api(mine_serves, stack, alice):
    stack.orders.inject(Fault(status=403, route="orders"))
    assert invoke("dashboard", alice)[2]["orders"] == 0
    stack.orders.clear_faults()
    stack.orders.inject(Fault(status=404, route="orders"))
    status, _, body = invoke("dashboard", alice)
    assert (status, body["code"], body["downstream_status"]) == (502, "OBO6005", 404)


def test_a_blueprint_route_works_the_same(mine_serves, alice):
    status, _, body = invoke("blueprinted", alice)
    assert (status, body["displayName"]) == (200, "Alice")


def test_the_orders_api_saw_its_own_token_never_the_callers(mine_serves, stack, alice):
    stack.orders.reset_counters()
    status, _, body = invoke("order", alice, "POST")
    # the OBO token carries the consented Orders.Read only; the API wants Orders.ReadWrite
    assert status == 502
    assert body["code"] == "OBO6005"
    assert (body["api"], body["downstream_status"], body["downstream_code"]) == (
        "orders",
        403,
        "insufficient_scope",
    )
    assert stack.orders.answered("create", 403) == 1


def test_a_handler_can_catch_the_downstream_error(mine_serves, alice):
    status, _, body = invoke("order_or_not", alice, "POST")
    assert (status, body) == (200, {"refused": 403, "code": "insufficient_scope"})


def test_request_returns_any_status_and_get_returns_bytes_for_non_json(mine_serves, stack, alice):
    stack.orders.inject(Fault(status=200, body=b"<p>orders</p>", route="orders"))
    status, _, body = invoke("raw", alice)
    assert (status, body) == (200, {"status": 404, "type": "bytes"})


def test_get_outside_2xx_raises_downstream_error(mine_serves, alice):
    status, _, body = invoke("raw", alice, path="orders/nope")
    assert status == 502
    assert (body["downstream_status"], body["downstream_code"]) == (404, "OrderNotFound")


def test_function_scopes_are_required_on_top_of_the_api_scope(mine_serves, stack, alice):
    status, headers, body = invoke("admin", alice)
    assert status == 403
    assert body["code"] == "OBO3014"
    assert body["required_scopes"] == ["Admin.Everything", "Admin.Read"]
    assert headers["WWW-Authenticate"] == (
        'Bearer realm="api", error="insufficient_scope", scope="Admin.Everything Admin.Read"'
    )
    token = stack.seed.user_token(stack.seed.alice, scopes=["access_as_user", "Admin.Read"])
    status, _, body = invoke("admin", token)
    assert (status, body) == (200, {"scopes": ["Admin.Read", "access_as_user"]})


def test_no_token_is_401_before_any_downstream_call(mine_serves, stack):
    status, headers, body = invoke("dashboard", None)
    assert (status, body["code"]) == (401, "OBO2001")
    assert headers["WWW-Authenticate"] == 'Bearer realm="api"'
    assert stack.entra.calls("token") == 0


def test_an_api_the_function_did_not_declare_is_a_clear_500(mine_serves, alice):
    status, headers, body = invoke("undeclared", alice)
    assert (status, body["code"]) == (500, "OBO1004")
    assert headers["Content-Type"] == "application/problem+json"
    assert "'orders'" in body["detail"]


def test_async_handler_shares_one_exchange_between_concurrent_calls(mine_serves, stack):
    token = stack.seed.user_token(stack.seed.carol, stack.seed.contoso)
    status, _, body = invoke("together", token)
    assert (status, body) == (200, {"name": "Carol", "groups": 1, "fn": "together"})
    assert stack.entra.calls("token") == 1


def test_the_worker_sees_only_the_bindings_parameters():
    together_fn = HANDLERS["together"]
    assert list(inspect.signature(together_fn).parameters) == ["req", "context"]
    assert inspect.iscoroutinefunction(together_fn)
    hints = typing.get_type_hints(together_fn)
    assert hints == {"req": func.HttpRequest, "context": func.Context, "return": func.HttpResponse}
    assert list(inspect.signature(HANDLERS["dashboard"]).parameters) == ["req"]


def test_an_api_no_setting_defines_fails_at_start_up_naming_the_setting(service):
    other = OnBehalfOf()

    @other.authorize(apis=["Billing"])
    def billing(req: func.HttpRequest, apis: DownstreamApis) -> dict:
        return {}

    with pytest.raises(ConfigurationError) as info:
        other.use(service)
    assert info.value.code == "OBO1003"
    assert info.value.extra["setting"] == "OBO_DOWNSTREAM__BILLING__BASE_URL"
    assert "'billing'" in info.value.detail


def test_authorize_above_route_is_refused_at_import():
    with pytest.raises(TypeError, match=r"below @app\.route"):
        mine.authorize()(app.route(route="x")(lambda req: None))
