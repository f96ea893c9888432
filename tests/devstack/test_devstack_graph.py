"""The Graph-like stand-in over real HTTPS: profile routes, Graph's token validation and error
JSON, the continuous access evaluation challenge, the echo route and the fault switches."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator

import pytest
import requests

from devstack.graph import BEARER_CHALLENGE, GraphApi
from devstack.httpserver import Fault
from devstack.stack import DevStack


@pytest.fixture
def graph(stack: DevStack) -> Iterator[GraphApi]:
    stack.graph.clear_claims()
    yield stack.graph
    stack.graph.clear_claims()


def graph_token(stack: DevStack, user=None, scopes=("User.Read",), **kwargs) -> str:
    seed = stack.seed
    user = user or seed.alice
    tenant = kwargs.pop("tenant", None) or stack.directory.tenants[user.home_tenant]
    return stack.directory.user_token(user, tenant, seed.api, seed.graph, list(scopes), **kwargs)


def call(stack: DevStack, path: str, token: str | None = None, method: str = "GET", **kwargs):
    headers = kwargs.pop("headers", {})
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    url = f"{stack.graph.base_url}/v1.0{path}"
    return requests.request(
        method, url, headers=headers, verify=stack.ca.ca_file, timeout=10, **kwargs
    )


def assert_graph_error(resp: requests.Response, status: int, code: str) -> dict:
    assert resp.status_code == status, resp.text
    error = resp.json()["error"]
    assert error["code"] == code
    assert error["message"]
    inner = error["innerError"]
    assert set(inner) == {"date", "request-id", "client-request-id"}
    assert inner["request-id"] == resp.headers["request-id"]
    return error


# -- resources ------------------------------------------------------------------------
def test_me_returns_the_user_in_the_token(stack: DevStack, graph: GraphApi) -> None:
    alice = stack.seed.alice
    resp = call(stack, "/me", graph_token(stack), headers={"client-request-id": "cr-1"})
    assert resp.status_code == 200
    assert resp.headers["Content-Type"].startswith("application/json")
    assert resp.headers["client-request-id"] == "cr-1"
    body = resp.json()
    assert body["@odata.context"].endswith("/v1.0/$metadata#users/$entity")
    assert body["id"] == alice.object_ids[stack.seed.contoso.id]
    assert body["displayName"] == "Alice"
    assert body["userPrincipalName"] == body["mail"] == alice.upn
    assert body["tenantId"] == stack.seed.contoso.id
    assert graph.calls("me") == 1


def test_me_for_a_guest_is_the_guest_object_in_the_resource_tenant(stack: DevStack, graph) -> None:
    carol, contoso = stack.seed.carol, stack.seed.contoso
    body = call(stack, "/me", graph_token(stack, carol, tenant=contoso)).json()
    assert body["id"] == carol.object_ids[contoso.id] != carol.object_ids[carol.home_tenant]
    assert body["tenantId"] == contoso.id


def test_messages_need_mail_read(stack: DevStack, graph: GraphApi) -> None:
    assert_graph_error(
        call(stack, "/me/messages", graph_token(stack)), 403, "Authorization_RequestDenied"
    )
    resp = call(stack, "/me/messages", graph_token(stack, scopes=["User.Read", "Mail.Read"]))
    assert resp.status_code == 200
    assert resp.json()["value"] and all("subject" in m for m in resp.json()["value"])


def test_users_by_id_or_upn_need_user_readbasic_all(stack: DevStack, graph: GraphApi) -> None:
    seed = stack.seed
    bob_oid = seed.bob.object_ids[seed.fabrikam.id]
    assert_graph_error(
        call(stack, f"/users/{bob_oid}", graph_token(stack, seed.bob)),
        403,
        "Authorization_RequestDenied",
    )
    token = graph_token(stack, seed.bob, scopes=["User.ReadBasic.All"])
    assert call(stack, f"/users/{bob_oid}", token).json()["displayName"] == "Bob"
    assert call(stack, f"/users/{seed.bob.upn}", token).json()["id"] == bob_oid
    # Alice lives in another tenant: Bob's token does not see her.
    assert_graph_error(
        call(stack, f"/users/{seed.alice.upn}", token), 404, "Request_ResourceNotFound"
    )


def test_guest_upn_in_the_inviting_tenant(stack: DevStack, graph: GraphApi) -> None:
    seed = stack.seed
    token = graph_token(stack, scopes=["User.ReadBasic.All"])
    body = call(stack, f"/users/{seed.carol.object_ids[seed.contoso.id]}", token).json()
    assert (
        body["userPrincipalName"] == "carol_fabrikam.onmicrosoft.com#EXT#@contoso.onmicrosoft.com"
    )


def test_member_of_lists_the_users_groups_with_names_only_with_group_permission(
    stack: DevStack, graph
) -> None:
    seed = stack.seed
    limited = call(stack, "/me/memberOf", graph_token(stack)).json()  # User.Read alone
    assert limited["@odata.context"].endswith("/v1.0/$metadata#directoryObjects")
    assert [g["@odata.type"] for g in limited["value"]] == ["#microsoft.graph.group"] * 2
    assert all(g["id"] and g["displayName"] is None for g in limited["value"])
    full = call(
        stack, "/me/memberOf", graph_token(stack, scopes=["User.Read", "GroupMember.Read.All"])
    ).json()
    assert sorted(g["displayName"] for g in full["value"]) == ["All Contoso", "Sales"]
    # a guest sees the groups of the tenant that issued the token, not of her home tenant
    carol = graph_token(stack, seed.carol, tenant=seed.contoso, scopes=["GroupMember.Read.All"])
    assert [g["displayName"] for g in call(stack, "/me/memberOf", carol).json()["value"]] == [
        "Partner Engineering"
    ]
    assert_graph_error(
        call(stack, "/me/memberOf", graph_token(stack, scopes=["Mail.Read"])),
        403,
        "Authorization_RequestDenied",
    )


def test_me_with_an_app_only_token_is_a_bad_request(stack: DevStack, graph: GraphApi) -> None:
    seed = stack.seed
    token = stack.directory.app_token(seed.contoso, seed.api, seed.graph)
    assert_graph_error(call(stack, "/me", token), 400, "BadRequest")


# -- token validation -----------------------------------------------------------------
@pytest.mark.parametrize("authorization", [None, "", "Bearer", "Bearer   ", "Basic dXNlcjpwYXNz"])
def test_missing_credentials(stack: DevStack, graph: GraphApi, authorization: str | None) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    resp = call(stack, "/me", headers=headers)
    assert_graph_error(resp, 401, "InvalidAuthenticationToken")
    assert resp.headers["WWW-Authenticate"] == BEARER_CHALLENGE
    assert BEARER_CHALLENGE == (
        'Bearer realm="", authorization_uri="https://login.microsoftonline.com/common/oauth2/'
        'authorize", client_id="00000003-0000-0000-c000-000000000000"'
    )


def _rejected(stack: DevStack, token: str, path: str = "/me") -> str:
    resp = call(stack, path, token)
    error = assert_graph_error(resp, 401, "InvalidAuthenticationToken")
    assert resp.headers["WWW-Authenticate"] == BEARER_CHALLENGE
    return error["message"]


def test_malformed_token(stack: DevStack, graph: GraphApi) -> None:
    assert "not well formed" in _rejected(stack, "not-a-jwt")


def test_token_signed_by_another_tenant(stack: DevStack, graph: GraphApi) -> None:
    token = graph_token(stack, key=stack.seed.fabrikam.active_key)  # tid says Contoso
    assert _rejected(stack, token) == "Access token validation failure."
    token = graph_token(stack, key=stack.directory.foreign_key)
    assert _rejected(stack, token) == "Access token validation failure."


def test_unknown_tenant(stack: DevStack, graph: GraphApi) -> None:
    token = graph_token(stack, extra={"tid": "00000000-0000-0000-0000-000000000001"})
    assert "tenant" in _rejected(stack, token).lower()


def test_wrong_audience(stack: DevStack, graph: GraphApi) -> None:
    api_token = stack.seed.user_token(stack.seed.alice)  # aud = API 1, not Graph
    assert "audience" in _rejected(stack, api_token).lower()


def test_expired_token(stack: DevStack, graph: GraphApi, clock) -> None:
    token = graph_token(stack)
    assert call(stack, "/me", token).status_code == 200
    clock.advance(stack.directory.token_lifetime + 1)
    assert "expired" in _rejected(stack, token)


def test_graph_audience_as_app_id_is_accepted(stack: DevStack, graph: GraphApi) -> None:
    token = graph_token(stack, extra={"aud": "00000003-0000-0000-c000-000000000000"})
    assert call(stack, "/me", token).status_code == 200


def test_me_needs_a_user_scope(stack: DevStack, graph: GraphApi) -> None:
    error = assert_graph_error(
        call(stack, "/me", graph_token(stack, scopes=["Mail.Read"])),
        403,
        "Authorization_RequestDenied",
    )
    assert error["message"] == "Insufficient privileges to complete the operation."


# -- continuous access evaluation -------------------------------------------------------
def _claims_of(resp: requests.Response) -> dict:
    header = resp.headers["WWW-Authenticate"]
    assert header.startswith(BEARER_CHALLENGE + ', error="insufficient_claims", claims="')
    return json.loads(base64.b64decode(header.rsplit('claims="', 1)[1].rstrip('"')))


def test_claims_challenge_until_cleared(stack: DevStack, graph: GraphApi, clock) -> None:
    seed = stack.seed
    alice_token, bob_token = graph_token(stack), graph_token(stack, seed.bob)
    graph.require_claims(seed.alice.object_ids[seed.contoso.id])
    resp = call(stack, "/me", alice_token)
    assert_graph_error(resp, 401, "InvalidAuthenticationToken")
    nbf = _claims_of(resp)["access_token"]["nbf"]
    assert nbf["essential"] is True and abs(int(nbf["value"]) - clock()) < 5
    assert call(stack, "/echo/x", alice_token).status_code == 401  # every route
    assert call(stack, "/me", bob_token).status_code == 200  # only that user
    graph.clear_claims()
    assert call(stack, "/me", alice_token).status_code == 200


def test_claims_challenge_with_custom_claims(stack: DevStack, graph: GraphApi) -> None:
    seed = stack.seed
    wanted = {"access_token": {"acrs": {"essential": True, "value": "c1"}}}
    graph.require_claims(seed.alice.object_ids[seed.contoso.id], json.dumps(wanted))
    assert _claims_of(call(stack, "/me", graph_token(stack))) == wanted


# -- echo ---------------------------------------------------------------------------
@pytest.mark.parametrize("method", ["GET", "POST", "PUT", "PATCH", "DELETE"])
def test_echo(stack: DevStack, graph: GraphApi, method: str) -> None:
    seed = stack.seed
    resp = call(
        stack,
        "/echo/sites/root/lists?$top=2&x=a%20b",
        graph_token(stack),
        method=method,
        data=b'{"n": 1}',
        headers={"Content-Type": "application/json", "If-Match": "*"},
    )
    assert resp.status_code == 200
    body = resp.json()
    assert body["method"] == method
    assert body["path"] == "/v1.0/echo/sites/root/lists"
    assert body["rest"] == "sites/root/lists"
    assert body["query"] == {"$top": "2", "x": "a b"}
    assert body["body"] == '{"n": 1}'
    assert body["headers"]["content-type"] == "application/json"
    assert body["headers"]["if-match"] == "*"
    assert "authorization" not in body["headers"]
    assert body["oid"] == seed.alice.object_ids[seed.contoso.id]
    assert body["aud"] == "https://graph.microsoft.com"
    assert graph.calls("echo") == 1


def test_echo_root_status_and_auth(stack: DevStack, graph: GraphApi) -> None:
    token = graph_token(stack)
    assert call(stack, "/echo", token).json()["rest"] == ""
    assert call(stack, "/echo/a?echo_status=404", token).status_code == 404
    assert_graph_error(call(stack, "/echo/a"), 401, "InvalidAuthenticationToken")


# -- routing and faults -----------------------------------------------------------------
@pytest.mark.parametrize("path", ["/nope/x", "/me/memberOf/x", "/me/nothing"])
def test_unknown_path_is_graphs_404_naming_the_whole_path(
    stack: DevStack, graph: GraphApi, path
) -> None:
    token = graph_token(stack)
    error = assert_graph_error(call(stack, path, token), 404, "Request_ResourceNotFound")
    assert f"Resource '{path[1:]}' does not exist" in error["message"]


def test_wrong_method_is_405(stack: DevStack, graph: GraphApi) -> None:
    assert_graph_error(
        call(stack, "/me", graph_token(stack), method="DELETE"), 405, "Request_BadRequest"
    )


def test_injected_throttling(stack: DevStack, graph: GraphApi) -> None:
    token = graph_token(stack)
    graph.inject(Fault(status=429, retry_after=7, count=1, route="me"))
    resp = call(stack, "/me", token)
    assert_graph_error(resp, 429, "TooManyRequests")
    assert resp.headers["Retry-After"] == "7"
    assert call(stack, "/me", token).status_code == 200
    assert graph.calls("me") == 2


def test_injected_outage_on_every_route(stack: DevStack, graph: GraphApi) -> None:
    graph.inject(Fault(status=503, retry_after=1))
    assert_graph_error(call(stack, "/echo/a", graph_token(stack)), 503, "serviceNotAvailable")
    graph.clear_faults()
    assert call(stack, "/echo/a", graph_token(stack)).status_code == 200
