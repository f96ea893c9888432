"""Outbound calls keep nothing of one user for the next, say nothing of the configuration to
callers, survive whatever Entra, Key Vault or the identity endpoint answer, log no forged
lines, and never relay a redirect that leaves the downstream base URL (issue 9: findings
1, 6, 7, 8 and 10; docs/security.md)."""

from __future__ import annotations

import base64
import json
import logging

import pytest

from devstack.httpserver import Fault
from obo.user_assertion import UserAssertion
from tests.client import call
from tests.conftest import exchange_fields

JSON = "application/json; charset=utf-8"

# Java/ASP.NET session cookies and load-balancer affinity cookies, with Domain/Path variants
API_COOKIES = [
    "JSESSIONID=alice-7F3A; Path=/; Secure; HttpOnly",
    "ASP.NET_SessionId=alice-s1; path=/; HttpOnly; SameSite=Lax",
    "ARRAffinity=0a1b2c; Path=/; HttpOnly; Domain=127.0.0.1",
    "ARRAffinitySameSite=0a1b2c; Path=/; HttpOnly; SameSite=None; Secure; Domain=127.0.0.1",
    "AWSALB=alb-alice; Expires=Fri, 01 Jan 2100 00:00:00 GMT; Path=/",
    "route=v10-node2; Path=/v1.0",
    "echo-only=1; Path=/v1.0/echo",
    "SERVERID=s2; Max-Age=3600",
    "dotted=1; Domain=.127.0.0.1; Path=/",
]
# what Entra's token and discovery endpoints set
ENTRA_COOKIES = [
    "fpc=AkQXqz1; expires=Fri, 01 Jan 2100 00:00:00 GMT; path=/; secure; HttpOnly; SameSite=None",
    "stsservicecookie=estsfd; path=/; secure; samesite=none; httponly",
    "x-ms-gateway-slice=estsfd; path=/; secure; samesite=none; httponly",
    "esctx=PAQABAAEAAAA; domain=.login.microsoftonline.com; path=/; secure; HttpOnly",
]


def _token(stack, user, **kwargs) -> str:
    return stack.seed.user_token(user, **kwargs)


def _assert_reached_without_cookies(service, route: str | None = None) -> None:
    seen = service.cookies(route)
    assert seen, f"no request reached {service.name} {route or ''}"
    assert seen == [None] * len(seen), seen


# -- 1. no state of one user reaches another ---------------------------------------------


def test_api2_cookies_set_for_one_user_never_reach_the_next(service, stack):
    seed = stack.seed
    stack.graph.set_cookies = API_COOKIES
    alice = call("downstream/echo/a", _token(stack, seed.alice))
    assert alice.status == 200, alice.body
    assert not any(k.lower() == "set-cookie" for k in alice.headers)  # nor relayed to Alice
    stack.graph.set_cookies = []
    stack.graph.reset_counters()

    bob = call("downstream/echo/a", _token(stack, seed.bob))
    assert bob.status == 200, bob.body
    assert bob.json()["oid"] == seed.bob.object_ids[seed.fabrikam.id]
    assert "cookie" not in bob.json()["headers"]  # what API 2 received
    _assert_reached_without_cookies(stack.graph)


def test_api2_cookies_are_not_sent_back_to_the_same_user_either(service, stack):
    token = _token(stack, stack.seed.alice)
    stack.graph.set_cookies = API_COOKIES
    for _ in range(2):
        reply = call("downstream/echo/a", token)
        assert reply.status == 200 and "cookie" not in reply.json()["headers"]
    _assert_reached_without_cookies(stack.graph, "echo")
    assert len(service.downstream["default"]._session.cookies) == 0  # the jar never stores


def test_entra_cookies_from_one_users_exchange_and_discovery_never_reach_the_next(service, stack):
    seed = stack.seed
    stack.entra.set_cookies = ENTRA_COOKIES
    assert call("me", _token(stack, seed.alice)).status == 200  # Contoso: discovery, keys, token
    stack.entra.set_cookies = []
    stack.entra.reset_counters()

    assert call("me", _token(stack, seed.bob)).status == 200  # Fabrikam: all of them again
    for route in ("discovery_v2", "keys", "token"):
        assert stack.entra.calls(route, seed.fabrikam.id) >= 1, route
        _assert_reached_without_cookies(stack.entra, route)


def test_an_answer_with_retry_after_is_never_replayed_to_another_user(service, stack):
    # MSAL remembers any answer carrying Retry-After under (URL, client, scope), not the user
    seed = stack.seed
    stack.entra.inject(Fault(route="token", headers={"Retry-After": "60"}, count=1))
    assert (
        call("me", _token(stack, seed.alice)).json()["id"] == seed.alice.object_ids[seed.contoso.id]
    )
    carol = call("me", _token(stack, seed.carol, tenant=seed.contoso))  # same tenant, scope
    assert carol.status == 200, carol.body
    assert carol.json()["id"] == seed.carol.object_ids[seed.contoso.id]
    assert stack.entra.calls("token", seed.contoso.id) == 2


def test_a_refusal_with_retry_after_is_never_replayed_to_another_user(service, stack):
    seed = stack.seed
    stack.entra.inject(Fault(route="token", headers={"Retry-After": "60"}, count=1))
    dave = call("me", _token(stack, seed.dave))  # Entra: 400, MFA required
    assert (dave.status, dave.json()["code"]) == (401, "AADSTS50076")
    alice = call("me", _token(stack, seed.alice))
    assert alice.status == 200 and alice.json()["id"] == seed.alice.object_ids[seed.contoso.id]


def test_key_vault_requests_carry_no_cookie_from_earlier_answers(service, stack):
    stack.vault.set_cookies = ["kv-affinity=node3; Path=/; Secure", "JSESSIONID=kv; Path=/"]
    stack.identity.set_cookies = ["mi-affinity=1; Path=/"]
    assert call("me", _token(stack, stack.seed.alice)).status == 200
    assert len(stack.vault.cookies()) >= 2  # the certificate, then its secret
    _assert_reached_without_cookies(stack.vault)
    _assert_reached_without_cookies(stack.identity)


def test_identity_endpoint_retry_carries_no_cookie_from_the_failed_answer(configure, stack):
    configure(
        OBO_CLIENT_CREDENTIAL="managed_identity", OBO_KEY_VAULT_URL="", OBO_CERTIFICATE_NAME=""
    )
    stack.identity.set_cookies = ["mi-affinity=node1; Path=/", "JSESSIONID=mi; Path=/msi"]
    stack.identity.inject(Fault(status=500, count=1, route="token"))
    assert call("me", _token(stack, stack.seed.alice)).status == 200
    assert stack.identity.calls("token") == 2  # azure-identity retried once
    _assert_reached_without_cookies(stack.identity)


def test_shared_session_keeps_no_auth_no_cookies_and_follows_no_redirect(service, stack):
    from obo.transport import new_session

    token = _token(stack, stack.seed.alice)
    assertion = UserAssertion(token)
    obo = service.exchanger.token_for(service.validator.validate(assertion), assertion)
    session = new_session(str(stack.ca.ca_file))
    session.cookies.set("planted", "1")  # even an explicit set is not kept
    assert len(session.cookies) == 0
    stack.graph.set_cookies = API_COOKIES
    moved = session.get(
        f"{stack.graph.base_url}/v1.0/echo/x",
        params={"echo_status": "302", "echo_location": "/v1.0/echo/y"},
        headers={"Authorization": obo.authorization},
    )
    assert moved.status_code == 302 and moved.history == []  # an answer, not followed
    assert len(session.cookies) == 0 and stack.graph.calls("echo") == 1


def test_no_ambient_credentials_from_netrc(service, stack, tmp_path, monkeypatch):
    # requests adds Basic auth from ~/.netrc (or $NETRC) for a matching host unless told not to
    netrc = tmp_path / "netrc"
    netrc.write_text("machine 127.0.0.1 login shared password s3cr3t\n")
    monkeypatch.setenv("NETRC", str(netrc))
    reply = call("downstream/echo/a", _token(stack, stack.seed.alice))
    assert reply.status == 200, reply.body  # API 2 got the user's OBO token, not Basic auth
    assert reply.json()["aud"] == "https://graph.microsoft.com"


# -- 6. no forged log lines ---------------------------------------------------------------


def _b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def _forged(valid: str, header: dict | None = None, **claims: object) -> str:
    head, body, signature = valid.split(".")
    old_header = json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))
    old_claims = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    return f"{_b64({**old_header, **(header or {})})}.{_b64({**old_claims, **claims})}.{signature}"


INJECTED = "x\r\n2026-01-01 00:00:00 CRITICAL obo FAKE admin login\u2028\x1b[2J\u202e"


def _app_records(caplog) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name.split(".")[0] == "obo"]


def _assert_one_line_each(records: list[logging.LogRecord]) -> None:
    assert records, "expected the refusal to be logged"
    for record in records:
        text = record.getMessage() + json.dumps(exchange_fields(record), default=str)
        for raw in ("\r", "\n", "\u2028", "\x1b", "\u202e"):
            assert raw not in record.getMessage(), record.getMessage()
            assert raw not in text, text


@pytest.mark.parametrize(
    "header, claims",
    [
        ({}, {"aud": INJECTED}),
        ({}, {"aud": "\r\nFAKE"}),
        ({"alg": INJECTED}, {}),
        ({"kid": INJECTED}, {}),
        ({}, {"iss": INJECTED}),
        ({}, {"tid": INJECTED}),
        ({}, {"ver": INJECTED}),
        ({}, {"aud": "https://graph.microsoft.com", "scp": INJECTED}),
    ],
    ids=["aud", "aud-crlf", "alg", "kid", "iss", "tid", "ver", "graph-aud"],
)
def test_unverified_claims_never_forge_log_lines(service, stack, caplog, header, claims):
    caplog.set_level(logging.DEBUG)
    reply = call("me", _forged(_token(stack, stack.seed.alice), header, **claims))
    assert reply.status == 401
    assert "\n" not in reply.www_authenticate and "\r" not in reply.www_authenticate
    _assert_one_line_each(_app_records(caplog))


def test_entra_error_strings_never_forge_log_lines(service, stack, caplog):
    caplog.set_level(logging.DEBUG)
    answer = {
        "error": INJECTED,
        "error_description": INJECTED,
        "error_codes": [INJECTED],
        "suberror": INJECTED,
        "correlation_id": INJECTED,
        "trace_id": INJECTED,
    }
    stack.entra.inject(
        Fault(status=400, route="token", body=json.dumps(answer).encode(), content_type=JSON)
    )
    reply = call("me", _token(stack, stack.seed.alice))
    assert reply.status == 502 and reply.json()["code"] == "OBO5004"
    assert INJECTED not in reply.body.decode()
    _assert_one_line_each(_app_records(caplog))


# -- 7. error bodies disclose no configuration -------------------------------------------

SAS_URL = "https://kvobo.vault.azure.net/?sv=2024-01-01&sig=S3cr3tSignature%3D"


@pytest.mark.parametrize(
    "name, value, secret",
    [
        ("OBO_KEY_VAULT_URL", SAS_URL, "S3cr3tSignature"),
        ("OBO_DOWNSTREAM_BASE_URL", "https://user:hunter2@api.contoso.example/v1", "hunter2"),
        ("OBO_AUTHORITY_HOST", "Endpoint=sb://x/;SharedAccessKey=k3yMat3rial", "k3yMat3rial"),
        ("OBO_CLIENT_ID", "s3cr3t-pasted-here", "s3cr3t-pasted-here"),
        ("OBO_TRACE", "s3cr3t-pasted-here", "s3cr3t-pasted-here"),
        ("OBO_CA_BUNDLE", "/home/site/private/ca.pem", "/home/site/private"),
    ],
)
def test_refused_setting_value_is_never_answered_and_secrets_never_logged(
    app_settings, monkeypatch, caplog, name, value, secret
):
    from function_app import obo

    monkeypatch.setenv(name, value)
    obo.use(None)
    try:
        reply = call("me", "a.b.c")
    finally:
        obo.use(None)
    assert reply.status == 500 and reply.json()["code"] == "OBO1001"
    assert reply.json()["setting"] == name
    assert secret not in reply.body.decode()
    logged = " ".join(r.getMessage() for r in caplog.records)
    assert name in logged  # operators learn which setting
    if name != "OBO_CA_BUNDLE":  # a file path is no secret: operators see it in the log
        assert secret not in logged


def test_refused_url_setting_is_logged_without_its_query(app_settings, monkeypatch, caplog):
    from function_app import obo

    monkeypatch.setenv("OBO_KEY_VAULT_URL", SAS_URL)
    obo.use(None)
    try:
        assert call("me", "a.b.c").status == 500
    finally:
        obo.use(None)
    logged = " ".join(r.getMessage() for r in caplog.records)
    assert "https://kvobo.vault.azure.net/ (query not shown)" in logged
    assert "sig=" not in logged


def _assert_body_hides(reply, *secrets: str) -> None:
    text = reply.body.decode() + json.dumps(reply.headers)
    for secret in secrets:
        assert secret not in text, secret


def _assert_logged(caplog, *specifics: str) -> None:
    logged = " ".join(r.getMessage() for r in caplog.records if r.name.startswith("obo"))
    for specific in specifics:
        assert specific in logged, specific


@pytest.mark.parametrize(
    "fault, status, code",
    [
        (Fault(status=404, route="get_certificate"), 502, "OBO4003"),
        (Fault(status=403, route="get_certificate"), 502, "OBO4002"),
        (Fault(status=503, route="get_certificate"), 503, "OBO4007"),
        (Fault(drop=True, route="get_certificate"), 503, "OBO4001"),
        (
            Fault(status=200, route="get_secret", body=b'{"value": "no key"}', content_type=JSON),
            502,
            "OBO4006",
        ),
    ],
    ids=["not-found", "forbidden", "unavailable", "dropped", "no-key"],
)
def test_key_vault_failures_do_not_name_the_vault_or_certificate(
    service, stack, caplog, fault, status, code
):
    caplog.set_level(logging.INFO)
    stack.vault.inject(fault)
    reply = call("me", _token(stack, stack.seed.alice))
    assert (reply.status, reply.json()["code"]) == (status, code), reply.body
    vault_host = stack.vault.base_url.removeprefix("https://")
    _assert_body_hides(reply, vault_host, "obo-api-cert", "Key Vault Secrets User")
    _assert_logged(caplog, vault_host, "obo-api-cert")
    # within the failure window the same failure comes back without Key Vault, a 503/504
    # as a 503 (obo.shared_load): the caller still reads the generic sentence only
    again = call("me", _token(stack, stack.seed.bob))
    assert (again.status, again.json()["code"]) == (min(status, 503), code), again.body
    _assert_body_hides(again, vault_host, "obo-api-cert", "Key Vault Secrets User")


def test_key_vault_timeout_does_not_name_the_vault_or_certificate(app_settings, stack):
    from obo.config import Settings
    from obo.credentials import CertificateSource
    from obo.errors import DependencyTimeout
    from obo.transport import new_session

    settings = Settings.from_env()
    # the injectable seam: a session with a short read timeout, used by the Key Vault clients
    source = CertificateSource(settings, session=new_session(settings.ca_bundle, read_timeout=0.3))
    stack.vault.inject(Fault(latency=0.6, route="get_certificate"))
    with pytest.raises(DependencyTimeout) as info:
        source.current()
    status, _, body = info.value.render()
    assert (status, info.value.code) == (504, "OBO4005")
    vault_host = stack.vault.base_url.removeprefix("https://")
    assert vault_host not in body.decode() and "obo-api-cert" not in body.decode()
    assert vault_host in info.value.detail and "obo-api-cert" in info.value.detail  # the log's


def test_missing_consent_names_the_scopes_only_in_the_log(service, stack, caplog):
    reply = call("me", _token(stack, stack.seed.tess))
    assert reply.status == 403 and reply.json()["code"] == "AADSTS65001"
    assert "admin" in reply.json()["detail"]
    _assert_body_hides(reply, "User.Read", "graph.microsoft.com")
    _assert_logged(caplog, "https://graph.microsoft.com/User.Read")


def test_identity_failure_names_neither_audience_nor_settings_to_callers(configure, stack, caplog):
    configure(
        OBO_CLIENT_CREDENTIAL="managed_identity",
        OBO_KEY_VAULT_URL="",
        OBO_CERTIFICATE_NAME="",
        IDENTITY_HEADER="wrong",
    )
    reply = call("me", _token(stack, stack.seed.alice))
    assert (reply.status, reply.json()["code"]) == (503, "OBO4004")
    _assert_body_hides(reply, "AzureADTokenExchange", "AZURE_CLIENT_ID")
    _assert_logged(caplog, "api://AzureADTokenExchange", "AZURE_CLIENT_ID")


# -- 8. whatever Entra answers: a clean 502, nothing sent downstream ----------------------

BAD_BODIES = {
    "array": b'["access_token", "x"]',
    "string": b'"eyJ0eXAiOiJKV1QifQ.e30.sig"',
    "number": b"42",
    "null": b"null",
    "true": b"true",
    "not-json": b"access_token=abc&expires_in=3600",
    "truncated": b'{"access_token": "abc", "expires_in": 36',
    "html": b"<html><body><h1>502 Bad Gateway</h1></body></html>",
    "empty": b"",
    "deeply-nested": b"[" * 100_000 + b"]" * 100_000,
}


def _token_answer(**fields: object) -> bytes:
    return json.dumps({"token_type": "Bearer", "scope": "User.Read", **fields}).encode()


GOOD_TOKEN = "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.eyJhdWQiOiJ4In0.c2ln"
BAD_TOKEN_ANSWERS = {
    "token-object": _token_answer(access_token={"nested": "x"}, expires_in=3600),
    "token-list": _token_answer(access_token=["a", "b"], expires_in=3600),
    "token-number": _token_answer(access_token=12345, expires_in=3600),
    "token-empty": _token_answer(access_token="", expires_in=3600),
    "token-null": _token_answer(access_token=None, expires_in=3600),
    "token-crlf": _token_answer(access_token="abc\r\nX-Injected: 1", expires_in=3600),
    "token-space": _token_answer(access_token="abc def", expires_in=3600),
    "expires-missing": _token_answer(access_token=GOOD_TOKEN),
    "expires-negative": _token_answer(access_token=GOOD_TOKEN, expires_in=-5),
    "expires-zero": _token_answer(access_token=GOOD_TOKEN, expires_in=0),
    "expires-huge": _token_answer(access_token=GOOD_TOKEN, expires_in=10**12),
    "expires-text": _token_answer(access_token=GOOD_TOKEN, expires_in="soon"),
    "expires-nan": _token_answer(access_token=GOOD_TOKEN, expires_in="NaN"),
    "expires-list": _token_answer(access_token=GOOD_TOKEN, expires_in=[3600]),
    "expires-bool": _token_answer(access_token=GOOD_TOKEN, expires_in=True),
    "expires-inf": b'{"access_token": "' + GOOD_TOKEN.encode() + b'", "expires_in": 1e400}',
    "neither-token-nor-error": _token_answer(),
    "not-utf8": b'{"access_token": "\xff\xfe", "expires_in": 3600}',
}


@pytest.mark.parametrize("status", [200, 400])
@pytest.mark.parametrize("body", BAD_BODIES.values(), ids=BAD_BODIES.keys())
def test_token_answer_that_is_not_a_json_object_is_502(service, stack, body, status):
    stack.entra.inject(Fault(status=status, route="token", body=body, content_type=JSON))
    reply = call("me", _token(stack, stack.seed.alice))
    assert (reply.status, reply.json()["code"]) == (502, "OBO5003"), reply.body
    assert reply.headers["Content-Type"] == "application/problem+json"
    assert stack.graph.calls("me") == 0


@pytest.mark.parametrize("body", BAD_TOKEN_ANSWERS.values(), ids=BAD_TOKEN_ANSWERS.keys())
def test_token_answer_with_unusable_fields_is_502_and_never_sent_downstream(service, stack, body):
    stack.entra.inject(Fault(status=200, route="token", body=body, content_type=JSON))
    reply = call("me", _token(stack, stack.seed.alice))
    assert (reply.status, reply.json()["code"]) == (502, "OBO5004"), reply.body
    assert stack.graph.calls("me") == 0


@pytest.mark.parametrize(
    "body, code",
    [
        (b"[]", "OBO5003"),
        (b"<html></html>", "OBO5003"),
        (_token_answer(access_token={"nested": "x"}, expires_in="3599"), "OBO5004"),
        (_token_answer(access_token="PHNhbWw+", expires_in="-1"), "OBO5004"),
    ],
    ids=["array", "html", "token-object", "expires-negative"],
)
def test_v1_saml_answers_of_the_wrong_type_are_502(configure, stack, body, code):
    configure(**stack.saml_overrides("saml2", "v1"))
    stack.entra.inject(Fault(status=200, route="token_v1", body=body, content_type=JSON))
    reply = call("downstream/whoami", _token(stack, stack.seed.alice))
    assert (reply.status, reply.json()["code"]) == (502, code), reply.body
    assert stack.saml_api.calls("whoami") == 0


@pytest.mark.parametrize(
    "codes",
    [50076, "50076", {"50076": 1}, [{"code": 1}], ["²"], [True], [None], [10**30], "", None],
    ids=[
        "int",
        "string",
        "object",
        "objects",
        "unicode-digit",
        "bool",
        "null",
        "huge",
        "empty",
        "missing",
    ],
)
def test_error_codes_of_odd_types_are_a_clean_502(service, stack, codes):
    answer = {
        "error": "invalid_grant",
        "error_description": "AADSTS50076: ...",
        "error_codes": codes,
        "correlation_id": "3f1c2d9e-0000-4000-8000-000000000001",
    }
    stack.entra.inject(
        Fault(status=400, route="token", body=json.dumps(answer).encode(), content_type=JSON)
    )
    reply = call("me", _token(stack, stack.seed.alice))
    assert reply.status == 502, reply.body
    assert reply.json()["code"] == "invalid_grant"  # Entra's error, no AADSTS number invented
    assert reply.json()["correlation_id"] == answer["correlation_id"]


@pytest.mark.parametrize(
    "answer",
    [
        {"error": {"nested": 1}},
        {"error": ["invalid_grant"]},
        {"error": 7},
        {"error": ""},
        {"error": "invalid grant!"},
        {},
    ],
    ids=["object", "list", "number", "empty", "not-a-code", "nothing"],
)
def test_error_names_of_odd_types_are_obo5004(service, stack, answer):
    stack.entra.inject(
        Fault(status=400, route="token", body=json.dumps(answer).encode(), content_type=JSON)
    )
    reply = call("me", _token(stack, stack.seed.alice))
    assert (reply.status, reply.json()["code"]) == (502, "OBO5004"), reply.body


def test_claims_challenge_with_claims_of_the_wrong_type_stays_a_challenge(service, stack):
    answer = {
        "error": "interaction_required",
        "error_codes": [50076],
        "suberror": {"x": 1},
        "claims": {"access_token": {"capolids": {"essential": True}}},
    }
    stack.entra.inject(
        Fault(status=400, route="token", body=json.dumps(answer).encode(), content_type=JSON)
    )
    reply = call("me", _token(stack, stack.seed.alice))
    assert (reply.status, reply.json()["code"]) == (401, "AADSTS50076")
    assert reply.json()["claims"] == "" and "suberror" not in reply.json()


@pytest.mark.parametrize(
    "body",
    [
        b"[]",
        b'"x"',
        b"null",
        b"<html>sign in</html>",
        b'{"token_endpoint": 5}',
        b'{"authorization_endpoint": "https://x/a", "token_endpoint": ["https://x/t"]}',
    ],
    ids=["array", "string", "null", "html", "number-endpoint", "list-endpoint"],
)
def test_exchange_discovery_document_of_the_wrong_type_is_502(service, stack, body):
    seed = stack.seed
    token = _token(stack, seed.alice)
    service.validator.validate(UserAssertion(token))  # keys known: the next discovery is MSAL's
    stack.entra.inject(Fault(status=200, route="discovery_v2", body=body, content_type=JSON))
    reply = call("me", token)
    assert (reply.status, reply.json()["code"]) == (502, "OBO5006"), reply.body
    assert stack.entra.calls("token") == 0


@pytest.mark.parametrize(
    "route, body",
    [
        ("discovery_v2", b"[]"),
        ("discovery_v2", b'"x"'),
        ("discovery_v2", b"null"),
        ("discovery_v2", b'{"jwks_uri": 5}'),
        ("discovery_v2", b'{"jwks_uri": ["a"]}'),
        ("discovery_v2", b"[" * 100_000),
        ("keys", b"[]"),
        ("keys", b'"keys"'),
        ("keys", b'{"keys": "abc"}'),
        ("keys", b'{"keys": [1, "a", null]}'),
        ("keys", b'{"keys": {"kid": "x"}}'),
        ("keys", b'{"keys": [{"kty": "RSA", "kid": {"a": 1}, "n": "x", "e": "AQAB"}]}'),
        ("keys", b'{"keys": [{"kty": "RSA", "kid": "k", "n": 5, "e": []}]}'),
    ],
)
def test_signing_key_answers_of_the_wrong_type_are_a_clean_503(service, stack, route, body):
    stack.entra.inject(Fault(status=200, route=route, body=body, content_type=JSON))
    reply = call("me", _token(stack, stack.seed.alice))
    assert (reply.status, reply.json()["code"]) == (503, "OBO3020"), reply.body
    assert "Retry-After" in reply.headers
    assert stack.entra.calls("token") == 0


@pytest.mark.parametrize(
    "route, body, code",
    [
        ("get_certificate", b"[]", "OBO4009"),
        ("get_certificate", b'"x"', "OBO4009"),
        ("get_certificate", b"null", "OBO4009"),
        ("get_certificate", b'{"id": 5, "x5t": [], "cer": {}}', "OBO4009"),
        ("get_secret", b"[1]", "OBO4009"),
        ("get_secret", b"{}", "OBO4009"),
        # the SDK hands the value on as text: a secret that holds no key
        ("get_secret", b'{"value": {"pem": 1}}', "OBO4006"),
        ("get_certificate", b"<html></html>", "OBO4009"),
    ],
)
def test_key_vault_answers_of_the_wrong_type_are_a_clean_502(service, stack, route, body, code):
    stack.vault.inject(Fault(status=200, route=route, body=body, content_type=JSON))
    reply = call("me", _token(stack, stack.seed.alice))
    assert (reply.status, reply.json()["code"]) == (502, code), reply.body
    assert stack.entra.calls("token") == 0


@pytest.mark.parametrize(
    "body",
    [
        b"[]",
        b'"x"',
        b"null",
        b"42",
        b'{"access_token": {"a": 1}, "expires_on": "x"}',
        b'{"access_token": "abc", "expires_on": [1]}',
        b"<html></html>",
    ],
)
def test_identity_answers_of_the_wrong_type_are_a_clean_503(configure, stack, body):
    configure(
        OBO_CLIENT_CREDENTIAL="managed_identity", OBO_KEY_VAULT_URL="", OBO_CERTIFICATE_NAME=""
    )
    stack.identity.inject(Fault(status=200, route="token", body=body, content_type=JSON))
    reply = call("me", _token(stack, stack.seed.alice))
    assert (reply.status, reply.json()["code"]) == (503, "OBO4004"), reply.body
    assert stack.graph.calls("me") == 0


# -- 10. redirects from API 2 -------------------------------------------------------------


def _relay_redirect(stack, location: str, status: str = "302"):
    query = {"echo_status": status, "echo_location": location}
    return call("downstream/echo/items/1", _token(stack, stack.seed.alice), query=query)


@pytest.mark.parametrize(
    "location, relayed",
    [
        ("/v1.0/echo/items/2", "/api/downstream/echo/items/2"),
        ("2?x=1", "/api/downstream/echo/items/2?x=1"),
        ("../moved", "/api/downstream/echo/moved"),
        ("{base}/v1.0/me", "/api/downstream/me"),
        ("{BASE}/v1.0/echo/z", "/api/downstream/echo/z"),
    ],
    ids=["absolute-path", "relative", "dot-dot-inside", "absolute-url", "host-case"],
)
def test_redirect_inside_the_base_url_becomes_a_relay_path(service, stack, location, relayed):
    base = stack.graph.base_url
    target = location.replace("{base}", base).replace(
        "{BASE}", base.upper().replace("HTTPS", "https")
    )
    reply = _relay_redirect(stack, target)
    assert reply.status == 302, reply.body
    assert reply.headers["Location"] == relayed
    assert reply.body == b""  # a redirect's body would repeat API 2's URL
    assert base.removeprefix("https://") not in json.dumps(reply.headers)


@pytest.mark.parametrize("status", [301, 303, 307, 308])
def test_every_redirect_status_is_rewritten_alike(service, stack, status):
    reply = _relay_redirect(stack, f"{stack.graph.base_url}/v1.0/echo/z", str(status))
    assert (reply.status, reply.headers["Location"]) == (status, "/api/downstream/echo/z")


@pytest.mark.parametrize(
    "location",
    [
        "https://contoso-my.sharepoint.example/_layouts/15/download.aspx?UniqueId=1&tempauth=eyJ0",
        "https://evil.example/v1.0/echo",
        "//evil.example/v1.0/echo",
        "/admin",
        "../../../admin",
        "/v1.0/../admin",
        "/v1.0echo/x",
        "/v1.0/echo/%2e%2e/%2e%2e/admin",
        "http://{host}/v1.0/echo/x",
        "https://{ip}:1/v1.0/echo/x",
        "https://user:pw@{host}/v1.0/echo/x",
        "https://{ip}:notaport/v1.0/echo/x",
        "https://[::1/v1.0/echo/x",
        "javascript:alert(1)",
    ],
)
def test_redirect_elsewhere_is_502_and_discloses_nothing(service, stack, caplog, location):
    host = stack.graph.base_url.removeprefix("https://")
    reply = _relay_redirect(stack, location.replace("{host}", host).replace("{ip}", "127.0.0.1"))
    assert (reply.status, reply.json()["code"]) == (502, "OBO6007"), reply.body
    assert "Location" not in reply.headers
    _assert_body_hides(reply, host, "sharepoint", "evil", "tempauth")
    assert stack.graph.calls("echo") == 1  # never followed
    logged = " ".join(r.getMessage() for r in _app_records(caplog))
    assert "OBO6007" in logged and "tempauth" not in logged


def test_a_created_resource_elsewhere_keeps_its_body_but_not_its_location(service, stack):
    reply = _relay_redirect(stack, "https://other.example/items/9", status="201")
    assert reply.status == 201
    assert "Location" not in reply.headers
    assert reply.json()["method"] == "GET"


def test_304_without_location_is_relayed(service, stack):
    reply = call("downstream/echo/x", _token(stack, stack.seed.alice), query={"echo_status": "304"})
    assert reply.status == 304


def test_library_callers_can_read_an_external_redirect(service, stack):
    seed = stack.seed
    token = _token(stack, seed.alice)
    assertion = UserAssertion(token)
    obo = service.exchanger.token_for(service.validator.validate(assertion), assertion)
    download = "https://contoso-my.sharepoint.example/download.aspx?tempauth=abc"
    result = service.downstream["default"].call(
        "GET",
        "echo/file/content",
        obo.authorization,
        query={"echo_status": "302", "echo_location": download},
        external_redirects=True,
    )
    assert result.status == 302
    assert result.location == download
    assert "Location" not in result.headers
