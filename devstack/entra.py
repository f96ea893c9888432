"""The Entra ID stand-in: OIDC discovery, JWKS and the v1/v2 token endpoints.

Follows Microsoft identity platform documentation: "OpenID Connect on the Microsoft
identity platform" (discovery), "Microsoft identity platform and OAuth 2.0 On-Behalf-Of
flow" (v2 and v1 OBO), "OAuth 2.0 client credentials flow", "Certificate credentials"
(client assertion format) and "Microsoft Entra authentication and authorization error
codes" (AADSTS codes). Errors use Entra's JSON shape.
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
import threading
import uuid
from dataclasses import dataclass

import jwt

from devstack import saml
from devstack.directory import GRAPH_APP_ID, OIDC_SCOPES, App, Directory, Tenant
from devstack.httpserver import Request, Response, Service
from devstack.keys import b64url

JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
MULTI_TENANT_ALIASES = ("common", "organizations", "consumers")
SAML_VERSIONS = {saml.SAML2: 2, saml.SAML1: 1}


@dataclass
class EntraError(Exception):
    """One of Entra's error answers, rendered exactly as the token endpoint does."""

    error: str
    code: int
    message: str
    status: int = 400
    suberror: str | None = None
    claims: str | None = None


class Entra(Service):
    name = "entra"

    def __init__(self, directory: Directory) -> None:
        super().__init__()
        self.directory = directory
        self._seen_jti: dict[str, str] = {}
        self._jti_lock = threading.Lock()
        self.last_client_assertion_header: dict[str, object] | None = None
        # Simulates a token endpoint that ignores requested_token_type and answers a JWT.
        self.ignore_requested_token_type = False
        self.route("GET", "/{tenant}/v2.0/.well-known/openid-configuration", "discovery_v2", self._discovery_v2)
        self.route("GET", "/{tenant}/.well-known/openid-configuration", "discovery_v1", self._discovery_v1)
        self.route("GET", "/{tenant}/discovery/v2.0/keys", "keys", self._keys)
        self.route("GET", "/{tenant}/discovery/keys", "keys_v1", self._keys)
        self.route("POST", "/{tenant}/oauth2/v2.0/token", "token", self._token_v2)
        self.route("POST", "/{tenant}/oauth2/token", "token_v1", self._token_v1)

    # -- discovery --------------------------------------------------------------------
    def _resolve(self, ref: str) -> str | None:
        if ref in MULTI_TENANT_ALIASES:
            return "{tenantid}"
        tenant = self.directory.tenant(ref)
        return tenant.id if tenant else None

    def _discovery_v2(self, req: Request) -> Response:
        ref = req.params["tenant"]
        tid = self._resolve(ref)
        if tid is None:
            return self._error_response(req, self._no_tenant(ref))
        host = self.directory.authority_host
        return Response.json({
            "issuer": f"{host}/{tid}/v2.0",
            "authorization_endpoint": f"{host}/{ref}/oauth2/v2.0/authorize",
            "token_endpoint": f"{host}/{ref}/oauth2/v2.0/token",
            "device_authorization_endpoint": f"{host}/{ref}/oauth2/v2.0/devicecode",
            "end_session_endpoint": f"{host}/{ref}/oauth2/v2.0/logout",
            "jwks_uri": f"{host}/{ref}/discovery/v2.0/keys",
            "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
            "scopes_supported": ["openid", "profile", "email", "offline_access"],
            "tenant_region_scope": "EU",
            "cloud_instance_name": "microsoftonline.com",
        })

    def _discovery_v1(self, req: Request) -> Response:
        ref = req.params["tenant"]
        tid = self._resolve(ref)
        if tid is None:
            return self._error_response(req, self._no_tenant(ref))
        host = self.directory.authority_host
        return Response.json({
            "issuer": f"https://sts.windows.net/{tid}/",
            "authorization_endpoint": f"{host}/{ref}/oauth2/authorize",
            "token_endpoint": f"{host}/{ref}/oauth2/token",
            "jwks_uri": f"{host}/{ref}/discovery/keys",
            "id_token_signing_alg_values_supported": ["RS256"],
        })

    def _keys(self, req: Request) -> Response:
        ref = req.params["tenant"]
        if ref in MULTI_TENANT_ALIASES:
            keys = [k.jwk() for t in self.directory.tenants.values() for k in t.keys]
        else:
            tenant = self.directory.tenant(ref)
            if tenant is None:
                return self._error_response(req, self._no_tenant(ref))
            keys = [k.jwk() for k in tenant.keys]
        return Response.json({"keys": keys})

    # -- token endpoints --------------------------------------------------------------
    def _token_v2(self, req: Request) -> Response:
        return self._token(req, v1=False)

    def _token_v1(self, req: Request) -> Response:
        return self._token(req, v1=True)

    def _token(self, req: Request, *, v1: bool) -> Response:
        try:
            form = req.form()
            if "application/x-www-form-urlencoded" not in req.headers.get("content-type", ""):
                raise EntraError("invalid_request", 900144, "The request body must contain the following parameter: 'grant_type'.")
            grant = self._require(form, "grant_type")
            if grant not in ("client_credentials", JWT_BEARER):
                raise EntraError("unsupported_grant_type", 70003, f"The app requested an unsupported grant type '{grant}'.")
            tenant = self._token_tenant(req, form, grant)
            client = self._authenticate_client(req, form, tenant, v1=v1)
            resource, scopes = self._requested(form, tenant, v1=v1)
            saml_version = self._saml_version(form, grant, scopes)
            if grant == "client_credentials":
                body = self._client_credentials(tenant, client, resource, scopes)
            else:
                body = self._on_behalf_of(form, tenant, client, resource, scopes, saml_version)
            return Response.json(self._shape(body, resource, v1=v1), headers={"Cache-Control": "no-store"})
        except EntraError as err:
            return self._error_response(req, err)

    @staticmethod
    def _require(form: dict[str, str], name: str) -> str:
        value = form.get(name, "")
        if not value:
            raise EntraError("invalid_request", 900144, f"The request body must contain the following parameter: '{name}'.")
        return value

    def _no_tenant(self, ref: str) -> EntraError:
        return EntraError(
            "invalid_tenant", 90002,
            f"Tenant '{ref}' not found. Check to make sure you have the correct tenant ID and "
            "are signing into the correct cloud. Check with your subscription administrator, "
            "this may happen if there are no active subscriptions for the tenant.",
        )

    def _token_tenant(self, req: Request, form: dict[str, str], grant: str) -> Tenant:
        ref = req.params["tenant"]
        if ref in MULTI_TENANT_ALIASES:
            if grant == "client_credentials":
                raise EntraError("invalid_request", 50059, "No tenant-identifying information found in either the request or implied by any provided credentials.")
            # Entra serves /common and /organizations from the user's *home* tenant: for a
            # B2B guest that is not the tenant that issued the assertion.
            home = self._home_tenant_of_assertion(form.get("assertion", ""))
            if home is None:
                raise EntraError("invalid_request", 50059, "No tenant-identifying information found in either the request or implied by any provided credentials.")
            return home
        tenant = self.directory.tenant(ref)
        if tenant is None:
            raise self._no_tenant(ref)
        return tenant

    def _home_tenant_of_assertion(self, assertion: str) -> Tenant | None:
        try:
            claims = jwt.decode(assertion, options={"verify_signature": False})
        except jwt.PyJWTError:
            return None
        idp = str(claims.get("idp", ""))
        home = idp.rstrip("/").rsplit("/", 1)[-1] if idp.startswith("https://sts.windows.net/") else claims.get("tid")
        return self.directory.tenant(str(home)) if home else None

    # -- client authentication ("Microsoft identity platform certificate credentials") --
    def _authenticate_client(self, req: Request, form: dict[str, str], tenant: Tenant, *, v1: bool) -> App:
        client_id = self._require(form, "client_id")
        app = self.directory.apps.get(client_id)
        if app is None or (tenant.id, client_id) not in self.directory.service_principals:
            raise EntraError(
                "unauthorized_client", 700016,
                f"Application with identifier '{client_id}' was not found in the directory "
                f"'{tenant.domain}'. This can happen if the application has not been installed "
                "by the administrator of the tenant or consented to by any user in the tenant. "
                "You might have sent your authentication request to the wrong tenant.",
            )
        if "client_secret" in form:
            if form["client_secret"] not in app.secrets:
                raise EntraError(
                    "invalid_client", 7000215,
                    "Invalid client secret provided. Ensure the secret being sent in the request "
                    f"is the client secret value, not the client secret ID, for a secret added to app '{client_id}'.",
                    status=401,
                )
            return app
        assertion = form.get("client_assertion")
        if not assertion:
            raise EntraError("invalid_client", 7000218, "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.", status=401)
        if form.get("client_assertion_type") != ASSERTION_TYPE:
            raise EntraError("invalid_client", 7000218, "The request body must contain the following parameter: 'client_assertion' or 'client_secret' (client_assertion_type must be urn:ietf:params:oauth:client-assertion-type:jwt-bearer).", status=401)
        try:
            claims = jwt.decode(assertion, options={"verify_signature": False})
        except jwt.PyJWTError:
            raise EntraError("invalid_client", 50027, "JWT token is invalid or malformed.", status=401) from None
        # An assertion the app signed itself names a client id as issuer; an identity
        # provider's token (issuer URL) is accepted only through a federated credential.
        if str(claims.get("iss", "")).startswith("https://"):
            self._verify_federated_assertion(assertion, claims, app)
        else:
            self._verify_client_assertion(req, assertion, app, tenant, v1=v1)
        return app

    def _verify_client_assertion(self, req: Request, assertion: str, app: App, tenant: Tenant, *, v1: bool) -> None:
        header = jwt.get_unverified_header(assertion)
        self.last_client_assertion_header = {k: v for k, v in header.items() if k != "x5c"} | {
            "x5c_present": "x5c" in header,
        }
        alg = header.get("alg")
        cert = app.certificate_by_thumbprint(header.get("x5t"), header.get("x5t#S256"))
        if cert is None:
            thumb = header.get("x5t#S256") or header.get("x5t")
            raise EntraError(
                "invalid_client", 700027,
                f"The certificate with identifier used to sign the client assertion is not registered on application. [Reason - The key was not found., Thumbprint of key used by client: '{thumb}', Please visit the Azure Portal, Graph Explorer or directly use MS Graph to see configured keys for app Id '{app.app_id}'.]",
                status=401,
            )
        if alg not in ("RS256", "PS256"):
            raise EntraError("invalid_client", 700027, f"Client assertion failed signature validation. [Reason - The algorithm '{alg}' is not supported.]", status=401)
        host = self.directory.authority_host
        endpoint = "oauth2/token" if v1 else "oauth2/v2.0/token"
        audiences = {f"{host}/{req.params['tenant']}/{endpoint}", f"{host}/{tenant.id}/{endpoint}", f"{host}/{tenant.domain}/{endpoint}"}
        try:
            claims = jwt.decode(
                assertion, cert.public_key(), algorithms=[alg], options={"verify_aud": False, "verify_exp": False, "verify_nbf": False, "verify_iat": False, "require": ["exp", "iss", "sub", "jti", "aud"]},
            )
        except jwt.MissingRequiredClaimError as exc:
            raise EntraError("invalid_client", 50027, f"JWT token is invalid or malformed. Missing claim '{exc.claim}'.", status=401) from None
        except jwt.PyJWTError:
            raise EntraError("invalid_client", 700027, "Client assertion failed signature validation. [Reason - The provided signature value did not match the expected signature value.]", status=401) from None
        if claims["aud"] not in audiences:
            raise EntraError("invalid_client", 700023, f"Client assertion audience claim does not match Realm issuer. Audience '{claims['aud']}'; expected the token endpoint, one of: {sorted(audiences)}.", status=401)
        if claims["iss"] != app.app_id or claims["sub"] != app.app_id:
            raise EntraError("invalid_client", 700021, "Client assertion application identifier doesn't match 'client_id' parameter.", status=401)
        now = self.directory.clock()
        if float(claims["exp"]) < now - 300 or float(claims.get("nbf", 0)) > now + 300:
            raise EntraError("invalid_client", 700024, "Client assertion is not within its valid time range.", status=401)
        # Entra accepts the same signed assertion again while it is valid (MSAL reuses one for
        # up to 9 minutes); a jti that comes back in a *different* assertion is a replay.
        with self._jti_lock:
            seen = self._seen_jti.setdefault(str(claims["jti"]), assertion)
        if seen != assertion:
            raise EntraError("invalid_client", 50027, "JWT token is invalid: the 'jti' of the client assertion was already used.", status=401)

    def _verify_federated_assertion(self, assertion: str, claims: dict[str, object], app: App) -> None:
        """A token another issuer minted (here: a managed identity's), accepted as the app's
        client assertion when a federated identity credential of the app names its issuer,
        subject and audience ("Workload identity federation"; AADSTS70021/700211-700213).
        ``claims`` are the unverified ones; the signature is checked below."""
        iss, sub, aud = (str(claims.get(name, "")) for name in ("iss", "sub", "aud"))
        self.last_client_assertion_header = {"federated": True, "iss": iss}
        candidates = [f for f in app.federated_credentials if f.issuer == iss]
        if not candidates:
            raise EntraError("invalid_client", 700211, f"No matching federated identity record found for presented assertion issuer '{iss}'. Please check your federated identity credential Subject, Audience and Issuer against the presented assertion.", status=401)
        issuer_tenant = self.directory.tenant(iss.removeprefix(self.directory.authority_host + "/").split("/")[0])
        try:
            if issuer_tenant is None:
                raise ValueError("issuer")
            self.directory.verify(assertion, issuer_tenant)
        except ValueError as exc:
            if str(exc) == "lifetime":
                raise EntraError("invalid_client", 700024, "Client assertion is not within its valid time range.", status=401) from None
            raise EntraError("invalid_client", 700027, f"Client assertion failed signature validation. [Reason - {exc}]", status=401) from None
        if not any(aud in f.audiences or f.subject == sub for f in candidates):
            raise EntraError("invalid_client", 70021, f"No matching federated identity record found for presented assertion. Assertion Issuer: '{iss}'. Assertion Subject: '{sub}'. Assertion Audience: '{aud}'.", status=401)
        candidates = [f for f in candidates if aud in f.audiences]
        if not candidates:
            raise EntraError("invalid_client", 700212, f"No matching federated identity record found for presented assertion audience '{aud}'. Please check your federated identity credential Subject, Audience and Issuer against the presented assertion.", status=401)
        if not any(f.subject == sub for f in candidates):
            raise EntraError("invalid_client", 700213, f"No matching federated identity record found for presented assertion subject '{sub}'. Please check your federated identity credential Subject, Audience and Issuer against the presented assertion.", status=401)

    # -- what is asked for ----------------------------------------------------------
    def _requested(self, form: dict[str, str], tenant: Tenant, *, v1: bool) -> tuple[App, list[str]]:
        if v1:
            identifier = self._require(form, "resource")
            resource = self._resource_in(tenant, identifier)
            if resource is None:
                raise self._no_resource(identifier, tenant)
            return resource, [".default"]
        raw = [s for s in self._require(form, "scope").split() if s not in OIDC_SCOPES]
        if not raw:
            raise EntraError("invalid_scope", 70011, "The provided value for the input parameter 'scope' is not valid.")
        found: dict[str, App] = {}
        scopes: list[str] = []
        for item in raw:
            identifier, _, name = item.rpartition("/")
            resource = self._resource_in(tenant, identifier)
            if resource is None:
                raise self._no_resource(identifier or item, tenant)
            found[resource.app_id] = resource
            scopes.append(name)
        if len(found) > 1:
            raise EntraError("invalid_scope", 28000, "Provided value for the input parameter scope is not valid because it contains more than one resource.")
        resource = next(iter(found.values()))
        unknown = [s for s in scopes if s != ".default" and s not in resource.scopes]
        if unknown:
            raise EntraError("invalid_scope", 70011, f"The provided value for the input parameter 'scope' is not valid. The scope '{' '.join(raw)}' does not exist.")
        return resource, scopes

    def _resource_in(self, tenant: Tenant, identifier: str) -> App | None:
        """The resource, if it has a service principal in ``tenant`` (else AADSTS500011)."""
        resource = self.directory.resource_by_identifier(identifier)
        if resource is None or (tenant.id, resource.app_id) not in self.directory.service_principals:
            return None
        return resource

    @staticmethod
    def _no_resource(identifier: str, tenant: Tenant) -> EntraError:
        return EntraError(
            "invalid_resource", 500011,
            f"The resource principal named {identifier} was not found in the tenant named {tenant.domain}. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant.",
        )

    def _saml_version(self, form: dict[str, str], grant: str, scopes: list[str]) -> int | None:
        """2 or 1 when a SAML assertion is asked for (OBO only, for the whole resource)."""
        requested = form.get("requested_token_type")
        if requested is None or self.ignore_requested_token_type:
            return None
        if requested not in SAML_VERSIONS or grant != JWT_BEARER:
            raise EntraError("invalid_request", 9002313, f"Invalid request. Request is malformed or invalid. The requested_token_type '{requested}' is not supported for this grant.")
        if scopes != [".default"]:
            raise EntraError("invalid_scope", 70011, "The provided value for the input parameter 'scope' is not valid. A SAML token is issued for the whole resource: request '<entity id>/.default'.")
        return SAML_VERSIONS[requested]

    # -- grants --------------------------------------------------------------------
    def _client_credentials(self, tenant: Tenant, client: App, resource: App, scopes: list[str]) -> dict[str, object]:
        if scopes != [".default"]:
            raise EntraError("invalid_scope", 1002012, "The provided value for scope is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI).")
        token = self.directory.app_token(tenant, client, resource)
        return {"access_token": token, "scope": ""}

    def _on_behalf_of(self, form: dict[str, str], tenant: Tenant, client: App, resource: App, scopes: list[str], saml_version: int | None) -> dict[str, object]:
        if form.get("requested_token_use") != "on_behalf_of":
            raise EntraError("invalid_request", 900144, "The request body must contain the following parameter: 'requested_token_use'.")
        assertion = self._require(form, "assertion")
        try:
            header = jwt.get_unverified_header(assertion)
            unverified = jwt.decode(assertion, options={"verify_signature": False})
        except jwt.PyJWTError:
            raise EntraError("invalid_grant", 50027, "JWT token is invalid or malformed.") from None
        # Signature and issuer: only a token this tenant issued, with its keys (AADSTS50013).
        try:
            claims = self.directory.verify(assertion, tenant)
        except ValueError as exc:
            reason = {
                "key not found": "The key was not found.",
                "signature": "The provided signature value did not match the expected signature value.",
                "issuer": "The issuer of the assertion is not this tenant.",
            }.get(str(exc), str(exc))
            if str(exc) == "lifetime":
                claims = unverified
            else:
                raise EntraError(
                    "invalid_grant", 50013,
                    f"Assertion failed signature validation. [Reason - {reason}, Thumbprint of key used by client: '{header.get('kid')}', Found key 'Start=..., End=...']",
                ) from None
        if not client.accepts_audience(str(claims.get("aud"))):
            raise EntraError(
                "invalid_grant", 500131,
                f"Assertion audience does not match the Client app presenting the assertion. The audience in the assertion was '{claims.get('aud')}' and the expected audience is '{client.app_id}' or one of the Application Uris of this application with App ID '{client.app_id}'({client.name}). The downstream client must request a token for the expected audience (the application that made the OBO request) and this application should use that token as the assertion.",
            )
        now = self.directory.clock()
        if float(claims.get("exp", 0)) < now:
            expiry = dt.datetime.fromtimestamp(float(claims.get("exp", 0)), dt.UTC)
            raise EntraError(
                "invalid_grant", 500133,
                f"Assertion is not within its valid time range. Ensure that the access token is not expired before using it for user assertion, or request a new token. Current time: {_iso(now)}, expiry time of assertion {expiry:%Y-%m-%dT%H:%M:%S}Z.",
            )
        if "scp" not in claims or claims.get("idtyp") == "app":
            raise EntraError("invalid_grant", 50027, "JWT token is invalid: the assertion is not a delegated user access token (no 'scp' claim); app-only tokens cannot be used On-Behalf-Of a user.")
        if resource.app_id == client.app_id:
            raise EntraError("invalid_request", 90009, f"Application '{client.app_id}'({client.name}) is requesting a token for itself. This scenario is supported only if resource is specified using the GUID based App Identifier.")
        user = self.directory.user_by_oid(tenant.id, str(claims.get("oid")))
        if user is None:
            raise EntraError("invalid_grant", 50034, f"The user account does not exist in the {tenant.domain} directory.")
        consented = self.directory.consents.get((tenant.id, client.app_id, resource.app_id), set())
        wanted = [s for s in scopes if s != ".default"] or []
        if not consented or any(s not in consented for s in wanted):
            raise EntraError(
                "invalid_grant", 65001,
                f"The user or administrator has not consented to use the application with ID '{client.app_id}' named '{client.name}'. Send an interactive authorization request for this user and resource.",
                suberror="consent_required",
            )
        self._check_policies(user, claims, resource)
        granted = wanted or sorted(consented)
        if saml_version is not None:
            return self._saml_answer(form, tenant, user, resource, saml_version, granted)
        token = self.directory.user_token(
            user, tenant, client, resource, granted, mfa="mfa" in (claims.get("amr") or []),
            version=resource.token_version,
        )
        return {"access_token": token, "scope": granted, "refresh_token": "rt." + secrets.token_urlsafe(24)}

    def _saml_answer(self, form: dict[str, str], tenant: Tenant, user, resource: App, version: int, granted: list[str]) -> dict[str, object]:
        """The assertion, UTF-8 XML in base64url without padding, as the OBO docs describe."""
        xml = saml.issue(
            version, key=tenant.active_key, issuer=self.directory.issuer_v1(tenant.id),
            audience=resource.identifier_uris[0] if resource.identifier_uris else resource.app_id,
            recipient=resource.saml_recipient, subject=user.upn,
            object_id=user.object_ids[tenant.id], tenant_id=tenant.id,
            now=self.directory.clock(), lifetime=self.directory.token_lifetime,
        )
        return {
            "access_token": b64url(xml), "scope": granted,
            "issued_token_type": form["requested_token_type"],
            "refresh_token": "rt." + secrets.token_urlsafe(24),
        }

    def _check_policies(self, user, claims: dict[str, object], resource: App) -> None:
        if user.policy == "blocked":
            raise EntraError("access_denied", 53003, "Access has been blocked by Conditional Access policies. The access policy does not allow token issuance.", suberror="message_only")
        has_mfa = "mfa" in (claims.get("amr") or [])
        if user.policy in ("mfa", "mfa_registration") and not has_mfa:
            code = 50076 if user.policy == "mfa" else 50079
            text = (
                f"Due to a configuration change made by your administrator, or because you moved to a new location, you must use multi-factor authentication to access '{resource.app_id}'."
                if code == 50076 else
                "Due to a configuration change made by your administrator, or because you moved to a new location, you must enroll in multi-factor authentication to access this resource."
            )
            claims_challenge = json.dumps(
                {"access_token": {"capolids": {"essential": True, "values": [_policy_id(user.upn)]}}},
                separators=(",", ":"),
            )
            raise EntraError("interaction_required", code, text, suberror="basic_action", claims=claims_challenge)

    # -- rendering ----------------------------------------------------------------------
    def _shape(self, body: dict[str, object], resource: App, *, v1: bool) -> dict[str, object]:
        lifetime = self.directory.token_lifetime
        scope = body.pop("scope")
        if v1:
            now = int(self.directory.clock())
            shaped: dict[str, object] = {
                "token_type": "Bearer", "expires_in": str(lifetime), "ext_expires_in": str(lifetime),
                "expires_on": str(now + lifetime), "not_before": str(now),
                "resource": resource.identifier_uris[0] if resource.identifier_uris else resource.app_id,
            }
        else:
            prefix = resource.identifier_uris[0] if resource.identifier_uris else resource.app_id
            shaped = {"token_type": "Bearer"}
            # Client credentials answers carry no "scope" (as Entra's): MSAL keys its cache on a
            # returned scope, and an empty one would make every later lookup miss.
            if isinstance(scope, list):
                shaped["scope"] = " ".join(f"{prefix}/{s}" for s in scope)
            shaped.update(expires_in=lifetime, ext_expires_in=lifetime)
        shaped.update(body)
        return shaped

    def _error_response(self, req: Request, err: EntraError) -> Response:
        now = self.directory.clock()
        trace_id = str(uuid.uuid4())
        correlation_id = req.headers.get("client-request-id") or str(uuid.uuid4())
        timestamp = _iso(now, sep=" ")
        body: dict[str, object] = {
            "error": err.error,
            "error_description": f"AADSTS{err.code}: {err.message} Trace ID: {trace_id} Correlation ID: {correlation_id} Timestamp: {timestamp}",
            "error_codes": [err.code],
            "timestamp": timestamp,
            "trace_id": trace_id,
            "correlation_id": correlation_id,
            "error_uri": f"{self.directory.authority_host}/error?code={err.code}",
        }
        if err.suberror:
            body["suberror"] = err.suberror
        if err.claims:
            body["claims"] = err.claims
        return Response.json(body, err.status, {"Cache-Control": "no-store"})


def _iso(epoch: float, sep: str = "T") -> str:
    return dt.datetime.fromtimestamp(epoch, dt.UTC).strftime(f"%Y-%m-%d{sep}%H:%M:%SZ")


def _policy_id(upn: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"ca-policy:{upn}"))


__all__ = ["GRAPH_APP_ID", "Entra", "EntraError"]
