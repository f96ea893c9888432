"""``GET /api/ready``, end to end against the stand-ins: settings, Entra's metadata for the
home tenant and the client credential, each a named check; 200 or 503, never a secret, a
setting's value or where the credential lives; behind a function key."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import pytest
import requests

import function_app
from devstack.functions_host import FunctionsHost
from devstack.httpserver import Fault
from devstack.stack import CERTIFICATE_NAME
from obo.readiness import DETAILS
from tests.client import FUNCTIONS, Reply, call
from tests.pipeline.test_pipeline_secretless import SECRETLESS

ROOT = Path(__file__).resolve().parents[2]


def checks(reply: Reply) -> dict[str, tuple[bool, str | None]]:
    return {c["name"]: (c["ok"], c["code"]) for c in reply.json()["checks"]}


def assert_reveals_no_configuration(reply: Reply, stack) -> None:
    body = reply.body.decode()
    for value in (
        stack.vault.base_url,
        stack.entra.base_url,
        stack.identity.endpoint,
        CERTIFICATE_NAME,
        stack.seed.contoso.id,
        stack.seed.api.app_id,
        "127.0.0.1",
    ):
        assert value not in body
    assert set(reply.json()) == {"status", "checks"}
    assert all(set(c) == {"name", "ok", "code", "detail"} for c in reply.json()["checks"])


def test_ready_when_every_check_passes(service, stack):
    reply = call("ready")
    assert reply.status == 200, reply.body
    assert reply.json()["status"] == "ready"
    assert checks(reply) == {
        "settings": (True, None),
        "entra": (True, None),
        "credential": (True, None),
    }
    assert reply.headers["Cache-Control"] == "no-store"
    assert reply.headers["Content-Type"] == "application/json"
    assert "Retry-After" not in reply.headers
    assert stack.vault.answered("get_secret", 200) == 1  # the certificate was really loaded
    assert stack.entra.calls("discovery_v2", stack.seed.contoso.id) == 1
    assert stack.entra.calls("token") == 0  # no exchange
    assert_reveals_no_configuration(reply, stack)


def test_repeating_the_check_reuses_the_caches(service, stack, clock):
    assert call("ready").status == 200
    asked = [stack.vault.calls("get_certificate"), stack.vault.calls("get_secret")]
    clock.advance(60)
    assert call("ready").status == 200
    assert [stack.vault.calls("get_certificate"), stack.vault.calls("get_secret")] == asked
    assert stack.entra.calls("discovery_v2") == stack.entra.calls("keys") == 1


def test_entra_is_asked_again_after_the_refresh_cool_down(service, stack, clock):
    from obo.jwks import REFRESH_COOLDOWN

    assert call("ready").status == 200
    clock.advance(REFRESH_COOLDOWN)
    stack.entra.inject(Fault(status=503, route="discovery_v2"))
    reply = call("ready")
    assert reply.status == 503  # known keys are kept for users, but Entra is not reachable
    assert checks(reply)["entra"] == (False, "OBO3020")
    assert stack.entra.calls("discovery_v2") == 2
    again = call("ready")  # during an outage, Entra is not asked on every check
    assert checks(again)["entra"] == (False, "OBO3020")
    assert stack.entra.calls("discovery_v2") == 2


def test_the_checks_reuse_what_user_requests_loaded(service, stack):
    assert call("me", stack.seed.user_token(stack.seed.alice)).status == 200
    stack.vault.reset_counters()
    stack.entra.reset_counters()
    assert call("ready").status == 200
    assert stack.vault.calls("get_secret") == 0
    assert stack.entra.calls("discovery_v2") == 0


def test_key_vault_refusing_the_identity_fails_the_credential_check(configure, stack, caplog):
    readers = set(stack.vault.readers)
    stack.vault.readers.clear()
    try:
        configure()
        reply = call("ready")
    finally:
        stack.vault.readers.update(readers)
    assert reply.status == 503
    assert reply.headers["Retry-After"] == "5"
    assert reply.headers["Cache-Control"] == "no-store"
    assert reply.json()["status"] == "not_ready"
    assert checks(reply) == {
        "settings": (True, None),
        "entra": (True, None),
        "credential": (False, "OBO4002"),
    }
    assert_reveals_no_configuration(reply, stack)
    assert "Key Vault Secrets User" in caplog.text  # the fix, for operators only
    assert stack.entra.calls("token") == 0


@pytest.mark.parametrize(
    "fault",
    [
        Fault(status=500, route="discovery_v2"),
        Fault(drop=True, route="keys"),
        Fault(status=200, route="discovery_v2", body=b"<html>proxy sign-in</html>"),
        Fault(status=200, route="keys", body=b'{"keys": []}', content_type="application/json"),
    ],
    ids=["discovery-500", "keys-dropped", "discovery-not-json", "no-keys"],
)
def test_entra_metadata_failing_fails_the_entra_check(service, stack, fault):
    stack.entra.inject(fault)
    reply = call("ready")
    assert reply.status == 503
    assert int(reply.headers["Retry-After"]) >= 1
    assert checks(reply) == {
        "settings": (True, None),
        "entra": (False, "OBO3020"),
        "credential": (True, None),
    }
    assert_reveals_no_configuration(reply, stack)


def test_a_home_tenant_entra_does_not_know_fails_the_entra_check(configure, stack):
    configure(OBO_TENANT_ID="11111111-2222-3333-4444-555555555555")
    reply = call("ready")
    assert reply.status == 503
    assert checks(reply)["entra"] == (False, "OBO3021")
    assert "11111111-2222-3333-4444-555555555555" not in reply.body.decode()


def test_a_bad_setting_fails_the_settings_check_and_skips_the_others(
    app_settings, stack, monkeypatch, caplog
):
    from function_app import obo

    monkeypatch.setenv("OBO_TENANT_ID", "not-a-guid-but-a-pasted-secret")
    obo.use(None)  # a host starting with these settings
    try:
        reply = call("ready")
    finally:
        obo.use(None)
    assert reply.status == 503
    assert reply.headers["Retry-After"] == "5"
    assert reply.json()["status"] == "not_ready"
    assert checks(reply) == {
        "settings": (False, "OBO1001"),
        "entra": (False, None),
        "credential": (False, None),
    }
    skipped = [c["detail"] for c in reply.json()["checks"][1:]]
    assert skipped == ["Skipped: the settings check failed."] * 2
    assert "pasted-secret" not in reply.body.decode()
    assert "pasted-secret" not in caplog.text
    assert "OBO_TENANT_ID" in caplog.text  # operators learn which setting
    assert stack.vault.calls("get_certificate") == stack.entra.calls("discovery_v2") == 0


def test_secretless_mode_checks_the_managed_identity_token(configure, stack):
    configure(**SECRETLESS)
    reply = call("ready")
    assert reply.status == 200, reply.body
    assert checks(reply)["credential"] == (True, None)
    assert stack.identity.calls("token") == 1
    assert stack.vault.calls("get_certificate") == stack.vault.calls("get_secret") == 0
    assert call("ready").status == 200
    assert stack.identity.calls("token") == 1  # azure-identity's token, reused
    assert stack.entra.calls("token") == 0


def test_secretless_mode_without_an_identity_token_fails_the_credential_check(configure, stack):
    configure(**SECRETLESS)
    stack.identity.inject(Fault(status=500, route="token"))
    reply = call("ready")
    assert reply.status == 503
    assert checks(reply)["credential"] == (False, "OBO4004")
    assert_reveals_no_configuration(reply, stack)


def test_the_route_is_not_anonymous():
    bindings = map(json.loads, FUNCTIONS["ready"].get_raw_bindings())
    trigger = next(b for b in bindings if b["type"] == "httpTrigger")
    assert trigger["authLevel"].lower() in ("function", "admin")
    assert trigger["route"] == "ready" and trigger["methods"] == ["GET"]


def test_the_local_host_reports_the_function_level_and_serves_it_without_a_key(
    app_settings, tmp_path
):
    """As Core Tools does: keys are Azure's to enforce; the level is reported. (A copy of
    the app: the host indexes it afresh, and one app can be indexed only once.)"""
    app = tmp_path / "function_app.py"
    app.write_text(Path(function_app.__file__).read_text())
    with FunctionsHost(app, port=0, stream=io.StringIO()) as host:
        level = {r.name: r.auth_level for r in host.routes()}
        reply = requests.get(f"{host.url}/api/ready", timeout=30)
    assert level["ready"] == "function"
    assert level["health"] == "anonymous"
    assert reply.status_code == 200, reply.text
    assert reply.json()["status"] == "ready"


def test_the_deployment_guide_shows_what_the_check_answers():
    guide = (ROOT / "docs" / "deployment.md").read_text()
    section = guide[guide.index("### Check it") :]
    example = json.loads(re.search(r"```json\n(.*?)```", section, re.DOTALL).group(1))
    assert example["status"] == "not_ready"
    assert [c["name"] for c in example["checks"]] == list(DETAILS)
    for check in example["checks"]:
        assert check["detail"] == DETAILS[check["name"]][0 if check["ok"] else 1]
    assert "--function-name ready" in section and "x-functions-key" in section
