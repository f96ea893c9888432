"""Methods and headers that cannot be relayed are refused before the exchange (no Entra call,
no API 2 call), with a precise 4xx instead of a 500 from the HTTP client."""

from __future__ import annotations

import pytest

from tests.client import call
from tests.fuzzing import outbound


@pytest.fixture
def alice_token(stack) -> str:
    return stack.seed.user_token(stack.seed.alice)


def _refused(reply, status: int, code: str) -> None:
    assert reply.status == status, reply.body
    assert reply.headers["Content-Type"] == "application/problem+json"
    assert reply.headers["Cache-Control"] == "no-store"
    assert reply.json()["code"] == code


@pytest.mark.parametrize(
    "method",
    [
        "HEAD",
        "OPTIONS",
        "TRACE",
        "CONNECT",
        "",
        "G ET",
        'GET"',
        "GET\r\nX: 1",
        "PROPFIND",
        "M\u00c9THOD",
    ],
)
def test_methods_the_route_does_not_relay_are_405_with_allow(service, stack, alice_token, method):
    call("me", alice_token)  # keys and certificate loaded: what follows must cost nothing
    before = outbound(stack)
    reply = call("downstream/echo/x", alice_token, method=method)
    _refused(reply, 405, "OBO2104")
    assert reply.headers["Allow"] == "GET, POST, PUT, PATCH, DELETE"
    assert outbound(stack) == before


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("Accept", "a\r\nX-Injected: 1"),
        ("Accept", "a\nb"),
        ("Content-Type", "x\x00"),
        ("If-Match", "\u00e9tag"),
        ("Prefer", "\u2028"),
        ("Accept-Language", " en"),
        ("client-request-id", "id\t"),
        ("ConsistencyLevel", "\x7f"),
    ],
)
def test_forwarded_headers_http_cannot_carry_are_400(service, stack, alice_token, name, value):
    call("me", alice_token)
    before = outbound(stack)
    reply = call("downstream/echo/x", alice_token, headers={name: value})
    _refused(reply, 400, "OBO2105")
    assert name.lower() in reply.json()["detail"]
    assert outbound(stack) == before


def test_headers_that_are_not_forwarded_are_not_judged(service, alice_token):
    reply = call(
        "downstream/echo/x", alice_token, headers={"X-Custom": "\u00e9\r\n", "Accept": "*/*"}
    )
    assert reply.status == 200, reply.body
    assert reply.json()["headers"]["accept"] == "*/*"
