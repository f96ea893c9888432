"""The worked example, GET /api/profile (function_app.py): Graph's /me and the names of
/me/memberOf merged, with one exchange for both calls, cached for the next request."""

from __future__ import annotations

import base64
import json

from devstack.httpserver import Fault
from tests.client import call

GRAPH_USER_READ = "https://graph.microsoft.com/User.Read"


def test_profile_merges_me_and_group_names_with_one_exchange(service, stack):
    seed = stack.seed
    reply = call("profile", seed.user_token(seed.alice))
    assert reply.status == 200, reply.body
    assert reply.headers["Cache-Control"] == "no-store"
    assert reply.json() == {
        "id": seed.alice.object_ids[seed.contoso.id],
        "displayName": "Alice",
        "userPrincipalName": seed.alice.upn,
        "mail": seed.alice.upn,
        "jobTitle": None,
        "tenantId": seed.contoso.id,
        "groups": ["All Contoso", "Sales"],
    }
    assert stack.entra.calls("token") == 1  # one exchange for both Graph calls
    assert (stack.graph.calls("me"), stack.graph.calls("memberOf")) == (1, 1)


def test_the_next_request_is_served_from_the_cache(service, stack):
    token = stack.seed.user_token(stack.seed.alice)
    assert call("profile", token).status == 200
    stack.entra.reset_counters()
    assert call("profile", token).status == 200
    assert stack.entra.calls("token") == 0


def test_a_guest_sees_the_groups_of_the_tenant_she_called_in(service, stack):
    seed = stack.seed
    body = call("profile", seed.user_token(seed.carol, seed.contoso)).json()
    assert body["groups"] == ["Partner Engineering"]
    assert body["id"] == seed.carol.object_ids[seed.contoso.id]
    assert stack.entra.calls("token", seed.contoso.id) == 1


def test_without_group_permission_graph_withholds_the_names(configure, stack):
    configure(OBO_DOWNSTREAM__GRAPH__SCOPES=GRAPH_USER_READ)
    body = call("profile", stack.seed.user_token(stack.seed.alice)).json()
    assert body["groups"] == [None, None]  # Graph's "limited information" for User.Read


def test_missing_admin_consent_is_403_naming_the_scopes_in_the_log(service, stack, caplog):
    reply = call("profile", stack.seed.user_token(stack.seed.bob))  # Fabrikam: no consent
    assert reply.status == 403
    problem = reply.json()
    assert problem["code"] == "AADSTS65001"
    # the scopes are configuration: the operator's log names them, the caller's body does not
    assert "GroupMember.Read.All" not in reply.body.decode()
    logged = " ".join(r.getMessage() for r in caplog.records if r.name.startswith("obo"))
    assert "https://graph.microsoft.com/GroupMember.Read.All" in logged


def test_graph_failing_is_502_and_graphs_404_is_a_typed_downstream_error(service, stack):
    token = stack.seed.user_token(stack.seed.alice)
    stack.graph.inject(Fault(status=500, route="memberOf"))
    reply = call("profile", token)
    assert (reply.status, reply.json()["code"]) == (502, "OBO6001")
    stack.graph.clear_faults()
    stack.graph.inject(Fault(status=404, route="memberOf"))  # Graph's own error JSON
    problem = call("profile", token).json()
    assert (problem["code"], problem["api"], problem["downstream_status"]) == (
        "OBO6005",
        "graph",
        404,
    )
    assert reply.headers["Content-Type"] == "application/problem+json"


def test_a_cae_challenge_reaches_the_client_and_the_next_call_exchanges_again(service, stack):
    seed = stack.seed
    token = seed.user_token(seed.alice)
    assert call("profile", token).status == 200
    stack.graph.require_claims(seed.alice.object_ids[seed.contoso.id])
    try:
        reply = call("profile", token)
        assert (reply.status, reply.json()["code"]) == (401, "OBO6004")
        claims = reply.www_authenticate.split('claims="')[1].split('"')[0]
        assert json.loads(base64.b64decode(claims)) == json.loads(reply.json()["claims"])
    finally:
        stack.graph.clear_claims()
    stack.entra.reset_counters()
    assert call("profile", token).status == 200
    assert stack.entra.calls("token") == 1  # the revoked token was dropped from the cache
