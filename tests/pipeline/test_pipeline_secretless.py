"""Secretless mode (``OBO_CLIENT_CREDENTIAL=managed_identity``), end to end: the Function
App's managed identity token is API 1's client assertion, accepted by the Entra stand-in only
through API 1's federated identity credential. No Key Vault, no certificate, no secret."""

from __future__ import annotations

import json
import logging

import pytest

from devstack.directory import FederatedCredential
from devstack.httpserver import Fault
from tests.client import call
from tests.conftest import exchange_fields

SECRETLESS = {
    "OBO_CLIENT_CREDENTIAL": "managed_identity",
    "OBO_KEY_VAULT_URL": "",
    "OBO_CERTIFICATE_NAME": "",
}


@pytest.fixture
def secretless(configure, stack):
    return configure(**SECRETLESS)


@pytest.fixture
def federated_credentials(stack):
    """API 1's federated credentials, restored after the test changes them."""
    saved = list(stack.seed.api.federated_credentials)
    yield stack.seed.api.federated_credentials
    stack.seed.api.federated_credentials[:] = saved


def test_member_round_trip_without_key_vault(secretless, stack):
    seed = stack.seed
    reply = call("me", seed.user_token(seed.alice))
    assert reply.status == 200, reply.body
    assert reply.json()["id"] == seed.alice.object_ids[seed.contoso.id]
    assert stack.vault.calls("get_certificate") == stack.vault.calls("get_secret") == 0
    assert stack.entra.last_client_assertion_header == {
        "federated": True,
        "iss": stack.directory.issuer_v2(seed.contoso.id),
    }


def test_guest_and_other_tenant_users_are_exchanged_with_the_home_tenants_identity(
    secretless, stack
):
    seed = stack.seed
    carol = call("me", seed.user_token(seed.carol, seed.contoso))
    bob = call("me", seed.user_token(seed.bob))
    assert (carol.status, bob.status) == (200, 200), (carol.body, bob.body)
    assert carol.json()["id"] == seed.carol.object_ids[seed.contoso.id]
    assert bob.json()["id"] == seed.bob.object_ids[seed.fabrikam.id]
    assert stack.entra.calls("token", seed.fabrikam.id) == 1  # Bob at his tenant's authority


def test_the_identity_token_is_fetched_once_for_many_exchanges(secretless, stack):
    seed = stack.seed
    replies = [call("me", seed.user_token(user, mfa=True)) for user in (seed.alice, seed.dave)]
    replies.append(call("me", seed.user_token(seed.bob)))
    assert [r.status for r in replies] == [200, 200, 200]
    assert stack.entra.calls("token") == 3
    assert stack.identity.calls("token") == 1


def _other(f: FederatedCredential, **changes) -> FederatedCredential:
    return FederatedCredential(**{**f.__dict__, **changes})


@pytest.mark.parametrize(
    ("change", "code", "named"),
    [
        (lambda f: f.clear(), "AADSTS700211", "issuer"),
        (
            lambda f: f.__setitem__(0, _other(f[0], audiences=("api://other",))),
            "AADSTS700212",
            "audience",
        ),
        (
            lambda f: f.__setitem__(
                0, _other(f[0], subject="00000000-0000-0000-0000-000000000001")
            ),
            "AADSTS700213",
            "subject",
        ),
        (
            lambda f: f.__setitem__(0, _other(f[0], audiences=("api://other",), subject="0")),
            "AADSTS70021",
            "subject",
        ),
    ],
    ids=["issuer", "audience", "subject", "nothing matches"],
)
def test_federated_credential_mismatch_is_a_502_naming_the_fix_without_a_retry(
    secretless, stack, federated_credentials, change, code, named
):
    change(federated_credentials)
    reply = call("me", stack.seed.user_token(stack.seed.alice))
    assert reply.status == 502, reply.body
    problem = reply.json()
    assert problem["code"] == code
    assert named in problem["fix"]
    assert stack.entra.calls("token") == 1  # the same identity token would fail the same way


@pytest.mark.parametrize(
    "fault", [Fault(status=500, route="token"), Fault(drop=True, route="token")]
)
def test_identity_endpoint_failing_is_503_with_retry_after(secretless, stack, fault):
    stack.identity.inject(fault)
    reply = call("me", stack.seed.user_token(stack.seed.alice))
    assert reply.status == 503, reply.body
    assert reply.json()["code"] == "OBO4004", reply.json()
    assert int(reply.headers["Retry-After"]) > 0
    assert stack.entra.calls("token") == 0  # never an exchange without a credential


@pytest.mark.parametrize(
    "setting",
    [{"AZURE_CLIENT_ID": "00000000-0000-0000-0000-0000000000aa"}, {"IDENTITY_HEADER": "wrong"}],
    ids=["identity not assigned", "endpoint refuses the app"],
)
def test_no_usable_identity_is_a_503_naming_azure_client_id_in_the_log(
    configure, stack, setting, caplog
):
    configure(**SECRETLESS, **setting)
    reply = call("me", stack.seed.user_token(stack.seed.alice))
    assert reply.status == 503, reply.body
    assert reply.json()["code"] == "OBO4004"
    assert "AZURE_CLIENT_ID" not in reply.json()["detail"]  # operators read it in the log
    assert any("AZURE_CLIENT_ID" in r.getMessage() for r in caplog.records)
    assert stack.entra.calls("token") == 0


def test_an_html_answer_from_the_identity_endpoint_is_503_not_entra_unreachable(secretless, stack):
    # a proxy page with 200: MSAL fails to parse it (ValueError), which is not Entra's fault
    stack.identity.inject(
        Fault(status=200, route="token", body=b"<html>Sign in to the proxy</html>")
    )
    reply = call("me", stack.seed.user_token(stack.seed.alice))
    assert reply.status == 503, reply.body
    assert reply.json()["code"] == "OBO4004"


def test_a_slow_identity_endpoint_is_a_504(secretless, stack):
    stack.identity.inject(Fault(latency=3.5, route="token"))
    reply = call("me", stack.seed.user_token(stack.seed.alice))
    assert (reply.status, reply.json()["code"]) == (504, "OBO4008"), reply.body


def test_key_vault_settings_left_in_place_are_not_used(configure, stack):
    configure(OBO_CLIENT_CREDENTIAL="managed_identity")  # infra's default keeps the certificate
    assert call("me", stack.seed.user_token(stack.seed.alice)).status == 200
    assert stack.vault.calls("get_certificate") == stack.vault.calls("get_secret") == 0


def test_saml_on_the_v1_endpoint_uses_the_identity_token_too(configure, stack):
    configure(**SECRETLESS, **stack.saml_overrides("saml2", "v1"))
    reply = call("downstream/whoami", stack.seed.user_token(stack.seed.alice))
    assert reply.status == 200, reply.body
    assert stack.entra.last_client_assertion_header["federated"] is True


def test_verbose_trace_shows_the_identity_tokens_header_only(configure, stack, caplog):
    caplog.set_level(logging.INFO, logger="obo")
    configure(**SECRETLESS, OBO_TRACE="verbose")
    assert call("me", stack.seed.user_token(stack.seed.alice)).status == 200
    (record,) = [
        f for r in caplog.records if r.name == "obo.exchange" and (f := exchange_fields(r))
    ]
    assert record["credential"] == "managed-identity"
    (request,) = json.loads(record["requests"])  # one attribute, JSON, for customDimensions
    header = request["client_assertion_header"]
    # the identity token's header: signed by Contoso's token key, no certificate of API 1
    assert (header["alg"], header["x5t"]) == ("RS256", stack.seed.contoso.active_key.kid)
