// User-assigned managed identities. The Function App's identity reads the certificate, reaches
// storage and sends telemetry; the certificate script's identity only manages certificates.
// Keeping them apart means the running app can never create or replace its own credential.

@description('Azure region.')
param location string

@description('Tags applied to every resource.')
param tags object = {}

@description('Name of the identity the Function App runs as.')
param appIdentityName string

@description('Name of the identity the certificate deployment script runs as.')
param certificateScriptIdentityName string

@description('Create the certificate script identity (only needed when a certificate is created).')
param createCertificateScriptIdentity bool = true

resource appIdentity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: appIdentityName
  location: location
  tags: tags
}

resource certificateScriptIdentity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = if (createCertificateScriptIdentity) {
  name: certificateScriptIdentityName
  location: location
  tags: tags
}

output APP_IDENTITY_ID string = appIdentity.id
output APP_IDENTITY_NAME string = appIdentity.name
output APP_IDENTITY_CLIENT_ID string = appIdentity.properties.clientId
output APP_IDENTITY_PRINCIPAL_ID string = appIdentity.properties.principalId
output CERTIFICATE_SCRIPT_IDENTITY_ID string = createCertificateScriptIdentity ? certificateScriptIdentity.id : ''
output CERTIFICATE_SCRIPT_IDENTITY_PRINCIPAL_ID string = createCertificateScriptIdentity ? certificateScriptIdentity.properties.principalId : ''
