"""OpenID Connect discovery (v1 and v2) and the signing keys (JWKS) of each tenant.

From "OpenID Connect on the Microsoft identity platform" (``/.well-known/openid-configuration``,
its ``issuer`` and ``jwks_uri``): ``common``, ``organizations`` and ``consumers`` answer with a
``{tenantid}`` placeholder issuer and every tenant's keys.
"""

from __future__ import annotations

from devstack.directory import Directory
from devstack.entra.errors import no_tenant
from devstack.httpserver import Request, Response

MULTI_TENANT_ALIASES = ("common", "organizations", "consumers")


def openid_configuration(directory: Directory, req: Request, *, v2: bool) -> Response:
    ref = req.params["tenant"]
    tenant = None if ref in MULTI_TENANT_ALIASES else directory.tenant(ref)
    if ref not in MULTI_TENANT_ALIASES and tenant is None:
        raise no_tenant(ref)
    tid = tenant.id if tenant else "{tenantid}"
    base = f"{directory.authority_host}/{ref}"
    oauth2, keys = ("oauth2/v2.0", "discovery/v2.0/keys") if v2 else ("oauth2", "discovery/keys")
    document: dict[str, object] = {
        "issuer": directory.issuer_v2(tid) if v2 else directory.issuer_v1(tid),
        "authorization_endpoint": f"{base}/{oauth2}/authorize",
        "token_endpoint": f"{base}/{oauth2}/token",
        "jwks_uri": f"{base}/{keys}",
        "id_token_signing_alg_values_supported": ["RS256"],
    }
    if v2:
        document.update(
            {
                "device_authorization_endpoint": f"{base}/{oauth2}/devicecode",
                "end_session_endpoint": f"{base}/{oauth2}/logout",
                "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
                "subject_types_supported": ["pairwise"],
                "token_endpoint_auth_methods_supported": [
                    "client_secret_post",
                    "private_key_jwt",
                    "client_secret_basic",
                ],
                "scopes_supported": ["openid", "profile", "email", "offline_access"],
                "tenant_region_scope": "EU",
                "cloud_instance_name": "microsoftonline.com",
            }
        )
    return Response.json(document)


def signing_keys(directory: Directory, req: Request) -> Response:
    ref = req.params["tenant"]
    if ref in MULTI_TENANT_ALIASES:
        keys = [k.jwk() for t in directory.tenants.values() for k in t.keys]
    else:
        tenant = directory.tenant(ref)
        if tenant is None:
            raise no_tenant(ref)
        keys = [k.jwk() for k in tenant.keys]
    return Response.json({"keys": keys})
