"""The local Functions host: routes read from the app's bindings, ASP.NET-style route templates,
request and response mapping, errors, and the route table, over real HTTP."""

from __future__ import annotations

import io
import json
import logging
import sys
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from devstack.functions_host import FunctionsHost

REPO = Path(__file__).resolve().parents[2]

TEST_APP = """
import asyncio
import json
import threading

import azure.functions as func

app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)
released = threading.Event()


def show(name, req):
    body = {
        "fn": name, "method": req.method, "url": req.url, "route": dict(req.route_params),
        "params": dict(req.params), "body": req.get_body().decode(),
        "headers": {k.lower(): v for k, v in req.headers.items()},
    }
    return func.HttpResponse(json.dumps(body), mimetype="application/json")


@app.route(route="me", methods=["GET"])
def me(req: func.HttpRequest) -> func.HttpResponse:
    return show("me", req)


@app.route(route="downstream/{*path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
def downstream(req: func.HttpRequest) -> func.HttpResponse:
    return show("downstream", req)


@app.route(route="health", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def health(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse("ok")


@app.route(route="items/{id:int}/{tag:alpha?}")
def items(req: func.HttpRequest) -> func.HttpResponse:
    return show("items", req)


@app.route(route="things/{id:guid}", methods=["GET"])
def things(req: func.HttpRequest) -> func.HttpResponse:
    return show("things", req)


@app.route(route="files/{name}.{ext}", methods=["GET"])
def files(req: func.HttpRequest) -> func.HttpResponse:
    return show("files", req)


@app.route(route="pages/{page:int=1}", methods=["GET"])
def pages(req: func.HttpRequest) -> func.HttpResponse:
    return show("pages", req)


@app.route(route="odd/{x:nosuchconstraint(3)}", methods=["GET"])
def odd(req: func.HttpRequest) -> func.HttpResponse:
    return show("odd", req)


@app.route(route="boom", methods=["GET"])
def boom(req: func.HttpRequest) -> func.HttpResponse:
    raise RuntimeError("secret detail from the depths")


@app.route(route="wrongtype", methods=["GET"])
def wrongtype(req: func.HttpRequest):
    return {"not": "a response"}


@app.function_name("renamed")
@app.route(methods=["GET"])
def some_python_name(req: func.HttpRequest) -> func.HttpResponse:
    return show("renamed", req)


@app.route(route="text", methods=["GET"])
def text(req: func.HttpRequest) -> str:
    return "plain"


@app.route(route="async", methods=["GET"])
async def asynchronous(req: func.HttpRequest) -> func.HttpResponse:
    await asyncio.sleep(0)
    return func.HttpResponse("from a coroutine")


@app.route(route="custom", methods=["POST"], trigger_arg_name="request")
def custom(request: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    return func.HttpResponse(
        json.dumps({"function_name": context.function_name, "body": request.get_json()}),
        status_code=201, headers={"X-Custom": "1"}, mimetype="application/json",
    )


@app.route(route="html", methods=["GET"])
def html(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse("<p>hi</p>", status_code=202, mimetype="text/html")


@app.route(route="wait", methods=["GET"])
def wait(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse("released" if released.wait(5) else "timed out")


@app.route(route="release", methods=["POST"])
def release(req: func.HttpRequest) -> func.HttpResponse:
    released.set()
    return func.HttpResponse("ok")


@app.timer_trigger(schedule="0 */5 * * * *", arg_name="timer", run_on_startup=False)
def tick(timer: func.TimerRequest) -> None:
    pass
"""

HOST_JSON = {
    "version": "2.0",
    "extensions": {
        "http": {"routePrefix": "api", "customHeaders": {"X-Content-Type-Options": "nosniff"}}
    },
}


def write_app(folder: Path, source: str = TEST_APP, host_json: dict | None = HOST_JSON) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "function_app.py").write_text(textwrap.dedent(source))
    if host_json is not None:
        (folder / "host.json").write_text(json.dumps(host_json))
    return folder / "function_app.py"


@pytest.fixture(scope="module")
def host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FunctionsHost]:
    stream = io.StringIO()
    with FunctionsHost(write_app(tmp_path_factory.mktemp("app")), port=0, stream=stream) as running:
        running.banner = stream.getvalue()  # type: ignore[attr-defined]
        yield running


def get(host: FunctionsHost, path: str, method: str = "GET", **kwargs) -> requests.Response:
    return requests.request(method, host.url + path, timeout=10, **kwargs)


# -- the route table --------------------------------------------------------------------
def test_route_table_is_printed_like_core_tools(host: FunctionsHost) -> None:
    banner = host.banner  # type: ignore[attr-defined]
    assert banner.lstrip().startswith("Functions:")
    assert f"  me: [GET] http://localhost:{host.port}/api/me\n" in banner
    assert f"  health: [GET] http://localhost:{host.port}/api/health\n" in banner
    assert "/api/downstream/{*path}" in banner
    assert "tick" not in banner  # not an HTTP function


def test_routes_report_templates_methods_and_auth_levels(host: FunctionsHost) -> None:
    routes = {r.name: r for r in host.routes()}
    assert routes["me"].template == "me" and routes["me"].methods == ("GET",)
    assert routes["me"].auth_level == "function"  # the app's default
    assert routes["health"].auth_level == "anonymous"
    assert routes["downstream"].template == "downstream/{*path}"
    assert routes["downstream"].methods == ("GET", "POST", "PUT", "PATCH", "DELETE")
    assert routes["renamed"].template == "renamed"  # no route: the function name
    assert set(routes["items"].methods) >= {"GET", "POST", "DELETE"}  # no methods: all
    assert "tick" not in routes


def test_keys_are_not_enforced_locally(host: FunctionsHost) -> None:
    assert get(host, "/api/me").status_code == 200  # authLevel function, no code= needed


# -- matching -------------------------------------------------------------------------
def test_request_mapping(host: FunctionsHost) -> None:
    resp = get(
        host, "/api/me?a=1&b=x%20y&a=2", headers={"X-Thing": "v", "Authorization": "Bearer t"}
    )
    assert resp.status_code == 200
    body = resp.json()
    assert body["fn"] == "me" and body["method"] == "GET"
    assert body["url"] == f"http://127.0.0.1:{host.port}/api/me?a=1&b=x%20y&a=2"
    assert body["params"] == {"a": "1,2", "b": "x y"}
    assert body["headers"]["x-thing"] == "v"
    assert body["headers"]["authorization"] == "Bearer t"


@pytest.mark.parametrize("method", ["GET", "POST", "PUT", "PATCH", "DELETE"])
def test_catch_all(host: FunctionsHost, method: str) -> None:
    resp = get(host, "/api/downstream/users/abc/messages?$top=2", method, data=b'{"x":1}')
    body = resp.json()
    assert body["fn"] == "downstream" and body["method"] == method
    assert body["route"] == {"path": "users/abc/messages"}
    assert body["params"] == {"$top": "2"}
    assert body["body"] == '{"x":1}'


def test_catch_all_may_be_empty(host: FunctionsHost) -> None:
    assert get(host, "/api/downstream").json()["route"] == {}
    assert get(host, "/api/downstream/").json()["route"] == {}


def test_path_is_decoded_except_slashes_and_dot_segments_are_removed(host: FunctionsHost) -> None:
    assert get(host, "/api/downstream/a%20b/c%2Fd").json()["route"] == {"path": "a b/c%2Fd"}
    assert get(host, "/api/downstream/x/../../me").json()["fn"] == "me"
    assert get(host, "/api/downstream/%2e%2e/health").text == "ok"


def test_literals_are_case_insensitive(host: FunctionsHost) -> None:
    assert get(host, "/API/Me").json()["fn"] == "me"


def test_constraints_optional_and_default_values(host: FunctionsHost) -> None:
    assert get(host, "/api/items/12").json()["route"] == {"id": "12"}
    assert get(host, "/api/items/12/red").json()["route"] == {"id": "12", "tag": "red"}
    assert get(host, "/api/items/abc").status_code == 404
    assert get(host, "/api/items/12/r3d").status_code == 404
    guid = "0f8fad5b-d9cb-469f-a165-70867728950e"
    assert get(host, f"/api/things/{guid}").json()["route"] == {"id": guid}
    assert get(host, "/api/things/not-a-guid").status_code == 404
    assert get(host, "/api/pages").json()["route"] == {"page": "1"}
    assert get(host, "/api/pages/3").json()["route"] == {"page": "3"}


def test_complex_segment(host: FunctionsHost) -> None:
    assert get(host, "/api/files/report.pdf").json()["route"] == {"name": "report", "ext": "pdf"}


def test_unknown_constraint_is_ignored(host: FunctionsHost) -> None:
    assert get(host, "/api/odd/anything").json()["route"] == {"x": "anything"}


def test_not_found_and_method_not_allowed(host: FunctionsHost) -> None:
    assert get(host, "/api/nope").status_code == 404
    assert get(host, "/me").status_code == 404  # the prefix is required
    resp = get(host, "/api/me", "POST")
    assert resp.status_code == 405
    assert resp.headers["Allow"] == "GET"


# -- responses ----------------------------------------------------------------------
def test_response_mapping(host: FunctionsHost) -> None:
    resp = get(host, "/api/custom", "POST", json={"n": 1})
    assert resp.status_code == 201
    assert resp.headers["Content-Type"] == "application/json"
    assert resp.headers["X-Custom"] == "1"
    assert resp.headers["X-Content-Type-Options"] == "nosniff"  # host.json customHeaders
    assert resp.json() == {"function_name": "custom", "body": {"n": 1}}
    html = get(host, "/api/html")
    assert html.status_code == 202
    assert html.headers["Content-Type"] == "text/html; charset=utf-8"
    assert get(host, "/api/text").text == "plain"
    assert get(host, "/api/async").text == "from a coroutine"


def test_exception_is_a_generic_500(host: FunctionsHost, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR, logger="devstack.functions_host"):
        resp = get(host, "/api/boom")
    assert resp.status_code == 500
    assert "secret" not in resp.text and "Traceback" not in resp.text
    assert "secret detail from the depths" in caplog.text
    assert get(host, "/api/wrongtype").status_code == 500


def test_requests_run_concurrently(host: FunctionsHost) -> None:
    result: list[str] = []
    waiter = threading.Thread(target=lambda: result.append(get(host, "/api/wait").text))
    waiter.start()
    assert get(host, "/api/release", "POST").status_code == 200
    waiter.join(10)
    assert result == ["released"]


# -- configuration ------------------------------------------------------------------
def test_empty_route_prefix_and_no_host_json(tmp_path: Path) -> None:
    app = write_app(
        tmp_path / "a", host_json={"version": "2.0", "extensions": {"http": {"routePrefix": ""}}}
    )
    with FunctionsHost(app, port=0, stream=io.StringIO()) as h:
        assert get(h, "/health").text == "ok"
    app = write_app(tmp_path / "b", host_json=None)
    with FunctionsHost(app, port=0, stream=io.StringIO()) as h:
        assert get(h, "/api/health").text == "ok"


def test_route_prefix_app_setting_overrides_host_json(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("AzureFunctionsJobHost__extensions__http__routePrefix", "v2")
    with FunctionsHost(write_app(tmp_path), port=0, stream=io.StringIO()) as h:
        assert get(h, "/v2/health").text == "ok"
        assert h.routes()[0].path.startswith("/v2/")


def test_each_host_loads_its_own_module(tmp_path: Path) -> None:
    other = """
    import azure.functions as func
    app = func.FunctionApp()
    @app.route(route="health", auth_level=func.AuthLevel.ANONYMOUS)
    def health(req): return func.HttpResponse("other app")
    """
    with FunctionsHost(write_app(tmp_path, other), port=0, stream=io.StringIO()) as h:
        assert get(h, "/api/health").text == "other app"
        assert h.url == f"http://127.0.0.1:{h.port}" and h.port != 0


def test_stopping_restores_sys_path_and_sys_modules(tmp_path: Path) -> None:
    before = (list(sys.path), sys.modules.get("function_app"))
    with FunctionsHost(write_app(tmp_path), port=0, stream=io.StringIO()):
        assert sys.path[0] == str(tmp_path)
        assert sys.modules["function_app"].__file__ == str(tmp_path / "function_app.py")
    assert (list(sys.path), sys.modules.get("function_app")) == before


def test_a_module_without_an_app_fails_at_start(tmp_path: Path) -> None:
    before = (list(sys.path), sys.modules.get("function_app"))
    host = FunctionsHost(write_app(tmp_path, "x = 1\n"), port=0, stream=io.StringIO())
    with pytest.raises(ValueError, match="FunctionApp"):
        host.start()
    assert (list(sys.path), sys.modules.get("function_app")) == before


def test_the_real_function_app() -> None:
    with FunctionsHost(port=0, stream=io.StringIO()) as h:
        routes = {r.name: r for r in h.routes()}
        assert routes["me"].path == "/api/me" and routes["me"].methods == ("GET",)
        assert routes["downstream"].path == "/api/downstream/{*path}"
        assert routes["health"].auth_level == "anonymous"
        assert get(h, "/api/health").status_code == 200
