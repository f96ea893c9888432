// API 1's Function App on the Flex Consumption plan (Linux), running as a user-assigned managed
// identity. No shared keys or secrets: host storage, the deployment package, Application Insights
// and Key Vault are all reached with that identity.
//
// The app settings below are the contract with the code (obo/config.py SETTING_NAMES and
// docs/configuration): tests/project/test_infra.py fails if a name here and in the code drift apart.
// OBO_CA_BUNDLE is for local runs only and is deliberately not set in Azure.
//
// siteConfig holds only properties that Flex Consumption accepts. Flex rejects a set of
// siteConfig properties outright with ARM error 51021 ("... for Flex Consumption sites is
// invalid. Please remove or rename it"): FtpsState, Use32BitWorkerProcess, NetFrameworkVersion,
// FunctionsRuntimeScaleMonitoringEnabled, PreWarmedInstanceCount, LinuxFxVersion (verbatim ARM
// errors in microsoft/azure-pipelines-tasks#21032, Azure/terraform-azurerm-avm-res-web-site#283
// and #360; the full evidence table is in that repository's PR #345). Enforcement is rolled out
// per region, so a property that deploys in one region can fail in the next. The runtime and
// scale live in functionAppConfig instead. The allow-list in tests/project/test_infra.py
// (FLEX_SITE_CONFIG_ALLOWED) comes from Microsoft's Flex samples.

@description('Azure region.')
param location string

@description('Tags applied to every resource.')
param tags object = {}

@description('Function App name (also its default host name).')
param functionAppName string

@description('Flex Consumption plan name.')
param planName string

// Flex Consumption runs Python 3.10-3.13 GA (3.14 in preview, without remote build, which Flex
// publishing uses): https://learn.microsoft.com/azure/azure-functions/supported-languages and
// `az functionapp list-flexconsumption-runtimes --location <region> --runtime python`.
// 3.10 is left out because the code needs 3.11+ (pyproject.toml requires-python).
@description('Python version of the Functions runtime.')
@allowed([
  '3.11'
  '3.12'
  '3.13'
])
param pythonVersion string = '3.11'

@description('Memory per instance, in MB.')
@allowed([
  512
  2048
  4096
])
param instanceMemoryMB int = 2048

@description('Upper bound on scale-out.')
@minValue(40)
@maxValue(1000)
param maximumInstanceCount int = 100

@description('Resource id of the Function App\'s user-assigned identity.')
param identityId string

@description('Client id of that identity (AZURE_CLIENT_ID, so DefaultAzureCredential picks it).')
param identityClientId string

@description('Storage account for AzureWebJobsStorage and the deployment package.')
param storageAccountName string

@description('Blob container of the deployment package.')
param deploymentContainerName string

@description('Application Insights component (Entra authentication only).')
param applicationInsightsName string

@description('Browser origins allowed to call the API (the SPA\'s origins).')
param corsAllowedOrigins array = []

@description('Allow SCM (Kudu) basic-auth publishing credentials. Off: func and azd publish with your Entra sign-in.')
param allowScmBasicAuth bool = false

// The app's own settings (see ../../docs/configuration and DESIGN "Settings").
@description('OBO_TENANT_ID: tenant of API 1\'s registration.')
param oboTenantId string

@description('OBO_CLIENT_ID: API 1\'s application (client) id.')
param oboClientId string

@description('OBO_AUTHORITY_HOST: Entra authority host.')
param oboAuthorityHost string

@description('OBO_ALLOWED_TENANTS: comma list of tenant ids whose users may call, or *.')
param oboAllowedTenants string

@description('OBO_AUDIENCES: accepted aud values, comma separated.')
param oboAudiences string

@description('OBO_REQUIRED_SCOPES: delegated scopes the caller\'s token must carry (any of).')
param oboRequiredScopes string = 'access_as_user'

@description('OBO_CLIENT_CREDENTIAL: certificate (Key Vault) or managed_identity (federated credential, secretless).')
@allowed([
  'certificate'
  'managed_identity'
])
param oboClientCredential string = 'certificate'

@description('OBO_KEY_VAULT_URL: vault holding API 1\'s certificate; empty in secretless mode.')
param oboKeyVaultUrl string = ''

@description('OBO_CERTIFICATE_NAME: certificate name in that vault; empty in secretless mode.')
param oboCertificateName string = ''

@description('OBO_DOWNSTREAM_BASE_URL: API 2 base URL.')
param oboDownstreamBaseUrl string

@description('OBO_DOWNSTREAM_SCOPES: scopes requested for API 2, space separated.')
param oboDownstreamScopes string

@description('OBO_DOWNSTREAM_TOKEN_TYPE: jwt, or saml2/saml1 for a downstream API that accepts only SAML.')
@allowed([
  'jwt'
  'saml2'
  'saml1'
])
param oboDownstreamTokenType string = 'jwt'

@description('OBO_SAML_ENDPOINT: token endpoint asked for SAML assertions (v1 with resource, v2 with <entity id>/.default).')
@allowed([
  'v1'
  'v2'
])
param oboSamlEndpoint string = 'v1'

@description('OBO_TRACE: basic, or verbose to log the exchange request\'s parameter names and client assertion header.')
@allowed([
  'basic'
  'verbose'
])
param oboTrace string = 'basic'

@description('OBO_CACHE_URL: rediss://<host>:10000 of Azure Managed Redis (no password: Entra auth as the managed identity); empty for the in-process cache only.')
param oboCacheUrl string = ''

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

resource applicationInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: applicationInsightsName
}

// Every app setting, by name. Flex Consumption takes the runtime and its version from
// functionAppConfig, so FUNCTIONS_WORKER_RUNTIME and FUNCTIONS_EXTENSION_VERSION are not set.
//
// PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY=true: the Python worker configures the Azure
// Monitor OpenTelemetry distro itself (configure_azure_monitor() at worker start, before
// function_app.py is imported), so spans, metrics and log records with their extra fields reach
// Application Insights; the exporter authenticates with the identity named in
// APPLICATIONINSIGHTS_AUTHENTICATION_STRING. Needs azure-monitor-opentelemetry in
// requirements.txt; host.json sets telemetryMode OpenTelemetry. Sources:
// https://learn.microsoft.com/azure/azure-functions/opentelemetry-howto (Python) and
// Azure/azure-functions-python-worker azure_functions_worker/dispatcher.py (worker_init_request).
var appSettings = [
  // Host storage through the managed identity: no AzureWebJobsStorage connection string.
  {
    name: 'AzureWebJobsStorage__accountName'
    value: storage.name
  }
  {
    name: 'AzureWebJobsStorage__credential'
    value: 'managedidentity'
  }
  {
    name: 'AzureWebJobsStorage__clientId'
    value: identityClientId
  }
  // The connection string only locates the component; with local auth disabled, ingestion
  // needs the Entra token named by the authentication string.
  {
    name: 'APPLICATIONINSIGHTS_CONNECTION_STRING'
    value: applicationInsights.properties.ConnectionString
  }
  {
    name: 'APPLICATIONINSIGHTS_AUTHENTICATION_STRING'
    value: 'ClientId=${identityClientId};Authorization=AAD'
  }
  // OpenTelemetry from the Python worker (see the note above appSettings).
  {
    name: 'PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY'
    value: 'true'
  }
  // azure-identity's ManagedIdentityCredential / DefaultAzureCredential pick this identity.
  {
    name: 'AZURE_CLIENT_ID'
    value: identityClientId
  }
  {
    name: 'OBO_TENANT_ID'
    value: oboTenantId
  }
  {
    name: 'OBO_CLIENT_ID'
    value: oboClientId
  }
  {
    name: 'OBO_AUTHORITY_HOST'
    value: oboAuthorityHost
  }
  {
    name: 'OBO_ALLOWED_TENANTS'
    value: oboAllowedTenants
  }
  {
    name: 'OBO_AUDIENCES'
    value: oboAudiences
  }
  {
    name: 'OBO_REQUIRED_SCOPES'
    value: oboRequiredScopes
  }
  {
    name: 'OBO_CLIENT_CREDENTIAL'
    value: oboClientCredential
  }
  {
    name: 'OBO_KEY_VAULT_URL'
    value: oboKeyVaultUrl
  }
  {
    name: 'OBO_CERTIFICATE_NAME'
    value: oboCertificateName
  }
  {
    name: 'OBO_DOWNSTREAM_BASE_URL'
    value: oboDownstreamBaseUrl
  }
  {
    name: 'OBO_DOWNSTREAM_SCOPES'
    value: oboDownstreamScopes
  }
  {
    name: 'OBO_DOWNSTREAM_TOKEN_TYPE'
    value: oboDownstreamTokenType
  }
  {
    name: 'OBO_SAML_ENDPOINT'
    value: oboSamlEndpoint
  }
  {
    name: 'OBO_TRACE'
    value: oboTrace
  }
  {
    name: 'OBO_CACHE_URL'
    value: oboCacheUrl
  }
]

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  // checkov:skip=CKV_AZURE_225: zone redundancy on Flex Consumption exists only in some regions; set zoneRedundant on the plan where your region offers it.
  name: planName
  location: location
  tags: tags
  kind: 'functionapp'
  sku: {
    name: 'FC1'
    tier: 'FlexConsumption'
  }
  properties: {
    reserved: true
  }
}

// App Service Authentication (Easy Auth) is deliberately off: the app validates the bearer token
// itself (signature, issuer, audience, scope) and must serve the anonymous /api/health.
resource functionApp 'Microsoft.Web/sites@2024-04-01' = {
  // checkov:skip=CKV_AZURE_17: callers authenticate with OAuth bearer tokens; requiring TLS client certificates would reject every SPA and API client.
  // checkov:skip=CKV_AZURE_222: this is a public API that SPAs call from browsers; every route except /api/health requires a valid Entra access token.
  // checkov:skip=CKV_AZURE_212: Flex Consumption scales instances on demand (and to zero); there is no fixed instance count to set.
  // checkov:skip=CKV_AZURE_213: App Service health check probes fixed instances; Flex Consumption scales per demand, so probe the anonymous /api/health from your monitoring instead.
  // checkov:skip=CKV_AZURE_78: Flex Consumption has no FTP endpoint (FTPS is not a Flex deployment technology) and rejects siteConfig.ftpsState with ARM error 51021, so the property must be absent.
  // checkov:skip=CKV_AZURE_18: http20Enabled is not a siteConfig property Microsoft's Flex Consumption templates set (the portal hides the HTTP version for Flex apps) and Flex rejects unlisted siteConfig properties with ARM error 51021 in some regions; the platform default applies.
  // checkov:skip=CKV_AZURE_67: same as CKV_AZURE_18 (HTTP version of a Function App on Flex Consumption).
  name: functionAppName
  location: location
  tags: union(tags, {
    'azd-service-name': 'api'
  })
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identityId}': {}
    }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    clientCertEnabled: false
    publicNetworkAccess: 'Enabled'
    // Only what the Flex samples set (see the note at the top). The portal hides FTP, HTTP
    // version, Always On and remote debugging for Flex apps (Azure/azure-functions-ux#7660), so
    // those, and the SCM site's TLS minimum, are left to the platform.
    siteConfig: {
      minTlsVersion: '1.2'
      appSettings: appSettings
      cors: {
        allowedOrigins: corsAllowedOrigins
        supportCredentials: false
      }
    }
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${storage.properties.primaryEndpoints.blob}${deploymentContainerName}'
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identityId
          }
        }
      }
      scaleAndConcurrency: {
        instanceMemoryMB: instanceMemoryMB
        maximumInstanceCount: maximumInstanceCount
      }
      runtime: {
        name: 'python'
        version: pythonVersion
      }
    }
  }
}

// No 'ftp' policy: Flex Consumption has no FTP publishing (the portal hides "FTP Basic Auth
// Publishing" for Flex apps, Azure/azure-functions-ux#7660). SCM basic auth stays off.
resource scmBasicAuth 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: functionApp
  name: 'scm'
  properties: {
    allow: allowScmBasicAuth
  }
}

output FUNCTION_APP_NAME string = functionApp.name
output FUNCTION_APP_URL string = 'https://${functionApp.properties.defaultHostName}'
