"""The two grants the token endpoint issues for: client credentials and On-Behalf-Of.

From "OAuth 2.0 client credentials flow" (``/.default`` only, AADSTS1002012) and "Microsoft
identity platform and OAuth 2.0 On-Behalf-Of flow": the user's assertion must be a delegated
access token this tenant signed (AADSTS50013), for the calling app (500131), unexpired
(500133), of a user of the tenant (50034) who consented (65001); the answer is a JWT, or a
SAML assertion when ``requested_token_type`` asks for one.
"""

from __future__ import annotations

import datetime as dt
import secrets

import jwt

from devstack import saml
from devstack.directory import App, Directory, Tenant, User, VerifyError, VerifyFailure
from devstack.entra.conditional_access import check_policies
from devstack.entra.errors import EntraError, iso, missing, require
from devstack.keys import b64url

_SIGNATURE_REASONS = {
    VerifyFailure.KEY_NOT_FOUND: "The key was not found.",
    VerifyFailure.SIGNATURE: "The provided signature value did not match the expected "
    "signature value.",
    VerifyFailure.ISSUER: "The issuer of the assertion is not this tenant.",
}


def client_credentials(
    directory: Directory, tenant: Tenant, client: App, resource: App, scopes: list[str]
) -> dict[str, object]:
    if scopes != [".default"]:
        raise EntraError(
            "invalid_scope",
            1002012,
            "The provided value for scope is not valid. Client credential flows must have a "
            "scope value with /.default suffixed to the resource identifier (application ID URI).",
        )
    return {"access_token": directory.app_token(tenant, client, resource), "scope": ""}


def on_behalf_of(
    directory: Directory,
    form: dict[str, str],
    tenant: Tenant,
    client: App,
    resource: App,
    scopes: list[str],
    saml_version: int | None,
) -> dict[str, object]:
    if form.get("requested_token_use") != "on_behalf_of":
        raise missing("requested_token_use")
    claims = _user_assertion(directory, require(form, "assertion"), tenant, client)
    if resource.app_id == client.app_id:
        raise EntraError(
            "invalid_request",
            90009,
            f"Application '{client.app_id}'({client.name}) is requesting a token for itself. "
            "This scenario is supported only if resource is specified using the GUID based App "
            "Identifier.",
        )
    user = directory.user_by_oid(tenant.id, str(claims.get("oid")))
    if user is None:
        raise EntraError(
            "invalid_grant",
            50034,
            f"The user account does not exist in the {tenant.domain} directory.",
        )
    consented = directory.consents.get((tenant.id, client.app_id, resource.app_id), set())
    wanted = [s for s in scopes if s != ".default"]
    if not consented or any(s not in consented for s in wanted):
        raise EntraError(
            "invalid_grant",
            65001,
            "The user or administrator has not consented to use the application with ID "
            f"'{client.app_id}' named '{client.name}'. Send an interactive authorization "
            "request for this user and resource.",
            suberror="consent_required",
        )
    check_policies(user, claims, resource)
    granted = wanted or sorted(consented)
    if saml_version is not None:
        return _saml_answer(directory, form, tenant, user, resource, saml_version, granted)
    token = directory.user_token(
        user,
        tenant,
        client,
        resource,
        granted,
        mfa="mfa" in (claims.get("amr") or []),
        version=resource.token_version,
    )
    return {"access_token": token, "scope": granted, "refresh_token": _refresh_token()}


def _user_assertion(
    directory: Directory, assertion: str, tenant: Tenant, client: App
) -> dict[str, object]:
    """The claims of the user's token, if Entra would exchange it for ``client``."""
    try:
        header = jwt.get_unverified_header(assertion)
        unverified = jwt.decode(assertion, options={"verify_signature": False})
    except jwt.PyJWTError:
        raise EntraError("invalid_grant", 50027, "JWT token is invalid or malformed.") from None
    # Signature and issuer: only a token this tenant issued, with its keys (AADSTS50013).
    try:
        claims = directory.verify(assertion, tenant)
    except VerifyError as exc:
        if exc.reason is not VerifyFailure.LIFETIME:
            reason = _SIGNATURE_REASONS.get(exc.reason, exc.reason.value)
            raise EntraError(
                "invalid_grant",
                50013,
                f"Assertion failed signature validation. [Reason - {reason}, Thumbprint of key "
                f"used by client: '{header.get('kid')}', Found key 'Start=..., End=...']",
            ) from None
        claims = unverified  # expired: AADSTS500133 below says so
    if not client.accepts_audience(str(claims.get("aud"))):
        raise EntraError(
            "invalid_grant",
            500131,
            "Assertion audience does not match the Client app presenting the assertion. The "
            f"audience in the assertion was '{claims.get('aud')}' and the expected audience is "
            f"'{client.app_id}' or one of the Application Uris of this application with App ID "
            f"'{client.app_id}'({client.name}). The downstream client must request a token for "
            "the expected audience (the application that made the OBO request) and this "
            "application should use that token as the assertion.",
        )
    now = directory.clock()
    if float(claims.get("exp", 0)) < now:
        expiry = dt.datetime.fromtimestamp(float(claims.get("exp", 0)), dt.UTC)
        raise EntraError(
            "invalid_grant",
            500133,
            "Assertion is not within its valid time range. Ensure that the access token is not "
            "expired before using it for user assertion, or request a new token. Current time: "
            f"{iso(now)}, expiry time of assertion {expiry:%Y-%m-%dT%H:%M:%S}Z.",
        )
    if "scp" not in claims or claims.get("idtyp") == "app":
        raise EntraError(
            "invalid_grant",
            50027,
            "JWT token is invalid: the assertion is not a delegated user access token (no 'scp' "
            "claim); app-only tokens cannot be used On-Behalf-Of a user.",
        )
    return claims


def _saml_answer(
    directory: Directory,
    form: dict[str, str],
    tenant: Tenant,
    user: User,
    resource: App,
    version: int,
    granted: list[str],
) -> dict[str, object]:
    """The assertion, UTF-8 XML in base64url without padding, as the OBO docs describe."""
    xml = saml.issue(
        version,
        key=tenant.active_key,
        issuer=directory.issuer_v1(tenant.id),
        audience=resource.identifier_uris[0] if resource.identifier_uris else resource.app_id,
        recipient=resource.saml_recipient,
        subject=user.upn,
        object_id=user.object_ids[tenant.id],
        tenant_id=tenant.id,
        now=directory.clock(),
        lifetime=directory.token_lifetime,
    )
    return {
        "access_token": b64url(xml),
        "scope": granted,
        "issued_token_type": form["requested_token_type"],
        "refresh_token": _refresh_token(),
    }


def _refresh_token() -> str:
    return "rt." + secrets.token_urlsafe(24)
