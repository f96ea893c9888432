"""Settings: validated once, bad values answered with a clear 500 naming the setting."""

from __future__ import annotations

import pytest

from function_app import obo
from obo.config import SETTING_NAMES, UNSET_ID, Settings
from obo.errors import ConfigurationError
from tests.client import call

GOOD = {
    "OBO_TENANT_ID": "bc7c2215-eea3-590d-b667-0594ab25a05f",
    "OBO_CLIENT_ID": "6d6ecb5a-b8ec-5ed9-9f58-e8ebaf44ee30",
    "OBO_KEY_VAULT_URL": "https://kv-obo.vault.azure.net",
    "OBO_CERTIFICATE_NAME": "obo-api-cert",
}


def test_defaults_follow_the_design():
    s = Settings.from_env(GOOD)
    assert s.authority_host == "https://login.microsoftonline.com"
    assert s.allowed_tenants == frozenset({GOOD["OBO_TENANT_ID"]})
    assert s.audiences == {GOOD["OBO_CLIENT_ID"], f"api://{GOOD['OBO_CLIENT_ID']}"}
    assert s.required_scopes == {"access_as_user"}
    assert s.default_api.base_url == "https://graph.microsoft.com/v1.0"
    assert s.default_api.scopes == ("https://graph.microsoft.com/User.Read",)
    assert s.authority("8a1f0000-0000-0000-0000-000000000001").endswith(
        "/8a1f0000-0000-0000-0000-000000000001"
    )
    assert (s.default_api.token_type, s.saml_endpoint, s.trace_verbose) == ("jwt", "v1", False)


def test_saml_downstream_names_its_entity_id():
    s = Settings.from_env(
        {
            **GOOD,
            "OBO_DOWNSTREAM_TOKEN_TYPE": "SAML1",
            "OBO_SAML_ENDPOINT": "v2",
            "OBO_DOWNSTREAM_SCOPES": "https://erp.example/saml/.default",
            "OBO_TRACE": "verbose",
        }
    )
    assert (s.default_api.token_type, s.saml_endpoint, s.trace_verbose) == ("saml1", "v2", True)
    assert s.saml_resource == "https://erp.example/saml"


def test_lists_accept_commas_and_spaces_and_star():
    s = Settings.from_env({**GOOD, "OBO_ALLOWED_TENANTS": "*", "OBO_DOWNSTREAM_SCOPES": "a/x, a/y"})
    assert s.allowed_tenants is None and s.tenant_allowed("anything")
    assert s.default_api.scopes == ("a/x", "a/y")


def test_never_a_tenantless_authority():
    with pytest.raises(ValueError):
        Settings.from_env(GOOD).authority("common")


@pytest.mark.parametrize(
    ("name", "value", "fragment"),
    [
        ("OBO_TENANT_ID", "", "is required"),
        ("OBO_TENANT_ID", "contoso", "must be a GUID"),
        ("OBO_CLIENT_ID", "api://x", "must be a GUID"),
        ("OBO_AUTHORITY_HOST", "http://login.microsoftonline.com", "https://"),
        ("OBO_KEY_VAULT_URL", "kv-obo.vault.azure.net", "https://"),
        ("OBO_DOWNSTREAM_BASE_URL", "https://graph.microsoft.com/v1.0?x=1", "without query"),
        ("OBO_ALLOWED_TENANTS", "contoso,fabrikam", "must be a GUID"),
        ("OBO_CERTIFICATE_NAME", "bad/name", "letters, digits"),
        ("OBO_CA_BUNDLE", "/nonexistent/ca.pem", "does not exist"),
        ("OBO_DOWNSTREAM_TOKEN_TYPE", "saml", "jwt, saml2, saml1"),
        ("OBO_SAML_ENDPOINT", "v3", "v1, v2"),
        ("OBO_TRACE", "debug", "basic, verbose"),
        ("OBO_CLIENT_CREDENTIAL", "secret", "certificate, managed_identity"),
    ],
)
def test_bad_setting_names_itself(name, value, fragment):
    with pytest.raises(ConfigurationError) as info:
        Settings.from_env({**GOOD, name: value})
    assert info.value.code == "OBO1001"
    assert name in info.value.detail and fragment in info.value.detail


def test_managed_identity_credential_needs_no_key_vault():
    env = {k: v for k, v in GOOD.items() if k not in ("OBO_KEY_VAULT_URL", "OBO_CERTIFICATE_NAME")}
    s = Settings.from_env({**env, "OBO_CLIENT_CREDENTIAL": "managed_identity"})
    assert (s.client_credential, s.key_vault_url, s.certificate_name) == (
        "managed_identity",
        "",
        "",
    )
    assert s.federation_audience == "api://AzureADTokenExchange"
    with pytest.raises(ConfigurationError, match="OBO_KEY_VAULT_URL"):
        Settings.from_env(env)  # the certificate (default) does need it


def test_federation_audience_follows_the_cloud():
    s = Settings.from_env({**GOOD, "OBO_AUTHORITY_HOST": "https://login.microsoftonline.us"})
    assert s.federation_audience == "api://AzureADTokenExchangeUSGov"


@pytest.mark.parametrize(
    "scopes",
    ["https://erp.example/saml/user_impersonation", "https://a/.default https://b/.default"],
)
def test_saml_needs_exactly_one_default_scope(scopes):
    with pytest.raises(ConfigurationError) as info:
        Settings.from_env(
            {**GOOD, "OBO_DOWNSTREAM_TOKEN_TYPE": "saml2", "OBO_DOWNSTREAM_SCOPES": scopes}
        )
    assert info.value.extra["setting"] == "OBO_DOWNSTREAM_SCOPES"
    assert "<entity id>/.default" in info.value.detail


def test_misconfigured_app_answers_problem_not_trace(monkeypatch):
    for name in GOOD:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("OBO_CLIENT_ID", "not-a-guid")
    obo.use(None)
    try:
        reply = call("me", "a.b.c")
        assert reply.status == 500
        assert reply.headers["Content-Type"] == "application/problem+json"
        problem = reply.json()
        assert problem["code"] == "OBO1001"
        assert problem["setting"] == "OBO_TENANT_ID"
        assert "Traceback" not in reply.body.decode()
        assert call("health").status == 200  # liveness still answers
    finally:
        obo.use(None)


@pytest.mark.parametrize("name", SETTING_NAMES)
def test_partial_settings_name_what_they_could_not_read(name):
    settings, refused = Settings.partial({**GOOD, name: "no good:"})
    if name in refused:
        assert name in refused[name]  # the reason names the setting
        assert set(refused) == {name}  # and nothing else was refused
    else:  # a free-form setting: taken as given
        assert name in ("OBO_AUDIENCES", "OBO_REQUIRED_SCOPES", "OBO_DOWNSTREAM_SCOPES")
    assert settings.client_id == GOOD["OBO_CLIENT_ID"] or name == "OBO_CLIENT_ID"


def test_partial_settings_from_nothing():
    settings, refused = Settings.partial({})
    assert {"OBO_TENANT_ID", "OBO_CLIENT_ID", "OBO_KEY_VAULT_URL", "OBO_CERTIFICATE_NAME"} <= set(
        refused
    )
    assert settings.tenant_id == UNSET_ID  # a placeholder, reported by name in ``refused``


# -- named downstream APIs: OBO_DOWNSTREAM__<NAME>__<KEY> -------------------------------
ORDERS = {
    "OBO_DOWNSTREAM__ORDERS__BASE_URL": "https://orders.example/api",
    "OBO_DOWNSTREAM__ORDERS__SCOPES": "api://orders/Orders.Read",
}


def test_named_apis_beside_the_default_and_graph():
    s = Settings.from_env(
        {
            **GOOD,
            **ORDERS,
            "OBO_DOWNSTREAM__Orders__RELAY": "True",
            "OBO_DOWNSTREAM__ERP__BASE_URL": "https://erp.example",
            "OBO_DOWNSTREAM__ERP__SCOPES": "https://erp.example/saml/.default",
            "OBO_DOWNSTREAM__ERP__TOKEN_TYPE": "saml2",
        }
    )
    assert sorted(s.apis) == ["default", "erp", "graph", "orders"]
    orders = s.apis["orders"]
    assert (orders.base_url, orders.scopes, orders.token_type, orders.relay) == (
        "https://orders.example/api",
        ("api://orders/Orders.Read",),
        "jwt",
        True,
    )
    assert (s.apis["erp"].token_type, s.apis["erp"].saml_resource) == (
        "saml2",
        "https://erp.example/saml",
    )
    assert (
        s.apis["default"].relay is False
        and s.default_api.setting("SCOPES") == "OBO_DOWNSTREAM_SCOPES"
    )


def test_graph_is_built_in_and_can_be_overridden():
    s = Settings.from_env(GOOD)
    assert (s.apis["graph"].base_url, s.apis["graph"].scopes) == (
        "https://graph.microsoft.com/v1.0",
        ("https://graph.microsoft.com/User.Read",),
    )
    s = Settings.from_env(
        {**GOOD, "OBO_DOWNSTREAM__GRAPH__BASE_URL": "https://graph.microsoft.us/v1.0"}
    )
    assert s.apis["graph"].base_url == "https://graph.microsoft.us/v1.0"


SECRET_LOOKING = "https://user:hunter2@orders.example/api?sig=hunter2"


@pytest.mark.parametrize(
    ("changes", "code", "setting", "fragment"),
    [
        (
            {"OBO_DOWNSTREAM__ORDERS__BASE_URL": ""},
            "OBO1001",
            "OBO_DOWNSTREAM__ORDERS__BASE_URL",
            "is required",
        ),
        (
            {"OBO_DOWNSTREAM__ORDERS__BASE_URL": SECRET_LOOKING},
            "OBO1001",
            "OBO_DOWNSTREAM__ORDERS__BASE_URL",
            "https:// URL without query",
        ),
        (
            {
                "OBO_DOWNSTREAM__ORDERS__SCOPES": "api://orders/Orders.Read https://graph.microsoft.com/User.Read"
            },
            "OBO1002",
            "OBO_DOWNSTREAM__ORDERS__SCOPES",
            "2 resources",
        ),
        (
            {"OBO_DOWNSTREAM__ORDERS__SCOPES": "api://orders/Orders.Read User.Read"},
            "OBO1002",
            "OBO_DOWNSTREAM__ORDERS__SCOPES",
            "AADSTS28000",
        ),
        (
            {"OBO_DOWNSTREAM__ORDERS__SCOPE": "x"},
            "OBO1001",
            "OBO_DOWNSTREAM__ORDERS__SCOPE",
            "BASE_URL, SCOPES",
        ),
        (
            {"OBO_DOWNSTREAM__OR-DERS__SCOPES": "x"},
            "OBO1001",
            "OBO_DOWNSTREAM__OR-DERS__SCOPES",
            "single underscores",
        ),
        (
            {"OBO_DOWNSTREAM__DEFAULT__SCOPES": "x"},
            "OBO1001",
            "OBO_DOWNSTREAM__DEFAULT__SCOPES",
            "OBO_DOWNSTREAM_<KEY>",
        ),
        (
            {"OBO_DOWNSTREAM__ORDERS__TOKEN_TYPE": "saml3"},
            "OBO1001",
            "OBO_DOWNSTREAM__ORDERS__TOKEN_TYPE",
            "jwt, saml2",
        ),
        (
            {"OBO_DOWNSTREAM__ORDERS__RELAY": "yes"},
            "OBO1001",
            "OBO_DOWNSTREAM__ORDERS__RELAY",
            "true or false",
        ),
        (
            {"OBO_DOWNSTREAM__ORDERS__TOKEN_TYPE": "saml2"},
            "OBO1001",
            "OBO_DOWNSTREAM__ORDERS__SCOPES",
            "/.default",
        ),
        (
            {"OBO_DOWNSTREAM_SCOPES": "https://graph.microsoft.com/User.Read api://x/y"},
            "OBO1002",
            "OBO_DOWNSTREAM_SCOPES",
            "resources",
        ),
    ],
)
def test_a_bad_named_api_setting_names_itself_never_its_value(changes, code, setting, fragment):
    with pytest.raises(ConfigurationError) as info:
        Settings.from_env({**GOOD, **ORDERS, **changes})
    assert (info.value.code, info.value.extra["setting"]) == (code, setting)
    assert setting in info.value.detail and fragment in info.value.detail
    assert "hunter2" not in info.value.detail


def test_scopes_of_one_resource_and_openid_are_one_api():
    s = Settings.from_env(
        {
            **GOOD,
            "OBO_DOWNSTREAM_SCOPES": "User.Read Mail.Read openid "
            "https://graph.microsoft.com/GroupMember.Read.All",
        }
    )
    assert len(s.default_api.scopes) == 4


def test_partial_settings_leave_a_bad_named_api_out():
    settings, refused = Settings.partial(
        {**GOOD, **ORDERS, "OBO_DOWNSTREAM__ORDERS__BASE_URL": "http://x"}
    )
    assert set(refused) == {"OBO_DOWNSTREAM__ORDERS__BASE_URL"}
    assert "orders" not in settings.apis and "graph" in settings.apis


# -- the settings table: every setting's default and one refused value ------------------------
from obo import settings_table  # noqa: E402

MARK = "hunter2"  # in each refused value where a secret could hide; never in an answer
REFUSED = {  # setting -> (a value it refuses, the code)
    "OBO_TENANT_ID": (MARK, "OBO1001"),
    "OBO_CLIENT_ID": (f"{MARK}-pasted", "OBO1001"),
    "OBO_AUTHORITY_HOST": (f"Endpoint=sb://x/;SharedAccessKey={MARK}", "OBO1001"),
    "OBO_ALLOWED_TENANTS": (f"*,{MARK}", "OBO1001"),
    "OBO_AUDIENCES": None,  # free-form: any value is an audience
    "OBO_REQUIRED_SCOPES": (", ,", "OBO1001"),
    "OBO_CLIENT_CREDENTIAL": (MARK, "OBO1001"),
    "OBO_KEY_VAULT_URL": (f"https://kv.vault.azure.net/?sig={MARK}", "OBO1001"),
    "OBO_CERTIFICATE_NAME": (f"{MARK}/1", "OBO1001"),
    "OBO_DOWNSTREAM_BASE_URL": (f"https://user:{MARK}@api.example/v1", "OBO1001"),
    "OBO_DOWNSTREAM_SCOPES": (f"api://{MARK}/a https://graph.microsoft.com/User.Read", "OBO1002"),
    "OBO_DOWNSTREAM_TOKEN_TYPE": (MARK, "OBO1001"),
    "OBO_SAML_ENDPOINT": (MARK, "OBO1001"),
    "OBO_TRACE": (MARK, "OBO1001"),
    "OBO_CA_BUNDLE": (f"/nonexistent/{MARK}.pem", "OBO1001"),
    "OBO_CACHE_URL": (f"http://:{MARK}@cache.example:6379", "OBO1001"),
}


def test_every_setting_has_a_refused_value_here():
    assert set(REFUSED) == set(SETTING_NAMES)


@pytest.mark.parametrize(
    "setting", [s for s in settings_table.SETTINGS if REFUSED[s.name]], ids=lambda s: s.name
)
def test_a_refused_setting_is_named_with_its_code_never_its_value(setting):
    value, code = REFUSED[setting.name]
    with pytest.raises(ConfigurationError) as info:
        Settings.from_env({**GOOD, setting.name: value})
    error = info.value
    assert (error.code, error.extra["setting"]) == (code, setting.name)
    assert setting.name in error.public_detail and MARK not in str(error.body())
    if setting.name != "OBO_CA_BUNDLE":  # a file path is no secret: operators see it in the log
        assert MARK not in error.detail


@pytest.mark.parametrize("setting", settings_table.SETTINGS, ids=lambda s: s.name)
def test_an_unset_or_blank_setting_takes_its_default(setting):
    if setting.required and setting.name in GOOD:
        for unset in ({}, {setting.name: "  "}):
            env = {k: v for k, v in GOOD.items() if k != setting.name}
            with pytest.raises(ConfigurationError) as info:
                Settings.from_env({**env, **unset})
            assert info.value.extra["setting"] == setting.name
            assert setting.required in info.value.detail
        return
    unset = Settings.from_env(GOOD)
    assert Settings.from_env({**GOOD, setting.name: " "}) == unset
    if setting.default:  # the documented default is what an unset setting means
        assert Settings.from_env({**GOOD, setting.name: setting.default}) == unset


@pytest.mark.parametrize("setting", settings_table.SETTINGS, ids=lambda s: s.name)
def test_every_placeholder_is_a_value_its_setting_accepts(setting):
    fallback = setting.fallback()
    assert fallback is not None or not (setting.required or setting.default)


def test_partial_settings_collect_every_refusal_in_one_pass():
    bad = {
        name: REFUSED[name][0]
        for name in ("OBO_CLIENT_ID", "OBO_TRACE", "OBO_CACHE_URL", "OBO_DOWNSTREAM_TOKEN_TYPE")
    }
    env = {
        **GOOD,
        **ORDERS,
        **bad,
        "OBO_DOWNSTREAM__ORDERS__RELAY": "maybe",
        "OBO_DOWNSTREAM__HR__SCOPE": "x",
    }
    settings, refused = Settings.partial(env)
    assert set(refused) == {*bad, "OBO_DOWNSTREAM__ORDERS__RELAY", "OBO_DOWNSTREAM__HR__SCOPE"}
    assert all(name in reason and MARK not in reason for name, reason in refused.items())
    assert (settings.client_id, settings.trace, settings.cache_url) == (UNSET_ID, "basic", None)
    assert settings.default_api.token_type == "jwt" and "orders" not in settings.apis
    with pytest.raises(ConfigurationError) as info:  # from_env: the first in the table's order
        Settings.from_env(env)
    assert info.value.extra["setting"] == "OBO_CLIENT_ID"


def test_the_key_vault_settings_are_ignored_with_the_managed_identity():
    s = Settings.from_env(
        {
            **GOOD,
            "OBO_CLIENT_CREDENTIAL": "managed_identity",
            "OBO_KEY_VAULT_URL": "not a url",
            "OBO_CERTIFICATE_NAME": "bad/name",
        }
    )
    assert (s.key_vault_url, s.certificate_name) == ("", "")


def test_a_secret_bearing_setting_is_kept_out_of_repr():
    secret = [s for s in settings_table.SETTINGS if s.secret]
    assert [s.name for s in secret] == ["OBO_CACHE_URL"]
    s = Settings.from_env({**GOOD, "OBO_CACHE_URL": f"rediss://:{MARK}@cache.example:6380"})
    assert s.cache_url and MARK in s.cache_url and MARK not in repr(s)


def test_a_secret_bearing_setting_shows_nothing_of_its_value_even_to_the_log():
    from obo.config import _Reading
    from obo.setting_parsers import https_url

    shown = settings_table.Setting("OBO_X", https_url, "", "")
    reading = _Reading({"OBO_X": "http://kept.example/path"})
    assert reading.get(shown) is None and "kept.example" in reading.refused["OBO_X"].detail
    hidden = settings_table.Setting("OBO_X", https_url, "", "", secret=True)
    reading = _Reading({"OBO_X": "http://kept.example/path"})
    assert reading.get(hidden) is None and "kept.example" not in reading.refused["OBO_X"].detail


def test_azure_client_id_is_read_into_the_settings_not_the_obo_table():
    assert Settings.from_env(GOOD).managed_identity_client_id is None
    client = "3f1c0000-0000-0000-0000-0000000000aa"
    assert (
        Settings.from_env({**GOOD, "AZURE_CLIENT_ID": f" {client} "}).managed_identity_client_id
        == client
    )
    assert "AZURE_CLIENT_ID" not in SETTING_NAMES


def test_modes_are_typed_literals_the_code_compares_against():
    s = Settings.from_env(
        {
            **GOOD,
            "OBO_CLIENT_CREDENTIAL": "Managed_Identity",
            "OBO_SAML_ENDPOINT": "V2",
            "OBO_TRACE": "VERBOSE",
        }
    )
    assert (s.client_credential, s.saml_endpoint, s.trace, s.trace_verbose) == (
        "managed_identity",
        "v2",
        "verbose",
        True,
    )
    assert settings_table.TOKEN_TYPES == ("jwt", "saml2", "saml1")


def test_a_named_api_has_the_keys_of_the_default_api_and_relay():
    assert [k.key for k in settings_table.DOWNSTREAM_KEYS if k.of_default_api] == [
        name.removeprefix("OBO_DOWNSTREAM_")
        for name in SETTING_NAMES
        if name.startswith("OBO_DOWNSTREAM_")
    ]
    assert settings_table.named_api_setting("OBO_DOWNSTREAM__Hr_Api__relay") == (
        "hr_api",
        settings_table.RELAY,
    )
    assert settings_table.named_api_setting("OBO_DOWNSTREAM__HR__SCOPE") is None
