"""infra/: what can be verified without a Bicep compiler (issues 4, 12 and 13).

Every .bicep file parses with pycep-parser; the parsed templates have the resources and security
properties the deployment relies on; the Flex Consumption site carries only siteConfig properties
Flex accepts; the Function App's app settings are exactly the settings the code reads; the Azure
CLI and azd get parameters files that each of them can read; no secret reaches a parameter default
or an output; checkov finds nothing unexplained; the certificate script keeps a valid certificate
under BusyBox and GNU coreutils alike. `az bicep build` and `what-if` remain for a real machine
(docs/deployment.md).
"""

from __future__ import annotations

import base64
import calendar
import datetime
import hashlib
import itertools
import json
import os
import random
import re
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from obo.config import CLIENT_CREDENTIALS, SETTING_NAMES
from tests import infra_helpers as ih

GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"
API = "app/api.bicep"
ENTRA = "app/entra.bicep"
KEY_VAULT = "app/keyvault.bicep"
REDIS = "app/redis.bicep"
CERTIFICATE_USER = "db79e9a7-68ee-4b58-9aeb-b90e7c24fcba"  # Key Vault Certificate User
SECRETS_USER = "4633458b-17de-408a-b874-0445c86b69e6"  # Key Vault Secrets User
CERTIFICATES_OFFICER = "a4417e6f-fecd-4de8-b567-7b0420556985"  # Key Vault Certificates Officer


# --- parsing and composition ---------------------------------------------------------------


def test_infra_has_main_and_modules():
    names = {ih.rel(path) for path in ih.bicep_files()}
    assert {"main.bicep", API, ENTRA, "app/keyvault.bicep", "app/certificate.bicep", REDIS} <= names


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


def test_key_vault_uses_rbac_and_soft_delete():
    _, vault = ih.only_resource(KEY_VAULT, "Microsoft.KeyVault/vaults")
    properties = ih.unwrap(vault["config"])["properties"]
    assert properties["enableRbacAuthorization"] is True
    assert properties["enableSoftDelete"] is True
    assert "accessPolicies" not in properties


def test_purge_protection_is_a_parameter_off_for_development():
    """A deterministic vault name plus purge protection blocks `azd down` + `azd up` for the
    retention period; ARM refuses an explicit false, so "off" must leave the property out."""
    _, vault = ih.only_resource(KEY_VAULT, "Microsoft.KeyVault/vaults")
    on, off = ih.branches(
        KEY_VAULT, ih.unwrap(vault["config"])["properties"]["enablePurgeProtection"]
    )
    assert (on, off) == (True, None)
    assert ih.parse(KEY_VAULT)["parameters"]["enablePurgeProtection"]["default"] is False
    main = ih.parse("main.bicep")
    assert main["parameters"]["keyVaultPurgeProtection"]["default"] is False
    passed = main["modules"]["keyVault"]["config"]["config"]["params"]["enablePurgeProtection"]
    assert passed == "keyVaultPurgeProtection"
    guide = (ih.REPO / "docs" / "deployment.md").read_text(encoding="utf-8")
    assert "keyVaultPurgeProtection" in guide and "azd down --purge" in guide


def _key_vault_roles() -> dict[str, set[str]]:
    roles: dict[str, set[str]] = {}
    for raw in ih.resources(KEY_VAULT, "Microsoft.Authorization/roleAssignments").values():
        body = ih.unwrap(raw["config"])
        role = body["name"]["function"]["parameters"]["extra_string_2"]
        loop = raw["config"].get("loop_type", {}).get("detail", {})
        ids = ih.resolve(KEY_VAULT, loop["array_name"]) if role == loop.get("item_name") else [role]
        roles.setdefault(body["properties"]["principalId"], set()).update(
            ih.resolve(KEY_VAULT, role_id) for role_id in ids
        )
    return roles


def test_app_identity_can_read_its_certificate_and_nothing_more():
    """obo/credentials.py calls get_certificate and get_secret: one read-only role for each."""
    code = (ih.REPO / "obo" / "credentials.py").read_text(encoding="utf-8")
    assert ".get_certificate(" in code and ".get_secret(" in code
    roles = _key_vault_roles()
    assert roles["appPrincipalId"] == {CERTIFICATE_USER, SECRETS_USER}
    assert roles["certificateScriptPrincipalId"] == {CERTIFICATES_OFFICER}


def test_docs_name_the_key_vault_roles_the_template_assigns():
    readme = ih.markdown_section(ih.REPO / "README.md", "Run it against real Entra ID locally")
    guide = (ih.REPO / "docs" / "deployment.md").read_text(encoding="utf-8")
    for text in (readme, guide):
        assert "Key Vault Certificate User" in text and "Key Vault Secrets User" in text
    grants = re.findall(r'az role assignment create --role "([^"]+)"', guide)
    assert set(grants) >= {"Key Vault Certificate User", "Key Vault Secrets User"}


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


def test_certificate_script_runs_on_an_azure_linux_image_with_jq():
    """azure-cli 2.64+ images are Azure Linux (GNU coreutils); 2.65+ have jq again."""
    version = ih.parse("app/certificate.bicep")["parameters"]["azCliVersion"]["default"]
    assert tuple(int(part) for part in version.split(".")) >= (2, 65, 0)


# --- Function App, storage, monitoring --------------------------------------------------------


def test_function_app_is_flex_consumption_with_hardened_settings():
    _, plan = ih.only_resource(API, "Microsoft.Web/serverfarms")
    assert ih.unwrap(plan["config"])["sku"] == {"name": "FC1", "tier": "FlexConsumption"}
    _, site = ih.only_resource(API, "Microsoft.Web/sites")
    body = ih.unwrap(site["config"])
    assert body["kind"] == "functionapp,linux"
    assert body["identity"]["type"] == "UserAssigned"
    properties = body["properties"]
    assert properties["httpsOnly"] is True
    assert properties["siteConfig"]["minTlsVersion"] == "1.2"
    flex = properties["functionAppConfig"]
    assert flex["deployment"]["storage"]["authentication"]["type"] == "UserAssignedIdentity"
    assert flex["runtime"]["name"] == "python"
    version = ih.parse(API)["parameters"][flex["runtime"]["version"]]["default"]
    assert tuple(int(part) for part in version.split(".")) >= (3, 11)


def test_flex_site_config_holds_only_properties_flex_accepts():
    """ARM error 51021: Flex Consumption rejects siteConfig properties other plans accept."""
    _, site = ih.only_resource(API, "Microsoft.Web/sites")
    site_config = ih.unwrap(site["config"])["properties"]["siteConfig"]
    assert set(site_config) <= set(ih.FLEX_SITE_CONFIG_ALLOWED), sorted(
        set(site_config) - set(ih.FLEX_SITE_CONFIG_ALLOWED)
    )
    assert site_config.get("alwaysOn", False) is False
    assert not ih.FLEX_SITE_CONFIG_REJECTED & set(ih.FLEX_SITE_CONFIG_ALLOWED)
    # the same properties must not come back through a sites/config resource
    for path in ih.bicep_files():
        assert not ih.resources(ih.rel(path), "Microsoft.Web/sites/config"), path


def test_python_versions_are_the_ones_flex_supports():
    """Flex runs Python 3.10-3.13 GA (learn.microsoft.com/azure/azure-functions/supported-languages);
    the code needs 3.11+ (pyproject.toml)."""
    flex_ga = {"3.10", "3.11", "3.12", "3.13"}
    allowed = ih.allowed("main.bicep", "pythonVersion")
    assert allowed == ih.allowed(API, "pythonVersion")
    assert set(allowed) <= flex_ga
    assert min(allowed, key=lambda v: tuple(map(int, v.split(".")))) == "3.11"
    for template in ("main.bicep", API):
        assert ih.parse(template)["parameters"]["pythonVersion"]["default"] in allowed


def test_publishing_has_no_ftp_policy_and_scm_basic_auth_is_off():
    policies = ih.resources(API, "Microsoft.Web/sites/basicPublishingCredentialsPolicies")
    by_name = {
        ih.unwrap(p["config"])["name"]: ih.unwrap(p["config"])["properties"]["allow"]
        for p in policies.values()
    }
    assert set(by_name) == {"scm"}  # Flex Consumption has no FTP
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
    code = {n for n in SETTING_NAMES if n.startswith("OBO_")} | ih.PENDING_SETTINGS
    expected = code - ih.LOCAL_ONLY_SETTINGS
    deployed = {n for n in ih.app_settings() if n.startswith("OBO_")}
    assert deployed == expected, "infra/app/api.bicep vs obo.config.SETTING_NAMES"
    assert not ih.PENDING_SETTINGS & set(SETTING_NAMES), "declared now: remove from PENDING"


def test_python_worker_sends_opentelemetry_to_application_insights():
    """learn.microsoft.com/azure/azure-functions/opentelemetry-howto: telemetryMode in host.json,
    the distro in requirements.txt, and the worker switch in the app settings."""
    host = json.loads((ih.REPO / "host.json").read_text(encoding="utf-8"))
    assert host["telemetryMode"] == "OpenTelemetry"
    assert ih.app_settings()["PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY"] == "true"
    requirements = (ih.REPO / "requirements.txt").read_text(encoding="utf-8")
    assert re.search(r"^azure-monitor-opentelemetry>=[\d.]+,<\d+$", requirements, re.MULTILINE)


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


def _equals(name: str, value) -> tuple[str, str]:
    """(left, right) of an `a == b` expression, resolved through variables."""
    value = ih.resolve(name, value)
    assert value["operator"]["type"] == "equals", value
    operands = value["operator"]["operands"]
    return operands["operand_1"], operands["operand_2"]


def test_secretless_mode_trusts_the_managed_identity_through_a_federated_credential():
    (raw,) = ih.resources(
        ENTRA, "Microsoft.Graph/applications/federatedIdentityCredentials"
    ).values()
    assert _equals(ENTRA, ih.condition(raw["config"])) == ("clientCredential", "managed_identity")
    fic = ih.unwrap(raw["config"])
    assert fic["name"].startswith("${apiApp.uniqueName}/")
    assert fic["audiences"] == ["api://AzureADTokenExchange"]
    assert fic["subject"] == "managedIdentityPrincipalId"
    assert fic["issuer"] == "https://login.microsoftonline.com/${tenant().tenantId}/v2.0"


def test_credential_mode_is_one_parameter_mapped_onto_obo_client_credential():
    """Two bools allowed "no credential at all"; one enum cannot, and it is the code's enum."""
    for template in ("main.bicep", ENTRA, API):
        declared = ih.parse(template)["parameters"]
        assert not {"useCertificate", "enableManagedIdentityCredential"} & set(declared)
    assert set(ih.allowed("main.bicep", "clientCredential")) == set(CLIENT_CREDENTIALS)
    assert set(ih.allowed(ENTRA, "clientCredential")) == set(CLIENT_CREDENTIALS)
    assert set(ih.allowed(API, "oboClientCredential")) == set(CLIENT_CREDENTIALS)
    main = ih.parse("main.bicep")
    assert main["parameters"]["clientCredential"]["default"] == "certificate"
    modules = main["modules"]
    assert modules["api"]["config"]["params"]["oboClientCredential"] == "clientCredential"
    assert modules["entra"]["config"]["params"]["clientCredential"] == "clientCredential"
    for key in ("keyVault", "certificate"):  # Key Vault exists exactly in certificate mode
        condition = modules[key]["config"]["condition"]
        assert _equals("main.bicep", condition) == ("clientCredential", "certificate")
    api_app = _graph("Microsoft.Graph/applications")["apiApp"]
    condition = api_app["keyCredentials"]["operator"]["operands"]["condition"]
    assert _equals(ENTRA, condition) == ("clientCredential", "certificate")


def test_admin_consent_is_opt_in():
    grants = ih.resources(ENTRA, "Microsoft.Graph/oauth2PermissionGrants")
    assert grants
    for raw in grants.values():
        assert ih.condition(raw["config"]) == "grantAdminConsent"
        assert ih.unwrap(raw["config"])["consentType"] == "AllPrincipals"
    assert ih.parse(ENTRA)["parameters"]["grantAdminConsent"]["default"] is False
    assert ih.parse("main.bicep")["parameters"]["grantAdminConsent"]["default"] is False


def test_redeploying_grants_rewrites_one_grant_per_client_and_resource():
    """The Graph extension writes a grant onto the existing one of the same client, consent type
    and resource (msgraph-bicep-types PR #211 review), so two declarations for one pair would
    overwrite each other's scopes; appRoleAssignedTo fails on re-deploy (msgraph-bicep-types#161)
    and is not used at all."""
    pairs = []
    for raw in ih.resources(ENTRA, "Microsoft.Graph/oauth2PermissionGrants").values():
        body = ih.unwrap(raw["config"])
        pairs.append((json.dumps(body["clientId"]), json.dumps(body["resourceId"])))
        scope = body["scope"]
        assert isinstance(scope, str) or ih.function(ih.resolve(ENTRA, scope))[0] in ("join", "")
    assert len(pairs) == len(set(pairs)), pairs
    for path in ih.bicep_files():
        assert not ih.resources(ih.rel(path), "Microsoft.Graph/appRoleAssignedTo"), path


def test_templates_deploy_to_the_public_cloud_only():
    """Graph Bicep documented public-cloud-only deployments; no national-cloud branch survives."""
    fence = ih.parse("main.bicep")["parameters"]["azureCloud"]
    assert ih.allowed("main.bicep", "azureCloud") == ["AzureCloud"]
    default = fence["default"]
    assert (
        ih.accessor(default) == ".name"
        and ih.function(default["operator"]["operands"]["operand_1"])[0] == "environment"
    )
    national = re.compile(
        r"AzureChinaCloud|AzureUSGovernment|partner\.microsoftonline|\.us\b|chinacloudapi"
    )
    for path in [*ih.bicep_files(), *ih.INFRA.glob("*.bicepparam")]:
        text = path.read_text(encoding="utf-8")
        assert not national.search(text), f"{path}: national-cloud branch"


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


# --- azd, the Azure CLI and their parameters ---------------------------------------------------


def _main_parameters() -> dict:
    return json.loads((ih.INFRA / "main.parameters.json").read_text(encoding="utf-8"))["parameters"]


def test_azd_parameters_file_fills_declared_parameters():
    declared = ih.parse("main.bicep")["parameters"]
    given = _main_parameters()
    assert set(given) <= set(declared)
    required = {key for key, p in declared.items() if p.get("default") is None}
    assert required <= set(given)


def test_azure_cli_parameters_file_holds_real_values_for_every_required_parameter():
    """`az deployment` passes ${VAR=default} through as a literal string: the CLI gets a
    .bicepparam that reads the environment with real defaults instead."""
    params = ih.bicepparam("azcli.bicepparam")
    assert params.pop("using") == "./main.bicep"
    declared = ih.parse("main.bicep")["parameters"]
    assert set(params) <= set(declared)
    required = {key for key, p in declared.items() if p.get("default") is None}
    assert required <= set(params)
    assert not any(ih.PLACEHOLDER.search(value) for value in params.values())
    for name, value in params.items():
        kind = declared[name]["type"]
        wrapper = {"bool": "bool(", "array": "json(", "int": "int("}.get(
            kind, "readEnvironmentVariable("
        )
        assert value.startswith(wrapper), f"{name} ({kind}) = {value}"


def test_azure_cli_and_azd_read_the_same_switches_with_the_same_defaults():
    cli = {
        name: ih.ENV_READ.search(value).groups()
        for name, value in ih.bicepparam("azcli.bicepparam").items()
        if ih.ENV_READ.search(value)
    }
    declared = ih.parse("main.bicep")["parameters"]
    for name, entry in _main_parameters().items():
        variable, default = ih.PLACEHOLDER.fullmatch(entry["value"]).groups()
        if default is None and declared[name].get("default") is not None:
            default = ""  # azd substitutes an unset ${VAR} with an empty string
        assert cli[name] == (variable, default), name


def test_every_deployment_switch_is_documented():
    azd = {ih.PLACEHOLDER.fullmatch(e["value"]).group(1) for e in _main_parameters().values()}
    cli = set()
    for value in ih.bicepparam("azcli.bicepparam").values():
        if match := ih.ENV_READ.search(value):
            cli.add(match.group(1))
    guide = (ih.REPO / "docs" / "deployment.md").read_text(encoding="utf-8")
    azure_yaml = (ih.REPO / "azure.yaml").read_text(encoding="utf-8")
    for switch in sorted(azd | cli):
        assert f"`{switch}`" in guide, switch
    for switch in sorted(azd):
        if switch.startswith("OBO_DEPLOY_"):
            assert f"azd env set {switch} " in azure_yaml, switch


def test_azd_does_not_pick_up_the_azure_cli_parameters_file():
    """azd prefers <module>.bicepparam over main.parameters.json (Azure/azure-dev#2628)."""
    assert not (ih.INFRA / "main.bicepparam").exists()
    assert "module: main" in (ih.REPO / "azure.yaml").read_text(encoding="utf-8")


def _files(command: str) -> list[tuple[str, str]]:
    """(flag, path) of the template and parameters files an `az deployment` command names."""
    tokens = command.replace("=", " ").split()
    files = []
    for flag, value in itertools.pairwise(tokens):
        if flag in ("-p", "--parameters", "-f", "--template-file"):
            value = value.strip("'\"").lstrip("@")
            if re.search(r"\.(json|bicepparam|bicep)$", value):
                files.append((flag, value))
    return files


def test_no_documented_az_command_points_at_a_file_with_placeholders():
    commands = [
        (where, command)
        for where, command in ih.documented_commands("az deployment")
        if _files(command)
    ]
    assert any("azcli.bicepparam" in command for _, command in commands), commands
    for where, command in commands:
        for flag, name in _files(command):
            path = ih.REPO / name
            assert path.is_file(), f"{where}: {command} names a missing file"
            if flag in ("-p", "--parameters"):
                text = path.read_text(encoding="utf-8")
                if path.suffix == ".bicepparam":  # what counts is the values, not the comments
                    lines = text.splitlines()
                    text = "\n".join(x for x in lines if not x.lstrip().startswith("//"))
                assert not ih.PLACEHOLDER.search(text), f"{where}: {command} -> {name} has ${{...}}"


def test_azure_yaml_deploys_this_folder_as_the_api_function():
    text = (ih.REPO / "azure.yaml").read_text(encoding="utf-8")
    service = text.split("services:", 1)[1]
    for line in ("api:", "project: .", "language: python", "host: function"):
        assert re.search(rf"^\s+{re.escape(line)}\s*$", service, re.MULTILINE), line


def test_deployment_guide_registers_every_resource_provider_the_templates_use():
    """A fresh subscription may lack Microsoft.App (Flex Consumption) among others."""
    used = {
        value["type"].split("/")[0]
        for path in ih.bicep_files()
        for value in ih.parse(ih.rel(path)).get("resources", {}).values()
    }
    needed = (used - {"Microsoft.Graph"} - ih.REGISTERED_BY_DEFAULT) | ih.IMPLICIT_PROVIDERS
    assert {"Microsoft.Web", "Microsoft.App", "Microsoft.Cache"} <= needed
    guide = (ih.REPO / "docs" / "deployment.md").read_text(encoding="utf-8")
    blocks = [
        b for b in re.findall(r"```bash\n(.*?)```", guide, re.DOTALL) if "az provider register" in b
    ]
    assert blocks, "docs/deployment.md: no az provider register block"
    registered = set(re.findall(r"\bMicrosoft\.[A-Za-z]+\b", "".join(blocks)))
    assert needed <= registered, sorted(needed - registered)


# --- Azure Managed Redis (optional) -------------------------------------------------------------


def test_managed_redis_is_optional_and_off_by_default():
    main = ih.parse("main.bicep")
    assert main["parameters"]["enableManagedRedis"]["default"] is False
    redis = main["modules"]["redis"]["config"]
    assert redis["condition"] == "enableManagedRedis"
    principal = redis["config"]["params"]["appPrincipalId"]
    assert ih.accessor(principal) == "identity.outputs.APP_IDENTITY_PRINCIPAL_ID"
    url, off = ih.branches("main.bicep", main["modules"]["api"]["config"]["params"]["oboCacheUrl"])
    assert (ih.accessor(url), off) == ("redis.outputs.CACHE_URL", "")
    assert ih.app_settings()["OBO_CACHE_URL"] == "oboCacheUrl"


def test_managed_redis_takes_entra_tokens_only_over_tls_on_port_10000():
    _, cluster = ih.only_resource(REDIS, "Microsoft.Cache/redisEnterprise")
    assert ih.unwrap(cluster["config"])["properties"]["minimumTlsVersion"] == "1.2"
    _, database = ih.only_resource(REDIS, "Microsoft.Cache/redisEnterprise/databases")
    properties = ih.unwrap(database["config"])["properties"]
    assert properties["accessKeysAuthentication"] == "Disabled"
    assert properties["clientProtocol"] == "Encrypted"
    assert properties["port"] == 10000
    # a standalone client (redis-py's Redis) needs one proxied endpoint, not OSS cluster mode
    assert properties["clusteringPolicy"] == "EnterpriseCluster"
    _, access = ih.only_resource(
        REDIS, "Microsoft.Cache/redisEnterprise/databases/accessPolicyAssignments"
    )
    body = ih.unwrap(access["config"])
    assert body["parent"] == "database"
    assert body["properties"] == {
        "accessPolicyName": "default",
        "user": {"objectId": "appPrincipalId"},
    }
    url = ih.parse(REDIS)["outputs"]["CACHE_URL"]["value"]
    assert url == "rediss://${cluster.properties.hostName}:${database.properties.port}"
    assert "@" not in url  # no password: the app authenticates as its managed identity


def test_deployment_guide_explains_the_shared_cache():
    section = ih.markdown_section(ih.REPO / "docs" / "deployment.md", "Shared cache")
    for needle in (
        "enableManagedRedis",
        "azure.microsoft.com/pricing/details/managed-redis",
        "Balanced",
        "OBO_CACHE_URL",
    ):
        assert needle in section, needle


# --- local runs -------------------------------------------------------------------------------


def test_local_instructions_activate_the_virtual_environment_before_func_start():
    readme = ih.markdown_section(ih.REPO / "README.md", "Run it against real Entra ID locally")
    guide = ih.markdown_section(ih.REPO / "docs" / "deployment.md", "4. Run locally")
    for text in (readme, guide):
        assert "func start" in text
        assert text.index("source .venv/bin/activate") < text.index("func start")


def test_local_settings_need_no_storage_emulator_for_http_triggers():
    """Core Tools needs AzureWebJobsStorage only for non-HTTP triggers; UseDevelopmentStorage=true
    would need Azurite running."""
    sample = json.loads((ih.REPO / "local.settings.sample.json").read_text(encoding="utf-8"))
    assert sample["Values"]["AzureWebJobsStorage"] == ""
    guide = ih.markdown_section(ih.REPO / "docs" / "deployment.md", "4. Run locally")
    assert "Azurite" in guide and "UseDevelopmentStorage=true" in guide


# --- the certificate script under BusyBox and GNU coreutils --------------------------------------

SCRIPT = ih.INFRA / "app" / "create-certificate.sh"
BUSYBOX = shutil.which("busybox")
# A shell stub of the Azure CLI (az is not a library the product ships): the vault is a
# directory, the certificate a JSON file, `create` promotes the prepared next.json.
FAKE_AZ = r"""
state="$FAKE_AZ_STATE"
printf '%s %s %s\n' "$1" "$2" "$3" >>"$state/calls"
case "$1 $2 $3" in
  "keyvault certificate list") exit 0 ;;
  "keyvault certificate show")
    if [ -f "$state/cert.json" ]; then cat "$state/cert.json"; else echo "(CertificateNotFound)" >&2; exit 3; fi ;;
  "keyvault certificate create")
    while [ $# -gt 0 ]; do
      if [ "$1" = "--policy" ]; then printf '%s' "$2" >"$state/policy.json"; fi
      shift
    done
    mv "$state/next.json" "$state/cert.json" ;;
  "keyvault certificate pending") echo completed ;;
  *) echo "unexpected az call: $*" >&2; exit 99 ;;
esac
"""


def _toolset(tmp_path: Path, kind: str) -> tuple[list[str], dict[str, str]]:
    """(shell command, environment) with BusyBox's applets only, or bash with GNU coreutils."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    if kind == "busybox":
        if BUSYBOX is None:
            pytest.fail("busybox is not installed (Debian: apt-get install busybox)")
        for applet in ("date", "sleep", "base64", "sha1sum", "cut", "tr", "cat", "mv"):
            (bin_dir / applet).symlink_to(BUSYBOX)
        (bin_dir / "jq").symlink_to(shutil.which("jq"))
        shebang, shell, path = f"#!{BUSYBOX} sh", [BUSYBOX, "sh"], str(bin_dir)
    else:
        version = subprocess.run(["date", "--version"], capture_output=True, text=True).stdout
        assert "GNU coreutils" in version
        shebang, shell, path = "#!/bin/sh", ["bash"], f"{bin_dir}{os.pathsep}/usr/bin:/bin"
    az = bin_dir / "az"
    az.write_text(f"{shebang}\n{FAKE_AZ}", encoding="utf-8")
    az.chmod(az.stat().st_mode | stat.S_IEXEC)
    return shell, {"PATH": path, "LC_ALL": "C"}


def _iso(moment: datetime.datetime, fraction: bool = False, suffix: str = "+00:00") -> str:
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    return text + (".123456" if fraction else "") + suffix


def _certificate(expires_in_days: float, *, enabled: bool = True, **iso) -> dict:
    now = datetime.datetime.now(datetime.UTC).replace(microsecond=0)
    der = os.urandom(64)
    return {
        "id": f"https://kv-test.vault.azure.net/certificates/obo-api/{der.hex()[:32]}",
        "cer": base64.b64encode(der).decode(),
        "attributes": {
            "enabled": enabled,
            "notBefore": _iso(now - datetime.timedelta(days=1)),
            "expires": _iso(now + datetime.timedelta(days=expires_in_days), **iso),
        },
    }


class Vault:
    """The stand-in vault's state directory, and the script run against it."""

    def __init__(self, tmp_path: Path, kind: str, cert: dict | None):
        self.dir = tmp_path / "vault"
        self.dir.mkdir()
        self.shell, self.env = _toolset(tmp_path, kind)
        self.output = tmp_path / "outputs.json"
        if cert is not None:
            self.write("cert.json", cert)
        self.write("next.json", _certificate(365))

    def write(self, name: str, value: dict) -> None:
        (self.dir / name).write_text(json.dumps(value), encoding="utf-8")

    def read(self, name: str) -> dict:
        return json.loads((self.dir / name).read_text(encoding="utf-8"))

    @property
    def calls(self) -> list[str]:
        path = self.dir / "calls"
        return path.read_text(encoding="utf-8").splitlines() if path.exists() else []

    def run(self) -> subprocess.CompletedProcess[str]:
        env = dict(self.env, FAKE_AZ_STATE=str(self.dir), AZ_SCRIPTS_OUTPUT_PATH=str(self.output))
        env.update(
            VAULT_NAME="kv-test", CERTIFICATE_NAME="obo-api", CERTIFICATE_SUBJECT="CN=obo-api-test"
        )
        env.update(VALIDITY_MONTHS="12", RENEW_WITHIN_DAYS="30")
        return subprocess.run(
            [*self.shell, str(SCRIPT)], env=env, capture_output=True, text=True, timeout=60
        )

    def deploy(self) -> dict:
        done = self.run()
        assert done.returncode == 0, done.stderr
        return json.loads(self.output.read_text(encoding="utf-8"))


TOOLSETS = ["busybox", "gnu"]


@pytest.mark.parametrize("kind", TOOLSETS)
def test_certificate_script_creates_a_missing_certificate_and_reports_its_public_part(
    tmp_path, kind
):
    vault = Vault(tmp_path, kind, cert=None)
    outputs = vault.deploy()
    assert vault.calls.count("keyvault certificate create") == 1
    policy = vault.read("policy.json")
    assert policy["x509CertificateProperties"]["subject"] == "CN=obo-api-test"
    assert policy["keyProperties"]["exportable"] is True
    assert policy["lifetimeActions"][0]["action"]["actionType"] == "EmailContacts"
    created = vault.read("cert.json")
    der = base64.b64decode(outputs["certificate"])
    assert outputs["thumbprint"] == hashlib.sha1(der).hexdigest().upper()  # x5t is SHA-1
    assert outputs["notBefore"] == created["attributes"]["notBefore"]
    assert outputs["expires"] == created["attributes"]["expires"]
    assert outputs["version"] == created["id"].rsplit("/", 1)[1]


@pytest.mark.parametrize("kind", TOOLSETS)
def test_redeploying_with_a_valid_certificate_does_nothing(tmp_path, kind):
    vault = Vault(tmp_path, kind, cert=None)
    first = vault.deploy()
    (vault.dir / "calls").unlink()
    vault.write("next.json", _certificate(365))
    assert vault.deploy() == first
    assert "keyvault certificate create" not in vault.calls


@pytest.mark.parametrize("kind", TOOLSETS)
@pytest.mark.parametrize(
    "iso", [{}, {"fraction": True}, {"suffix": "Z"}, {"fraction": True, "suffix": ""}]
)
def test_certificate_script_keeps_a_certificate_far_from_expiry(tmp_path, kind, iso):
    cert = _certificate(200, **iso)
    vault = Vault(tmp_path, kind, cert=cert)
    outputs = vault.deploy()
    assert "keyvault certificate create" not in vault.calls
    assert outputs["certificate"] == cert["cer"]


@pytest.mark.parametrize("kind", TOOLSETS)
@pytest.mark.parametrize(
    "cert",
    [
        _certificate(29),  # inside the 30-day renewal window
        _certificate(-3),  # expired
        _certificate(200, enabled=False),
        {**_certificate(200), "cer": None},
    ],
    ids=["expires-in-29-days", "expired", "disabled", "no-public-part"],
)
def test_certificate_script_creates_a_new_version_when_the_current_one_is_unusable(
    tmp_path, kind, cert
):
    vault = Vault(tmp_path, kind, cert=cert)
    outputs = vault.deploy()
    assert vault.calls.count("keyvault certificate create") == 1
    assert outputs["certificate"] == vault.read("cert.json")["cer"] != cert["cer"]


@pytest.mark.parametrize("kind", TOOLSETS)
def test_certificate_script_refuses_an_expiry_it_cannot_read_instead_of_renewing(tmp_path, kind):
    vault = Vault(tmp_path, kind, cert=_certificate(200, suffix="+02:00"))
    done = vault.run()
    assert done.returncode != 0
    assert "Cannot read the expiry" in done.stderr
    assert "keyvault certificate create" not in vault.calls


@pytest.mark.parametrize("kind", TOOLSETS)
def test_certificate_script_reads_iso_timestamps_like_python(tmp_path, kind):
    """The expiry arithmetic, against the calendar, in both shells."""
    rng = random.Random(13)
    moments = [datetime.datetime(1970, 1, 1), datetime.datetime(2000, 2, 29, 23, 59, 59)]
    moments += [datetime.datetime(2100, 3, 1), datetime.datetime(2024, 12, 31, 8, 9, 8)]
    moments += [
        datetime.datetime(1970, 1, 1) + datetime.timedelta(seconds=rng.randrange(2**32))
        for _ in range(40)
    ]
    stamps = [
        _iso(moment, fraction=i % 3 == 0, suffix=["+00:00", "Z", ""][i % 3])
        for i, moment in enumerate(moments)
    ]
    shell, env = _toolset(tmp_path, kind)
    program = '. "$1"; shift; for stamp in "$@"; do iso_to_epoch "$stamp"; done'
    done = subprocess.run(
        [*shell, "-c", program, "sh", str(SCRIPT), *stamps],
        env=dict(env, CERTIFICATE_SCRIPT_LIBRARY="1"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert [int(line) for line in done.stdout.split()] == [
        calendar.timegm(m.timetuple()) for m in moments
    ]


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
    reasons = {}
    for check in results.get("skipped_checks", []):
        reason = (check.get("check_result") or {}).get("suppress_comment", "").strip()
        assert reason != "No comment provided", f"{check['check_id']} skipped without a reason"
        assert len(reason) > 15, f"{check['check_id']} skip reason too short: {reason!r}"
        reasons[check["check_id"], check["resource"]] = reason
    # checkov rewards siteConfig.ftpsState, which Flex Consumption rejects (ARM 51021)
    ftps = [reason for (check_id, _), reason in reasons.items() if check_id == "CKV_AZURE_78"]
    assert ftps and all("Flex Consumption" in reason and "51021" in reason for reason in ftps)
