"""The stand-in's directory: tenants, users, app registrations, consent and policies.

Modelled on Entra ID's objects: an *application* lives in its home tenant; a *service
principal* is its instance in each tenant that uses it; admin consent is an
``oauth2PermissionGrant`` per (tenant, client, resource); B2B guests are users whose
object in the resource tenant differs from their home object. Signing keys are per
tenant here (Entra shares them across tenants) so "signed by another tenant" is testable.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from devstack.keys import SigningKey, b64url, new_rsa_key, self_signed, thumbprints

GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"
GRAPH_RESOURCE = "https://graph.microsoft.com"
KEY_VAULT_APP_ID = "cfa8b339-82a2-471a-a3c9-0fc0be7a4093"
TOKEN_EXCHANGE_APP_ID = "fb60f99c-7a34-4190-8149-302f77469936"
OIDC_SCOPES = frozenset({"openid", "profile", "offline_access", "email"})


def _segment(obj: dict[str, object]) -> str:
    return b64url(json.dumps(obj, separators=(",", ":"), sort_keys=True).encode())


def _hash_nonce(header: dict[str, object]) -> dict[str, object]:
    return {**header, "nonce": hashlib.sha256(str(header["nonce"]).encode()).hexdigest()}


class VerifyFailure(StrEnum):
    """Why ``Directory.verify`` refused a token; each stand-in words it its own way."""

    MALFORMED = "malformed"
    ALGORITHM = "algorithm"
    KEY_NOT_FOUND = "key not found"
    SIGNATURE = "signature"
    ISSUER = "issuer"
    LIFETIME = "lifetime"


class VerifyError(ValueError):
    """A token the directory refuses; ``reason`` says why (``str()`` is its value)."""

    def __init__(self, reason: VerifyFailure) -> None:
        super().__init__(reason.value)
        self.reason = reason


def stable_id(name: str) -> str:
    """Readable, repeatable GUIDs for the demo directory."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"obo-devstack:{name}"))


@dataclass
class Tenant:
    id: str
    domain: str
    keys: list[SigningKey] = field(default_factory=lambda: [SigningKey(), SigningKey()])
    unpublished: list[SigningKey] = field(default_factory=list)

    @property
    def active_key(self) -> SigningKey:
        return self.keys[0]

    def find_key(self, kid: str) -> SigningKey | None:
        return next((k for k in self.keys if k.kid == kid), None)

    def prepare_rollover(self) -> SigningKey:
        """A key that signs but is not yet in the JWKS: tokens with an unknown ``kid``."""
        key = SigningKey()
        self.unpublished.append(key)
        return key

    def publish(self, key: SigningKey) -> None:
        """Rollover: the new key becomes the active one and appears in the JWKS."""
        if key in self.unpublished:
            self.unpublished.remove(key)
        self.keys.insert(0, key)


@dataclass
class User:
    name: str
    upn: str
    home_tenant: str
    object_ids: dict[str, str] = field(default_factory=dict)  # tenant id -> oid there
    policy: str | None = None  # None, "mfa", "mfa_registration" or "blocked"

    def is_guest_in(self, tenant_id: str) -> bool:
        return tenant_id != self.home_tenant


@dataclass
class Group:
    """A security group of one tenant; its direct members by their object id there."""

    id: str
    name: str
    tenant_id: str
    members: set[str] = field(default_factory=set)
    description: str | None = None


@dataclass(frozen=True)
class FederatedCredential:
    """A federated identity credential on an application: whose tokens it accepts as its
    client assertion (a managed identity: issuer = its tenant's v2 issuer, subject = its
    object id, audience = api://AzureADTokenExchange)."""

    issuer: str
    subject: str
    audiences: tuple[str, ...] = ("api://AzureADTokenExchange",)


@dataclass
class App:
    """An application registration (and, for managed identities, its service principal)."""

    app_id: str
    name: str
    home_tenant: str
    identifier_uris: list[str] = field(default_factory=list)
    scopes: list[str] = field(default_factory=list)  # delegated permissions it exposes
    app_roles: list[str] = field(default_factory=list)
    certificates: list[x509.Certificate] = field(default_factory=list)
    secrets: list[str] = field(default_factory=list)
    token_version: int = 2  # requestedAccessTokenVersion (Graph: 1)
    public_client: bool = False
    reply_urls: list[str] = field(default_factory=list)  # SAML apps: the ACS URLs, in order
    federated_credentials: list[FederatedCredential] = field(default_factory=list)

    @property
    def saml_recipient(self) -> str | None:
        """Entra's ``Recipient`` for OBO-issued SAML: the first reply URL without a wildcard."""
        return next((url for url in self.reply_urls if "*" not in url), None)

    def accepts_audience(self, aud: str) -> bool:
        return aud == self.app_id or aud in self.identifier_uris

    def audience_for(self, version: int) -> str:
        """v2 tokens carry the client id; v1 tokens the App ID URI (Graph: its URL)."""
        if version == 2 or not self.identifier_uris:
            return self.app_id
        return self.identifier_uris[0]

    def certificate_by_thumbprint(self, x5t: str | None, x5t256: str | None):
        # MSAL keeps base64 padding on x5t#S256; Entra compares the decoded thumbprint.
        x5t, x5t256 = (str(v).rstrip("=") if v else None for v in (x5t, x5t256))
        for cert in self.certificates:
            sha1, sha256 = thumbprints(cert)
            if x5t256 is not None and x5t256 == sha256:
                return cert
            if x5t is not None and x5t == sha1:
                return cert
        return None


class Directory:
    """Everything the Entra stand-in knows. Thread-safe for the few things that mutate."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self.authority_host = "https://login.microsoftonline.com"  # replaced when served
        self.tenants: dict[str, Tenant] = {}
        self.users: dict[str, User] = {}
        self.apps: dict[str, App] = {}
        self.service_principals: set[tuple[str, str]] = set()  # (tenant id, app id)
        self.consents: dict[tuple[str, str, str], set[str]] = {}  # (tenant, client, resource)
        self.app_role_grants: dict[tuple[str, str, str], set[str]] = {}
        self.groups: list[Group] = []
        self.token_lifetime = 3600
        self._lock = threading.Lock()
        self.b2c_key = SigningKey()
        self.foreign_key = SigningKey()  # signs tokens no tenant published

    # -- building the directory -----------------------------------------------------
    def add_tenant(self, name: str) -> Tenant:
        tenant = Tenant(stable_id(f"tenant:{name}"), f"{name}.onmicrosoft.com")
        self.tenants[tenant.id] = tenant
        return tenant

    def add_app(self, app: App, *, tenants: list[str] | None = None) -> App:
        self.apps[app.app_id] = app
        for tid in tenants or [app.home_tenant]:
            self.service_principals.add((tid, app.app_id))
        return app

    def add_user(self, name: str, home: Tenant, *, guest_in: list[Tenant] = ()) -> User:  # type: ignore[assignment]
        upn = f"{name.lower()}@{home.domain}"
        user = User(name, upn, home.id, {home.id: stable_id(f"user:{upn}@{home.id}")})
        for tenant in guest_in:
            user.object_ids[tenant.id] = stable_id(f"user:{upn}@{tenant.id}")
        self.users[upn] = user
        return user

    def add_group(
        self, name: str, tenant: Tenant, members: list[User], description: str | None = None
    ) -> Group:
        group = Group(
            stable_id(f"group:{name}@{tenant.id}"),
            name,
            tenant.id,
            {u.object_ids[tenant.id] for u in members},
            description,
        )
        self.groups.append(group)
        return group

    def groups_of(self, tenant_id: str, oid: str) -> list[Group]:
        """The groups of ``tenant_id`` that ``oid`` is a direct member of."""
        return [g for g in self.groups if g.tenant_id == tenant_id and oid in g.members]

    def grant_consent(self, tenant: Tenant, client: App, resource: App, scopes: list[str]) -> None:
        with self._lock:
            key = (tenant.id, client.app_id, resource.app_id)
            self.consents.setdefault(key, set()).update(scopes)

    def revoke_consent(self, tenant: Tenant, client: App, resource: App) -> None:
        with self._lock:
            self.consents.pop((tenant.id, client.app_id, resource.app_id), None)

    # -- lookups --------------------------------------------------------------------
    def tenant(self, ref: str) -> Tenant | None:
        ref = ref.lower()
        return self.tenants.get(ref) or next(
            (t for t in self.tenants.values() if t.domain == ref), None
        )

    def issuer_v2(self, tenant_id: str) -> str:
        return f"{self.authority_host}/{tenant_id}/v2.0"

    @staticmethod
    def issuer_v1(tenant_id: str) -> str:
        return f"https://sts.windows.net/{tenant_id}/"

    def resource_by_identifier(self, identifier: str) -> App | None:
        return next((a for a in self.apps.values() if a.accepts_audience(identifier)), None)

    @staticmethod
    def principal_id(app: App, tenant: Tenant) -> str:
        """Object id of the app's service principal (or managed identity) in a tenant."""
        return stable_id(f"sp:{app.app_id}@{tenant.id}")

    def user_by_oid(self, tenant_id: str, oid: str) -> User | None:
        return next((u for u in self.users.values() if u.object_ids.get(tenant_id) == oid), None)

    # -- issuing --------------------------------------------------------------------
    def _base_claims(self, tenant: Tenant, version: int, lifetime: int | None) -> dict[str, object]:
        now = int(self.clock())
        issuer = self.issuer_v2(tenant.id) if version == 2 else self.issuer_v1(tenant.id)
        return {
            "iss": issuer,
            "iat": now,
            "nbf": now,
            "exp": now + (self.token_lifetime if lifetime is None else lifetime),
            "tid": tenant.id,
            "uti": base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode(),
            "ver": f"{version}.0",
        }

    def sign(
        self,
        tenant: Tenant,
        claims: dict[str, object],
        *,
        key: SigningKey | None = None,
        graph_nonce: bool = False,
    ) -> str:
        key = key or tenant.active_key
        if not graph_nonce:
            return key.sign(claims)
        # Graph's tokens carry a nonce in the header and are signed over its SHA-256: nobody
        # but Graph can verify them (why AADSTS50013 follows when one is used as assertion).
        nonce = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        header = {"alg": "RS256", "typ": "JWT", "kid": key.kid, "x5t": key.kid, "nonce": nonce}
        payload = _segment(claims)
        signing_input = f"{_segment(_hash_nonce(header))}.{payload}".encode()
        signature = key.private_key.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
        return f"{_segment(header)}.{payload}.{b64url(signature)}"

    def user_token(
        self,
        user: User,
        tenant: Tenant,
        client: App,
        resource: App,
        scopes: list[str],
        *,
        version: int | None = None,
        lifetime: int | None = None,
        mfa: bool = False,
        key: SigningKey | None = None,
        extra: dict[str, object] | None = None,
    ) -> str:
        """A delegated access token, shaped like Entra's v1 or v2 tokens."""
        version = version or resource.token_version
        claims = self._base_claims(tenant, version, lifetime)
        oid = user.object_ids[tenant.id]
        claims.update(
            aud=resource.audience_for(version),
            oid=oid,
            sub=hashlib.sha256(f"{oid}:{resource.app_id}".encode()).hexdigest()[:43],
            name=user.name,
            scp=" ".join(scopes),
            amr=["pwd", "mfa"] if mfa else ["pwd"],
        )
        if version == 2:
            claims.update(azp=client.app_id, azpacr="0", preferred_username=user.upn)
        else:
            claims.update(appid=client.app_id, appidacr="0", upn=user.upn, unique_name=user.upn)
        if user.is_guest_in(tenant.id):
            claims["idp"] = self.issuer_v1(user.home_tenant)
            claims["acct"] = 1
        claims.update(extra or {})
        graph = resource.app_id == GRAPH_APP_ID
        return self.sign(tenant, claims, key=key, graph_nonce=graph)

    def id_token(self, user: User, tenant: Tenant, client: App) -> str:
        claims = self._base_claims(tenant, 2, None)
        oid = user.object_ids[tenant.id]
        claims.update(
            aud=client.app_id,
            oid=oid,
            sub=oid,
            name=user.name,
            preferred_username=user.upn,
            nonce=str(uuid.uuid4()),
        )
        return self.sign(tenant, claims)

    def app_token(
        self,
        tenant: Tenant,
        client: App,
        resource: App,
        *,
        version: int | None = None,
        resource_uri: str | None = None,
    ) -> str:
        """An app-only token (client credentials or managed identity): roles, no scp."""
        version = version or resource.token_version
        claims = self._base_claims(tenant, version, None)
        oid = self.principal_id(client, tenant)
        roles = sorted(self.app_role_grants.get((tenant.id, client.app_id, resource.app_id), set()))
        claims.update(
            aud=resource_uri or resource.audience_for(version),
            oid=oid,
            sub=oid,
            idtyp="app",
        )
        if roles:
            claims["roles"] = roles
        claims.update({"azp": client.app_id} if version == 2 else {"appid": client.app_id})
        return self.sign(tenant, claims)

    def b2c_token(self, client: App, resource: App) -> str:
        """A token from an Azure AD B2C tenant: b2clogin.com issuer and a policy claim."""
        tid = stable_id("tenant:contosob2c")
        now = int(self.clock())
        claims = {
            "iss": f"https://contosob2c.b2clogin.com/{tid}/v2.0/",
            "aud": resource.app_id,
            "iat": now,
            "nbf": now,
            "exp": now + 3600,
            "sub": str(uuid.uuid4()),
            "tfp": "B2C_1_signupsignin",
            "scp": "access_as_user",
            "azp": client.app_id,
            "ver": "1.0",
            "name": "B2C customer",
        }
        return self.b2c_key.sign(claims)

    # -- verifying (used by Key Vault, Graph and the token endpoint) -----------------------
    def verify(self, token: str, tenant: Tenant, *, graph: bool = False) -> dict[str, object]:
        """Verify a token this tenant issued (signature, issuer, times). Raises
        :class:`VerifyError`."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise VerifyError(VerifyFailure.MALFORMED) from exc
        if header.get("alg") != "RS256":
            raise VerifyError(VerifyFailure.ALGORITHM)
        key = tenant.find_key(str(header.get("kid")))
        if key is None:
            raise VerifyError(VerifyFailure.KEY_NOT_FOUND)
        if "nonce" in header:
            if not graph:
                raise VerifyError(VerifyFailure.SIGNATURE)
            _, payload, signature = token.split(".")
            token = f"{_segment(_hash_nonce(header))}.{payload}.{signature}"
        try:
            claims = jwt.decode(
                token,
                key.private_key.public_key(),
                algorithms=["RS256"],
                # times are checked below against the directory's clock (tests move it);
                # PyJWT would check iat against the real time
                options={
                    "verify_aud": False,
                    "verify_exp": False,
                    "verify_nbf": False,
                    "verify_iat": False,
                },
            )
        except jwt.PyJWTError as exc:
            raise VerifyError(VerifyFailure.SIGNATURE) from exc
        if claims.get("iss") not in (self.issuer_v2(tenant.id), self.issuer_v1(tenant.id)):
            raise VerifyError(VerifyFailure.ISSUER)
        now = self.clock()
        if float(claims.get("exp", 0)) < now - 300 or float(claims.get("nbf", 0)) > now + 300:
            raise VerifyError(VerifyFailure.LIFETIME)
        return claims

    # -- the middle tier's certificate ------------------------------------------------
    @staticmethod
    def new_certificate(subject: str, days: int = 365):
        key = new_rsa_key()
        return key, self_signed(key, subject, days)
