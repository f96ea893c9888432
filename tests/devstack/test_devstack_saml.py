"""The stand-ins' JWT-to-SAML exchange: Entra issuing signed SAML assertions from OBO, and
the SAML-only API refusing every assertion a SAML relying party would refuse.

Entra is driven with MSAL (v2, ``requested_token_type`` in ``data``) and with a plain
``requests`` post (v1, ``resource``). Assertions are checked with signxml against the
tenant's signing certificate: audience, subject, issuer and signature.
"""

from __future__ import annotations

import base64
import re

import pytest
import requests

from devstack import saml
from devstack.seed import SAML_ENTITY_ID
from tests.devstack.test_devstack_entra import ASSERTION_TYPE as CLIENT_ASSERTION_TYPE
from tests.devstack.test_devstack_entra import (
    JWT_BEARER,
    assert_http_error,
    assert_msal_error,
    client_assertion,
    confidential,
    post_token,
    token_endpoint,
)

BASE64URL_NO_PADDING = re.compile(r"[A-Za-z0-9_-]+")
URNS = {2: saml.SAML2, 1: saml.SAML1}


def v1_form(stack, user_token: str, token_type: str, resource: str = SAML_ENTITY_ID) -> dict:
    contoso = stack.seed.contoso.id
    return {
        "grant_type": JWT_BEARER,
        "assertion": user_token,
        "client_id": stack.seed.api.app_id,
        "resource": resource,
        "requested_token_use": "on_behalf_of",
        "requested_token_type": token_type,
        "client_assertion_type": CLIENT_ASSERTION_TYPE,
        "client_assertion": client_assertion(stack, token_endpoint(stack, contoso, v1=True)),
    }


def decoded(access_token: str) -> bytes:
    assert BASE64URL_NO_PADDING.fullmatch(access_token), "Entra sends base64url without padding"
    return base64.urlsafe_b64decode(access_token + "=" * (-len(access_token) % 4))


def trusted(stack, tenant) -> dict:
    return {stack.directory.issuer_v1(tenant.id): [k.certificate for k in tenant.keys]}


@pytest.mark.parametrize("version", [2, 1])
def test_v1_obo_issues_a_signed_assertion_for_the_user(stack, version):
    seed = stack.seed
    resp = post_token(
        stack, seed.contoso.id, v1_form(stack, seed.user_token(seed.alice), URNS[version]), v1=True
    )
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["issued_token_type"] == URNS[version]
    assert body["token_type"] == "Bearer"
    assert body["resource"] == SAML_ENTITY_ID
    xml = decoded(body["access_token"])
    statement = saml.verify(
        xml, trusted(stack, seed.contoso), SAML_ENTITY_ID, stack.directory.clock()
    )
    assert statement.version == version
    assert statement.subject == seed.alice.upn
    assert statement.object_id == seed.alice.object_ids[seed.contoso.id]
    assert statement.audience == SAML_ENTITY_ID
    assert b"InResponseTo" not in xml  # no SAML request preceded it


@pytest.mark.parametrize("version", [2, 1])
def test_v2_obo_through_msal_issues_the_assertion_for_default_scope(stack, version):
    seed = stack.seed
    app, _ = confidential(stack, seed.contoso.id)
    result = app.acquire_token_on_behalf_of(
        seed.user_token(seed.alice),
        [f"{SAML_ENTITY_ID}/.default"],
        data={"requested_token_type": URNS[version]},
    )
    assert "access_token" in result, result
    statement = saml.verify(
        decoded(result["access_token"]),
        trusted(stack, seed.contoso),
        SAML_ENTITY_ID,
        stack.directory.clock(),
    )
    assert (statement.version, statement.subject) == (version, seed.alice.upn)


def test_assertion_does_not_verify_with_another_tenants_certificate(stack):
    seed = stack.seed
    resp = post_token(
        stack, seed.contoso.id, v1_form(stack, seed.user_token(seed.alice), saml.SAML2), v1=True
    )
    xml = decoded(resp.json()["access_token"])
    impostor = {
        stack.directory.issuer_v1(seed.contoso.id): [k.certificate for k in seed.fabrikam.keys]
    }
    with pytest.raises(saml.SamlRejected, match="signature"):
        saml.verify(xml, impostor, SAML_ENTITY_ID, stack.directory.clock())


def test_a_named_scope_cannot_be_issued_as_saml(stack):
    seed = stack.seed
    app, http = confidential(stack, seed.contoso.id)
    result = app.acquire_token_on_behalf_of(
        seed.user_token(seed.alice),
        [f"{SAML_ENTITY_ID}/user_impersonation"],
        data={"requested_token_type": saml.SAML2},
    )
    assert_msal_error(result, http, 400, "invalid_scope", 70011)


@pytest.mark.parametrize("token_type", ["urn:ietf:params:oauth:token-type:jwt", "saml2", ""])
def test_unknown_requested_token_type_is_refused(stack, token_type):
    seed = stack.seed
    form = v1_form(stack, seed.user_token(seed.alice), token_type)
    assert_http_error(
        post_token(stack, seed.contoso.id, form, v1=True), 400, "invalid_request", 9002313
    )


def test_saml_is_not_issued_to_client_credentials(stack):
    contoso = stack.seed.contoso.id
    form = {
        "grant_type": "client_credentials",
        "client_id": stack.seed.api.app_id,
        "resource": SAML_ENTITY_ID,
        "requested_token_type": saml.SAML2,
        "client_assertion_type": CLIENT_ASSERTION_TYPE,
        "client_assertion": client_assertion(stack, token_endpoint(stack, contoso, v1=True)),
    }
    assert_http_error(post_token(stack, contoso, form, v1=True), 400, "invalid_request", 9002313)


def test_saml_application_unknown_in_the_users_tenant_is_500011(stack):
    seed = stack.seed
    form = v1_form(stack, seed.user_token(seed.bob), saml.SAML2)
    form["client_assertion"] = client_assertion(
        stack, token_endpoint(stack, seed.fabrikam.id, v1=True)
    )
    assert_http_error(
        post_token(stack, seed.fabrikam.id, form, v1=True), 400, "invalid_resource", 500011
    )


# -- the SAML-only API ------------------------------------------------------------------
def issue(
    stack,
    *,
    version: int = 2,
    key=None,
    tenant=None,
    audience: str = SAML_ENTITY_ID,
    lifetime: int = 3600,
    recipient: str | None = None,
    also_restricted_to=None,
) -> bytes:
    seed = stack.seed
    tenant = tenant or seed.contoso
    return saml.issue(
        version,
        key=key or tenant.active_key,
        issuer=stack.directory.issuer_v1(tenant.id),
        audience=audience,
        recipient=recipient or seed.saml_app.saml_recipient,
        subject=seed.alice.upn,
        object_id=seed.alice.object_ids[seed.contoso.id],
        tenant_id=tenant.id,
        now=stack.directory.clock(),
        lifetime=lifetime,
        also_restricted_to=also_restricted_to,
    )


def whoami(stack, authorization: str | None) -> requests.Response:
    headers = {"Authorization": authorization} if authorization is not None else {}
    return requests.get(
        f"{stack.saml_api.base_url}/whoami",
        headers=headers,
        verify=str(stack.ca.ca_file),
        timeout=10,
    )


def saml_header(xml: bytes) -> str:
    return "SAML " + base64.b64encode(xml).decode()


@pytest.mark.parametrize("version", [2, 1])
def test_saml_api_accepts_a_genuine_assertion(stack, version):
    resp = whoami(stack, saml_header(issue(stack, version=version)))
    assert resp.status_code == 200, resp.text
    assert resp.json()["subject"] == stack.seed.alice.upn


def refused(resp: requests.Response, reason: str) -> None:
    assert resp.status_code == 401, resp.text
    assert resp.headers["WWW-Authenticate"].startswith("SAML")
    assert reason in resp.json()["error_description"]


def test_saml_api_refuses_a_bearer_token_or_nothing(stack):
    refused(whoami(stack, None), "expected 'Authorization: SAML")
    refused(
        whoami(stack, "Bearer " + stack.seed.user_token(stack.seed.alice)),
        "expected 'Authorization: SAML",
    )


def test_saml_api_refuses_entras_base64url_text_forwarded_as_is(stack):
    xml = issue(stack)
    text = base64.urlsafe_b64encode(xml).rstrip(b"=").decode()
    assert "-" in text or "_" in text or len(text) % 4, "fixture must differ from standard base64"
    refused(whoami(stack, f"SAML {text}"), "not standard base64")


@pytest.mark.parametrize("version", [2, 1])
def test_saml_api_refuses_an_assertion_changed_after_signing(stack, version):
    xml = issue(stack, version=version).replace(
        stack.seed.alice.upn.encode(), b"mallory@contoso.onmicrosoft.com"
    )
    refused(whoami(stack, saml_header(xml)), "signature")


def test_saml_api_refuses_contosos_name_signed_with_another_tenants_key(stack):
    refused(
        whoami(stack, saml_header(issue(stack, key=stack.seed.fabrikam.active_key))), "signature"
    )


def test_saml_api_refuses_another_audience(stack):
    refused(
        whoami(stack, saml_header(issue(stack, audience="https://other.example/sp"))), "audience"
    )


@pytest.mark.parametrize("version", [2, 1])
def test_saml_api_refuses_when_any_audience_restriction_leaves_it_out(stack, version):
    xml = issue(stack, version=version, also_restricted_to="https://other.example/sp")
    refused(whoami(stack, saml_header(xml)), "audience")


def test_saml_api_trusts_only_its_identity_provider(stack):
    # a genuine Fabrikam assertion, correctly signed by Fabrikam: not this service's IdP
    xml = issue(stack, tenant=stack.seed.fabrikam)
    refused(whoami(stack, saml_header(xml)), "is not trusted")


def test_saml_api_refuses_an_assertion_meant_for_another_recipient(stack):
    xml = issue(stack, recipient="https://attacker.example/acs")
    refused(whoami(stack, saml_header(xml)), "recipient")


def test_saml_api_refuses_a_signed_assertion_wrapped_in_an_unsigned_one(stack):
    signed = issue(stack)
    wrapper = (
        (
            f'<Assertion xmlns="{saml.NS2}" ID="_forged" IssueInstant="2026-01-01T00:00:00Z" Version="2.0">'
            f"<Issuer>{stack.directory.issuer_v1(stack.seed.contoso.id)}</Issuer>"
        ).encode()
        + signed
        + b"</Assertion>"
    )
    refused(whoami(stack, saml_header(wrapper)), "does not cover the assertion")


def test_saml_api_refuses_an_expired_assertion(stack, clock):
    xml = issue(stack, lifetime=600)
    clock.advance(600 + saml.SKEW + 1)
    refused(whoami(stack, saml_header(xml)), "validity")


def test_saml_api_refuses_xml_that_is_not_an_assertion(stack):
    refused(whoami(stack, saml_header(b"<Response xmlns='urn:x'/>")), "not a SAML assertion")
    refused(whoami(stack, saml_header(b"<Assertion")), "not well-formed")
