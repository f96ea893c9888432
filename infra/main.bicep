// One deployment that creates a working On-Behalf-Of setup in an empty subscription:
//   resource group, managed identities, storage, monitoring, Key Vault + certificate,
//   Entra app registrations (Microsoft Graph Bicep extension), optional Azure Managed Redis and
//   the Flex Consumption Function App.
//
//   Azure CLI (parameters from infra/azcli.bicepparam, which reads environment variables):
//     AZURE_ENV_NAME=<name> AZURE_LOCATION=<region> \
//       az deployment sub create --location <region> --template-file infra/main.bicep \
//         --parameters infra/azcli.bicepparam
//   or: azd up (parameters from infra/main.parameters.json, whose ${VAR} placeholders only azd fills)
//
// Dependency order: identity -> key vault -> certificate -> app registrations (need the public
// certificate and the identity's principal id) -> Function App (needs API 1's appId).
// See docs/deployment.md for the resource providers and directory roles this needs and the
// checks to run with a real Bicep compiler (az bicep build, what-if).
targetScope = 'subscription'

// Public Azure cloud only. Microsoft Graph Bicep documented its deployments as "supported only for
// the public cloud and not for sovereign clouds" (https://learn.microsoft.com/graph/templates/limitations,
// preview), and nothing here has been tried elsewhere, so the template refuses other clouds at
// validation instead of guessing their federated-credential issuers and audiences. The app itself
// supports national clouds (OBO_AUTHORITY_HOST): register it there by hand (docs/configuration.md).
@description('Name of the Azure cloud this deployment runs in; only the public cloud is supported.')
@allowed([
  'AzureCloud'
])
param azureCloud string = environment().name

@minLength(1)
@maxLength(64)
@description('Environment name (azd); names and the resource group derive from it.')
param environmentName string

@minLength(1)
@description('Region of all resources; must offer Flex Consumption (az functionapp list-flexconsumption-locations).')
@metadata({
  azd: {
    type: 'location'
  }
})
param location string

@description('Object id of the deploying user; becomes owner of the app registrations. azd fills it in.')
param principalId string = ''

@description('Resource group name; empty for rg-<environmentName>.')
param resourceGroupName string = ''

@description('Python version of the Function App.')
@allowed([
  '3.11'
  '3.12'
  '3.13'
])
param pythonVersion string = '3.11'

@description('SPA redirect URIs of the client registration.')
param spaRedirectUris array = [
  'http://localhost:3000'
]

@description('Browser origins allowed to call the Function App (CORS), usually the SPA\'s origins.')
param corsAllowedOrigins array = [
  'http://localhost:3000'
]

@description('Who may sign in: this tenant only, or any Entra tenant.')
@allowed([
  'AzureADMyOrg'
  'AzureADMultipleOrgs'
])
param signInAudience string = 'AzureADMyOrg'

@description('OBO_ALLOWED_TENANTS: comma list of tenant ids, or *; empty for this tenant only.')
param allowedTenants string = ''

@description('API 1\'s credential (OBO_CLIENT_CREDENTIAL): certificate = a Key Vault certificate in keyCredentials; managed_identity = secretless, the Function App\'s identity as a federated credential (no Key Vault).')
@allowed([
  'certificate'
  'managed_identity'
])
param clientCredential string = 'certificate'

@description('Name of API 1\'s certificate in Key Vault (OBO_CERTIFICATE_NAME).')
param certificateName string = 'obo-api'

@description('Content type of the certificate\'s secret, as the app loads it.')
@allowed([
  'application/x-pem-file'
  'application/x-pkcs12'
])
param certificateContentType string = 'application/x-pem-file'

@description('Public network access to Key Vault.')
@allowed([
  'Enabled'
  'Disabled'
])
param keyVaultPublicNetworkAccess string = 'Enabled'

@description('Key Vault firewall default action.')
@allowed([
  'Allow'
  'Deny'
])
param keyVaultNetworkDefaultAction string = 'Allow'

@description('Key Vault purge protection. Off (default) lets `azd down --purge` free the deterministic vault name; on, a deleted vault blocks this environment name for the retention period. Irreversible once on: use it for production.')
param keyVaultPurgeProtection bool = false

@description('Azure Managed Redis shared by all instances as the OBO cache (OBO_CACHE_URL). Off: each instance caches in process only.')
param enableManagedRedis bool = false

@description('Azure Managed Redis SKU (tiers: Balanced, Memory Optimized, Compute Optimized, Flash Optimized).')
param managedRedisSku string = 'Balanced_B0'

@description('Azure Managed Redis high availability (adds a replica and raises the price; see the pricing page).')
param managedRedisHighAvailability bool = true

@description('Microsoft Graph delegated scopes API 1 obtains through OBO (by value).')
param graphDelegatedScopes array = [
  'User.Read'
]

@description('OBO_DOWNSTREAM_BASE_URL: API 2 base URL (Graph by default; yours with createDownstreamApi).')
param downstreamBaseUrl string = 'https://graph.microsoft.com/v1.0'

@description('Register your own downstream API (API 2) instead of calling Microsoft Graph.')
param createDownstreamApi bool = false

@description('Delegated scope exposed by API 2 when createDownstreamApi is true.')
param downstreamScopeValue string = 'access_as_user'

@description('JWT-to-SAML: the entity ID (identifier) of a downstream application configured for SAML single sign-on; empty for an OAuth downstream API.')
param samlEntityId string = ''

@description('OBO_DOWNSTREAM_TOKEN_TYPE when samlEntityId is set: saml2 or saml1.')
@allowed([
  'saml2'
  'saml1'
])
param samlTokenType string = 'saml2'

@description('OBO_SAML_ENDPOINT: v1 (resource parameter) or v2 (<entity id>/.default).')
@allowed([
  'v1'
  'v2'
])
param samlEndpoint string = 'v1'

@description('OBO_TRACE: verbose adds each exchange request\'s parameter names and client assertion header to the logs.')
@allowed([
  'basic'
  'verbose'
])
param exchangeTrace string = 'basic'

@description('Grant tenant-wide admin consent for the downstream scopes (needs Privileged Role Administrator or Global Administrator).')
param grantAdminConsent bool = false

@description('Extra client app ids pre-authorized for access_as_user, e.g. Azure CLI 04b07795-8ddb-461a-bbee-02f9e1bf7b46 for test tokens.')
param additionalPreAuthorizedAppIds array = []

@description('Allow SCM basic-auth publishing credentials (off: publish with your Entra sign-in).')
param allowScmBasicAuth bool = false

var resourceToken = toLower(uniqueString(subscription().id, environmentName, location))
var tags = {
  'azd-env-name': environmentName
}
var tenantId = tenant().tenantId
var useCertificate = clientCredential == 'certificate'

var functionAppName = 'func-api-${resourceToken}'
var deploymentContainerName = 'app-package-${resourceToken}'
var keyVaultName = 'kv-${resourceToken}'
var apiUniqueName = 'obo-api-${resourceToken}'

// Public cloud (see azureCloud): Entra's login host. OBO_AUTHORITY_HOST is the bare host URL.
var authorityHost = 'https://login.microsoftonline.com'

resource rg 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: !empty(resourceGroupName) ? resourceGroupName : 'rg-${environmentName}'
  location: location
  tags: tags
}

module identity 'app/identity.bicep' = {
  name: 'identity'
  scope: rg
  params: {
    location: location
    tags: tags
    appIdentityName: 'id-api-${resourceToken}'
    certificateScriptIdentityName: 'id-cert-${resourceToken}'
    createCertificateScriptIdentity: useCertificate
  }
}

module monitoring 'app/monitoring.bicep' = {
  name: 'monitoring'
  scope: rg
  params: {
    location: location
    tags: tags
    logAnalyticsName: 'log-${resourceToken}'
    applicationInsightsName: 'appi-${resourceToken}'
    publisherPrincipalId: identity.outputs.APP_IDENTITY_PRINCIPAL_ID
  }
}

module storage 'app/storage.bicep' = {
  name: 'storage'
  scope: rg
  params: {
    location: location
    tags: tags
    storageAccountName: 'st${resourceToken}'
    deploymentContainerName: deploymentContainerName
    appPrincipalId: identity.outputs.APP_IDENTITY_PRINCIPAL_ID
  }
}

module keyVault 'app/keyvault.bicep' = if (useCertificate) {
  name: 'keyvault'
  scope: rg
  params: {
    location: location
    tags: tags
    keyVaultName: keyVaultName
    publicNetworkAccess: keyVaultPublicNetworkAccess
    networkDefaultAction: keyVaultNetworkDefaultAction
    enablePurgeProtection: keyVaultPurgeProtection
    appPrincipalId: identity.outputs.APP_IDENTITY_PRINCIPAL_ID
    certificateScriptPrincipalId: identity.outputs.CERTIFICATE_SCRIPT_IDENTITY_PRINCIPAL_ID
  }
}

module certificate 'app/certificate.bicep' = if (useCertificate) {
  name: 'certificate'
  scope: rg
  params: {
    location: location
    tags: tags
    keyVaultName: useCertificate ? keyVault.outputs.KEY_VAULT_NAME : ''
    certificateName: certificateName
    certificateSubject: 'CN=${apiUniqueName}'
    contentType: certificateContentType
    scriptIdentityId: identity.outputs.CERTIFICATE_SCRIPT_IDENTITY_ID
  }
}

module entra 'app/entra.bicep' = {
  name: 'entra'
  scope: rg
  params: {
    apiUniqueName: apiUniqueName
    apiDisplayName: 'OBO API (${environmentName})'
    clientUniqueName: 'obo-client-${resourceToken}'
    clientDisplayName: 'OBO client (${environmentName})'
    downstreamApiUniqueName: 'obo-downstream-${resourceToken}'
    downstreamApiDisplayName: 'OBO downstream API (${environmentName})'
    spaRedirectUris: spaRedirectUris
    signInAudience: signInAudience
    ownerObjectIds: empty(principalId) ? [] : [
      principalId
    ]
    additionalPreAuthorizedAppIds: additionalPreAuthorizedAppIds
    clientCredential: clientCredential
    certificateBase64: useCertificate ? certificate.outputs.CERTIFICATE_BASE64 : ''
    certificateNotBefore: useCertificate ? certificate.outputs.CERTIFICATE_NOT_BEFORE : ''
    certificateExpires: useCertificate ? certificate.outputs.CERTIFICATE_EXPIRES : ''
    managedIdentityPrincipalId: identity.outputs.APP_IDENTITY_PRINCIPAL_ID
    graphDelegatedScopes: graphDelegatedScopes
    createDownstreamApi: createDownstreamApi
    downstreamScopeValue: downstreamScopeValue
    grantAdminConsent: grantAdminConsent
  }
}

module redis 'app/redis.bicep' = if (enableManagedRedis) {
  name: 'redis'
  scope: rg
  params: {
    location: location
    tags: tags
    redisName: 'redis-${resourceToken}'
    skuName: managedRedisSku
    highAvailability: managedRedisHighAvailability
    appPrincipalId: identity.outputs.APP_IDENTITY_PRINCIPAL_ID
  }
}

module api 'app/api.bicep' = {
  name: 'api'
  scope: rg
  params: {
    location: location
    tags: tags
    functionAppName: functionAppName
    planName: 'plan-${resourceToken}'
    pythonVersion: pythonVersion
    identityId: identity.outputs.APP_IDENTITY_ID
    identityClientId: identity.outputs.APP_IDENTITY_CLIENT_ID
    storageAccountName: storage.outputs.STORAGE_ACCOUNT_NAME
    deploymentContainerName: storage.outputs.DEPLOYMENT_CONTAINER_NAME
    applicationInsightsName: monitoring.outputs.APPLICATION_INSIGHTS_NAME
    corsAllowedOrigins: corsAllowedOrigins
    allowScmBasicAuth: allowScmBasicAuth
    oboTenantId: tenantId
    oboClientId: entra.outputs.API_APP_ID
    oboAuthorityHost: authorityHost
    oboAllowedTenants: !empty(allowedTenants) ? allowedTenants : tenantId
    oboAudiences: '${entra.outputs.API_APP_ID},${entra.outputs.API_IDENTIFIER_URI}'
    oboRequiredScopes: 'access_as_user'
    oboClientCredential: clientCredential
    oboKeyVaultUrl: useCertificate ? keyVault.outputs.KEY_VAULT_URL : ''
    oboCertificateName: useCertificate ? certificateName : ''
    oboDownstreamBaseUrl: downstreamBaseUrl
    oboDownstreamScopes: empty(samlEntityId) ? entra.outputs.DOWNSTREAM_SCOPES : '${samlEntityId}/.default'
    oboDownstreamTokenType: empty(samlEntityId) ? 'jwt' : samlTokenType
    oboSamlEndpoint: samlEndpoint
    oboTrace: exchangeTrace
    oboCacheUrl: enableManagedRedis ? redis.outputs.CACHE_URL : ''
  }
}

output AZURE_LOCATION string = location
output AZURE_TENANT_ID string = tenantId
output AZURE_RESOURCE_GROUP string = rg.name
output AZURE_FUNCTION_NAME string = api.outputs.FUNCTION_APP_NAME
output SERVICE_API_NAME string = api.outputs.FUNCTION_APP_NAME
output SERVICE_API_URI string = api.outputs.FUNCTION_APP_URL
output AZURE_MANAGED_IDENTITY_CLIENT_ID string = identity.outputs.APP_IDENTITY_CLIENT_ID
output AZURE_KEY_VAULT_NAME string = useCertificate ? keyVault.outputs.KEY_VAULT_NAME : ''
output AZURE_KEY_VAULT_URL string = useCertificate ? keyVault.outputs.KEY_VAULT_URL : ''
output CERTIFICATE_NAME string = useCertificate ? certificateName : ''
output CERTIFICATE_THUMBPRINT string = useCertificate ? certificate.outputs.CERTIFICATE_THUMBPRINT : ''
output CERTIFICATE_EXPIRES string = useCertificate ? certificate.outputs.CERTIFICATE_EXPIRES : ''
output OBO_CLIENT_CREDENTIAL string = clientCredential
output REDIS_NAME string = enableManagedRedis ? redis.outputs.REDIS_NAME : ''
output OBO_CACHE_URL string = enableManagedRedis ? redis.outputs.CACHE_URL : ''
output ENTRA_API_APP_ID string = entra.outputs.API_APP_ID
output ENTRA_API_IDENTIFIER_URI string = entra.outputs.API_IDENTIFIER_URI
output ENTRA_API_SCOPE string = entra.outputs.API_SCOPE
output ENTRA_CLIENT_APP_ID string = entra.outputs.CLIENT_APP_ID
output ENTRA_DOWNSTREAM_SCOPES string = entra.outputs.DOWNSTREAM_SCOPES
