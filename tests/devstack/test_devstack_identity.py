"""The managed identity stand-in against the real azure-identity (and MSAL) clients.

Each refusal is asserted twice: the exception azure-identity raises, and the status the
stand-in answered (from its counters), so a change on either side shows up here.
"""

from __future__ import annotations

import pytest
import requests
from azure.core.exceptions import ClientAuthenticationError
from azure.identity import (
    CredentialUnavailableError,
    DefaultAzureCredential,
    ManagedIdentityCredential,
)

# Variables that would make azure-identity pick another credential or another MI source.


@pytest.fixture
def settings(app_settings) -> dict[str, str]:
    """The Function App's App Service managed identity environment (conftest)."""
    return app_settings


def raw_token(stack, headers=None, **params) -> requests.Response:
    """The protocol by hand: what MSAL's ``_obtain_token_on_app_service`` sends."""
    query = {"api-version": "2019-08-01", "resource": "https://vault.azure.net", **params}
    if headers is None:
        headers = {"X-IDENTITY-HEADER": stack.identity.header_secret}
    return requests.get(stack.identity.endpoint, params=query, headers=headers, timeout=10)


def test_managed_identity_credential_gets_a_vault_token(stack, settings):
    credential = ManagedIdentityCredential(client_id=settings["AZURE_CLIENT_ID"])
    token = credential.get_token(stack.vault.resource + "/.default")

    claims = stack.directory.verify(token.token, stack.seed.contoso)
    identity = stack.seed.function_identity
    assert claims["aud"] == stack.vault.resource  # the resource as requested, no /.default
    assert claims["oid"] == stack.directory.principal_id(identity, stack.seed.contoso)
    assert claims["appid"] == identity.app_id and claims["idtyp"] == "app"
    assert "scp" not in claims
    assert abs(token.expires_on - int(claims["exp"])) <= 2
    # A second call is served from azure-identity's cache: still one request.
    credential.get_token(stack.vault.resource + "/.default")
    assert stack.identity.calls("token") == 1
    assert stack.identity.answered("token", 200) == 1


def test_default_azure_credential_uses_the_app_service_identity(stack, settings):
    credential = DefaultAzureCredential()  # reads AZURE_CLIENT_ID for the user-assigned identity
    token = credential.get_token("https://vault.azure.net/.default")

    claims = stack.directory.verify(token.token, stack.seed.contoso)
    assert claims["aud"] == "https://vault.azure.net"
    assert claims["appid"] == settings["AZURE_CLIENT_ID"]
    assert stack.identity.answered("token", 200) == 1


def test_wire_format_of_a_successful_answer(stack):
    response = raw_token(stack, client_id=stack.seed.function_identity.app_id)

    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"access_token", "expires_on", "resource", "token_type", "client_id"}
    assert body["expires_on"].isdigit()  # epoch seconds, as a string
    assert body["resource"] == "https://vault.azure.net"
    assert body["token_type"] == "Bearer"
    assert body["client_id"] == stack.seed.function_identity.app_id
    assert response.headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize("selector", ["object_id", "mi_res_id"])
def test_identity_selected_by_object_id_or_resource_id(stack, selector):
    value = stack.identity.object_id if selector == "object_id" else stack.identity.resource_id
    response = raw_token(stack, **{selector: value.upper()})  # compared case-insensitively

    assert response.status_code == 200
    assert response.json()["client_id"] == stack.seed.function_identity.app_id


def test_token_exchange_audience_is_allowed_by_default(stack):
    response = raw_token(
        stack, client_id=stack.seed.function_identity.app_id, resource="api://AzureADTokenExchange"
    )

    assert response.status_code == 200
    claims = stack.directory.verify(response.json()["access_token"], stack.seed.contoso)
    assert claims["aud"] == "api://AzureADTokenExchange"


def test_wrong_identity_header_is_refused(stack, settings, monkeypatch):
    monkeypatch.setenv("IDENTITY_HEADER", "not-the-secret")
    credential = ManagedIdentityCredential(client_id=settings["AZURE_CLIENT_ID"])

    with pytest.raises(CredentialUnavailableError) as caught:
        credential.get_token("https://vault.azure.net/.default")

    assert isinstance(caught.value, ClientAuthenticationError)
    assert "401" in str(caught.value)
    assert stack.identity.answered("token", 401) == 1
    assert stack.identity.calls("token") == 1  # no retry on 401


def test_missing_identity_header_is_refused(stack):
    response = raw_token(stack, headers={}, client_id=stack.seed.function_identity.app_id)

    assert response.status_code == 400
    assert set(response.json()) == {"statusCode", "message", "correlationId"}
    assert "X-IDENTITY-HEADER" in response.json()["message"]


def test_unknown_client_id_is_refused(stack, settings):
    credential = ManagedIdentityCredential(client_id="11111111-2222-3333-4444-555555555555")

    with pytest.raises(
        CredentialUnavailableError, match="Unable to load the proper Managed Identity"
    ):
        credential.get_token("https://vault.azure.net/.default")

    assert stack.identity.answered("token", 400) == 1


def test_no_client_id_fails_when_the_app_has_only_a_user_assigned_identity(stack, settings):
    """The classic misconfiguration: the client id of the user-assigned identity is not passed."""
    credential = ManagedIdentityCredential()  # system-assigned; it does not read AZURE_CLIENT_ID

    with pytest.raises(
        CredentialUnavailableError, match="Unable to load the proper Managed Identity"
    ):
        credential.get_token("https://vault.azure.net/.default")

    assert stack.identity.answered("token", 400) == 1


def test_unknown_resource_is_refused_with_aadsts500011(stack, settings):
    credential = ManagedIdentityCredential(client_id=settings["AZURE_CLIENT_ID"])

    with pytest.raises(CredentialUnavailableError, match="AADSTS500011") as caught:
        credential.get_token("api://no-such-resource/.default")

    assert "api://no-such-resource" in str(caught.value)
    assert stack.identity.answered("token", 400) == 1


def test_other_api_versions_are_refused(stack):
    response = raw_token(stack, **{"api-version": "2017-09-01"})

    assert response.status_code == 400
    assert response.json()["statusCode"] == 400
    assert stack.identity.answered("token", 400) == 1
