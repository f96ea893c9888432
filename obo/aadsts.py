"""What each AADSTS code means in the On-Behalf-Of flow, and how to fix it (data, not prose
scattered through the code). Error bodies, logs and docs/troubleshooting.md draw on it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Aadsts:
    code: int
    meaning: str
    fix: str


_TABLE = (
    Aadsts(
        500131,
        "The assertion's audience is not API 1: the client sent a token for another "
        "resource (Graph, another app) or its ID token.",
        "Have the client request API 1's scope (api://<API 1 client id>/access_as_user) and "
        "send that access token.",
    ),
    Aadsts(
        50013,
        "Assertion failed signature validation: a token for Microsoft Graph (whose "
        "header nonce makes it unverifiable), a token signed by another tenant's keys, or "
        "API 1 configured for SAML single sign-on with its own signing certificate.",
        "Send a token issued for API 1 by the tenant in its tid; turn off SAML SSO on API 1's "
        "enterprise application.",
    ),
    Aadsts(
        50000,
        "There was an error issuing a token: often the client id does not exist or is "
        "not valid in this tenant.",
        "Check OBO_CLIENT_ID and that API 1 has a service principal in the user's tenant.",
    ),
    Aadsts(
        700016,
        "API 1's application was not found in the user's tenant (not installed or "
        "never consented), or the request went to the wrong tenant.",
        "Have an admin of the user's tenant consent to API 1; check the tid authority.",
    ),
    Aadsts(
        7000215,
        "An invalid client secret was sent.",
        "Use the secret's value, not its id; this project uses a certificate instead.",
    ),
    Aadsts(
        700027,
        "The client assertion is signed by a certificate not registered on API 1, "
        "or its signature is invalid.",
        "Upload the Key Vault certificate's public part to API 1's keyCredentials.",
    ),
    Aadsts(
        700024,
        "The client assertion is not within its valid time range (clock skew or a "
        "stale assertion).",
        "Check the host clock; with a certificate the API reads the latest version from Key "
        "Vault and retries once if there is a newer one.",
    ),
    Aadsts(
        70021,
        "Secretless mode: no federated identity credential of API 1 matches the managed "
        "identity token (issuer, subject and audience together).",
        "Check API 1's federated identity credential against the identity: issuer "
        "https://login.microsoftonline.com/<tenant id>/v2.0 (login.partner.microsoftonline.cn "
        "in Azure China), subject = its object (principal) id, audience "
        "api://AzureADTokenExchange.",
    ),
    Aadsts(
        700211,
        "Secretless mode: no federated identity credential of API 1 names the managed "
        "identity token's issuer.",
        "Add a federated identity credential to API 1 (infra: enableManagedIdentityCredential) "
        "with issuer https://login.microsoftonline.com/<tenant id>/v2.0 "
        "(login.partner.microsoftonline.cn in Azure China).",
    ),
    Aadsts(
        700212,
        "Secretless mode: the managed identity token's audience is not the one API 1's "
        "federated identity credential expects.",
        "Set the federated identity credential's audience to api://AzureADTokenExchange "
        "(api://AzureADTokenExchangeUSGov / ...China in national clouds).",
    ),
    Aadsts(
        700213,
        "Secretless mode: the managed identity token's subject is not the one API 1's "
        "federated identity credential names.",
        "Set the federated identity credential's subject to the managed identity's object "
        "(principal) id, and AZURE_CLIENT_ID to that identity's client id.",
    ),
    Aadsts(
        500133,
        "The user's assertion has expired.",
        "The client must acquire a fresh access token for API 1 and retry.",
    ),
    Aadsts(
        65001,
        "No consent: the user or an administrator has not consented to API 1 calling "
        "the downstream API with these scopes.",
        "Grant admin consent for API 1's downstream permissions in the user's tenant.",
    ),
    Aadsts(
        50076,
        "Conditional Access requires multi-factor authentication for the downstream resource.",
        "Return the claims challenge to the client; it signs in again with the claims.",
    ),
    Aadsts(
        50079,
        "The user must register for multi-factor authentication.",
        "Return the claims challenge to the client; the user completes MFA registration.",
    ),
    Aadsts(
        53003,
        "Access was blocked by Conditional Access policies.",
        "Review the policy's sign-in logs in Entra ID; the user cannot proceed as is.",
    ),
    Aadsts(
        90009,
        "API 1 requested a token for itself by App ID URI.",
        "Request a downstream API's scope, or API 1's own by its GUID.",
    ),
    Aadsts(
        50020,
        "The user's account is not in this tenant (a guest using a /common or wrong "
        "tenant authority, or not invited).",
        "Use the authority of the token's tid (this API does); invite the user as a guest.",
    ),
    Aadsts(
        50059,
        "No tenant-identifying information: a tenant-less authority was used.",
        "Use https://<authority host>/<tid>.",
    ),
    Aadsts(
        90002,
        "The tenant does not exist in this cloud.",
        "Check OBO_AUTHORITY_HOST and the tenant id.",
    ),
    Aadsts(
        500011,
        "The downstream resource was not found in the user's tenant (for a SAML downstream: "
        "its enterprise application exists only in another tenant).",
        "Check OBO_DOWNSTREAM_SCOPES and that the downstream API is provisioned there.",
    ),
    Aadsts(
        70011,
        "A requested scope is not valid for the downstream resource (a SAML assertion is "
        "issued only for '<entity id>/.default').",
        "Check OBO_DOWNSTREAM_SCOPES against the scopes the downstream API exposes.",
    ),
    Aadsts(
        9002313,
        "The request is malformed: for JWT-to-SAML, a requested_token_type other than the "
        "saml2/saml1 URNs, or SAML asked for outside On-Behalf-Of.",
        "Set OBO_DOWNSTREAM_TOKEN_TYPE to saml2 or saml1.",
    ),
    Aadsts(
        28000,
        "The scopes name more than one resource.",
        "OBO_DOWNSTREAM_SCOPES must all belong to one downstream API.",
    ),
    Aadsts(
        50027,
        "The assertion is malformed or not a user's delegated access token (no 'scp': an "
        "app-only token from client credentials or a managed identity).",
        "Send the access token a signed-in user obtained for API 1; app-only callers cannot "
        "be exchanged On-Behalf-Of.",
    ),
)

TABLE: dict[int, Aadsts] = {entry.code: entry for entry in _TABLE}


def describe(code: int) -> Aadsts | None:
    return TABLE.get(code)


def markdown() -> str:
    """The table as it appears in docs/troubleshooting.md (a test keeps the two equal)."""
    lines = ["| code | what it means in the OBO flow | fix |", "|---|---|---|"]
    lines += [f"| AADSTS{e.code} | {e.meaning} | {e.fix} |" for e in _TABLE]
    return "\n".join(lines)
