"""What a token request asks for: the tenant, the resource and scopes, the token type.

From "Microsoft identity platform and OAuth 2.0 On-Behalf-Of flow" (v2 ``scope``, v1
``resource``, ``requested_token_type`` for SAML) and "OAuth 2.0 client credentials flow"
(``/.default`` only). ``/common`` and ``/organizations`` serve the user's home tenant.
"""

from __future__ import annotations

import jwt

from devstack import saml
from devstack.directory import OIDC_SCOPES, App, Directory, Tenant
from devstack.entra.discovery import MULTI_TENANT_ALIASES
from devstack.entra.errors import EntraError, no_resource, no_tenant, require
from devstack.httpserver import Request

JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
SAML_VERSIONS = {saml.SAML2: 2, saml.SAML1: 1}
_INVALID_SCOPE = "The provided value for the input parameter 'scope' is not valid."


def token_tenant(directory: Directory, req: Request, form: dict[str, str], grant: str) -> Tenant:
    ref = req.params["tenant"]
    if ref not in MULTI_TENANT_ALIASES:
        tenant = directory.tenant(ref)
        if tenant is None:
            raise no_tenant(ref)
        return tenant
    # Entra serves /common and /organizations from the user's *home* tenant: for a B2B
    # guest that is not the tenant that issued the assertion.
    home = None
    if grant != "client_credentials":
        home = _home_tenant_of_assertion(directory, form.get("assertion", ""))
    if home is None:
        raise EntraError(
            "invalid_request",
            50059,
            "No tenant-identifying information found in either the request or implied by any "
            "provided credentials.",
        )
    return home


def _home_tenant_of_assertion(directory: Directory, assertion: str) -> Tenant | None:
    try:
        claims = jwt.decode(assertion, options={"verify_signature": False})
    except jwt.PyJWTError:
        return None
    idp = str(claims.get("idp", ""))
    if idp.startswith("https://sts.windows.net/"):
        home = idp.rstrip("/").rsplit("/", 1)[-1]
    else:
        home = claims.get("tid")
    return directory.tenant(str(home)) if home else None


def requested(
    directory: Directory, form: dict[str, str], tenant: Tenant, *, v1: bool
) -> tuple[App, list[str]]:
    """The one resource asked for, and the scope names (``[".default"]`` for v1)."""
    if v1:
        identifier = require(form, "resource")
        resource = _resource_in(directory, tenant, identifier)
        if resource is None:
            raise no_resource(identifier, tenant)
        return resource, [".default"]
    raw = [s for s in require(form, "scope").split() if s not in OIDC_SCOPES]
    if not raw:
        raise EntraError("invalid_scope", 70011, _INVALID_SCOPE)
    found: dict[str, App] = {}
    scopes: list[str] = []
    for item in raw:
        identifier, _, name = item.rpartition("/")
        resource = _resource_in(directory, tenant, identifier)
        if resource is None:
            raise no_resource(identifier or item, tenant)
        found[resource.app_id] = resource
        scopes.append(name)
    if len(found) > 1:
        raise EntraError(
            "invalid_scope",
            28000,
            "Provided value for the input parameter scope is not valid because it contains "
            "more than one resource.",
        )
    resource = next(iter(found.values()))
    if any(s != ".default" and s not in resource.scopes for s in scopes):
        raise EntraError(
            "invalid_scope",
            70011,
            _INVALID_SCOPE + f" The scope '{' '.join(raw)}' does not exist.",
        )
    return resource, scopes


def _resource_in(directory: Directory, tenant: Tenant, identifier: str) -> App | None:
    """The resource, if it has a service principal in ``tenant`` (else AADSTS500011)."""
    resource = directory.resource_by_identifier(identifier)
    if resource is None or (tenant.id, resource.app_id) not in directory.service_principals:
        return None
    return resource


def saml_version(
    form: dict[str, str], grant: str, scopes: list[str], *, ignore_token_type: bool
) -> int | None:
    """2 or 1 when a SAML assertion is asked for (OBO only, for the whole resource)."""
    token_type = form.get("requested_token_type")
    if token_type is None or ignore_token_type:
        return None
    if token_type not in SAML_VERSIONS or grant != JWT_BEARER:
        raise EntraError(
            "invalid_request",
            9002313,
            "Invalid request. Request is malformed or invalid. The requested_token_type "
            f"'{token_type}' is not supported for this grant.",
        )
    if scopes != [".default"]:
        raise EntraError(
            "invalid_scope",
            70011,
            _INVALID_SCOPE + " A SAML token is issued for the whole resource: request "
            "'<entity id>/.default'.",
        )
    return SAML_VERSIONS[token_type]
