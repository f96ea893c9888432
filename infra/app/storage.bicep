// Storage for the Functions host (AzureWebJobsStorage) and the Flex Consumption deployment package.
// Shared keys are off: the host and the deployment both authenticate with the Function App's
// user-assigned identity, so no connection string or account key exists anywhere.

@description('Azure region.')
param location string

@description('Tags applied to every resource.')
param tags object = {}

@description('Storage account name (3-24 lowercase letters and digits).')
@minLength(3)
@maxLength(24)
param storageAccountName string

@description('Blob container that holds the Flex Consumption deployment package.')
param deploymentContainerName string

@description('Principal (object) id of the Function App identity.')
param appPrincipalId string

// Storage Blob Data Owner: host storage (locks, keys) and the deployment package container.
var storageBlobDataOwnerRoleId = 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b'
// Storage Queue Data Contributor: the host's queue client (AzureWebJobsStorage__accountName).
var storageQueueDataContributorRoleId = '974c5e8b-45b9-4653-ba55-5f855dd0fb88'
// Storage Table Data Contributor: the host's diagnostic events table.
var storageTableDataContributorRoleId = '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3'

var appRoleIds = [
  storageBlobDataOwnerRoleId
  storageQueueDataContributorRoleId
  storageTableDataContributorRoleId
]

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  // checkov:skip=CKV_AZURE_35: no VNet in this template, so the Flex Consumption app (shared outbound IPs) and the deployment tools must reach the public endpoint; shared keys are off, so only Entra-authorized identities get in.
  // checkov:skip=CKV_AZURE_59: same reason as CKV_AZURE_35; lock it down with VNet integration and private endpoints when you add them.
  // checkov:skip=CKV_AZURE_206: LRS is enough for host state and a deployment package that azd or func re-uploads; geo-replication only adds cost.
  // checkov:skip=CKV_AZURE_43: the name is 'st' + uniqueString(...), lowercase alphanumeric and at most 24 characters (see main.bicep); checkov cannot evaluate the expression.
  name: storageAccountName
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: {
    name: 'Standard_LRS'
  }
  properties: {
    accessTier: 'Hot'
    allowBlobPublicAccess: false
    allowCrossTenantReplication: false
    allowSharedKeyAccess: false
    defaultToOAuthAuthentication: true
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      defaultAction: 'Allow'
      bypass: 'AzureServices'
    }
  }
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' = {
  parent: storage
  name: 'default'
}

resource deploymentContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobService
  name: deploymentContainerName
  properties: {
    publicAccess: 'None'
  }
}

resource appRoles 'Microsoft.Authorization/roleAssignments@2022-04-01' = [for roleId in appRoleIds: {
  name: guid(storage.id, appPrincipalId, roleId)
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleId)
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
  }
}]

output STORAGE_ACCOUNT_NAME string = storage.name
output STORAGE_BLOB_ENDPOINT string = storage.properties.primaryEndpoints.blob
output DEPLOYMENT_CONTAINER_NAME string = deploymentContainer.name
