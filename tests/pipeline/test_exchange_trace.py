"""The exchange's structured log record, and what ``OBO_TRACE=verbose`` adds to it: the names
of the parameters sent to Entra and the client assertion's header, never a value."""

from __future__ import annotations

import json
import logging

import pytest

from devstack.httpserver import Fault
from devstack.keys import thumbprints
from devstack.seed import SAML_ENTITY_ID
from tests.client import call
from tests.conftest import exchange_fields

OBO_V2_PARAMETERS = {
    "assertion",
    "client_assertion",
    "client_assertion_type",
    "client_id",
    "grant_type",
    "requested_token_use",
    "scope",
}


def exchange_records(caplog) -> list[dict]:
    """Each exchange's record; the verbose trace is one JSON attribute (flat for
    Application Insights), read back here."""
    records = [f for r in caplog.records if r.name == "obo.exchange" and (f := exchange_fields(r))]
    for record in records:
        if "requests" in record:
            record["requests"] = json.loads(record["requests"])
    return records


@pytest.fixture
def caplog(caplog):
    caplog.set_level(logging.INFO, logger="obo")
    return caplog


def test_basic_record_names_the_exchange_without_request_details(configure, stack, caplog):
    configure()
    seed = stack.seed
    token = seed.user_token(seed.carol, seed.contoso)
    assert call("me", token).status == 200
    (record,) = exchange_records(caplog)
    assert record["authority"] == f"{stack.entra.base_url}/{seed.contoso.id}"
    assert record["client_id"] == seed.api.app_id
    assert record["scopes"] == ["https://graph.microsoft.com/User.Read"]
    assert record["tid"] == seed.contoso.id
    assert record["oid"] == seed.carol.object_ids[seed.contoso.id]
    assert (record["aud"], record["azp"], record["ver"]) == (
        seed.api.app_id,
        seed.spa.app_id,
        "2.0",
    )
    assert (record["outcome"], record["aadsts"], record["token_type"]) == ("ok", [], "jwt")
    assert "requests" not in record
    assert token not in repr(record)


def test_refused_exchange_records_the_aadsts_code_and_entras_ids(configure, stack, caplog):
    configure()
    reply = call("me", stack.seed.user_token(stack.seed.dave))
    assert reply.status == 401
    (record,) = exchange_records(caplog)
    assert record["outcome"] == "interaction_required"
    assert record["aadsts"] == [50076]
    assert record["correlation_id"] == reply.json()["correlation_id"]
    assert record["trace_id"] == reply.json()["trace_id"]


def test_throttled_exchange_is_recorded_too(configure, stack, caplog):
    configure()
    stack.entra.inject(Fault(status=429, retry_after=7, route="token"))
    assert call("me", stack.seed.user_token(stack.seed.alice)).status == 503
    (record,) = exchange_records(caplog)
    assert record["outcome"] == "entra_429"


def test_verbose_record_lists_parameter_names_and_the_assertion_header(configure, stack, caplog):
    configure(OBO_TRACE="verbose")
    seed = stack.seed
    token = seed.user_token(seed.alice)
    assert call("me", token).status == 200
    (record,) = exchange_records(caplog)
    (request,) = record["requests"]
    assert OBO_V2_PARAMETERS <= set(request["parameters"])
    assert "client_secret" not in request["parameters"]
    header = request["client_assertion_header"]
    _, sha256 = thumbprints(seed.api_certificate)
    assert header["alg"] == "PS256"
    assert header["x5t#S256"].rstrip("=") == sha256
    assert header["x5c_subject"] == "CN=obo-middle-tier"
    assert header["x5c_not_after"].endswith("Z")
    # names and the public header only: no token, no assertion, no signature
    text = repr(record)
    assert token not in text and token.split(".")[2] not in text
    assert "eyJ" not in text


def test_verbose_record_for_saml_on_v1_shows_resource_and_requested_token_type(
    configure, stack, caplog
):
    configure(OBO_TRACE="verbose", **stack.saml_overrides("saml2", "v1"))
    assert call("downstream/whoami", stack.seed.user_token(stack.seed.alice)).status == 200
    (record,) = exchange_records(caplog)
    assert record["token_type"] == "saml2"
    assert record["authority"].endswith(stack.seed.contoso.id)
    (request,) = record["requests"]
    assert {"resource", "requested_token_type", "requested_token_use"} <= set(request["parameters"])
    assert "scope" not in request["parameters"]
    sha1, _ = thumbprints(stack.seed.api_certificate)
    assert request["client_assertion_header"]["x5t"] == sha1
    assert SAML_ENTITY_ID not in repr(request)  # names, not values


def test_verbose_records_of_a_certificate_reload_each_hold_their_own_request(
    configure, stack, caplog
):
    # one exchange, two token requests: refused with the old certificate, retried with the new
    configure(OBO_TRACE="verbose")
    seed = stack.seed
    assert call("me", seed.user_token(seed.alice)).status == 200  # loads the first version
    _, _, new_cert = stack.vault.create_certificate_version("obo-api-cert")
    old = list(seed.api.certificates)
    seed.api.certificates[:] = [new_cert]
    try:
        caplog.clear()
        assert call("me", seed.user_token(seed.carol, seed.contoso)).status == 200
    finally:
        seed.api.certificates[:] = old
        stack.vault.import_certificate("obo-api-cert", seed.api_key, seed.api_certificate)
    refused, retried = exchange_records(caplog)
    assert (refused["outcome"], refused["aadsts"]) == ("invalid_client", [700027])
    assert retried["outcome"] == "ok" and retried["credential"] != refused["credential"]
    (first,), (second,) = refused["requests"], retried["requests"]
    assert (
        first["client_assertion_header"]["x5t#S256"].rstrip("=")
        == thumbprints(seed.api_certificate)[1]
    )
    assert second["client_assertion_header"]["x5t#S256"].rstrip("=") == thumbprints(new_cert)[1]


def test_a_saml_answer_that_is_not_saml_is_recorded_as_such(configure, stack, caplog):
    configure(**stack.saml_overrides("saml2", "v1"))
    stack.entra.ignore_requested_token_type = True
    assert call("downstream/whoami", stack.seed.user_token(stack.seed.alice)).status == 502
    (record,) = exchange_records(caplog)
    assert record["outcome"] == "OBO5010"


@pytest.mark.parametrize("logger", ["obo.exchange", "msal.application", "azure.identity"])
def test_the_leak_watch_catches_a_token_in_any_library_log(no_secrets_in_logs, stack, logger):
    token = stack.seed.user_token(stack.seed.alice)
    logging.getLogger(logger).debug("got %s", token)
    logging.getLogger(logger).debug("assertion %s", "PEFzc2VydGlvbiB4bWxucz0i")
    try:
        assert len(no_secrets_in_logs.leaks) == 2
    finally:
        no_secrets_in_logs.leaks.clear()
