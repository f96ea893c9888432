#!/bin/bash
# Deployment script (Azure CLI image) that makes sure API 1's certificate exists in Key Vault and
# reports its public part for the app registration's keyCredentials.
#
# Idempotent: when a valid certificate with more than RENEW_WITHIN_DAYS left is already there,
# nothing is created; otherwise a new version is created. Only the public certificate ("cer",
# base64 DER) is read: the private key never leaves Key Vault here. The script identity needs
# "Key Vault Certificates Officer" on the vault.
#
# Inputs (environment): VAULT_NAME, CERTIFICATE_NAME, CERTIFICATE_SUBJECT, VALIDITY_MONTHS,
#   RENEW_WITHIN_DAYS, CONTENT_TYPE (application/x-pem-file or application/x-pkcs12).
# Output ($AZ_SCRIPTS_OUTPUT_PATH): {certificate, notBefore, expires, thumbprint, version}.
set -euo pipefail

: "${VAULT_NAME:?}" "${CERTIFICATE_NAME:?}" "${CERTIFICATE_SUBJECT:?}"
: "${VALIDITY_MONTHS:=12}" "${RENEW_WITHIN_DAYS:=30}" "${CONTENT_TYPE:=application/x-pem-file}"
: "${AZ_SCRIPTS_OUTPUT_PATH:?}"

show_certificate() {
  az keyvault certificate show --vault-name "$VAULT_NAME" --name "$CERTIFICATE_NAME" --output json
}

# A role assignment made moments ago can take a few minutes to reach the Key Vault data plane.
for attempt in $(seq 1 30); do
  if az keyvault certificate list --vault-name "$VAULT_NAME" --maxresults 1 --output none 2>/dev/null; then
    break
  fi
  if [ "$attempt" -eq 30 ]; then
    echo "No certificate access to vault $VAULT_NAME after 5 minutes (role propagation or firewall)." >&2
    exit 1
  fi
  sleep 10
done

needs_new=true
if current=$(show_certificate 2>/dev/null); then
  enabled=$(jq -r '.attributes.enabled' <<<"$current")
  expires=$(jq -r '.attributes.expires // empty' <<<"$current")
  has_cer=$(jq -r 'if .cer then "yes" else "no" end' <<<"$current")
  renew_after=$(( $(date -u +%s) + RENEW_WITHIN_DAYS * 86400 ))
  if [ "$enabled" = "true" ] && [ "$has_cer" = "yes" ] && [ -n "$expires" ] \
    && [ "$(date -u -d "$expires" +%s)" -gt "$renew_after" ]; then
    needs_new=false
    echo "Certificate $CERTIFICATE_NAME is valid until $expires: keeping it."
  fi
fi

if [ "$needs_new" = "true" ]; then
  echo "Creating a new version of certificate $CERTIFICATE_NAME in $VAULT_NAME."
  # Self-signed, RSA 2048, exportable (the app loads it through the secret endpoint). Key Vault
  # only notifies before expiry: an automatic renewal would hand the app a key that the app
  # registration does not know yet (AADSTS700027). Renew by re-running the deployment.
  policy=$(jq -n \
    --arg subject "$CERTIFICATE_SUBJECT" \
    --arg contentType "$CONTENT_TYPE" \
    --argjson months "$VALIDITY_MONTHS" \
    '{
      issuerParameters: {name: "Self"},
      keyProperties: {exportable: true, keyType: "RSA", keySize: 2048, reuseKey: false},
      secretProperties: {contentType: $contentType},
      x509CertificateProperties: {
        subject: $subject,
        validityInMonths: $months,
        keyUsage: ["digitalSignature"]
      },
      lifetimeActions: [{trigger: {daysBeforeExpiry: 30}, action: {actionType: "EmailContacts"}}]
    }')
  az keyvault certificate create --vault-name "$VAULT_NAME" --name "$CERTIFICATE_NAME" \
    --policy "$policy" --output none
  for attempt in $(seq 1 60); do
    status=$(az keyvault certificate pending show --vault-name "$VAULT_NAME" \
      --name "$CERTIFICATE_NAME" --query status --output tsv 2>/dev/null || echo completed)
    if [ "$status" = "completed" ]; then
      break
    fi
    if [ "$status" = "failed" ] || [ "$attempt" -eq 60 ]; then
      echo "Certificate creation did not complete (status: $status)." >&2
      exit 1
    fi
    sleep 5
  done
fi

current=$(show_certificate)
thumbprint=$(jq -r '.cer' <<<"$current" | base64 -d | sha1sum | cut -d' ' -f1 | tr 'a-f' 'A-F')
jq --arg thumbprint "$thumbprint" '{
  certificate: .cer,
  notBefore: .attributes.notBefore,
  expires: .attributes.expires,
  thumbprint: $thumbprint,
  version: (.id | split("/") | last)
}' <<<"$current" > "$AZ_SCRIPTS_OUTPUT_PATH"
echo "Certificate $CERTIFICATE_NAME thumbprint $thumbprint."
