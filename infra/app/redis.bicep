// Optional Azure Managed Redis (Microsoft.Cache/redisEnterprise): the L2 cache that every
// Function App instance shares, so a user known to one instance costs no Entra exchange on
// another (docs/deployment.md "Shared cache"; the app treats Redis as optional and never fails
// a request because of it).
//
// Microsoft Entra ID only: access keys are disabled on the database, and the Function App's
// user-assigned identity gets the built-in 'default' access policy (data read/write) through an
// access policy assignment. Clients connect over TLS on port 10000. The app receives
// OBO_CACHE_URL = rediss://<host>:10000 without a password, which tells it to authenticate as its
// managed identity (redis-entraid; AZURE_CLIENT_ID selects the user-assigned identity).
// Sources: https://learn.microsoft.com/azure/redis/entra-for-authentication and
// Azure/bicep-registry-modules avm/res/cache/redis-enterprise (tests/e2e/amr-entra-id).

@description('Azure region.')
param location string

@description('Tags applied to every resource.')
param tags object = {}

@description('Azure Managed Redis name (also the host name prefix).')
param redisName string

// Tiers: Memory Optimized (M*), Balanced (B*), Compute Optimized (X*), Flash Optimized (A*);
// prices per region: https://azure.microsoft.com/pricing/details/managed-redis/
@description('SKU, e.g. Balanced_B0 (the smallest), Balanced_B1, MemoryOptimized_M10, ComputeOptimized_X3.')
param skuName string = 'Balanced_B0'

@description('Replicate the data to a second node (SLA, survives a node failure; raises the price).')
param highAvailability bool = true

@description('Principal (object) id of the Function App identity that reads and writes the cache.')
param appPrincipalId string

resource cluster 'Microsoft.Cache/redisEnterprise@2025-07-01' = {
  name: redisName
  location: location
  tags: tags
  sku: {
    name: skuName
  }
  properties: {
    minimumTlsVersion: '1.2'
    highAvailability: highAvailability ? 'Enabled' : 'Disabled'
    // No VNet in this template: the Flex Consumption app reaches the public endpoint, which
    // accepts only TLS and Entra tokens of identities that hold an access policy assignment.
    publicNetworkAccess: 'Enabled'
  }
}

resource database 'Microsoft.Cache/redisEnterprise/databases@2025-07-01' = {
  parent: cluster
  name: 'default'
  properties: {
    accessKeysAuthentication: 'Disabled'
    clientProtocol: 'Encrypted'
    port: 10000
    // One endpoint that proxies every shard, so a plain (non-cluster) Redis client works;
    // OSSCluster would need a cluster-aware client (https://aka.ms/redis/enterprise/clustering).
    clusteringPolicy: 'EnterpriseCluster'
    // Entries carry TTLs (the token's lifetime): under memory pressure evict those first.
    evictionPolicy: 'VolatileLRU'
  }
}

resource appAccess 'Microsoft.Cache/redisEnterprise/databases/accessPolicyAssignments@2025-07-01' = {
  parent: database
  name: 'functionapp'
  properties: {
    accessPolicyName: 'default'
    user: {
      objectId: appPrincipalId
    }
  }
}

output REDIS_NAME string = cluster.name
output REDIS_HOST string = cluster.properties.hostName
output CACHE_URL string = 'rediss://${cluster.properties.hostName}:${database.properties.port}'
