"""The Entra ID stand-in: OIDC discovery, JWKS and the v1/v2 token endpoints.

Follows Microsoft identity platform documentation: "OpenID Connect on the Microsoft identity
platform" (``discovery``), "Microsoft identity platform and OAuth 2.0 On-Behalf-Of flow" and
"OAuth 2.0 client credentials flow" (``token_request``, ``grants``, ``token_response``,
``conditional_access``), "Certificate credentials" (``client_auth``), "Workload identity
federation" (``federation``) and "Microsoft Entra authentication and authorization error
codes" (``errors``: Entra's JSON shape and AADSTS codes). ``service`` routes them.
"""

from devstack.entra.errors import EntraError
from devstack.entra.service import Entra

__all__ = ["Entra", "EntraError"]
