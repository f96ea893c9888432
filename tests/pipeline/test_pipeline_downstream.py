"""The downstream call: relay rules, path safety, retries, CAE challenges, failures."""

from __future__ import annotations

import base64
import json

import pytest

from devstack.httpserver import Fault
from tests.client import call


@pytest.fixture
def alice_token(stack) -> str:
    return stack.seed.user_token(stack.seed.alice)


def test_relay_passes_method_query_body_and_safe_headers(service, stack, alice_token):
    reply = call(
        "downstream/echo/items/42",
        alice_token,
        method="POST",
        query={"$select": "id,name"},
        body=b'{"name": "x"}',
        headers={
            "Content-Type": "application/json",
            "X-Forwarded-For": "1.2.3.4",
            "Cookie": "session=secret",
            "ConsistencyLevel": "eventual",
        },
    )
    assert reply.status == 200, reply.body
    echoed = reply.json()
    assert echoed["method"] == "POST"
    assert echoed["path"] == "/v1.0/echo/items/42"
    assert echoed["query"] == {"$select": "id,name"}
    assert json.loads(echoed["body"]) == {"name": "x"}
    assert echoed["headers"]["consistencylevel"] == "eventual"
    assert "cookie" not in echoed["headers"] and "x-forwarded-for" not in echoed["headers"]
    # API 2 saw the OBO token (its own audience), never the caller's token for API 1
    assert echoed["aud"] == "https://graph.microsoft.com"
    assert echoed["oid"] == stack.seed.alice.object_ids[stack.seed.contoso.id]


@pytest.mark.parametrize("method", ["GET", "PUT", "PATCH", "DELETE"])
def test_relay_methods(service, method, alice_token):
    reply = call("downstream/echo/x", alice_token, method=method)
    assert reply.status == 200
    assert reply.json()["method"] == method


@pytest.mark.parametrize(
    "path",
    [
        "../me",
        "echo/../../admin",
        "echo/%2e%2e/x",
        "@evil.example/x",
        "https:evil.example",
        "echo//x",
        "echo\\x",
        "echo/%2F",
        "echo/a b",
        "echo/./x",
        "http://evil.example/",
    ],
)
def test_paths_that_could_escape_the_base_url_are_400(service, stack, path, alice_token):
    reply = call("downstream/" + path, alice_token)
    assert reply.status == 400
    assert reply.json()["code"] == "OBO2101"
    assert stack.entra.calls("token") == 0  # refused before any exchange


def test_downstream_4xx_is_relayed_as_is(service, alice_token):
    reply = call("downstream/echo/x", alice_token, query={"echo_status": "404"})
    assert reply.status == 404
    assert reply.json()["method"] == "GET"


def test_downstream_5xx_becomes_502(service, stack, alice_token):
    stack.graph.inject(Fault(status=500, route="echo"))
    reply = call("downstream/echo/x", alice_token, method="POST")
    assert reply.status == 502
    assert reply.json()["code"] == "OBO6001"
    assert stack.graph.calls("echo") == 1  # POST is not retried


def test_idempotent_request_retried_after_503_honouring_retry_after(
    service, stack, sleeps, alice_token
):
    stack.graph.inject(Fault(status=503, retry_after=2, route="echo", count=1))
    reply = call("downstream/echo/x", alice_token)
    assert reply.status == 200
    assert stack.graph.calls("echo") == 2
    assert sleeps == [2.0]


def test_retries_are_bounded(service, stack, sleeps, alice_token):
    stack.graph.inject(Fault(status=429, retry_after=1, route="echo"))
    reply = call("downstream/echo/x", alice_token)
    assert reply.status == 429  # relayed after the last attempt
    assert reply.headers["Retry-After"] == "1"
    assert stack.graph.calls("echo") == 3
    assert sleeps == [1.0, 1.0]


def test_long_retry_after_is_relayed_not_waited(service, stack, sleeps, alice_token):
    stack.graph.inject(Fault(status=429, retry_after=120, route="echo"))
    reply = call("downstream/echo/x", alice_token)
    assert reply.status == 429
    assert sleeps == []


def test_downstream_timeout_is_504(service, stack, alice_token):
    stack.graph.inject(Fault(latency=1.5, route="me"))
    reply = call("me", alice_token)
    assert reply.status == 504
    assert reply.json()["code"] == "OBO6002"


def test_downstream_unreachable_is_502(service, stack, alice_token):
    stack.graph.inject(Fault(drop=True, route="me"))
    reply = call("me", alice_token, method="GET")
    assert reply.status in (502,)
    assert reply.json()["code"] in ("OBO6003", "OBO6001")


def test_cae_claims_challenge_reaches_the_client_and_drops_the_cached_token(
    service, stack, alice_token
):
    oid = stack.seed.alice.object_ids[stack.seed.contoso.id]
    assert call("me", alice_token).status == 200
    claims = base64.b64decode(stack.graph.require_claims(oid)).decode()
    try:
        reply = call("me", alice_token)
        assert reply.status == 401
        assert reply.json()["code"] == "OBO6004"
        assert json.loads(reply.json()["claims"]) == json.loads(claims)
        encoded = reply.www_authenticate.split('claims="')[1].split('"')[0]
        assert base64.b64decode(encoded).decode() == reply.json()["claims"]
    finally:
        stack.graph.clear_claims()
    stack.entra.reset_counters()
    assert call("me", alice_token).status == 200
    assert stack.entra.calls("token") == 1  # the refused token was not served again
