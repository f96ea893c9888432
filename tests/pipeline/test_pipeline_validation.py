"""The caller's token, end to end through the function handlers: refused before Entra."""

from __future__ import annotations

import pytest

from devstack.keys import SigningKey
from tests import tokens
from tests.client import call


def _assert_refused(reply, code: str, *, status: int = 401) -> dict:
    assert reply.status == status, reply.body
    assert reply.headers["Content-Type"] == "application/problem+json"
    assert reply.headers["Cache-Control"] == "no-store"
    problem = reply.json()
    assert problem["code"] == code
    assert problem["status"] == status
    return problem


@pytest.fixture
def no_exchange(stack):
    """Asserts, after the test, that Entra's token endpoint was never called."""
    yield
    assert stack.entra.calls("token") == 0
    assert stack.entra.calls("token_v1") == 0


def test_missing_header_gets_bare_bearer_challenge(service, no_exchange):
    reply = call("me")
    _assert_refused(reply, "OBO2001")
    assert reply.www_authenticate == 'Bearer realm="api"'


@pytest.mark.parametrize(
    ("header", "code"),
    [
        ("Basic dXNlcjpwYXNz", "OBO2002"),
        ("Bearer", "OBO2003"),
        ("Bearer a.b.c d.e.f", "OBO2003"),
        ("Bearer a.b.c,d.e.f", "OBO2003"),
        ("Bearer " + "a" * 20000, "OBO2004"),
        ("Bearer not-a-jwt", "OBO3001"),
        ("Bearer a.b.c", "OBO3001"),
    ],
)
def test_malformed_authorization_headers(service, no_exchange, header, code):
    reply = call("me", headers={"Authorization": header})
    _assert_refused(reply, code)
    assert reply.www_authenticate.startswith("Bearer")


def test_scheme_is_case_insensitive(service, stack):
    token = stack.seed.user_token(stack.seed.alice, scopes=["other_scope"])
    reply = call("me", headers={"authorization": f"bEaReR {token}"})
    _assert_refused(reply, "OBO3014", status=403)  # parsed and validated, refused on scope


def test_id_token_is_refused_with_hint_to_send_access_token(service, stack, no_exchange):
    seed = stack.seed
    token = stack.directory.id_token(seed.alice, seed.contoso, seed.spa)
    problem = _assert_refused(call("me", token), "OBO3010")
    assert "access token" in problem["detail"] and "ID token" in problem["detail"]
    assert 'error="invalid_token"' in call("me", token).www_authenticate


def test_graph_token_names_both_audiences(service, stack, no_exchange):
    seed = stack.seed
    token = stack.directory.user_token(
        seed.alice, seed.contoso, seed.spa, seed.graph, ["User.Read"]
    )
    problem = _assert_refused(call("me", token), "OBO3013")
    assert "https://graph.microsoft.com" in problem["detail"]
    assert seed.api.app_id in problem["detail"]
    assert problem["aadsts"] == "AADSTS500131"


def test_token_for_another_app_names_expected_and_received_audience(service, stack, no_exchange):
    seed = stack.seed
    token = stack.directory.user_token(
        seed.alice, seed.contoso, seed.spa, seed.other_api, ["Orders.Read"]
    )
    problem = _assert_refused(call("me", token), "OBO3007")
    assert seed.other_api.app_id in problem["detail"]
    assert seed.api.app_id in problem["detail"]
    assert "AADSTS500131" in problem["detail"]


def test_app_only_token_is_refused(service, stack, no_exchange):
    seed = stack.seed
    token = stack.directory.app_token(seed.contoso, seed.spa, seed.api)
    problem = _assert_refused(call("me", token), "OBO3011")
    assert "delegated" in problem["detail"]


def test_v1_app_token_without_roles_or_idtyp_is_app_only_for_validation_and_diagnose(
    service, stack, no_exchange
):
    # v1 app tokens carry no idtyp by default, and no roles when none were granted
    from obo.diagnose import diagnose

    seed = stack.seed
    claims = tokens.claims_of(stack.directory.app_token(seed.contoso, seed.spa, seed.api))
    del claims["idtyp"]
    token = stack.directory.sign(seed.contoso, claims)
    _assert_refused(call("me", token), "OBO3011")
    report = diagnose(token, stack.settings())
    assert report.facts["kind"] == "app_only"
    assert [f.code.value for f in report.findings] == ["OBO3011"]


def test_b2c_token_is_refused_before_exchange(service, stack, no_exchange):
    token = stack.directory.b2c_token(stack.seed.spa, stack.seed.api)
    problem = _assert_refused(call("me", token), "OBO3012")
    assert "B2C" in problem["detail"] and "On-Behalf-Of" in problem["detail"]


def test_expired_token(service, stack, no_exchange):
    token = stack.seed.user_token(stack.seed.alice, lifetime=-120)
    _assert_refused(call("me", token), "OBO3008")


def test_expired_within_leeway_is_accepted_by_validation(service, stack, clock):
    token = stack.seed.user_token(stack.seed.alice, scopes=["nope"], lifetime=-30)
    _assert_refused(call("me", token), "OBO3014", status=403)


def test_not_yet_valid_token(service, stack, clock, no_exchange):
    clock.advance(600)  # minted in the future...
    token = stack.seed.user_token(stack.seed.alice)
    clock.advance(-600)  # ...and presented now
    _assert_refused(call("me", token), "OBO3009")


def test_tampered_claims_fail_signature(service, stack, no_exchange):
    token = tokens.tampered(stack.seed.user_token(stack.seed.alice), oid="someone-else")
    _assert_refused(call("me", token), "OBO3004")


def test_signed_by_key_not_published_but_claiming_a_published_kid(service, stack, no_exchange):
    valid = stack.seed.user_token(stack.seed.alice)
    forged = tokens.resigned_with(valid, SigningKey(), kid=stack.seed.contoso.active_key.kid)
    _assert_refused(call("me", forged), "OBO3004")


def test_alg_none_is_refused(service, stack, no_exchange):
    _assert_refused(call("me", tokens.alg_none(stack.seed.user_token(stack.seed.alice))), "OBO3002")


def test_hs256_with_public_key_as_secret_is_refused(service, stack, no_exchange):
    valid = stack.seed.user_token(stack.seed.alice)
    forged = tokens.hs256_with_public_key(valid, stack.seed.contoso.active_key)
    _assert_refused(call("me", forged), "OBO3002")


def test_header_supplied_key_is_never_trusted(service, stack, no_exchange):
    attacker = SigningKey()
    valid = stack.seed.user_token(stack.seed.alice)
    forged = tokens.resigned_with(
        valid, attacker, jwk=attacker.jwk(), jku="https://evil.example/keys"
    )
    _assert_refused(call("me", forged), "OBO3003")


def test_token_from_other_tenant_signed_with_its_keys_claiming_ours(service, stack, no_exchange):
    seed = stack.seed
    valid = seed.user_token(seed.alice)  # tid = contoso
    forged = tokens.resigned_with(valid, seed.fabrikam.active_key)
    _assert_refused(call("me", forged), "OBO3003")


def test_issuer_must_match_tenant(service, stack, no_exchange):
    seed = stack.seed
    token = seed.user_token(
        seed.alice, extra={"iss": f"{stack.directory.authority_host}/{seed.fabrikam.id}/v2.0"}
    )
    _assert_refused(call("me", token), "OBO3005")


def test_tenant_not_allowed_is_refused_without_fetching_its_keys(service, stack, no_exchange):
    seed = stack.seed
    token = seed.user_token(seed.nina)
    problem = _assert_refused(call("me", token), "OBO3006")
    assert seed.northwind.id in problem["detail"]
    assert stack.entra.calls("keys", seed.northwind.id) == 0


def test_missing_scope_is_403_insufficient_scope(service, stack, no_exchange):
    token = stack.seed.user_token(stack.seed.alice, scopes=["Something.Else"])
    reply = call("me", token)
    _assert_refused(reply, "OBO3014", status=403)
    assert (
        reply.www_authenticate
        == 'Bearer realm="api", error="insufficient_scope", scope="access_as_user"'
    )


def test_unknown_kid_then_key_rollover(service, stack, no_exchange, clock):
    seed = stack.seed
    new_key = seed.contoso.prepare_rollover()
    token = seed.user_token(seed.alice, key=new_key, scopes=["nope"])
    _assert_refused(call("me", token), "OBO3003")
    keys_fetched = stack.entra.calls("keys", seed.contoso.id)
    # within the cool-down an unknown kid does not refetch
    _assert_refused(call("me", token), "OBO3003")
    assert stack.entra.calls("keys", seed.contoso.id) == keys_fetched
    seed.contoso.publish(new_key)
    try:
        clock.advance(301)
        token = seed.user_token(seed.alice, key=new_key, scopes=["nope"])
        _assert_refused(call("me", token), "OBO3014", status=403)  # signature now accepted
        assert stack.entra.calls("keys", seed.contoso.id) == keys_fetched + 1
    finally:
        seed.contoso.keys.remove(new_key)


def test_known_keys_keep_working_when_entra_is_down(service, stack, clock):
    from devstack.httpserver import Fault

    seed = stack.seed
    token = seed.user_token(seed.alice, scopes=["nope"])
    _assert_refused(call("me", token), "OBO3014", status=403)
    stack.entra.inject(Fault(status=503))
    clock.advance(25 * 3600)  # keys are stale: a refresh is due and fails
    token = seed.user_token(seed.alice, scopes=["nope"])
    _assert_refused(call("me", token), "OBO3014", status=403)


def test_keys_unreachable_at_first_use_is_503(service, stack):
    from devstack.httpserver import Fault

    stack.entra.inject(Fault(status=500, route="discovery_v2"))
    reply = call("me", stack.seed.user_token(stack.seed.alice))
    _assert_refused(reply, "OBO3020", status=503)
    assert int(reply.headers["Retry-After"]) > 0


def test_health_is_anonymous_and_reveals_nothing(service):
    reply = call("health")
    assert reply.status == 200
    assert reply.json() == {"status": "ok"}


@pytest.mark.parametrize("odd", tokens.ODD_CLAIMS)
def test_odd_claim_types_get_a_401_or_403_never_a_500(service, stack, odd, no_exchange):
    token = stack.seed.user_token(stack.seed.alice, extra=odd)
    reply = call("me", token)
    assert reply.status in (401, 403), (odd, reply.status, reply.body)
    assert reply.headers["Content-Type"] == "application/problem+json"


@pytest.mark.parametrize("odd", tokens.IRRELEVANT_ODD_CLAIMS)
def test_odd_but_irrelevant_claims_do_not_break_a_valid_delegated_token(service, stack, odd):
    reply = call("me", stack.seed.user_token(stack.seed.alice, extra=odd))
    assert reply.status == 200, reply.body
