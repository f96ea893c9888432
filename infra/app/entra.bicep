// Microsoft Entra app registrations for the On-Behalf-Of setup, with the Microsoft Graph Bicep
// extension (version pinned in infra/bicepconfig.json).
//
//   client (SPA) --access_as_user--> API 1 (this Function App) --OBO--> API 2 (Graph or your API)
//
// Creation order breaks the one cycle in the design: API 1 lists the client in
// knownClientApplications and preAuthorizedApplications, so the client is created first and does
// not list API 1 in its requiredResourceAccess. It does not need to: a pre-authorized client gets
// access_as_user without a consent prompt, and asks for it by name
// (api://<tenant>/<name>/access_as_user), not through /.default.
//
// Deploying this file needs directory rights (see docs/deployment.md): Application Developer
// (or Cloud Application Administrator) for the registrations, and Privileged Role Administrator
// (or Global Administrator) when grantAdminConsent is true.
//
// Public cloud only (main.bicep refuses other clouds): issuer, token-exchange audience and Graph's
// resource URI below are the public cloud's.
extension microsoftGraphV1

@description('Alternate key (uniqueName) of API 1\'s registration; unique in the tenant.')
param apiUniqueName string

@description('Display name of API 1\'s registration.')
param apiDisplayName string

@description('Alternate key (uniqueName) of the client registration.')
param clientUniqueName string

@description('Display name of the client registration.')
param clientDisplayName string

@description('SPA redirect URIs of the client (MSAL.js auth code + PKCE).')
param spaRedirectUris array = [
  'http://localhost:3000'
]

@description('Who may sign in: this tenant only, or any Entra tenant (then set OBO_ALLOWED_TENANTS).')
@allowed([
  'AzureADMyOrg'
  'AzureADMultipleOrgs'
])
param signInAudience string = 'AzureADMyOrg'

@description('Object ids of users or service principals to make owners of the registrations.')
param ownerObjectIds array = []

@description('Other client app ids to pre-authorize for access_as_user, e.g. Azure CLI (04b07795-8ddb-461a-bbee-02f9e1bf7b46) for a first test token.')
param additionalPreAuthorizedAppIds array = []

@description('API 1\'s credential: certificate (the Key Vault certificate in keyCredentials) or managed_identity (the Function App\'s identity as a federated credential).')
@allowed([
  'certificate'
  'managed_identity'
])
param clientCredential string = 'certificate'

@description('Public certificate (base64 DER) from the certificate script; empty with managed_identity.')
param certificateBase64 string = ''

@description('Start of the certificate\'s validity (ISO 8601).')
param certificateNotBefore string = ''

@description('End of the certificate\'s validity (ISO 8601).')
param certificateExpires string = ''

@description('Principal (object) id of the Function App\'s user-assigned identity (the federated subject).')
param managedIdentityPrincipalId string = ''

@description('Microsoft Graph delegated scopes API 1 requests on behalf of the user, by value.')
param graphDelegatedScopes array = [
  'User.Read'
]

@description('Register your own downstream API (API 2) instead of calling Microsoft Graph.')
param createDownstreamApi bool = false

@description('Alternate key (uniqueName) of API 2\'s registration.')
param downstreamApiUniqueName string = ''

@description('Display name of API 2\'s registration.')
param downstreamApiDisplayName string = ''

@description('Delegated scope that API 2 exposes and API 1 requests.')
param downstreamScopeValue string = 'access_as_user'

@description('Grant tenant-wide admin consent (oauth2PermissionGrants). Needs Privileged Role Administrator or Global Administrator.')
param grantAdminConsent bool = false

// Microsoft Graph's well-known application id (the same in every tenant).
var graphAppId = '00000003-0000-0000-c000-000000000000'
// Resource URI that prefixes Graph scopes in OBO_DOWNSTREAM_SCOPES (public cloud).
var graphResourceUri = 'https://graph.microsoft.com'
var useCertificate = clientCredential == 'certificate'
var useManagedIdentity = clientCredential == 'managed_identity'

// Sign-in scopes the SPA itself asks Graph for.
var clientGraphScopeValues = [
  'openid'
  'profile'
  'offline_access'
  'User.Read'
]

// App ID URIs. A resource cannot reference its own appId, so api://<appId> cannot be written in
// the same declaration that creates the app. api://<tenantId>/<uniqueName> is one of Entra's
// secure identifier URI formats (it carries the tenant id, so it satisfies the
// "uriAdditionWithoutUniqueTenantIdentifier" app management policy), is known before the app
// exists, and is stable across re-deployments because uniqueName is immutable. v2 access tokens
// carry the appId as aud either way, which is what the product validates (OBO_AUDIENCES).
var apiIdentifierUri = 'api://${tenant().tenantId}/${apiUniqueName}'
var downstreamIdentifierUri = 'api://${tenant().tenantId}/${downstreamApiUniqueName}'

// Scope ids are derived from the unique names, so they never change between deployments.
var apiScopeId = guid(apiUniqueName, 'access_as_user')
var downstreamScopeId = guid(downstreamApiUniqueName, downstreamScopeValue)

var graphDownstreamScopes = join(map(graphDelegatedScopes, s => '${graphResourceUri}/${s}'), ' ')
var customDownstreamScopes = '${downstreamIdentifierUri}/${downstreamScopeValue}'

// Graph's service principal: its oauth2PermissionScopes map scope values to ids in this tenant,
// so no permission GUID is hard-coded.
resource graphSp 'Microsoft.Graph/servicePrincipals@v1.0' existing = {
  appId: graphAppId
}

var clientGraphScopes = filter(graphSp.oauth2PermissionScopes, scope => contains(clientGraphScopeValues, scope.value))
var clientGraphResourceAccess = map(clientGraphScopes, scope => {
  id: scope.id
  type: 'Scope'
})
var apiGraphScopes = filter(graphSp.oauth2PermissionScopes, scope => contains(graphDelegatedScopes, scope.value))
var graphRequiredResourceAccess = [
  {
    resourceAppId: graphAppId
    resourceAccess: map(apiGraphScopes, scope => {
      id: scope.id
      type: 'Scope'
    })
  }
]

resource clientApp 'Microsoft.Graph/applications@v1.0' = {
  uniqueName: clientUniqueName
  displayName: clientDisplayName
  signInAudience: signInAudience
  isFallbackPublicClient: false
  owners: {
    relationships: ownerObjectIds
  }
  spa: {
    redirectUris: spaRedirectUris
  }
  requiredResourceAccess: [
    {
      resourceAppId: graphAppId
      resourceAccess: clientGraphResourceAccess
    }
  ]
}

resource clientSp 'Microsoft.Graph/servicePrincipals@v1.0' = {
  appId: clientApp.appId
  owners: {
    relationships: ownerObjectIds
  }
}

// Optional API 2: the customer's own downstream API, exposing one delegated scope.
resource downstreamApi 'Microsoft.Graph/applications@v1.0' = if (createDownstreamApi) {
  uniqueName: downstreamApiUniqueName
  displayName: downstreamApiDisplayName
  signInAudience: signInAudience
  identifierUris: [
    downstreamIdentifierUri
  ]
  owners: {
    relationships: ownerObjectIds
  }
  api: {
    requestedAccessTokenVersion: 2
    oauth2PermissionScopes: [
      {
        id: downstreamScopeId
        value: downstreamScopeValue
        type: 'User'
        isEnabled: true
        adminConsentDisplayName: 'Access ${downstreamApiDisplayName} as the signed-in user'
        adminConsentDescription: 'Allows the middle tier to call ${downstreamApiDisplayName} on behalf of the signed-in user.'
        userConsentDisplayName: 'Access ${downstreamApiDisplayName} as you'
        userConsentDescription: 'Allows the app to call ${downstreamApiDisplayName} on your behalf.'
      }
    ]
  }
}

resource downstreamSp 'Microsoft.Graph/servicePrincipals@v1.0' = if (createDownstreamApi) {
  appId: downstreamApi.appId
  owners: {
    relationships: ownerObjectIds
  }
}

var downstreamRequiredResourceAccess = [
  {
    resourceAppId: createDownstreamApi ? downstreamApi.appId : ''
    resourceAccess: [
      {
        id: downstreamScopeId
        type: 'Scope'
      }
    ]
  }
]
var clientPreAuthorization = [
  {
    appId: clientApp.appId
    delegatedPermissionIds: [
      apiScopeId
    ]
  }
]
var additionalPreAuthorizations = map(additionalPreAuthorizedAppIds, preAuthorizedAppId => {
  appId: preAuthorizedAppId
  delegatedPermissionIds: [
    apiScopeId
  ]
})
var certificateKeyCredentials = [
  {
    displayName: 'Key Vault certificate (OBO client assertion)'
    type: 'AsymmetricX509Cert'
    usage: 'Verify'
    key: certificateBase64
    startDateTime: certificateNotBefore
    endDateTime: certificateExpires
  }
]

// API 1: the middle tier. Exposes access_as_user, asks for the downstream scopes, bundles
// consent with the client (knownClientApplications) and skips the prompt for it
// (preAuthorizedApplications). Credential: the Key Vault certificate and/or the managed identity.
resource apiApp 'Microsoft.Graph/applications@v1.0' = {
  uniqueName: apiUniqueName
  displayName: apiDisplayName
  signInAudience: signInAudience
  identifierUris: [
    apiIdentifierUri
  ]
  owners: {
    relationships: ownerObjectIds
  }
  api: {
    requestedAccessTokenVersion: 2
    knownClientApplications: [
      clientApp.appId
    ]
    oauth2PermissionScopes: [
      {
        id: apiScopeId
        value: 'access_as_user'
        type: 'User'
        isEnabled: true
        adminConsentDisplayName: 'Access ${apiDisplayName} as the signed-in user'
        adminConsentDescription: 'Allows the client to call ${apiDisplayName}, which calls downstream APIs on behalf of the signed-in user.'
        userConsentDisplayName: 'Access ${apiDisplayName} as you'
        userConsentDescription: 'Allows the app to call ${apiDisplayName} on your behalf.'
      }
    ]
    preAuthorizedApplications: concat(clientPreAuthorization, additionalPreAuthorizations)
  }
  requiredResourceAccess: createDownstreamApi ? downstreamRequiredResourceAccess : graphRequiredResourceAccess
  keyCredentials: useCertificate ? certificateKeyCredentials : []
}

resource apiSp 'Microsoft.Graph/servicePrincipals@v1.0' = {
  appId: apiApp.appId
  owners: {
    relationships: ownerObjectIds
  }
}

// Secretless mode: the Function App's user-assigned identity gets a token for
// api://AzureADTokenExchange (the public cloud's token-exchange audience) and presents it as API
// 1's client assertion; Entra accepts it because issuer + subject match this credential. No
// certificate or secret exists for API 1 at all. Issuer: the tenant's v2.0 issuer on the public
// login host ("Configure an application to trust a managed identity", Microsoft Learn).
resource apiManagedIdentityCredential 'Microsoft.Graph/applications/federatedIdentityCredentials@v1.0' = if (useManagedIdentity) {
  name: '${apiApp.uniqueName}/function-app-managed-identity'
  description: 'The Function App\'s user-assigned managed identity, used as API 1\'s credential.'
  issuer: 'https://login.microsoftonline.com/${tenant().tenantId}/v2.0'
  subject: managedIdentityPrincipalId
  audiences: [
    'api://AzureADTokenExchange'
  ]
}

// Optional tenant-wide admin consent. Without it, users consent once through the client
// (knownClientApplications bundles API 1's downstream scopes into that prompt), unless the tenant
// disallows user consent, in which case OBO fails with AADSTS65001 until an admin consents.
//
// Re-deployable: unlike appRoleAssignedTo, whose second deployment fails with "EntitlementGrant
// entry already exists" (microsoftgraph/msgraph-bicep-types#161, open; this template declares no
// appRoleAssignedTo), the extension writes an oauth2PermissionGrant onto the existing grant of the
// same client, consent type and resource: declarations of one client and resource overwrite each
// other's scope (maintainer review of the grant sample, msgraph-bicep-types PR #211). So there is
// exactly one grant per (client, resource), carrying all its scopes space-separated
// (tests/project/test_infra.py), and a re-deploy rewrites it to the declared scopes. Not verifiable
// offline: docs/deployment.md lists the check to run.
resource apiDownstreamGrant 'Microsoft.Graph/oauth2PermissionGrants@v1.0' = if (grantAdminConsent) {
  clientId: apiSp.id
  consentType: 'AllPrincipals'
  resourceId: createDownstreamApi ? downstreamSp.id : graphSp.id
  scope: createDownstreamApi ? downstreamScopeValue : join(graphDelegatedScopes, ' ')
}

resource clientGraphGrant 'Microsoft.Graph/oauth2PermissionGrants@v1.0' = if (grantAdminConsent) {
  clientId: clientSp.id
  consentType: 'AllPrincipals'
  resourceId: graphSp.id
  scope: join(clientGraphScopeValues, ' ')
}

output API_APP_ID string = apiApp.appId
output API_SERVICE_PRINCIPAL_ID string = apiSp.id
output API_IDENTIFIER_URI string = apiIdentifierUri
output API_SCOPE string = '${apiIdentifierUri}/access_as_user'
output CLIENT_APP_ID string = clientApp.appId
output DOWNSTREAM_SCOPES string = createDownstreamApi ? customDownstreamScopes : graphDownstreamScopes
output DOWNSTREAM_APP_ID string = createDownstreamApi ? downstreamApi.appId : graphAppId
