"""The demo directory: who exists, which apps are registered where, who consented.

Contoso hosts the middle tier (API 1) and its SPA; Fabrikam is a customer tenant of the
multi-tenant API 1; Northwind has API 1 installed but is not on the allow-list; Tailspin
installed it without consenting. Carol is a Fabrikam user invited as a guest into Contoso.
"""

from __future__ import annotations

from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509 import Certificate

from devstack.directory import (
    GRAPH_APP_ID,
    GRAPH_RESOURCE,
    KEY_VAULT_APP_ID,
    TOKEN_EXCHANGE_APP_ID,
    App,
    Directory,
    Tenant,
    User,
    stable_id,
)

SAML_ENTITY_ID = "https://erp.contoso.example/saml"
GRAPH_SCOPES = [
    "User.Read",
    "User.ReadBasic.All",
    "Mail.Read",
    "GroupMember.Read.All",
    "openid",
    "profile",
    "email",
]
ORDERS_RESOURCE = "api://orders.contoso.example"


@dataclass
class Seed:
    """Handles to the objects tests and the demo talk about."""

    directory: Directory
    contoso: Tenant
    fabrikam: Tenant
    northwind: Tenant
    tailspin: Tenant
    api: App  # API 1, the middle tier
    spa: App  # the client app users sign in to
    other_api: App  # Contoso's Orders API: a second downstream API (devstack/orders.py)
    graph: App
    saml_app: App  # a Contoso line-of-business API that accepts only SAML assertions
    key_vault: App
    function_identity: App  # the Function App's user-assigned managed identity
    alice: User  # Contoso member
    bob: User  # Fabrikam member
    carol: User  # Fabrikam user, guest in Contoso
    dave: User  # Contoso member whose Conditional Access policy requires MFA
    nina: User  # Northwind member
    tess: User  # Tailspin member
    api_key: rsa.RSAPrivateKey
    api_certificate: Certificate

    def user_token(self, user: User, tenant: Tenant | None = None, **kwargs) -> str:
        """The access token the SPA would get for API 1 (scope access_as_user)."""
        tenant = tenant or self.directory.tenants[user.home_tenant]
        scopes = kwargs.pop("scopes", ["access_as_user"])
        return self.directory.user_token(user, tenant, self.spa, self.api, scopes, **kwargs)


def build(directory: Directory | None = None) -> Seed:
    d = directory or Directory()
    contoso, fabrikam = d.add_tenant("contoso"), d.add_tenant("fabrikam")
    northwind, tailspin = d.add_tenant("northwind"), d.add_tenant("tailspin")
    everyone = [contoso.id, fabrikam.id, northwind.id, tailspin.id]

    api_key, api_cert = d.new_certificate("obo-middle-tier")
    api = d.add_app(
        App(
            stable_id("app:obo-api"),
            "OBO middle tier",
            contoso.id,
            identifier_uris=[f"api://{stable_id('app:obo-api')}"],
            scopes=["access_as_user", "Dashboard.Read"],  # Dashboard.Read: docs/adopting.md
            certificates=[api_cert],
        ),
        tenants=everyone,
    )
    spa = d.add_app(
        App(stable_id("app:spa"), "OBO demo SPA", contoso.id, public_client=True),
        tenants=everyone,
    )
    other_api = d.add_app(
        App(
            stable_id("app:orders-api"),
            "Orders API",
            contoso.id,
            identifier_uris=[ORDERS_RESOURCE],
            scopes=["Orders.Read", "Orders.ReadWrite"],
        ),
        tenants=[contoso.id],
    )
    graph = d.add_app(
        App(
            GRAPH_APP_ID,
            "Microsoft Graph",
            contoso.id,
            identifier_uris=[GRAPH_RESOURCE],
            scopes=GRAPH_SCOPES,
            token_version=1,
        ),
        tenants=everyone,
    )
    key_vault = d.add_app(
        App(
            KEY_VAULT_APP_ID,
            "Azure Key Vault",
            contoso.id,
            identifier_uris=["https://vault.azure.net"],
            token_version=1,
        ),
        tenants=everyone,
    )
    d.add_app(
        App(
            TOKEN_EXCHANGE_APP_ID,
            "Azure AD Token Exchange",
            contoso.id,
            identifier_uris=["api://AzureADTokenExchange"],
            token_version=2,
        ),
        tenants=everyone,
    )
    saml_app = d.add_app(
        App(
            stable_id("app:erp-saml"),
            "Contoso ERP (SAML)",
            contoso.id,
            identifier_uris=[SAML_ENTITY_ID],
            token_version=1,
            reply_urls=[
                "https://*.erp.contoso.example/acs",
                "https://erp.contoso.example/saml/acs",
            ],
        ),
        tenants=[contoso.id],
    )
    function_identity = d.add_app(App(stable_id("mi:obo-func"), "id-obo-func", contoso.id))

    for tenant in (contoso, fabrikam, northwind):
        d.grant_consent(tenant, api, graph, ["User.Read", "User.ReadBasic.All", "Mail.Read"])
        d.grant_consent(tenant, spa, api, ["access_as_user"])
    d.grant_consent(tailspin, spa, api, ["access_as_user"])
    d.grant_consent(contoso, api, saml_app, ["user_impersonation"])
    # /api/profile reads group names: admin consent to GroupMember.Read.All in Contoso only
    d.grant_consent(contoso, api, graph, ["GroupMember.Read.All"])
    d.grant_consent(contoso, api, other_api, ["Orders.Read"])

    alice = d.add_user("Alice", contoso)
    bob = d.add_user("Bob", fabrikam)
    carol = d.add_user("Carol", fabrikam, guest_in=[contoso])
    dave = d.add_user("Dave", contoso)
    dave.policy = "mfa"
    nina = d.add_user("Nina", northwind)
    tess = d.add_user("Tess", tailspin)
    d.add_group("All Contoso", contoso, [alice, dave], "Every Contoso employee")
    d.add_group("Sales", contoso, [alice])
    d.add_group("Partner Engineering", contoso, [carol], "Guests from partner companies")
    d.add_group("Fabrikam Engineering", fabrikam, [bob, carol])
    return Seed(
        d,
        contoso,
        fabrikam,
        northwind,
        tailspin,
        api,
        spa,
        other_api,
        graph,
        saml_app,
        key_vault,
        function_identity,
        alice,
        bob,
        carol,
        dave,
        nina,
        tess,
        api_key,
        api_cert,
    )
