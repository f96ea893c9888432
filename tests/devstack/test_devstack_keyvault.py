"""The Key Vault stand-in against the real azure-keyvault-* clients, over real HTTPS.

Clients authenticate with the App Service managed identity stand-in and keep the SDK's
challenge-resource verification on. Certificates added here get their own names, so the
shared ``obo-api-cert`` stays as the stack seeded it.
"""

from __future__ import annotations

import base64
import hashlib
import urllib.parse
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.identity import ManagedIdentityCredential
from azure.keyvault.certificates import CertificateClient, CertificateContentType
from azure.keyvault.certificates._shared import HttpChallengeCache as CertificateChallenges
from azure.keyvault.secrets import SecretClient
from azure.keyvault.secrets._shared import HttpChallengeCache as SecretChallenges
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs12

from devstack.stack import CERTIFICATE_NAME


@pytest.fixture
def settings(app_settings) -> dict[str, str]:
    values = app_settings
    # The SDK remembers challenges per vault for the whole process; forget them so every
    # test sees the full flow (one 401 challenge, then the authorized request).
    CertificateChallenges.clear()
    SecretChallenges.clear()
    return values


@pytest.fixture
def credential(settings):
    with ManagedIdentityCredential(client_id=settings["AZURE_CLIENT_ID"]) as cred:
        yield cred


@pytest.fixture
def certificates(settings, credential):
    url, ca = settings["OBO_KEY_VAULT_URL"], settings["OBO_CA_BUNDLE"]
    with CertificateClient(url, credential, connection_verify=ca) as client:
        yield client


@pytest.fixture
def secrets(settings, credential):
    url, ca = settings["OBO_KEY_VAULT_URL"], settings["OBO_CA_BUNDLE"]
    with SecretClient(url, credential, connection_verify=ca) as client:
        yield client


def der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.DER)


def fresh_name() -> str:
    return f"rotation-{uuid.uuid4().hex[:8]}"


def reader_token(stack, tenant=None) -> str:
    """The Function App identity's token for Key Vault, from its tenant or ``tenant``."""
    return stack.directory.app_token(
        tenant or stack.seed.contoso,
        stack.seed.function_identity,
        stack.seed.key_vault,
        resource_uri=stack.vault.resource,
    )


def raw_get(stack, path: str, token: str | None) -> requests.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return requests.get(
        f"{stack.vault.base_url}{path}",
        params={"api-version": "7.5"},
        headers=headers,
        verify=str(stack.ca.ca_file),
        timeout=10,
    )


def test_get_certificate_returns_the_seed_certificate(stack, certificates):
    certificate = certificates.get_certificate(CERTIFICATE_NAME)

    expected = der(stack.seed.api_certificate)
    assert bytes(certificate.cer) == expected
    assert certificate.properties.x509_thumbprint == hashlib.sha1(expected).digest()
    assert certificate.properties.enabled is True
    assert certificate.policy.content_type == CertificateContentType.pem
    assert certificate.policy.key_type == "RSA" and certificate.policy.exportable
    version = certificate.properties.version
    assert certificate.secret_id == f"{stack.vault.base_url}/secrets/{CERTIFICATE_NAME}/{version}"
    assert certificate.key_id == f"{stack.vault.base_url}/keys/{CERTIFICATE_NAME}/{version}"
    # The bearer challenge round trip, then one authorized read; one managed identity token.
    assert stack.vault.answered("get_certificate", 401) == 1
    assert stack.vault.answered("get_certificate", 200) == 1
    assert stack.identity.answered("token", 200) == 1


def test_get_secret_returns_a_pem_with_the_matching_private_key(stack, certificates, secrets):
    certificate = certificates.get_certificate(CERTIFICATE_NAME)
    secret = secrets.get_secret(CERTIFICATE_NAME)

    assert secret.properties.content_type == "application/x-pem-file"
    assert secret.properties.managed is True
    assert secret.properties.key_id == certificate.key_id
    assert secret.properties.version == certificate.properties.version
    pem = secret.value.encode()
    key = serialization.load_pem_private_key(pem, password=None)
    cert = x509.load_pem_x509_certificate(pem)
    assert der(cert) == bytes(certificate.cer)
    assert key.public_key().public_numbers() == cert.public_key().public_numbers()
    assert stack.vault.secret_reads == {(CERTIFICATE_NAME, certificate.properties.version): 1}


def test_pkcs12_variant_loads_with_cryptography(stack, certificates, secrets):
    name = fresh_name()
    key, cert = stack.directory.new_certificate("CN=obo-pfx")
    version = stack.vault.import_certificate(name, key, cert, "application/x-pkcs12")

    assert certificates.get_certificate(name).policy.content_type == CertificateContentType.pkcs12
    secret = secrets.get_secret(name)
    assert secret.properties.content_type == "application/x-pkcs12"
    assert secret.properties.version == version
    loaded_key, loaded_cert, extra = pkcs12.load_key_and_certificates(
        base64.b64decode(secret.value), password=None
    )
    assert der(loaded_cert) == der(cert) and not extra
    assert loaded_key.private_numbers() == key.private_numbers()


def test_new_version_becomes_latest_and_versions_are_listed(stack, certificates, secrets):
    name = fresh_name()
    first, first_key, first_cert = stack.vault.create_certificate_version(name)
    second, _, second_cert = stack.vault.create_certificate_version(name)

    latest = certificates.get_certificate(name)
    assert latest.properties.version == second and bytes(latest.cer) == der(second_cert)
    older = certificates.get_certificate_version(name, first)
    assert bytes(older.cer) == der(first_cert) and older.policy is None
    listed = {p.version for p in certificates.list_properties_of_certificate_versions(name)}
    assert listed == {first, second}
    older_secret = secrets.get_secret(name, first)
    assert (
        serialization.load_pem_private_key(older_secret.value.encode(), None).private_numbers()
        == first_key.private_numbers()
    )
    assert stack.vault.secret_reads == {(name, first): 1}


def test_version_list_pages_follow_next_link(stack, certificates):
    name = fresh_name()
    versions = [stack.vault.create_certificate_version(name)[0] for _ in range(3)]

    pages = certificates.list_properties_of_certificate_versions(name, max_page_size=2)
    assert [p.version for p in pages] == versions
    assert stack.vault.answered("certificate_versions", 200) == 2  # two pages of 2 and 1


def test_disabled_version_secret_is_forbidden(stack, certificates, secrets):
    name = fresh_name()
    first = stack.vault.create_certificate_version(name)[0]
    second = stack.vault.create_certificate_version(name)[0]
    stack.vault.disable_version(name, second)

    with pytest.raises(HttpResponseError) as caught:
        secrets.get_secret(name)
    assert caught.value.status_code == 403
    assert caught.value.error.code == "Forbidden"
    assert secrets.get_secret(name, first).properties.version == first
    assert certificates.get_certificate(name).properties.enabled is False


def test_unknown_certificate_and_secret_are_not_found(stack, certificates, secrets):
    with pytest.raises(ResourceNotFoundError) as cert_error:
        certificates.get_certificate("no-such-certificate")
    with pytest.raises(ResourceNotFoundError) as secret_error:
        secrets.get_secret(CERTIFICATE_NAME, "0" * 32)

    assert cert_error.value.error.code == "CertificateNotFound"
    assert secret_error.value.error.code == "SecretNotFound"
    assert stack.vault.answered("get_certificate", 404) == 1
    assert stack.vault.answered("get_secret", 404) == 1


def test_no_token_gets_the_bearer_challenge(stack):
    response = raw_get(stack, f"/certificates/{CERTIFICATE_NAME}/", token=None)

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "Unauthorized"
    scheme, _, params = response.headers["WWW-Authenticate"].partition(" ")
    fields = dict(item.strip().split("=", 1) for item in params.split(","))
    assert scheme == "Bearer"
    assert fields["authorization"] == f'"{stack.entra.base_url}/{stack.seed.contoso.id}"'
    assert fields["resource"] == f'"{stack.vault.resource}"'
    # What the SDK verifies: the vault's host ends with ".<resource host>".
    resource_host = urllib.parse.urlsplit(stack.vault.resource).netloc
    assert urllib.parse.urlsplit(stack.vault.base_url).netloc.endswith("." + resource_host)


@pytest.mark.parametrize(
    "path",
    [
        f"/certificates/{CERTIFICATE_NAME}",
        f"/certificates/{CERTIFICATE_NAME}/",
        f"/secrets/{CERTIFICATE_NAME}/",
    ],
)
def test_latest_forms_with_and_without_trailing_slash(stack, path):
    assert raw_get(stack, path, reader_token(stack)).status_code == 200


def test_token_for_another_identity_is_forbidden(stack):
    token = stack.directory.app_token(
        stack.seed.contoso, stack.seed.spa, stack.seed.key_vault, resource_uri=stack.vault.resource
    )
    response = raw_get(stack, f"/secrets/{CERTIFICATE_NAME}/", token)

    assert response.status_code == 403
    error = response.json()["error"]
    assert error["code"] == "Forbidden"
    assert error["message"].startswith("Caller is not authorized to perform action on resource")
    assert error["innererror"] == {"code": "ForbiddenByRbac"}
    assert stack.vault.secret_reads == {}


def _other_tenant(stack) -> str:
    return reader_token(stack, stack.seed.fabrikam)


def _foreign_key(stack) -> str:
    claims = stack.directory.verify(reader_token(stack), stack.seed.contoso)
    return stack.directory.sign(stack.seed.contoso, claims, key=stack.directory.foreign_key)


def _wrong_audience(stack) -> str:
    return stack.directory.app_token(
        stack.seed.contoso, stack.seed.function_identity, stack.seed.graph
    )


@pytest.mark.parametrize("make_token", [_other_tenant, _foreign_key, _wrong_audience])
def test_bad_tokens_get_401_with_the_challenge(stack, make_token):
    response = raw_get(stack, f"/certificates/{CERTIFICATE_NAME}/", make_token(stack))

    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == stack.vault.challenge
    assert response.json()["error"]["code"] == "Unauthorized"


def test_expired_token_gets_401(stack, clock):
    token = reader_token(stack)
    clock.advance(3600 + 600)  # past exp and Key Vault's five minutes of clock skew

    response = raw_get(stack, f"/certificates/{CERTIFICATE_NAME}/", token)
    assert response.status_code == 401
    assert "WWW-Authenticate" in response.headers


def test_concurrent_reads_share_one_client(stack, secrets):
    with ThreadPoolExecutor(max_workers=8) as pool:
        values = list(pool.map(lambda _: secrets.get_secret(CERTIFICATE_NAME).value, range(16)))

    assert len(set(values)) == 1
    assert sum(stack.vault.secret_reads.values()) == 16
    assert stack.vault.answered("get_secret", 500) == 0
