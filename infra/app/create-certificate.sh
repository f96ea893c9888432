#!/bin/sh
# Deployment script (Azure CLI image) that makes sure API 1's certificate exists in Key Vault and
# reports its public part for the app registration's keyCredentials.
#
# Idempotent: when a valid certificate with more than RENEW_WITHIN_DAYS left is already there,
# nothing is created; otherwise a new version is created. Only the public certificate ("cer",
# base64 DER) is read: the private key never leaves Key Vault here. The script identity needs
# "Key Vault Certificates Officer" on the vault.
#
# Portable on purpose (POSIX sh; tests/project/test_infra.py runs it under BusyBox and under bash with GNU
# coreutils). The expiry is compared by converting Key Vault's ISO 8601 UTC timestamp
# ("2026-01-31T12:00:00+00:00") to epoch seconds with shell arithmetic, never with `date -d`:
# BusyBox `date` (the Alpine-based azure-cli images up to 2.63) cannot parse that format, so the
# old check failed silently and every deployment created a new certificate version. `date` is
# used only for `date -u +%s`, which every implementation supports.
#
# Tools: az, jq, date, sleep, base64, sha1sum, cut, tr. No awk: the Azure Linux based azure-cli
# images (2.64+) do not ship it (Azure/azure-cli#30450); jq is back from 2.65 (Azure/azure-cli#29867).
#
# Inputs (environment): VAULT_NAME, CERTIFICATE_NAME, CERTIFICATE_SUBJECT, VALIDITY_MONTHS,
#   RENEW_WITHIN_DAYS, CONTENT_TYPE (application/x-pem-file or application/x-pkcs12).
# Output ($AZ_SCRIPTS_OUTPUT_PATH): {certificate, notBefore, expires, thumbprint, version}.
# With CERTIFICATE_SCRIPT_LIBRARY=1 the file only defines its functions (for tests).
set -eu
# pipefail where the shell has it (bash and BusyBox ash do; it is not POSIX).
if (set -o pipefail) 2>/dev/null; then set -o pipefail; fi

# Seconds since the epoch of an ISO 8601 UTC timestamp, YYYY-MM-DDThh:mm:ss[.fraction][Z|+00:00].
# Any other offset is refused (Key Vault reports UTC), so a surprise fails loudly instead of
# silently renewing. Civil date to day count: Howard Hinnant's days_from_civil
# (https://howardhinnant.github.io/date_algorithms.html#days_from_civil).
iso_to_epoch() {
  stamp=$1
  case $stamp in
    [0-9][0-9][0-9][0-9]-[0-1][0-9]-[0-3][0-9]T[0-2][0-9]:[0-5][0-9]:[0-6][0-9]*) ;;
    *) return 1 ;;
  esac
  zone=${stamp#??????????T??:??:??}
  case $zone in
    .[0-9]*)
      zone=${zone#.}
      while [ -n "$zone" ] && [ "${zone#[0-9]}" != "$zone" ]; do zone=${zone#[0-9]}; done
      ;;
  esac
  case $zone in
    '' | Z | z | +00:00 | -00:00 | +0000) ;;
    *) return 1 ;;
  esac
  year=${stamp%%-*}
  rest=${stamp#?????}
  month=${rest%%-*}
  rest=${rest#???}
  day=${rest%%T*}
  rest=${rest#???}
  hour=${rest%%:*}
  rest=${rest#???}
  minute=${rest%%:*}
  rest=${rest#???}
  second=${rest%"${rest#??}"}
  # Two-digit fields lose one leading zero: shell arithmetic reads "08" as a bad octal number.
  month=${month#0} day=${day#0} hour=${hour#0} minute=${minute#0} second=${second#0}
  if [ "$month" -le 2 ]; then year=$((year - 1)); fi
  era=$((year / 400))
  year_of_era=$((year - era * 400))
  day_of_year=$(((153 * ((month + 9) % 12) + 2) / 5 + day - 1))
  day_of_era=$((year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year))
  days=$((era * 146097 + day_of_era - 719468))
  echo $((days * 86400 + hour * 3600 + minute * 60 + second))
}

# The decision: exit 0 to keep the certificate (enabled, has a public part, and expires more than
# RENEW_WITHIN_DAYS days after NOW), 1 to create a new version, 2 when the expiry is unreadable.
# $1 = the JSON of `az keyvault certificate show`, $2 = now in epoch seconds.
certificate_is_current() {
  cert_json=$1
  now=$2
  enabled=$(printf '%s' "$cert_json" | jq -r '.attributes.enabled')
  expires=$(printf '%s' "$cert_json" | jq -r '.attributes.expires // empty')
  has_cer=$(printf '%s' "$cert_json" | jq -r 'if .cer then "yes" else "no" end')
  if [ "$enabled" != "true" ] || [ "$has_cer" != "yes" ] || [ -z "$expires" ]; then
    return 1
  fi
  if ! expires_at=$(iso_to_epoch "$expires"); then
    echo "Cannot read the expiry '$expires' of certificate $CERTIFICATE_NAME." >&2
    return 2
  fi
  [ "$expires_at" -gt $((now + RENEW_WITHIN_DAYS * 86400)) ]
}

show_certificate() {
  az keyvault certificate show --vault-name "$VAULT_NAME" --name "$CERTIFICATE_NAME" --output json
}

# A role assignment made moments ago can take a few minutes to reach the Key Vault data plane.
wait_for_vault_access() {
  attempt=1
  until az keyvault certificate list --vault-name "$VAULT_NAME" --maxresults 1 --output none 2>/dev/null; do
    if [ "$attempt" -ge 30 ]; then
      echo "No certificate access to vault $VAULT_NAME after 5 minutes (role propagation or firewall)." >&2
      exit 1
    fi
    attempt=$((attempt + 1))
    sleep 10
  done
}

create_certificate() {
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
  attempt=1
  while :; do
    status=$(az keyvault certificate pending show --vault-name "$VAULT_NAME" \
      --name "$CERTIFICATE_NAME" --query status --output tsv 2>/dev/null || echo completed)
    if [ "$status" = "completed" ]; then
      return 0
    fi
    if [ "$status" = "failed" ] || [ "$attempt" -ge 60 ]; then
      echo "Certificate creation did not complete (status: $status)." >&2
      exit 1
    fi
    attempt=$((attempt + 1))
    sleep 5
  done
}

write_outputs() {
  current=$(show_certificate)
  thumbprint=$(printf '%s' "$current" | jq -r '.cer' | base64 -d | sha1sum | cut -d' ' -f1 | tr 'a-f' 'A-F')
  printf '%s' "$current" | jq --arg thumbprint "$thumbprint" '{
    certificate: .cer,
    notBefore: .attributes.notBefore,
    expires: .attributes.expires,
    thumbprint: $thumbprint,
    version: (.id | split("/") | last)
  }' >"$AZ_SCRIPTS_OUTPUT_PATH"
  echo "Certificate $CERTIFICATE_NAME thumbprint $thumbprint."
}

main() {
  : "${VAULT_NAME:?}" "${CERTIFICATE_NAME:?}" "${CERTIFICATE_SUBJECT:?}" "${AZ_SCRIPTS_OUTPUT_PATH:?}"
  wait_for_vault_access
  if current=$(show_certificate 2>/dev/null); then
    decision=0
    certificate_is_current "$current" "$(date -u +%s)" || decision=$?
    case $decision in
      0) echo "Certificate $CERTIFICATE_NAME is valid until $(printf '%s' "$current" | jq -r '.attributes.expires'): keeping it." ;;
      1) create_certificate ;;
      *) exit "$decision" ;;
    esac
  else
    create_certificate
  fi
  write_outputs
}

: "${VALIDITY_MONTHS:=12}" "${RENEW_WITHIN_DAYS:=30}" "${CONTENT_TYPE:=application/x-pem-file}"
if [ "${CERTIFICATE_SCRIPT_LIBRARY:-0}" != 1 ]; then
  main
fi
