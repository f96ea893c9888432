// Key Vault that holds API 1's certificate (the private key never leaves the vault except to the
// Function App's identity). RBAC only (no access policies), soft delete and purge protection on.
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

@description('Principal (object) id of the Function App identity: reads the certificate and its private key.')
param appPrincipalId string

@description('Principal (object) id of the certificate script identity: creates the certificate. Empty to skip.')
param certificateScriptPrincipalId string = ''

// Key Vault Certificate User: read certificates including the private key (served through the
// secret endpoint); no write, no delete, no other key or secret management.
var keyVaultCertificateUserRoleId = 'db79e9a7-68ee-4b58-9aeb-b90e7c24fcba'
// Key Vault Certificates Officer: create and read certificates; given to the deployment script only.
var keyVaultCertificatesOfficerRoleId = 'a4417e6f-fecd-4de8-b567-7b0420556985'

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  // checkov:skip=CKV_AZURE_109: the firewall default is a parameter (networkDefaultAction); 'Allow' is the default because Flex Consumption without VNet integration and the deployment script container have no fixed outbound addresses. Access still needs Entra RBAC.
  // checkov:skip=CKV_AZURE_189: public access is a parameter (publicNetworkAccess); see CKV_AZURE_109.
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
    softDeleteRetentionInDays: 90
    enablePurgeProtection: true
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

resource appCertificateUser 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(vault.id, appPrincipalId, keyVaultCertificateUserRoleId)
  scope: vault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', keyVaultCertificateUserRoleId)
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
  }
}

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
