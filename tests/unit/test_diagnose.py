"""`python -m obo diagnose`: what it says about each kind of token, offline, never echoing it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from obo.__main__ import render
from obo.diagnose import diagnose, relative
from obo.errors import Unauthorized

ROOT = Path(__file__).resolve().parents[2]
STABLE_KEYS = {
    "kind",
    "version",
    "issuer",
    "tenant",
    "audience",
    "scopes",
    "roles",
    "expires_at",
    "expired",
    "guest",
    "usable_for_obo",
    "problems",
}


def inspect(token: str, settings: dict[str, str]) -> tuple[dict, str]:
    """The JSON report and the text report, after checking neither leaks the token."""
    report = diagnose(token, settings)
    as_json, text = json.dumps(report.as_dict()), render(report)
    assert_no_token(token, as_json + text)
    return report.as_dict(), text


def assert_no_token(token: str, output: str) -> None:
    header, payload, signature = token.split(".")
    assert signature not in output
    assert payload not in output and header not in output


def codes(report: dict) -> list[tuple[str, str | None]]:
    return [(p["code"], p["aadsts"]) for p in report["problems"]]


def run_cli(*args: str, env: dict[str, str], stdin: str | None = None):
    base = {k: v for k, v in os.environ.items() if not k.startswith("OBO_")}
    return subprocess.run(
        [sys.executable, "-m", "obo", "diagnose", *args],
        input=stdin,
        env={**base, **env},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


# -- usable tokens ---------------------------------------------------------------------------
def test_member_access_token_for_api1_is_usable(stack):
    seed = stack.seed
    report, text = inspect(seed.user_token(seed.alice), stack.settings())
    assert report["usable_for_obo"] is True and report["problems"] == []
    assert STABLE_KEYS <= set(report)
    assert report["kind"] == "delegated" and report["version"] == "2.0"
    assert report["tenant"] == seed.contoso.id
    assert report["issuer"] == f"{stack.entra.base_url}/{seed.contoso.id}/v2.0"
    assert report["audience"] == seed.api.app_id and report["scopes"] == ["access_as_user"]
    assert report["expired"] is False and report["guest"] is False
    assert report["signature_checked"] is False
    assert "delegated access token, v2 (signature not checked offline)" in text
    assert "valid for 60 minutes" in text
    assert "Verdict: API 1 can use this token" in text


def test_v1_token_with_the_app_id_uri_as_audience_is_usable(stack):
    seed = stack.seed
    report, _ = inspect(seed.user_token(seed.alice, version=1), stack.settings())
    assert report["version"] == "1.0" and report["audience"] == f"api://{seed.api.app_id}"
    assert report["issuer"] == f"https://sts.windows.net/{seed.contoso.id}/"
    assert report["usable_for_obo"] is True


def test_guest_is_usable_and_told_the_tid_authority_not_common(stack):
    seed = stack.seed
    report, text = inspect(seed.user_token(seed.carol, seed.contoso), stack.settings())
    assert report["usable_for_obo"] is True
    assert report["guest"] is True and report["home_tenant"] == seed.fabrikam.id
    authority = f"{stack.entra.base_url}/{seed.contoso.id}"
    assert report["authority"] == authority
    (guest_note,) = [n for n in report["notes"] if n.startswith("Guest")]
    assert authority in guest_note and "/common" in guest_note and "AADSTS50020" in guest_note
    assert f"guest (home {seed.fabrikam.id})" in text


# -- what Entra would answer -------------------------------------------------------------------
def test_token_for_another_api_is_aadsts500131_with_the_expected_audience(stack):
    seed = stack.seed
    token = stack.directory.user_token(
        seed.alice, seed.contoso, seed.spa, seed.other_api, ["Orders.Read"]
    )
    report, text = inspect(token, stack.settings())
    assert codes(report) == [("OBO3007", "AADSTS500131")]
    problem = report["problems"][0]
    assert seed.other_api.app_id in problem["message"]
    assert f"api://{seed.api.app_id}" in problem["message"]  # the expected audience
    assert f"api://{seed.api.app_id}/access_as_user" in problem["fix"]
    assert problem["meaning"].startswith("The assertion's audience is not API 1")
    assert "Entra would answer AADSTS500131" in text


def test_graph_token_is_aadsts50013_because_only_graph_can_verify_it(stack):
    seed = stack.seed
    token = stack.directory.user_token(
        seed.alice, seed.contoso, seed.spa, seed.graph, ["User.Read"]
    )
    report, _ = inspect(token, stack.settings())
    assert report["kind"] == "graph" and report["audience"] == "https://graph.microsoft.com"
    assert codes(report) == [("OBO3013", "AADSTS50013")]
    assert "Graph token" in report["problems"][0]["message"]


def test_token_whose_issuer_names_another_tenant_than_tid_is_aadsts50013(stack):
    seed = stack.seed
    token = seed.user_token(seed.alice, extra={"tid": seed.fabrikam.id})
    report, _ = inspect(token, stack.settings())
    assert codes(report) == [("OBO3005", "AADSTS50013")]
    problem = report["problems"][0]
    assert f"expected '{stack.entra.base_url}/{seed.fabrikam.id}/v2.0'" in problem["message"]
    assert f"names tenant {seed.contoso.id} but tid is {seed.fabrikam.id}" in problem["fix"]


def test_token_from_another_authority_host_is_aadsts50013(stack):
    seed = stack.seed
    iss = f"https://login.microsoftonline.us/{seed.contoso.id}/v2.0"
    report, _ = inspect(seed.user_token(seed.alice, extra={"iss": iss}), stack.settings())
    assert codes(report) == [("OBO3005", "AADSTS50013")]
    assert f"{stack.entra.base_url}/{seed.contoso.id}/v2.0" in report["problems"][0]["message"]


def test_id_token_is_refused_with_a_hint_to_send_the_access_token(stack):
    seed = stack.seed
    report, text = inspect(
        stack.directory.id_token(seed.alice, seed.contoso, seed.spa), stack.settings()
    )
    assert report["kind"] == "id_token"
    assert codes(report) == [("OBO3010", "AADSTS500131")]
    assert "not the ID token" in report["problems"][0]["fix"]
    assert "ID token, v2" in text


def test_app_only_token_for_api1_is_aadsts50027(stack):
    seed = stack.seed
    token = stack.directory.app_token(seed.contoso, seed.function_identity, seed.api)
    report, _ = inspect(token, stack.settings())
    assert report["kind"] == "app_only" and report["scopes"] == []
    assert codes(report) == [("OBO3011", "AADSTS50027")]


def test_app_only_token_for_another_resource_fails_on_its_audience_first(stack):
    seed = stack.seed
    token = stack.directory.app_token(seed.contoso, seed.function_identity, seed.key_vault)
    report, _ = inspect(token, stack.settings())
    assert report["kind"] == "app_only"
    assert codes(report) == [("OBO3011", "AADSTS500131")]


def test_expired_token_says_how_long_ago_and_aadsts500133(stack):
    seed = stack.seed
    report, text = inspect(seed.user_token(seed.alice, lifetime=-600), stack.settings())
    assert report["expired"] is True
    assert codes(report) == [("OBO3008", "AADSTS500133")]
    assert report["problems"][0]["message"].startswith("The token has expired;")
    assert "acquire a fresh access token" in report["problems"][0]["fix"]  # the AADSTS table
    assert "expired 10 minutes ago" in text


def test_b2c_token_is_refused_because_b2c_has_no_obo(stack):
    seed = stack.seed
    report, text = inspect(stack.directory.b2c_token(seed.spa, seed.api), stack.settings())
    assert report["kind"] == "b2c"
    assert codes(report) == [("OBO3012", None)]
    assert "B2C, which does not support the On-Behalf-Of" in report["problems"][0]["message"]
    assert "from the client" in report["problems"][0]["fix"]  # what to do instead
    assert "Azure AD B2C token" in text


def test_tenant_not_allowed_is_refused_by_api1_itself(stack):
    seed = stack.seed
    report, text = inspect(seed.user_token(seed.nina), stack.settings())
    assert codes(report) == [("OBO3006", None)]
    assert seed.northwind.id in report["problems"][0]["fix"]
    assert "API 1 refuses it itself" in text


def test_missing_scope_names_the_scope_to_request(stack):
    seed = stack.seed
    report, _ = inspect(seed.user_token(seed.alice, scopes=["Orders.Read"]), stack.settings())
    assert codes(report) == [("OBO3014", None)]
    assert f"api://{seed.api.app_id}/access_as_user" in report["problems"][0]["fix"]


def test_every_problem_is_reported_not_only_the_first(stack):
    seed = stack.seed
    report, text = inspect(seed.user_token(seed.nina, lifetime=-7200), stack.settings())
    assert codes(report) == [("OBO3006", None), ("OBO3008", "AADSTS500133")]
    assert "expired 2 hours ago" in text


# -- incomplete settings, bad input --------------------------------------------------------------
def test_without_settings_it_still_tells_the_kind_and_names_what_is_missing(stack):
    seed = stack.seed
    report, text = inspect(stack.directory.id_token(seed.alice, seed.contoso, seed.spa), {})
    assert report["kind"] == "id_token" and report["usable_for_obo"] is False
    assert {"OBO_TENANT_ID", "OBO_CLIENT_ID"} <= set(report["settings_missing"])
    assert ("OBO1001", None) in codes(report) and ("OBO3010", "AADSTS500131") in codes(report)
    assert "Settings incomplete" in text and "Setting OBO_CLIENT_ID is required." in text


def test_settings_api1_needs_only_to_start_do_not_change_the_verdict(stack):
    seed = stack.seed
    settings = stack.settings()
    del settings["OBO_KEY_VAULT_URL"], settings["OBO_CERTIFICATE_NAME"]
    report, _ = inspect(seed.user_token(seed.alice), settings)
    assert report["usable_for_obo"] is True
    assert report["settings_missing"] == ["OBO_CERTIFICATE_NAME", "OBO_KEY_VAULT_URL"]


def test_something_that_is_not_a_jwt_is_bad_input():
    with pytest.raises(Unauthorized) as caught:
        diagnose("not-a-token", {})
    assert caught.value.code == "OBO3001"


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (45, "45 seconds"),
        (60, "60 seconds"),
        (600, "10 minutes"),
        (3599.7, "60 minutes"),
        (-600, "10 minutes"),
        (3 * 3600, "3 hours"),
        (3 * 86400, "3 days"),
    ],
)
def test_relative_times_read_at_a_glance(seconds, text):
    assert relative(seconds) == text


# -- the command line --------------------------------------------------------------------------
def test_cli_reads_the_token_from_stdin_and_settings_from_the_environment(stack):
    seed = stack.seed
    token = seed.user_token(seed.carol, seed.contoso)
    result = run_cli(env=stack.settings(), stdin=f"Bearer {token}\n")
    assert result.returncode == 0, result.stderr
    assert "delegated access token" in result.stdout and "guest" in result.stdout
    assert "Verdict: API 1 can use this token" in result.stdout
    assert_no_token(token, result.stdout + result.stderr)


def test_cli_json_for_scripts_exits_1_when_unusable(stack):
    seed = stack.seed
    token = stack.directory.user_token(
        seed.alice, seed.contoso, seed.spa, seed.other_api, ["Orders.Read"]
    )
    result = run_cli(token, "--json", env=stack.settings())
    assert result.returncode == 1, result.stderr
    report = json.loads(result.stdout)
    assert STABLE_KEYS <= set(report)
    assert report["usable_for_obo"] is False
    assert [(p["code"], p["aadsts"]) for p in report["problems"]] == [("OBO3007", "AADSTS500131")]
    assert {"code", "aadsts", "message", "fix"} <= set(report["problems"][0])
    assert_no_token(token, result.stdout + result.stderr)


def test_cli_reads_a_local_settings_file(stack, tmp_path):
    seed = stack.seed
    path = tmp_path / "local.settings.json"
    path.write_text(json.dumps({"IsEncrypted": False, "Values": stack.settings()}))
    token = seed.user_token(seed.alice, lifetime=-600)
    result = run_cli("-", "--settings", str(path), env={}, stdin=token)
    assert result.returncode == 1, result.stderr
    assert "expired 10 minutes ago" in result.stdout
    assert "Entra would answer AADSTS500133" in result.stdout
    assert "Settings incomplete" not in result.stdout  # the file, not the (empty) environment
    assert_no_token(token, result.stdout + result.stderr)


def test_cli_exits_2_on_what_is_not_a_jwt(stack):
    result = run_cli("this.is-not", env=stack.settings())
    assert result.returncode == 2
    assert "not a JWT" in result.stderr and result.stdout == ""


def test_cli_exits_2_on_an_unreadable_settings_file(stack, tmp_path):
    seed = stack.seed
    (tmp_path / "broken.json").write_text("{")
    result = run_cli(
        seed.user_token(seed.alice), "--settings", str(tmp_path / "broken.json"), env={}
    )
    assert result.returncode == 2 and "is not JSON" in result.stderr


def test_cli_never_echoes_a_stray_argument(stack):
    seed = stack.seed
    first, second = seed.user_token(seed.alice), seed.user_token(seed.bob)
    result = run_cli(first, second, env=stack.settings())
    assert result.returncode == 2
    assert "unrecognized arguments: <redacted>" in result.stderr
    assert_no_token(first, result.stderr)
    assert_no_token(second, result.stderr)
