// Parameters for the Azure CLI path. infra/main.parameters.json is azd's: its ${VAR=default}
// placeholders are filled by azd only, and `az deployment` would pass them through as literal
// strings (failing @allowed and the bool types). This file reads the same environment variables
// with the same defaults, so both paths take the same switches (tests/test_infra.py checks that).
// Not named main.bicepparam on purpose: azd prefers <module>.bicepparam over main.parameters.json
// when both exist (Azure/azure-dev#2628), and azd's parameter prompts only work with the JSON file.
//
//   export AZURE_ENV_NAME=obo-dev AZURE_LOCATION=eastus2
//   export AZURE_PRINCIPAL_ID="$(az ad signed-in-user show --query id -o tsv)"
//   az deployment sub create --name "$AZURE_ENV_NAME" --location "$AZURE_LOCATION" \
//     --template-file infra/main.bicep --parameters infra/azcli.bicepparam
//
// Needs Bicep 0.36.1+ (the Graph extension) and an Azure CLI that deploys .bicepparam files.
using './main.bicep'

param environmentName = readEnvironmentVariable('AZURE_ENV_NAME')
param location = readEnvironmentVariable('AZURE_LOCATION')
param principalId = readEnvironmentVariable('AZURE_PRINCIPAL_ID', '')
param pythonVersion = readEnvironmentVariable('OBO_DEPLOY_PYTHON_VERSION', '3.11')
param clientCredential = readEnvironmentVariable('OBO_DEPLOY_CLIENT_CREDENTIAL', 'certificate')
param grantAdminConsent = bool(readEnvironmentVariable('OBO_DEPLOY_GRANT_ADMIN_CONSENT', 'false'))
param keyVaultPurgeProtection = bool(readEnvironmentVariable('OBO_DEPLOY_KEY_VAULT_PURGE_PROTECTION', 'false'))
param enableManagedRedis = bool(readEnvironmentVariable('OBO_DEPLOY_MANAGED_REDIS', 'false'))
// A JSON array, e.g. '["04b07795-8ddb-461a-bbee-02f9e1bf7b46"]' to let Azure CLI get a test token.
param additionalPreAuthorizedAppIds = json(readEnvironmentVariable('OBO_DEPLOY_PREAUTHORIZED_APP_IDS', '[]'))
