// Key Vault that holds API 1's certificate (the private key never leaves the vault except to the
// Function App's identity). RBAC only (no access policies), soft delete always on, purge
// protection a parameter.
//
// Purge protection and the deterministic name (kv-<token of subscription, environment, region>)
// do not mix in development: after `azd down` the soft-deleted vault keeps its name, and with
// purge protection nothing can purge it, so the next `azd up` of the same environment fails
// (VaultAlreadyExists / soft-deleted vault conflict) for the whole retention period. Off, the
// vault is still soft-deleted and recoverable; `azd down --purge` (or `az keyvault purge`)
// frees the name at once. Turn it on for production; it cannot be turned off again.
// ARM refuses enablePurgeProtection: false, so "off" leaves the property out (null), as
// Azure/bicep-registry-modules avm/res/key-vault/vault does.
// The vault is dedicated to this app, so a vault-scoped role is the narrowest practical scope:
// the certificate itself is created by a deployment script, not by ARM, so ARM cannot scope a
// role assignment to it before it exists.

@description('Azure region.')
param location string

@description('Tags applied to every resource.')
param tags object = {}

@description('Key Vault name (3-24 characters, globally unique).')
@minLength(3)
@maxLength(24)
param keyVaultName string

@description('Public network access to the vault. "Enabled" is needed unless the Function App and the deployment script reach the vault through a private network.')
@allowed([
  'Enabled'
  'Disabled'
])
param publicNetworkAccess string = 'Enabled'

@description('Default action of the vault firewall when public access is enabled.')
@allowed([
  'Allow'
  'Deny'
])
param networkDefaultAction string = 'Allow'

@description('Purge protection: a deleted vault cannot be purged until the retention period ends (irreversible once on). Off suits development environments that are torn down and recreated.')
param enablePurgeProtection bool = false

@description('Days a deleted vault (and deleted certificate) stays recoverable.')
@minValue(7)
@maxValue(90)
param softDeleteRetentionInDays int = 90

@description('Principal (object) id of the Function App identity: reads the certificate and its private key.')
param appPrincipalId string

@description('Principal (object) id of the certificate script identity: creates the certificate. Empty to skip.')
param certificateScriptPrincipalId string = ''

// The app loads its certificate with two calls (obo/credentials.py): CertificateClient
// .get_certificate (certificate metadata: version, x5t) and SecretClient.get_secret (the private
// key, served through the secret endpoint). Each endpoint gets its read-only role, the same pair
// the app's OBO4002 message and docs/deployment.md name. The vault is dedicated to this app and
// holds only API 1's certificate, so the secret role reaches nothing else.
// Key Vault Certificate User: read certificates; no write, no delete.
var keyVaultCertificateUserRoleId = 'db79e9a7-68ee-4b58-9aeb-b90e7c24fcba'
// Key Vault Secrets User: read secret contents (the certificate's private key); no write.
var keyVaultSecretsUserRoleId = '4633458b-17de-408a-b874-0445c86b69e6'
var appRoleIds = [
  keyVaultCertificateUserRoleId
  keyVaultSecretsUserRoleId
]
// Key Vault Certificates Officer: create and read certificates; given to the deployment script only.
var keyVaultCertificatesOfficerRoleId = 'a4417e6f-fecd-4de8-b567-7b0420556985'

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  // checkov:skip=CKV_AZURE_109: the firewall default is a parameter (networkDefaultAction); 'Allow' is the default because Flex Consumption without VNet integration and the deployment script container have no fixed outbound addresses. Access still needs Entra RBAC.
  // checkov:skip=CKV_AZURE_189: public access is a parameter (publicNetworkAccess); see CKV_AZURE_109.
  // checkov:skip=CKV_AZURE_110: purge protection is a parameter (enablePurgeProtection), off by default so a development environment can be deleted and recreated under its deterministic name; turn it on for production (docs/deployment.md).
  // checkov:skip=CKV_AZURE_42: soft delete is always on (recoverable); purge protection is a parameter, see CKV_AZURE_110.
  name: keyVaultName
  location: location
  tags: tags
  properties: {
    tenantId: tenant().tenantId
    sku: {
      family: 'A'
      name: 'standard'
    }
    enableRbacAuthorization: true
    enableSoftDelete: true
    softDeleteRetentionInDays: softDeleteRetentionInDays
    enablePurgeProtection: enablePurgeProtection ? true : null
    enabledForDeployment: false
    enabledForDiskEncryption: false
    enabledForTemplateDeployment: false
    publicNetworkAccess: publicNetworkAccess
    networkAcls: {
      defaultAction: networkDefaultAction
      bypass: 'AzureServices'
    }
  }
}

resource appRoles 'Microsoft.Authorization/roleAssignments@2022-04-01' = [for roleId in appRoleIds: {
  name: guid(vault.id, appPrincipalId, roleId)
  scope: vault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleId)
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
  }
}]

resource scriptCertificatesOfficer 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(certificateScriptPrincipalId)) {
  name: guid(vault.id, certificateScriptPrincipalId, keyVaultCertificatesOfficerRoleId)
  scope: vault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', keyVaultCertificatesOfficerRoleId)
    principalId: certificateScriptPrincipalId
    principalType: 'ServicePrincipal'
  }
}

output KEY_VAULT_NAME string = vault.name
output KEY_VAULT_URL string = vault.properties.vaultUri
