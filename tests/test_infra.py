"""infra/: what can be verified without a Bicep compiler (issue 4).

Every .bicep file parses with pycep-parser; the parsed templates have the resources and security
properties the deployment relies on; the Function App's app settings are exactly the settings the
code reads; no secret reaches a parameter default or an output; checkov finds nothing unexplained;
the certificate script is idempotent. `az bicep build` and `what-if` remain for a real machine
(docs/deployment.md).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from obo.config import SETTING_NAMES

from . import infra_helpers as ih

GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"
API = "app/api.bicep"
ENTRA = "app/entra.bicep"


# --- parsing and composition ---------------------------------------------------------------


def test_infra_has_main_and_modules():
    names = {ih.rel(path) for path in ih.bicep_files()}
    assert {"main.bicep", API, ENTRA, "app/keyvault.bicep", "app/certificate.bicep"} <= names


@pytest.mark.parametrize("name", [ih.rel(path) for path in ih.bicep_files()])
def test_every_bicep_file_parses(name):
    template = ih.parse(name)
    assert template.get("resources") or template.get("modules"), f"{name} declares nothing"


def test_main_composes_every_module_at_subscription_scope():
    main = ih.parse("main.bicep")
    assert main["globals"]["scope"]["value"] == "subscription"
    used = {module["detail"]["path"] for module in main["modules"].values()}
    assert all((ih.INFRA / path).is_file() for path in used), used
    assert used == {ih.rel(path) for path in ih.bicep_files()} - {"main.bicep"}


def test_graph_extension_is_pinned_and_declared_where_used():
    config_text = (ih.INFRA / "bicepconfig.json").read_text(encoding="utf-8")
    config = json.loads(
        "\n".join(line for line in config_text.splitlines() if not line.strip().startswith("//"))
    )
    reference = config["extensions"]["microsoftGraphV1"]
    assert re.fullmatch(
        r"br:mcr\.microsoft\.com/bicep/extensions/microsoftgraph/v1\.0:\d+\.\d+\.\d+", reference
    )
    for path in ih.bicep_files():
        template = ih.parse(ih.rel(path))
        types = {r["type"] for r in template.get("resources", {}).values()}
        uses_graph = any(t.startswith("Microsoft.Graph/") for t in types)
        assert uses_graph == ("microsoftGraphV1" in template.get("extensions", {})), path
        if uses_graph:  # checkov cannot parse these files: they must hold Graph resources only
            assert ih.rel(path) in ih.GRAPH_ONLY_FILES
            assert all(t.startswith("Microsoft.Graph/") for t in types), types
    assert set(ih.GRAPH_ONLY_FILES) <= {ih.rel(path) for path in ih.bicep_files()}


# --- Key Vault and certificate ---------------------------------------------------------------


def test_key_vault_uses_rbac_soft_delete_and_purge_protection():
    _, vault = ih.only_resource("app/keyvault.bicep", "Microsoft.KeyVault/vaults")
    properties = ih.unwrap(vault["config"])["properties"]
    assert properties["enableRbacAuthorization"] is True
    assert properties["enableSoftDelete"] is True
    assert properties["enablePurgeProtection"] is True
    assert "accessPolicies" not in properties


def test_app_identity_can_only_read_certificates():
    assignments = ih.resources("app/keyvault.bicep", "Microsoft.Authorization/roleAssignments")
    roles = {
        ih.unwrap(a["config"])["properties"]["principalId"]: ih.resolve(
            "app/keyvault.bicep",
            ih.unwrap(a["config"])["name"]["function"]["parameters"]["extra_string_2"],
        )
        for a in assignments.values()
    }
    assert (
        roles["appPrincipalId"] == "db79e9a7-68ee-4b58-9aeb-b90e7c24fcba"
    )  # Key Vault Certificate User
    assert (
        roles["certificateScriptPrincipalId"] == "a4417e6f-fecd-4de8-b567-7b0420556985"
    )  # Certificates Officer


@pytest.mark.parametrize("name", [ih.rel(path) for path in ih.bicep_files()])
def test_role_assignments_are_deterministic_with_named_role_ids(name):
    for key, assignment in ih.resources(name, "Microsoft.Authorization/roleAssignments").items():
        raw = assignment["config"]
        body = ih.unwrap(raw)
        kind, args = ih.function(body["name"])
        assert kind == "guid", f"{name}:{key} name must be guid(scope, principal, role)"
        assert ih.accessor(args["base_string"]).endswith(".id")
        assert args["extra_string_1"] == body["properties"]["principalId"]
        role = args["extra_string_2"]
        assert ih.function(body["properties"]["roleDefinitionId"])[1]["resource_name_1"] == role
        loop = raw.get("loop_type", {}).get("detail", {})
        role_ids = ih.resolve(name, loop["array_name"]) if role == loop.get("item_name") else [role]
        for role_id in role_ids:
            assert role_id in ih.parse(name)["variables"], (
                f"{name}:{key} role id must be a named variable"
            )
            assert ih.GUID.match(ih.resolve(name, role_id)), role_id


def test_certificate_is_created_by_a_rerunnable_deployment_script():
    _, script = ih.only_resource("app/certificate.bicep", "Microsoft.Resources/deploymentScripts")
    body = ih.unwrap(script["config"])
    assert body["kind"] == "AzureCLI"
    assert body["identity"]["type"] == "UserAssigned"
    assert body["properties"]["forceUpdateTag"] == "runTag"
    assert (
        ih.parse("app/certificate.bicep")["parameters"]["runTag"]["default"]["function"]["type"]
        == "utc_now"
    )
    outputs = ih.parse("app/certificate.bicep")["outputs"]
    read = {ih.accessor(o["value"]).rsplit(".", 1)[-1] for o in outputs.values()}
    assert read == {"certificate", "notBefore", "expires", "thumbprint"}


# --- Function App, storage, monitoring --------------------------------------------------------


def test_function_app_is_flex_consumption_with_hardened_site_config():
    _, plan = ih.only_resource(API, "Microsoft.Web/serverfarms")
    assert ih.unwrap(plan["config"])["sku"] == {"name": "FC1", "tier": "FlexConsumption"}
    _, site = ih.only_resource(API, "Microsoft.Web/sites")
    body = ih.unwrap(site["config"])
    assert body["kind"] == "functionapp,linux"
    assert body["identity"]["type"] == "UserAssigned"
    properties = body["properties"]
    assert properties["httpsOnly"] is True
    site_config = properties["siteConfig"]
    assert site_config["minTlsVersion"] == "1.2"
    assert site_config["ftpsState"] == "Disabled"
    assert site_config["remoteDebuggingEnabled"] is False
    flex = properties["functionAppConfig"]
    assert flex["deployment"]["storage"]["authentication"]["type"] == "UserAssignedIdentity"
    assert flex["runtime"]["name"] == "python"
    version = ih.parse(API)["parameters"][flex["runtime"]["version"]]["default"]
    assert tuple(int(part) for part in version.split(".")) >= (3, 11)


def test_basic_auth_publishing_is_off_for_ftp():
    policies = ih.resources(API, "Microsoft.Web/sites/basicPublishingCredentialsPolicies")
    by_name = {
        ih.unwrap(p["config"])["name"]: ih.unwrap(p["config"])["properties"]["allow"]
        for p in policies.values()
    }
    assert by_name["ftp"] is False
    assert ih.resolve(API, by_name["scm"]) is False


def test_storage_refuses_shared_keys_and_public_blobs():
    _, storage = ih.only_resource("app/storage.bicep", "Microsoft.Storage/storageAccounts")
    properties = ih.unwrap(storage["config"])["properties"]
    assert properties["allowSharedKeyAccess"] is False
    assert properties["allowBlobPublicAccess"] is False
    assert properties["minimumTlsVersion"] == "TLS1_2"


def test_application_insights_accepts_entra_authentication_only():
    _, component = ih.only_resource("app/monitoring.bicep", "Microsoft.Insights/components")
    properties = ih.unwrap(component["config"])["properties"]
    assert properties["DisableLocalAuth"] is True
    assert ih.accessor(properties["WorkspaceResourceId"]) == "logAnalytics.id"
    ih.only_resource("app/monitoring.bicep", "Microsoft.OperationalInsights/workspaces")


# --- the settings contract ------------------------------------------------------------------


def test_app_setting_names_equal_the_settings_the_code_reads():
    expected = {n for n in SETTING_NAMES if n.startswith("OBO_")} - ih.LOCAL_ONLY_SETTINGS
    deployed = {n for n in ih.app_settings() if n.startswith("OBO_")}
    assert deployed == expected, "infra/app/api.bicep vs obo.config.SETTING_NAMES"


def test_local_only_settings_are_not_deployed():
    assert not ih.LOCAL_ONLY_SETTINGS & set(ih.app_settings())


def test_platform_settings_use_the_managed_identity():
    settings = ih.app_settings()
    assert settings["AZURE_CLIENT_ID"] == "identityClientId"
    assert settings["AzureWebJobsStorage__credential"] == "managedidentity"
    assert settings["AzureWebJobsStorage__clientId"] == "identityClientId"
    assert ih.accessor(settings["AzureWebJobsStorage__accountName"]) == "storage.name"
    assert "AzureWebJobsStorage" not in settings  # no connection string
    assert settings["APPLICATIONINSIGHTS_AUTHENTICATION_STRING"].endswith("Authorization=AAD")
    assert "APPLICATIONINSIGHTS_CONNECTION_STRING" in settings


# --- app registrations ----------------------------------------------------------------------


def _graph(type_: str) -> dict[str, dict]:
    return {key: ih.unwrap(value["config"]) for key, value in ih.resources(ENTRA, type_).items()}


def test_api_registration_exposes_access_as_user_with_v2_tokens():
    api = _graph("Microsoft.Graph/applications")["apiApp"]
    uris = [ih.resolve(ENTRA, uri) for uri in api["identifierUris"]]
    assert uris
    assert all(uri.startswith("api://") and "apiApp" not in uri for uri in uris)
    assert api["api"]["requestedAccessTokenVersion"] == 2
    assert [scope["value"] for scope in api["api"]["oauth2PermissionScopes"]] == ["access_as_user"]


def test_api_registration_bundles_and_preauthorizes_the_client():
    api = _graph("Microsoft.Graph/applications")["apiApp"]
    assert [ih.accessor(app) for app in api["api"]["knownClientApplications"]] == [
        "clientApp.appId"
    ]
    kind, args = ih.function(api["api"]["preAuthorizedApplications"])
    assert kind == "concat"
    client = ih.resolve(ENTRA, args["arg_1"])
    assert ih.accessor(client[0]["appId"]) == "clientApp.appId"
    assert client[0]["delegatedPermissionIds"] == [api["api"]["oauth2PermissionScopes"][0]["id"]]


def test_api_registration_requests_graph_scopes_looked_up_by_value():
    api = _graph("Microsoft.Graph/applications")["apiApp"]
    _, graph_access = ih.branches(ENTRA, api["requiredResourceAccess"])
    assert ih.resolve(ENTRA, graph_access[0]["resourceAppId"]) == GRAPH_APP_ID
    kind, mapped = ih.function(graph_access[0]["resourceAccess"])
    assert kind == "map"
    assert mapped["arg_2"]["detail"]["expression"]["type"] == "Scope"
    kind, filtered = ih.function(ih.resolve(ENTRA, mapped["arg_1"]))
    assert kind == "filter"
    assert ih.accessor(filtered["input_array"]) == "graphSp.oauth2PermissionScopes"
    _, match = ih.function(filtered["expression"]["detail"]["expression"])
    assert match["container"] == "graphDelegatedScopes"
    assert ih.accessor(match["item_to_find"]).endswith(".value")
    assert ih.parse(ENTRA)["parameters"]["graphDelegatedScopes"]["default"] == ["User.Read"]
    graph_sp = ih.resources(ENTRA, "Microsoft.Graph/servicePrincipals")["graphSp"]
    assert graph_sp["existing"] is True
    assert ih.resolve(ENTRA, graph_sp["config"]["appId"]) == GRAPH_APP_ID


def test_api_registration_trusts_the_key_vault_certificate():
    api = _graph("Microsoft.Graph/applications")["apiApp"]
    with_certificate, without = ih.branches(ENTRA, api["keyCredentials"])
    assert without == []
    (credential,) = with_certificate
    assert credential["type"] == "AsymmetricX509Cert"
    assert credential["usage"] == "Verify"
    assert credential["key"] == "certificateBase64"
    entra_params = ih.parse("main.bicep")["modules"]["entra"]["config"]["params"]
    from_script, empty = ih.branches("main.bicep", entra_params["certificateBase64"])
    assert ih.accessor(from_script) == "certificate.outputs.CERTIFICATE_BASE64"
    assert empty == ""


def test_every_registration_has_a_service_principal():
    apps = _graph("Microsoft.Graph/applications")
    principals = _graph("Microsoft.Graph/servicePrincipals")
    covered = {ih.accessor(sp["appId"]).split(".")[0] for sp in principals.values()}
    assert set(apps) <= covered
    assert set(apps) == {"apiApp", "clientApp", "downstreamApi"}
    assert apps["clientApp"]["spa"]["redirectUris"] == "spaRedirectUris"


def test_downstream_api_registration_is_optional_and_exposes_a_scope():
    raw = ih.resources(ENTRA, "Microsoft.Graph/applications")["downstreamApi"]["config"]
    assert ih.condition(raw) == "createDownstreamApi"
    assert ih.parse(ENTRA)["parameters"]["createDownstreamApi"]["default"] is False
    assert ih.unwrap(raw)["api"]["oauth2PermissionScopes"][0]["value"] == "downstreamScopeValue"


def test_secretless_mode_trusts_the_managed_identity_through_a_federated_credential():
    (raw,) = ih.resources(
        ENTRA, "Microsoft.Graph/applications/federatedIdentityCredentials"
    ).values()
    assert ih.condition(raw["config"]) == "enableManagedIdentityCredential"
    fic = ih.unwrap(raw["config"])
    assert fic["name"].startswith("${apiApp.uniqueName}/")
    assert [ih.resolve(ENTRA, a) for a in fic["audiences"]] == ["api://AzureADTokenExchange"]
    assert fic["subject"] == "managedIdentityPrincipalId"
    assert fic["issuer"].endswith("${tenant().tenantId}/v2.0")


def test_admin_consent_is_opt_in():
    grants = ih.resources(ENTRA, "Microsoft.Graph/oauth2PermissionGrants")
    assert grants
    for raw in grants.values():
        assert ih.condition(raw["config"]) == "grantAdminConsent"
        assert ih.unwrap(raw["config"])["consentType"] == "AllPrincipals"
    assert ih.parse(ENTRA)["parameters"]["grantAdminConsent"]["default"] is False
    assert ih.parse("main.bicep")["parameters"]["grantAdminConsent"]["default"] is False


# --- secrets and outputs --------------------------------------------------------------------

SECRET_NAME = re.compile(
    r"secret|password|passwd|connectionstring|accesskey|accountkey|sas|privatekey|instrumentationkey"
)
SECRET_VALUE = re.compile(
    r"listKeys|listSecrets|list_keys|ConnectionString|InstrumentationKey|primaryKey|BEGIN .*PRIVATE"
)


@pytest.mark.parametrize("name", [ih.rel(path) for path in ih.bicep_files()])
def test_no_secret_in_parameters_or_outputs(name):
    template = ih.parse(name)
    secure = {
        key
        for key, p in template.get("parameters", {}).items()
        if any(d["type"] == "secure" for d in p["decorators"])
    }
    for key, param in template.get("parameters", {}).items():
        assert not SECRET_VALUE.search(json.dumps(param.get("default"))), f"{name}: param {key}"
    for key, output in template.get("outputs", {}).items():
        assert ih.UPPER_SNAKE.match(key), f"{name}: output {key} is not UPPER_SNAKE"
        assert not SECRET_NAME.search(key.lower().replace("_", "")), f"{name}: output {key}"
        text = json.dumps(output["value"])
        assert not SECRET_VALUE.search(text), f"{name}: output {key} exposes {text}"
        assert not any(re.search(rf"\b{re.escape(s)}\b", text) for s in secure), f"{name}: {key}"


def test_no_bicep_file_reads_keys():
    for path in ih.bicep_files():
        assert not re.search(
            r"\blist(Keys|Secrets|AccountSas)\(", path.read_text(encoding="utf-8")
        ), path


def test_certificate_script_never_touches_the_private_key():
    script = (ih.INFRA / "app" / "create-certificate.sh").read_text(encoding="utf-8")
    assert "keyvault secret" not in script
    assert "download" not in script


# --- azd and parameters ---------------------------------------------------------------------


def test_parameters_file_fills_declared_parameters():
    declared = ih.parse("main.bicep")["parameters"]
    given = json.loads((ih.INFRA / "main.parameters.json").read_text(encoding="utf-8"))[
        "parameters"
    ]
    assert set(given) <= set(declared)
    required = {key for key, p in declared.items() if p.get("default") is None}
    assert required <= set(given)


def test_azure_yaml_deploys_this_folder_as_the_api_function():
    text = (ih.REPO / "azure.yaml").read_text(encoding="utf-8")
    service = text.split("services:", 1)[1]
    for line in ("api:", "project: .", "language: python", "host: function"):
        assert re.search(rf"^\s+{re.escape(line)}\s*$", service, re.MULTILINE), line


# --- the certificate script, against a stand-in `az` ------------------------------------------

FAKE_AZ = r"""
import json, os, sys, base64, datetime
state_path = os.environ["FAKE_AZ_STATE"]
state = json.load(open(state_path))
args = sys.argv[1:]
state["calls"].append(" ".join(args[:3]))
def opt(name):
    return args[args.index(name) + 1]
if args[:3] == ["keyvault", "certificate", "list"]:
    pass
elif args[:3] == ["keyvault", "certificate", "show"]:
    if state.get("cert") is None:
        sys.stderr.write("(CertificateNotFound)\n"); json.dump(state, open(state_path, "w")); sys.exit(3)
    print(json.dumps(state["cert"]))
elif args[:3] == ["keyvault", "certificate", "create"]:
    policy = json.loads(opt("--policy"))
    now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
    end = now + datetime.timedelta(days=30 * policy["x509CertificateProperties"]["validityInMonths"])
    der = os.urandom(64)
    state["policy"] = policy
    state["cert"] = {"id": "https://v.vault.azure.net/certificates/c/v%d" % len(state["calls"]),
                     "cer": base64.b64encode(der).decode(),
                     "attributes": {"enabled": True, "notBefore": now.isoformat(), "expires": end.isoformat()}}
elif args[:4] == ["keyvault", "certificate", "pending", "show"]:
    print("completed")
else:
    sys.exit("unexpected az call: %s" % args)
json.dump(state, open(state_path, "w"))
"""


def _run_certificate_script(tmp_path: Path, cert: dict | None) -> tuple[dict, dict]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    az = bin_dir / "az"
    az.write_text(f"#!{sys.executable}\n{FAKE_AZ}", encoding="utf-8")
    az.chmod(az.stat().st_mode | stat.S_IEXEC)
    state_path = tmp_path / "state.json"
    state_path.write_text(json.dumps({"calls": [], "cert": cert}), encoding="utf-8")
    output = tmp_path / "outputs.json"
    env = dict(
        os.environ, PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}", FAKE_AZ_STATE=str(state_path)
    )
    env.update(
        VAULT_NAME="kv-test", CERTIFICATE_NAME="obo-api", CERTIFICATE_SUBJECT="CN=obo-api-test"
    )
    env.update(VALIDITY_MONTHS="12", RENEW_WITHIN_DAYS="30", AZ_SCRIPTS_OUTPUT_PATH=str(output))
    script = ih.INFRA / "app" / "create-certificate.sh"
    done = subprocess.run(
        ["bash", str(script)], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return json.loads(state_path.read_text(encoding="utf-8")), json.loads(
        output.read_text(encoding="utf-8")
    )


def test_certificate_script_creates_a_missing_certificate_and_reports_its_public_part(tmp_path):
    state, outputs = _run_certificate_script(tmp_path, cert=None)
    assert state["calls"].count("keyvault certificate create") == 1
    assert state["policy"]["x509CertificateProperties"]["subject"] == "CN=obo-api-test"
    assert state["policy"]["keyProperties"]["exportable"] is True
    assert state["policy"]["lifetimeActions"][0]["action"]["actionType"] == "EmailContacts"
    der = base64.b64decode(outputs["certificate"])
    assert outputs["thumbprint"] == hashlib.sha1(der).hexdigest().upper()  # x5t is SHA-1
    assert outputs["notBefore"] == state["cert"]["attributes"]["notBefore"]
    assert outputs["expires"] == state["cert"]["attributes"]["expires"]


def test_certificate_script_keeps_a_valid_certificate_on_redeploy(tmp_path):
    state, first = _run_certificate_script(tmp_path, cert=None)
    state, second = _run_certificate_script(tmp_path, cert=state["cert"])
    assert "keyvault certificate create" not in state["calls"]
    assert second == first


def test_certificate_script_renews_a_certificate_close_to_expiry(tmp_path):
    soon = {
        "id": "https://v.vault.azure.net/certificates/c/old",
        "cer": base64.b64encode(b"old").decode(),
        "attributes": {
            "enabled": True,
            "notBefore": "2020-01-01T00:00:00+00:00",
            "expires": "2020-02-01T00:00:00+00:00",
        },
    }
    state, outputs = _run_certificate_script(tmp_path, cert=soon)
    assert state["calls"].count("keyvault certificate create") == 1
    assert outputs["certificate"] != soon["cer"]


# --- checkov ----------------------------------------------------------------------------------


def test_checkov_finds_no_unexplained_issue():
    executable = ih.checkov_executable()
    if executable is None:
        pytest.fail(
            "checkov not found: set OBO_CHECKOV to its path, or install it in its own venv:\n"
            "  python3 -m venv .venv-checkov && .venv-checkov/bin/pip install -r requirements-checkov.txt"
        )
    report = ih.run_checkov(executable)
    summary = report.get("summary", report)  # a bare summary when nothing was scanned
    results = report.get("results", {})
    # checkov exits 0 when a file fails to parse: the report is the only place that says so.
    parsing_errors = results.get("parsing_errors") or summary.get("parsing_errors")
    assert not parsing_errors, f"checkov reported Parsing errors: {parsing_errors}"
    assert summary.get("resource_count", 0) > 0, f"checkov parsed no resources: {summary}"
    failed = [
        f"{c['check_id']} {c['resource']} ({c['file_path']})"
        for c in results.get("failed_checks", [])
    ]
    assert not failed, "\n".join(failed)
    for check in results.get("skipped_checks", []):
        reason = (check.get("check_result") or {}).get("suppress_comment", "").strip()
        assert reason != "No comment provided", f"{check['check_id']} skipped without a reason"
        assert len(reason) > 15, f"{check['check_id']} skip reason too short: {reason!r}"
