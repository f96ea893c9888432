"""Key Vault and managed-identity failures, end to end, each with its precise status."""

from __future__ import annotations

import pytest

from obo.credentials import parse_certificate
from tests.client import call


def _logged(caplog) -> str:
    return " ".join(r.getMessage() for r in caplog.records)


def test_unknown_certificate_is_502_naming_it_in_the_log(configure, stack, caplog):
    configure(OBO_CERTIFICATE_NAME="no-such-cert")
    reply = call("me", stack.seed.user_token(stack.seed.alice))
    assert reply.status == 502
    assert reply.json()["code"] == "OBO4003"
    assert "no-such-cert" not in reply.body.decode()  # callers learn no configuration
    assert "no-such-cert" in _logged(caplog)
    assert stack.entra.calls("token") == 0


def test_managed_identity_refused_is_503(configure, stack):
    configure(AZURE_CLIENT_ID="00000000-0000-0000-0000-000000000001")
    reply = call("me", stack.seed.user_token(stack.seed.alice))
    assert reply.status == 503
    assert reply.json()["code"] == "OBO4004"
    assert "Retry-After" in reply.headers


def test_identity_without_key_vault_role_is_502(configure, stack, caplog):
    readers = set(stack.vault.readers)
    stack.vault.readers.clear()
    try:
        configure()
        reply = call("me", stack.seed.user_token(stack.seed.alice))
        assert reply.status == 502
        assert reply.json()["code"] == "OBO4002"
        assert "Key Vault Secrets User" in _logged(caplog)  # the fix, for operators
    finally:
        stack.vault.readers.update(readers)


def test_pkcs12_secret_is_used_like_pem(configure, stack):
    name = "obo-api-cert-pfx"
    stack.vault.import_certificate(
        name, stack.seed.api_key, stack.seed.api_certificate, content_type="application/x-pkcs12"
    )
    svc = configure(OBO_CERTIFICATE_NAME=name)
    reply = call("me", stack.seed.user_token(stack.seed.alice))
    assert reply.status == 200, reply.body
    assert svc.credentials.current().x5t_sha256


def test_secret_without_private_key_is_refused():
    with pytest.raises(ValueError):
        parse_certificate(
            "v1", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", None
        )


def test_certificate_repr_never_shows_the_key(service, stack):
    assert call("me", stack.seed.user_token(stack.seed.alice)).status == 200
    text = repr(service.credentials.current())
    assert "PRIVATE KEY" not in text and "x5t#S256" in text
