"""JWT-to-SAML On-Behalf-Of, end to end: the function app asks the Entra stand-in for a SAML
2.0 or 1.1 assertion (v1 endpoint with ``resource``, v2 with ``<entity id>/.default``) and
the SAML-only API verifies its signature, audience, subject and validity before answering."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from devstack.seed import SAML_ENTITY_ID
from tests.client import call

KINDS = [("saml2", "v1"), ("saml2", "v2"), ("saml1", "v1"), ("saml1", "v2")]
TOKEN_ROUTE = {"v1": "token_v1", "v2": "token"}


@pytest.fixture(params=KINDS, ids=[f"{k}-{e}" for k, e in KINDS])
def saml(request, configure, stack):
    kind, endpoint = request.param
    configure(**stack.saml_overrides(kind, endpoint))
    return kind, endpoint


def test_member_gets_through_to_the_saml_api_as_herself(saml, stack):
    kind, endpoint = saml
    seed = stack.seed
    reply = call("downstream/whoami", seed.user_token(seed.alice))
    assert reply.status == 200, reply.body
    who = reply.json()
    # the SAML API verified the signature with Contoso's certificate before answering this
    assert who["subject"] == seed.alice.upn
    assert who["oid"] == seed.alice.object_ids[seed.contoso.id]
    assert who["tid"] == seed.contoso.id
    assert who["issuer"] == f"https://sts.windows.net/{seed.contoso.id}/"
    assert who["audience"] == SAML_ENTITY_ID
    assert who["saml_version"] == (2 if kind == "saml2" else 1)
    assert stack.entra.calls(TOKEN_ROUTE[endpoint], seed.contoso.id) == 1
    other = "v2" if endpoint == "v1" else "v1"
    assert stack.entra.calls(TOKEN_ROUTE[other], seed.contoso.id) == 0


def test_guest_gets_an_assertion_from_the_resource_tenant(saml, stack):
    seed = stack.seed
    reply = call("downstream/whoami", seed.user_token(seed.carol, seed.contoso))
    assert reply.status == 200, reply.body
    who = reply.json()
    assert who["subject"] == seed.carol.upn
    assert who["oid"] == seed.carol.object_ids[seed.contoso.id]
    assert who["tid"] == seed.contoso.id


def test_saml_subject_confirmation_names_the_first_exact_reply_url(configure, stack):
    configure(**stack.saml_overrides("saml2", "v1"))
    reply = call("downstream/whoami", stack.seed.user_token(stack.seed.alice))
    assert reply.status == 200, reply.body
    # the seed's first reply URL has a wildcard: Entra skips it
    assert reply.json()["recipient"] == "https://erp.contoso.example/saml/acs"


def test_second_call_reuses_the_assertion(saml, stack):
    _, endpoint = saml
    token = stack.seed.user_token(stack.seed.alice)
    assert call("downstream/whoami", token).status == 200
    assert call("downstream/whoami", token).status == 200
    assert stack.entra.calls(TOKEN_ROUTE[endpoint], stack.seed.contoso.id) == 1
    assert stack.saml_api.calls("whoami") == 2


def test_concurrent_users_each_get_their_own_assertion(configure, stack):
    configure(**stack.saml_overrides("saml2", "v1"))
    seed = stack.seed
    users = [seed.alice, seed.dave, seed.carol] * 4
    tokens = [seed.user_token(u, seed.contoso, mfa=True) for u in users]
    with ThreadPoolExecutor(len(tokens)) as pool:
        replies = list(pool.map(lambda t: call("downstream/whoami", t), tokens))
    assert [r.status for r in replies] == [200] * len(users)
    assert [r.json()["subject"] for r in replies] == [u.upn for u in users]


def test_entra_answering_a_jwt_instead_of_saml_is_502_not_forwarded(saml, stack):
    stack.entra.ignore_requested_token_type = True
    reply = call("downstream/whoami", stack.seed.user_token(stack.seed.alice))
    assert reply.status == 502, reply.body
    problem = reply.json()
    assert problem["code"] == "OBO5010"
    assert ("SAML 2.0" if saml[0] == "saml2" else "SAML 1.1") in problem["detail"]
    assert stack.saml_api.calls("whoami") == 0
    assert "eyJ" not in reply.body.decode()


def test_tenant_without_the_saml_application_is_a_clear_502(saml, stack):
    # the SAML application exists only in Contoso: Bob's home tenant has no principal for it
    reply = call("downstream/whoami", stack.seed.user_token(stack.seed.bob))
    assert reply.status == 502, reply.body
    assert reply.json()["code"] == "AADSTS500011"
    assert stack.saml_api.calls("whoami") == 0


def test_missing_consent_for_the_saml_application_is_403(saml, stack):
    seed = stack.seed
    stack.directory.revoke_consent(seed.contoso, seed.api, seed.saml_app)
    try:
        reply = call("downstream/whoami", seed.user_token(seed.alice))
    finally:
        stack.directory.grant_consent(seed.contoso, seed.api, seed.saml_app, ["user_impersonation"])
    assert reply.status == 403, reply.body
    assert reply.json()["code"] == "AADSTS65001"


def test_mfa_challenge_reaches_the_client_unchanged(saml, stack):
    reply = call("downstream/whoami", stack.seed.user_token(stack.seed.dave))
    assert reply.status == 401, reply.body
    assert reply.json()["code"] == "AADSTS50076"
    assert "claims=" in reply.www_authenticate


def test_assertion_is_renewed_before_it_expires(configure, stack, clock):
    configure(**stack.saml_overrides("saml2", "v1"))
    token = stack.seed.user_token(stack.seed.alice, lifetime=3 * 3600)
    assert call("downstream/whoami", token).status == 200
    clock.advance(stack.directory.token_lifetime - 120)  # two minutes left on the assertion
    reply = call("downstream/whoami", token)
    assert reply.status == 200, reply.body
    assert stack.entra.calls("token_v1", stack.seed.contoso.id) == 2
