"""Named downstream APIs through the relay: only those that opted in
(OBO_DOWNSTREAM__<NAME>__RELAY=true), at /api/apis/{name}/{*path}, with the default API's
path rules; API 2's own answers, 4xx included, pass through."""

from __future__ import annotations

import pytest

from tests.client import call


@pytest.fixture
def alice(stack) -> str:
    return stack.seed.user_token(stack.seed.alice)


def test_an_opted_in_api_is_relayed_with_its_own_token(service, stack, alice):
    reply = call("apis/orders/orders", alice)
    assert reply.status == 200, reply.body
    owner = stack.seed.alice.object_ids[stack.seed.contoso.id]
    assert [o["owner"] for o in reply.json()["value"]] == [owner, owner]
    assert stack.orders.calls("orders") == 1  # the Orders API checked its audience and scope


def test_names_are_case_insensitive(service, alice):
    assert call("apis/ORDERS/orders", alice).status == 200


@pytest.mark.parametrize("route", ["apis/graph/me", "apis/default/me", "apis/nope/me"])
def test_apis_not_opted_in_are_404_without_saying_which_exist(service, stack, alice, route):
    reply = call(route, alice)
    assert reply.status == 404
    assert reply.json()["code"] == "OBO2102"
    assert reply.json()["detail"] == "No downstream API is relayed under this name."
    assert stack.entra.calls("token") == 0


def test_a_named_relay_keeps_the_path_rules(service, stack, alice):
    reply = call("apis/orders/../admin", alice)
    assert (reply.status, reply.json()["code"]) == (400, "OBO2101")
    assert stack.entra.calls("token") == 0


def test_the_apis_4xx_passes_through_as_its_own_json(service, alice):
    reply = call("apis/orders/orders/unknown", alice)
    assert reply.status == 404
    assert reply.json() == {"error": {"code": "OrderNotFound", "message": "No such order."}}


def test_the_named_relay_needs_a_valid_caller_too(service, stack):
    reply = call("apis/orders/orders", "not.a.jwt")
    assert (reply.status, reply.json()["code"]) == (401, "OBO3001")
