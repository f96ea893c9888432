// API 1's certificate, created in Key Vault at deployment time. ARM cannot create Key Vault
// certificates, so an Azure CLI deployment script does it (create-certificate.sh): idempotent,
// it only creates a new version when the certificate is missing, disabled or close to expiry
// (tests/project/test_infra.py runs that decision under BusyBox and GNU coreutils), and it returns the
// public certificate and its validity for the app registration's keyCredentials.
//
// The script service runs the script in a container instance with a temporary storage account
// that it creates and deletes itself (cleanupPreference). Azure Policy that denies storage
// accounts with shared keys blocks that account: see docs/deployment.md.

@description('Azure region.')
param location string

@description('Tags applied to every resource.')
param tags object = {}

@description('Name of the vault that holds the certificate.')
param keyVaultName string

@description('Certificate name in the vault (OBO_CERTIFICATE_NAME).')
param certificateName string

@description('Certificate subject, e.g. CN=obo-api.')
param certificateSubject string

@description('Validity of a new certificate, in months.')
@minValue(1)
@maxValue(24)
param validityInMonths int = 12

@description('Create a new certificate version when the current one expires within this many days.')
@minValue(1)
param renewWithinDays int = 30

@description('Content type of the certificate\'s secret: PEM or PKCS#12, whichever the app loads.')
@allowed([
  'application/x-pem-file'
  'application/x-pkcs12'
])
param contentType string = 'application/x-pem-file'

@description('Resource id of the user-assigned identity the script runs as (Key Vault Certificates Officer).')
param scriptIdentityId string

// 2.64+ images run on Azure Linux (GNU coreutils) instead of Alpine (BusyBox); 2.65+ ship jq again
// (Azure/azure-cli#29830, #29867); awk is absent (Azure/azure-cli#30450), so the script avoids it.
// The script itself runs under BusyBox too (tests/project/test_infra.py), so an older image only costs
// security fixes, not a certificate per deployment. Tags: mcr.microsoft.com/v2/azure-cli/tags/list
@description('Azure CLI version of the script container (an mcr.microsoft.com/azure-cli tag).')
param azCliVersion string = '2.67.0'

@description('Changes on every deployment so the script re-checks the certificate each time.')
param runTag string = utcNow()

resource createCertificate 'Microsoft.Resources/deploymentScripts@2023-08-01' = {
  name: 'create-certificate-${certificateName}'
  location: location
  tags: tags
  kind: 'AzureCLI'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${scriptIdentityId}': {}
    }
  }
  properties: {
    azCliVersion: azCliVersion
    forceUpdateTag: runTag
    timeout: 'PT20M'
    retentionInterval: 'PT1H'
    cleanupPreference: 'OnSuccess'
    environmentVariables: [
      {
        name: 'VAULT_NAME'
        value: keyVaultName
      }
      {
        name: 'CERTIFICATE_NAME'
        value: certificateName
      }
      {
        name: 'CERTIFICATE_SUBJECT'
        value: certificateSubject
      }
      {
        name: 'VALIDITY_MONTHS'
        value: string(validityInMonths)
      }
      {
        name: 'RENEW_WITHIN_DAYS'
        value: string(renewWithinDays)
      }
      {
        name: 'CONTENT_TYPE'
        value: contentType
      }
    ]
    scriptContent: loadTextContent('create-certificate.sh')
  }
}

// Public material only: the DER certificate (base64) and its validity window.
output CERTIFICATE_BASE64 string = createCertificate.properties.outputs.certificate
output CERTIFICATE_NOT_BEFORE string = createCertificate.properties.outputs.notBefore
output CERTIFICATE_EXPIRES string = createCertificate.properties.outputs.expires
output CERTIFICATE_THUMBPRINT string = createCertificate.properties.outputs.thumbprint
