"""The Entra ID stand-in driven by the real clients: MSAL, requests and PyJWT over HTTPS.

Each refusal gets its own test and is checked in Entra's error shape: the ``error`` string,
``error_codes``, an ``error_description`` starting ``AADSTS<code>:`` and the ``trace_id``,
``correlation_id`` and ``timestamp`` fields. Nothing is mocked: MSAL builds its own client
assertions and talks to the stand-in through a ``requests.Session`` that trusts only the
stack's CA. Where MSAL cannot produce a fault (a forged signature, a wrong ``aud``, a replayed
``jti``) the client assertion is built by hand with PyJWT, as the "certificate credentials"
document describes it, and posted with ``requests``.

Documents followed: "OpenID Connect on the Microsoft identity platform" (discovery, JWKS),
"Microsoft identity platform and OAuth 2.0 On-Behalf-Of flow" (v2 OBO), the Azure AD v1.0
"Service-to-service calls that use delegated user identity in the On-Behalf-Of flow" (v1 OBO),
"OAuth 2.0 client credentials flow", "Microsoft identity platform application authentication
certificate credentials" and "Microsoft Entra authentication and authorization error codes".
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import secrets
import time
import urllib.parse
import uuid
from typing import Any

import jwt
import msal
import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from devstack.directory import Directory
from devstack.httpserver import Fault
from devstack.stack import DevStack

GRAPH = "https://graph.microsoft.com"
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
CONSENTED_GRAPH_SCOPES = (
    "GroupMember.Read.All Mail.Read User.Read User.ReadBasic.All"  # seed: api -> graph in Contoso
)


# -- plumbing ---------------------------------------------------------------------------
class RecordingSession(requests.Session):
    """A real ``requests`` session that trusts the stack's CA and keeps every response.

    MSAL hands back only the JSON body of an error; the recorded response gives the test the
    HTTP status and the ``client-request-id`` MSAL sent with the request.
    """

    def __init__(self, stack: DevStack) -> None:
        super().__init__()
        self.verify = str(stack.ca.ca_file)
        self.seen: list[requests.Response] = []
        self.hooks["response"].append(self._record)

    def _record(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        self.seen.append(response)

    def token_responses(self) -> list[requests.Response]:
        return [r for r in self.seen if r.request.method == "POST"]


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.DER)


def x5t(cert: x509.Certificate) -> str:
    """RFC 7515 x5t: base64url of the SHA-1 of the certificate's DER."""
    return b64url(hashlib.sha1(der(cert)).digest())


def x5t_s256(cert: x509.Certificate) -> str:
    return b64url(hashlib.sha256(der(cert)).digest())


def pem_key(key: rsa.RSAPrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def pem_cert(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def claims_of(token: str) -> dict[str, Any]:
    return jwt.decode(token, options={"verify_signature": False})


def token_endpoint(stack: DevStack, tenant_ref: str, *, v1: bool = False) -> str:
    path = "oauth2/token" if v1 else "oauth2/v2.0/token"
    return f"{stack.entra.base_url}/{tenant_ref}/{path}"


def get(stack: DevStack, path: str) -> requests.Response:
    return requests.get(f"{stack.entra.base_url}{path}", verify=str(stack.ca.ca_file), timeout=10)


def post_token(
    stack: DevStack,
    tenant_ref: str,
    data: dict[str, str],
    *,
    v1: bool = False,
) -> requests.Response:
    return requests.post(
        token_endpoint(stack, tenant_ref, v1=v1),
        data=data,
        verify=str(stack.ca.ca_file),
        timeout=10,
    )


def certificate_credential(stack: DevStack) -> dict[str, str]:
    """API 1's registered certificate, as MSAL takes it (PS256 + x5t#S256 + x5c)."""
    seed = stack.seed
    return {
        "private_key": pem_key(seed.api_key),
        "public_certificate": pem_cert(seed.api_certificate),
    }


def confidential(
    stack: DevStack,
    tenant_ref: str,
    *,
    client_id: str | None = None,
    credential: dict[str, str] | str | None = None,
) -> tuple[msal.ConfidentialClientApplication, RecordingSession]:
    http = RecordingSession(stack)
    app = msal.ConfidentialClientApplication(
        client_id or stack.seed.api.app_id,
        authority=f"{stack.entra.base_url}/{tenant_ref}",
        client_credential=credential if credential is not None else certificate_credential(stack),
        http_client=http,
        instance_discovery=False,
    )
    return app, http


def client_assertion(
    stack: DevStack,
    audience: str,
    *,
    key: rsa.RSAPrivateKey | None = None,
    cert: x509.Certificate | None = None,
    alg: str = "RS256",
    iss: str | None = None,
    sub: str | None = None,
    lifetime: int = 600,
    jti: str | None = None,
) -> str:
    """A client assertion built by hand, in the "certificate credentials" format."""
    seed = stack.seed
    key = key or seed.api_key
    cert = cert or seed.api_certificate
    header = {"x5t": x5t(cert)} if alg == "RS256" else {"x5t#S256": x5t_s256(cert)}
    now = int(time.time())
    claims = {
        "aud": audience,
        "iss": iss or seed.api.app_id,
        "sub": sub or seed.api.app_id,
        "jti": jti or str(uuid.uuid4()),
        "iat": now,
        "nbf": now,
        "exp": now + lifetime,
    }
    return jwt.encode(claims, key, algorithm=alg, headers=header)


def client_credentials_form(
    stack: DevStack,
    tenant_ref: str,
    assertion: str | None = None,
    *,
    client_id: str | None = None,
    scope: str = f"{GRAPH}/.default",
) -> dict[str, str]:
    return {
        "grant_type": "client_credentials",
        "client_id": client_id or stack.seed.api.app_id,
        "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": assertion or client_assertion(stack, token_endpoint(stack, tenant_ref)),
        "scope": scope,
    }


def assert_entra_error(body: dict[str, Any], error: str, code: int) -> str:
    """Entra's error JSON; returns the description for further checks."""
    assert body.get("error") == error, body
    assert body["error_codes"] == [code], body
    description = body["error_description"]
    assert description.startswith(f"AADSTS{code}:"), description
    uuid.UUID(body["trace_id"])
    assert body["correlation_id"]
    assert body["timestamp"]
    assert f"Trace ID: {body['trace_id']}" in description
    assert f"Correlation ID: {body['correlation_id']}" in description
    return description


def assert_http_error(resp: requests.Response, status: int, error: str, code: int) -> str:
    assert resp.status_code == status, resp.text
    assert resp.headers["Content-Type"].startswith("application/json")
    assert resp.headers["Cache-Control"] == "no-store"
    return assert_entra_error(resp.json(), error, code)


def assert_msal_error(
    result: dict[str, Any],
    http: RecordingSession,
    status: int,
    error: str,
    code: int,
) -> str:
    """An error MSAL passed through; status and correlation come from the recorded wire."""
    assert "access_token" not in result, result
    description = assert_entra_error(result, error, code)
    last = http.token_responses()[-1]
    assert last.status_code == status, last.text
    # Entra echoes the client-request-id MSAL sends as the correlation id.
    assert result["correlation_id"] == last.request.headers["client-request-id"]
    return description


def obo(
    stack: DevStack,
    user_assertion: str,
    scopes: list[str] | None = None,
    tenant_ref: str | None = None,
) -> tuple[dict[str, Any], RecordingSession]:
    """API 1 exchanging ``user_assertion`` with MSAL at a tenant authority (Contoso)."""
    app, http = confidential(stack, tenant_ref or stack.seed.contoso.id)
    result = app.acquire_token_on_behalf_of(user_assertion, scopes or [f"{GRAPH}/User.Read"])
    return result, http


# -- discovery (OpenID Connect on the Microsoft identity platform) ---------------------------
def test_discovery_for_a_tenant_id(stack: DevStack) -> None:
    tid, base = stack.seed.contoso.id, stack.entra.base_url
    resp = get(stack, f"/{tid}/v2.0/.well-known/openid-configuration")
    assert resp.status_code == 200
    doc = resp.json()
    assert doc["issuer"] == f"{base}/{tid}/v2.0"
    assert doc["token_endpoint"] == f"{base}/{tid}/oauth2/v2.0/token"
    assert doc["authorization_endpoint"] == f"{base}/{tid}/oauth2/v2.0/authorize"
    assert doc["jwks_uri"] == f"{base}/{tid}/discovery/v2.0/keys"
    assert doc["id_token_signing_alg_values_supported"] == ["RS256"]
    assert "private_key_jwt" in doc["token_endpoint_auth_methods_supported"]
    assert stack.entra.calls("discovery_v2", tid) == 1


def test_discovery_for_a_verified_domain_names_the_tenant_id_as_issuer(stack: DevStack) -> None:
    contoso, base = stack.seed.contoso, stack.entra.base_url
    assert contoso.domain == "contoso.onmicrosoft.com"
    doc = get(stack, "/contoso.onmicrosoft.com/v2.0/.well-known/openid-configuration").json()
    assert doc["issuer"] == f"{base}/{contoso.id}/v2.0"
    assert doc["token_endpoint"] == f"{base}/contoso.onmicrosoft.com/oauth2/v2.0/token"
    assert doc["jwks_uri"] == f"{base}/contoso.onmicrosoft.com/discovery/v2.0/keys"


@pytest.mark.parametrize("alias", ["common", "organizations"])
def test_discovery_for_multi_tenant_aliases_has_a_tenantid_placeholder(
    stack: DevStack,
    alias: str,
) -> None:
    base = stack.entra.base_url
    doc = get(stack, f"/{alias}/v2.0/.well-known/openid-configuration").json()
    assert doc["issuer"] == f"{base}/{{tenantid}}/v2.0"
    assert doc["token_endpoint"] == f"{base}/{alias}/oauth2/v2.0/token"
    assert doc["jwks_uri"] == f"{base}/{alias}/discovery/v2.0/keys"


def test_discovery_for_an_unknown_tenant_is_invalid_tenant(stack: DevStack) -> None:
    resp = get(stack, "/nowhere.onmicrosoft.com/v2.0/.well-known/openid-configuration")
    description = assert_http_error(resp, 400, "invalid_tenant", 90002)
    assert "Tenant 'nowhere.onmicrosoft.com' not found" in description
    # MSAL refuses to build an application against such an authority.
    with pytest.raises(ValueError, match="Unable to get authority configuration"):
        confidential(stack, "nowhere.onmicrosoft.com")


def test_jwks_has_several_keys_per_tenant_that_verify_its_tokens(stack: DevStack) -> None:
    seed = stack.seed
    kids: dict[str, set[str]] = {}
    for tenant in (seed.contoso, seed.fabrikam):
        keys = get(stack, f"/{tenant.id}/discovery/v2.0/keys").json()["keys"]
        assert len(keys) >= 2
        for jwk in keys:
            assert (jwk["kty"], jwk["use"]) == ("RSA", "sig")
            assert jwk["n"] and jwk["e"] == "AQAB"
            # kid and x5t are the certificate's SHA-1 thumbprint, as Entra publishes them.
            cert_der = base64.b64decode(jwk["x5c"][0])
            assert jwk["kid"] == jwk["x5t"] == b64url(hashlib.sha1(cert_der).digest())
        kids[tenant.id] = {k["kid"] for k in keys}
        assert len(kids[tenant.id]) == len(keys)
    # Per-tenant keys (real Entra shares its keys across tenants): see the directory docstring.
    assert not kids[seed.contoso.id] & kids[seed.fabrikam.id]
    common = {k["kid"] for k in get(stack, "/common/discovery/v2.0/keys").json()["keys"]}
    assert kids[seed.contoso.id] | kids[seed.fabrikam.id] <= common

    doc = get(stack, f"/{seed.contoso.id}/v2.0/.well-known/openid-configuration").json()
    keyset = jwt.PyJWKSet.from_dict(
        requests.get(doc["jwks_uri"], verify=str(stack.ca.ca_file), timeout=10).json()
    )
    token = seed.user_token(seed.alice)
    claims = jwt.decode(
        token,
        keyset[jwt.get_unverified_header(token)["kid"]].key,
        algorithms=["RS256"],
        audience=seed.api.app_id,
        issuer=doc["issuer"],
    )
    assert claims["oid"] == seed.alice.object_ids[seed.contoso.id]


def test_v1_discovery_has_the_sts_windows_net_issuer(stack: DevStack) -> None:
    tid, base = stack.seed.contoso.id, stack.entra.base_url
    doc = get(stack, f"/{tid}/.well-known/openid-configuration").json()
    assert doc["issuer"] == f"https://sts.windows.net/{tid}/"
    assert doc["token_endpoint"] == f"{base}/{tid}/oauth2/token"
    assert doc["jwks_uri"] == f"{base}/{tid}/discovery/keys"
    v1_keys = get(stack, f"/{tid}/discovery/keys").json()["keys"]
    v2_keys = get(stack, f"/{tid}/discovery/v2.0/keys").json()["keys"]
    assert v1_keys == v2_keys
    assert_http_error(
        get(stack, "/nowhere.example/.well-known/openid-configuration"),
        400,
        "invalid_tenant",
        90002,
    )


# -- MSAL On-Behalf-Of (v2) ----------------------------------------------------------------
def test_msal_obo_for_a_member_gets_a_graph_v1_token_for_the_same_user(stack: DevStack) -> None:
    seed = stack.seed
    contoso, alice = seed.contoso, seed.alice
    result, http = obo(stack, seed.user_token(alice))
    assert "access_token" in result, result
    assert result["token_type"] == "Bearer"
    assert result["scope"] == f"{GRAPH}/User.Read"
    assert result["token_source"] == "identity_provider"
    claims = claims_of(result["access_token"])
    assert claims["oid"] == alice.object_ids[contoso.id]
    assert claims["tid"] == contoso.id
    assert claims["name"] == "Alice"
    assert claims["upn"] == alice.upn
    assert claims["scp"] == "User.Read"
    assert claims["ver"] == "1.0"  # Graph's requestedAccessTokenVersion is 1
    assert claims["iss"] == f"https://sts.windows.net/{contoso.id}/"
    assert claims["aud"] == GRAPH
    assert claims["appid"] == seed.api.app_id
    # Graph's tokens carry a header nonce: only Graph can verify them.
    assert "nonce" in jwt.get_unverified_header(result["access_token"])
    assert [r.status_code for r in http.token_responses()] == [200]


def test_msal_obo_with_default_scope_gets_every_consented_permission(stack: DevStack) -> None:
    seed = stack.seed
    result, _ = obo(stack, seed.user_token(seed.alice), [f"{GRAPH}/.default"])
    assert "access_token" in result, result
    assert claims_of(result["access_token"])["scp"] == CONSENTED_GRAPH_SCOPES


def test_msal_obo_for_a_guest_at_the_resource_tenant_keeps_her_guest_object(
    stack: DevStack,
) -> None:
    seed = stack.seed
    contoso, fabrikam, carol = seed.contoso, seed.fabrikam, seed.carol
    result, _ = obo(stack, seed.user_token(carol, contoso), tenant_ref=contoso.id)
    assert "access_token" in result, result
    claims = claims_of(result["access_token"])
    assert claims["oid"] == carol.object_ids[contoso.id] != carol.object_ids[fabrikam.id]
    assert claims["tid"] == contoso.id
    assert claims["iss"] == f"https://sts.windows.net/{contoso.id}/"
    assert claims["idp"] == f"https://sts.windows.net/{fabrikam.id}/"
    assert claims["name"] == "Carol"
    assert claims["scp"] == "User.Read"
    assert claims["ver"] == "1.0"


def test_common_authority_serves_the_users_home_tenant(stack: DevStack) -> None:
    seed = stack.seed
    app, http = confidential(stack, "common")
    member = app.acquire_token_on_behalf_of(seed.user_token(seed.alice), [f"{GRAPH}/User.Read"])
    assert "access_token" in member, member
    assert claims_of(member["access_token"])["tid"] == seed.contoso.id
    # For a guest /common means her home tenant (Fabrikam), which did not issue the Contoso
    # token she presents: it is not a Contoso token she gets but a signature refusal.
    guest = app.acquire_token_on_behalf_of(
        seed.user_token(seed.carol, seed.contoso), [f"{GRAPH}/User.Read"]
    )
    assert_msal_error(guest, http, 400, "invalid_grant", 50013)
    assert stack.entra.calls("token", "common") == 2


def test_msal_reuses_its_client_assertion_and_entra_accepts_it_again(stack: DevStack) -> None:
    # MSAL signs one client assertion and reuses it for up to 9 minutes (AutoRefresher), so
    # the same signed JWT - same jti - arrives again and must be accepted.
    seed = stack.seed
    app, http = confidential(stack, seed.contoso.id)
    for user in (seed.alice, seed.alice):
        result = app.acquire_token_on_behalf_of(seed.user_token(user), [f"{GRAPH}/User.Read"])
        assert "access_token" in result, result
    sent = [dict(urllib.parse.parse_qsl(str(r.request.body))) for r in http.token_responses()]
    assert len(sent) == 2
    assert sent[0]["client_assertion"] == sent[1]["client_assertion"]
    assert sent[0]["assertion"] != sent[1]["assertion"]


# -- MSAL client credentials --------------------------------------------------------------
def test_msal_client_credentials_gets_an_app_only_token(stack: DevStack) -> None:
    seed = stack.seed
    contoso = seed.contoso
    app, _ = confidential(stack, contoso.id)
    result = app.acquire_token_for_client([f"{GRAPH}/.default"])
    assert "access_token" in result, result
    assert result["token_type"] == "Bearer"
    assert "scope" not in result  # the client credentials answer has no scope
    claims = claims_of(result["access_token"])
    assert claims["idtyp"] == "app"
    assert "scp" not in claims
    assert claims["aud"] == GRAPH
    assert claims["appid"] == seed.api.app_id
    assert claims["tid"] == contoso.id
    assert claims["oid"] == claims["sub"] == Directory.principal_id(seed.api, contoso)
    assert claims["ver"] == "1.0"
    # MSAL serves the second request from its cache: Entra sees one token request.
    again = app.acquire_token_for_client([f"{GRAPH}/.default"])
    assert again["token_source"] == "cache"
    assert stack.entra.calls("token", contoso.id) == 1


def test_client_credentials_without_default_scope_is_refused(stack: DevStack) -> None:
    app, http = confidential(stack, stack.seed.contoso.id)
    result = app.acquire_token_for_client([f"{GRAPH}/User.Read"])
    assert_msal_error(result, http, 400, "invalid_scope", 1002012)


def test_client_credentials_at_common_has_no_tenant(stack: DevStack) -> None:
    app, http = confidential(stack, "common")
    with pytest.warns(DeprecationWarning, match="/common or /organizations"):  # MSAL agrees
        result = app.acquire_token_for_client([f"{GRAPH}/.default"])
    assert_msal_error(result, http, 400, "invalid_request", 50059)


# -- v1 On-Behalf-Of ----------------------------------------------------------------------
def test_v1_obo_with_resource_and_a_hand_built_assertion(stack: DevStack) -> None:
    seed = stack.seed
    contoso = seed.contoso
    endpoint = token_endpoint(stack, contoso.id, v1=True)
    assertion = client_assertion(stack, endpoint)  # RS256, x5t = base64url(SHA-1(DER))
    assert jwt.get_unverified_header(assertion)["x5t"] == b64url(
        hashlib.sha1(der(seed.api_certificate)).digest()
    )
    resp = requests.post(
        endpoint,
        data={
            "grant_type": JWT_BEARER,
            "client_id": seed.api.app_id,
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": assertion,
            "resource": GRAPH,
            "requested_token_use": "on_behalf_of",
            "assertion": seed.user_token(seed.alice),
            "scope": "openid",
        },
        verify=str(stack.ca.ca_file),
        timeout=10,
    )
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["resource"] == GRAPH
    assert body["token_type"] == "Bearer"
    # v1 answers carry times as strings of seconds.
    assert int(body["expires_on"]) - int(body["not_before"]) == int(body["expires_in"]) == 3600
    assert abs(int(body["expires_on"]) - (time.time() + 3600)) < 60
    claims = claims_of(body["access_token"])
    assert claims["aud"] == GRAPH
    assert claims["ver"] == "1.0"
    assert claims["scp"] == CONSENTED_GRAPH_SCOPES
    assert claims["oid"] == seed.alice.object_ids[contoso.id]
    assert stack.entra.calls("token_v1", contoso.id) == 1


# -- client authentication (certificate credentials, client secrets) ---------------------------
def test_unknown_client_id_is_unauthorized_client(stack: DevStack) -> None:
    app, http = confidential(stack, stack.seed.contoso.id, client_id=str(uuid.uuid4()))
    result = app.acquire_token_for_client([f"{GRAPH}/.default"])
    description = assert_msal_error(result, http, 400, "unauthorized_client", 700016)
    assert "was not found in the directory 'contoso.onmicrosoft.com'" in description


def test_app_not_provisioned_in_the_tenant_is_unauthorized_client(stack: DevStack) -> None:
    seed = stack.seed
    # Orders API has a service principal in Contoso only.
    app, http = confidential(stack, seed.fabrikam.id, client_id=seed.other_api.app_id)
    result = app.acquire_token_for_client([f"{GRAPH}/.default"])
    description = assert_msal_error(result, http, 400, "unauthorized_client", 700016)
    assert seed.other_api.app_id in description
    assert "'fabrikam.onmicrosoft.com'" in description


def test_wrong_client_secret_is_invalid_client(stack: DevStack) -> None:
    seed = stack.seed
    secret = "devstack~" + secrets.token_urlsafe(24)
    seed.other_api.secrets.append(secret)
    try:
        good, _ = confidential(
            stack, seed.contoso.id, client_id=seed.other_api.app_id, credential=secret
        )
        result = good.acquire_token_for_client([f"{GRAPH}/.default"])
        assert "access_token" in result, result
        assert claims_of(result["access_token"])["appid"] == seed.other_api.app_id

        bad, http = confidential(
            stack, seed.contoso.id, client_id=seed.other_api.app_id, credential="not-" + secret
        )
        result = bad.acquire_token_for_client([f"{GRAPH}/.default"])
        assert_msal_error(result, http, 401, "invalid_client", 7000215)
    finally:
        seed.other_api.secrets.remove(secret)


def test_unregistered_certificate_is_refused(stack: DevStack) -> None:
    key, cert = Directory.new_certificate("CN=not-registered")
    app, http = confidential(
        stack,
        stack.seed.contoso.id,
        credential={"private_key": pem_key(key), "public_certificate": pem_cert(cert)},
    )
    result = app.acquire_token_for_client([f"{GRAPH}/.default"])
    description = assert_msal_error(result, http, 401, "invalid_client", 700027)
    assert "not registered on application" in description


def test_assertion_signed_by_another_key_claiming_the_registered_x5t_is_refused(
    stack: DevStack,
) -> None:
    seed = stack.seed
    tid = seed.contoso.id
    impostor, _ = Directory.new_certificate("CN=impostor")
    # The header names API 1's real certificate; the signature is the impostor's.
    forged = client_assertion(
        stack, token_endpoint(stack, tid), key=impostor, cert=seed.api_certificate
    )
    resp = post_token(stack, tid, client_credentials_form(stack, tid, forged))
    description = assert_http_error(resp, 401, "invalid_client", 700027)
    assert "signature" in description


def test_hs256_client_assertion_is_refused(stack: DevStack) -> None:
    seed = stack.seed
    tid = seed.contoso.id
    now = int(time.time())
    hs256 = jwt.encode(
        {
            "aud": token_endpoint(stack, tid),
            "iss": seed.api.app_id,
            "sub": seed.api.app_id,
            "jti": str(uuid.uuid4()),
            "nbf": now,
            "exp": now + 600,
        },
        secrets.token_bytes(32),
        algorithm="HS256",
        headers={"x5t": x5t(seed.api_certificate)},
    )
    resp = post_token(stack, tid, client_credentials_form(stack, tid, hs256))
    description = assert_http_error(resp, 401, "invalid_client", 700027)
    assert "HS256" in description


@pytest.mark.parametrize("audience", ["other-tenant", "v1-endpoint", "authority"])
def test_client_assertion_for_another_audience_is_refused(stack: DevStack, audience: str) -> None:
    seed = stack.seed
    tid, base = seed.contoso.id, stack.entra.base_url
    aud = {
        "other-tenant": token_endpoint(stack, seed.fabrikam.id),
        "v1-endpoint": token_endpoint(stack, tid, v1=True),  # sent to the v2 endpoint
        "authority": f"{base}/{tid}",
    }[audience]
    assertion = client_assertion(stack, aud)
    resp = post_token(stack, tid, client_credentials_form(stack, tid, assertion))
    description = assert_http_error(resp, 401, "invalid_client", 700023)
    assert f"'{aud}'" in description


@pytest.mark.parametrize("claim", ["iss", "sub"])
def test_client_assertion_for_another_client_id_is_refused(stack: DevStack, claim: str) -> None:
    seed = stack.seed
    tid = seed.contoso.id
    assertion = client_assertion(stack, token_endpoint(stack, tid), **{claim: seed.spa.app_id})
    resp = post_token(stack, tid, client_credentials_form(stack, tid, assertion))
    assert_http_error(resp, 401, "invalid_client", 700021)


def test_expired_client_assertion_is_refused(stack: DevStack) -> None:
    tid = stack.seed.contoso.id
    # Ten minutes past its exp: beyond the five minutes of clock skew Entra allows.
    assertion = client_assertion(stack, token_endpoint(stack, tid), lifetime=-600)
    resp = post_token(stack, tid, client_credentials_form(stack, tid, assertion))
    assert_http_error(resp, 401, "invalid_client", 700024)


def test_jti_reused_in_a_different_assertion_is_a_replay(stack: DevStack) -> None:
    tid = stack.seed.contoso.id
    jti = str(uuid.uuid4())
    first = client_assertion(stack, token_endpoint(stack, tid), jti=jti)
    # The identical signed assertion twice is accepted: MSAL caches its assertion and sends it
    # again for up to 9 minutes, so refusing it would break every MSAL-based confidential app.
    for _ in range(2):
        resp = post_token(stack, tid, client_credentials_form(stack, tid, first))
        assert resp.status_code == 200, resp.text
    # A *new* assertion (different exp, fresh signature) that reuses the jti is a replay.
    second = client_assertion(stack, token_endpoint(stack, tid), jti=jti, lifetime=599)
    assert second != first
    resp = post_token(stack, tid, client_credentials_form(stack, tid, second))
    description = assert_http_error(resp, 401, "invalid_client", 50027)
    assert "jti" in description


def test_msal_default_ps256_assertion_with_x5t_s256_is_accepted(stack: DevStack) -> None:
    seed = stack.seed
    app, _ = confidential(stack, seed.contoso.id)
    result = app.acquire_token_for_client([f"{GRAPH}/.default"])
    assert "access_token" in result, result
    header = stack.entra.last_client_assertion_header
    assert header is not None
    assert header["alg"] == "PS256"
    assert "x5t" not in header
    # MSAL keeps the base64 padding on x5t#S256; the thumbprint is the same.
    assert str(header["x5t#S256"]).rstrip("=") == x5t_s256(seed.api_certificate)
    assert header["x5c_present"] is True


def test_hand_built_ps256_assertion_with_x5t_s256_is_accepted(stack: DevStack) -> None:
    tid = stack.seed.contoso.id
    assertion = client_assertion(stack, token_endpoint(stack, tid), alg="PS256")
    resp = post_token(stack, tid, client_credentials_form(stack, tid, assertion))
    assert resp.status_code == 200, resp.text
    assert stack.entra.last_client_assertion_header == {
        "alg": "PS256",
        "typ": "JWT",
        "x5t#S256": x5t_s256(stack.seed.api_certificate),
        "x5c_present": False,
    }


def test_msal_rs256_assertion_with_sha1_thumbprint_is_accepted(stack: DevStack) -> None:
    seed = stack.seed
    sha1_hex = hashlib.sha1(der(seed.api_certificate)).hexdigest()
    app, _ = confidential(
        stack,
        seed.contoso.id,
        credential={"private_key": pem_key(seed.api_key), "thumbprint": sha1_hex},
    )
    result = app.acquire_token_on_behalf_of(seed.user_token(seed.alice), [f"{GRAPH}/User.Read"])
    assert "access_token" in result, result
    header = stack.entra.last_client_assertion_header
    assert header is not None
    assert header["alg"] == "RS256"
    # MSAL turns the hex thumbprint into base64url and keeps the padding; Entra ignores it.
    assert str(header["x5t"]).rstrip("=") == x5t(seed.api_certificate)
    assert "x5t#S256" not in header
    assert header["x5c_present"] is False


# -- On-Behalf-Of refusals -------------------------------------------------------------------
def test_obo_assertion_signed_by_another_tenant_is_refused(stack: DevStack) -> None:
    seed = stack.seed
    fabrikam_token = seed.user_token(seed.bob)  # issued and signed by Fabrikam
    result, http = obo(stack, fabrikam_token, tenant_ref=seed.contoso.id)
    description = assert_msal_error(result, http, 400, "invalid_grant", 50013)
    assert "signature validation" in description


def test_obo_with_a_graph_token_is_refused(stack: DevStack) -> None:
    seed = stack.seed
    graph_token = stack.directory.user_token(
        seed.alice, seed.contoso, seed.spa, seed.graph, ["User.Read"]
    )
    assert "nonce" in jwt.get_unverified_header(graph_token)
    result, http = obo(stack, graph_token)
    assert_msal_error(result, http, 400, "invalid_grant", 50013)


def test_obo_with_a_token_for_another_api_is_refused(stack: DevStack) -> None:
    seed = stack.seed
    orders_token = stack.directory.user_token(
        seed.alice, seed.contoso, seed.spa, seed.other_api, ["Orders.Read"]
    )
    result, http = obo(stack, orders_token)
    description = assert_msal_error(result, http, 400, "invalid_grant", 500131)
    assert f"The audience in the assertion was '{seed.other_api.app_id}'" in description
    assert f"the expected audience is '{seed.api.app_id}'" in description


def test_obo_with_an_id_token_is_refused(stack: DevStack) -> None:
    seed = stack.seed
    id_token = stack.directory.id_token(seed.alice, seed.contoso, seed.spa)
    result, http = obo(stack, id_token)
    description = assert_msal_error(result, http, 400, "invalid_grant", 500131)
    assert f"The audience in the assertion was '{seed.spa.app_id}'" in description


def test_obo_with_an_expired_assertion_is_refused(stack: DevStack) -> None:
    seed = stack.seed
    expired = seed.user_token(seed.alice, lifetime=-600)
    result, http = obo(stack, expired)
    description = assert_msal_error(result, http, 400, "invalid_grant", 500133)
    assert "not within its valid time range" in description


def test_obo_with_an_app_only_token_is_refused(stack: DevStack) -> None:
    seed = stack.seed
    app_only = stack.directory.app_token(seed.contoso, seed.other_api, seed.api)
    assert claims_of(app_only)["aud"] == seed.api.app_id  # right audience, but no user
    result, http = obo(stack, app_only)
    # Real Entra's code for this case is not documented; the stand-in answers 50027.
    assert_msal_error(result, http, 400, "invalid_grant", 50027)


def test_obo_without_admin_consent_needs_consent(stack: DevStack) -> None:
    seed = stack.seed
    result, http = obo(stack, seed.user_token(seed.tess), tenant_ref=seed.tailspin.id)
    description = assert_msal_error(result, http, 400, "invalid_grant", 65001)
    assert result["suberror"] == "consent_required"
    assert seed.api.app_id in description


def test_obo_under_an_mfa_policy_is_a_claims_challenge_until_mfa(stack: DevStack) -> None:
    seed = stack.seed
    dave = seed.dave
    assert dave.policy == "mfa"
    result, http = obo(stack, seed.user_token(dave))
    description = assert_msal_error(result, http, 400, "interaction_required", 50076)
    assert result["suberror"]
    assert "multi-factor authentication" in description
    challenge = json.loads(result["claims"])  # a JSON string, passed on to the client
    (policy,) = challenge["access_token"].values()
    assert policy["essential"] is True
    assert policy["values"]

    after_mfa, _ = obo(stack, seed.user_token(dave, mfa=True))
    assert "access_token" in after_mfa, after_mfa
    claims = claims_of(after_mfa["access_token"])
    assert claims["oid"] == dave.object_ids[seed.contoso.id]
    assert "mfa" in claims["amr"]


@contextlib.contextmanager
def conditional_access(user, policy: str):
    """``user`` under ``policy`` for the block, then back to the seeded one."""
    saved, user.policy = user.policy, policy
    try:
        yield user
    finally:
        user.policy = saved


def test_obo_when_mfa_registration_is_required(stack: DevStack) -> None:
    with conditional_access(stack.seed.dave, "mfa_registration") as dave:
        result, http = obo(stack, stack.seed.user_token(dave))
        description = assert_msal_error(result, http, 400, "interaction_required", 50079)
        assert "enroll in multi-factor authentication" in description
        assert result["claims"]


def test_obo_blocked_by_conditional_access(stack: DevStack) -> None:
    with conditional_access(stack.seed.dave, "blocked") as dave:
        # Even with MFA done: a block is not something the user can satisfy.
        result, http = obo(stack, stack.seed.user_token(dave, mfa=True))
        description = assert_msal_error(result, http, 400, "access_denied", 53003)
        assert "blocked by Conditional Access" in description


def test_obo_for_the_middle_tiers_own_scope_is_refused(stack: DevStack) -> None:
    seed = stack.seed
    own_scope = f"{seed.api.identifier_uris[0]}/access_as_user"
    result, http = obo(stack, seed.user_token(seed.alice), [own_scope])
    description = assert_msal_error(result, http, 400, "invalid_request", 90009)
    assert "requesting a token for itself" in description


def test_obo_for_an_unknown_scope_is_invalid_scope(stack: DevStack) -> None:
    seed = stack.seed
    result, http = obo(stack, seed.user_token(seed.alice), [f"{GRAPH}/Files.Nothing.All"])
    description = assert_msal_error(result, http, 400, "invalid_scope", 70011)
    assert "Files.Nothing.All" in description


def test_obo_for_two_resources_at_once_is_refused(stack: DevStack) -> None:
    seed = stack.seed
    result, http = obo(
        stack,
        seed.user_token(seed.alice),
        [f"{GRAPH}/User.Read", "https://vault.azure.net/.default"],
    )
    assert_msal_error(result, http, 400, "invalid_scope", 28000)


def test_obo_for_an_unknown_resource_is_invalid_resource(stack: DevStack) -> None:
    seed = stack.seed
    result, http = obo(stack, seed.user_token(seed.alice), ["https://unknown.example/.default"])
    description = assert_msal_error(result, http, 400, "invalid_resource", 500011)
    assert "https://unknown.example" in description
    assert "contoso.onmicrosoft.com" in description


def test_token_request_without_grant_type_is_invalid_request(stack: DevStack) -> None:
    tid = stack.seed.contoso.id
    form = client_credentials_form(stack, tid)
    del form["grant_type"]
    description = assert_http_error(post_token(stack, tid, form), 400, "invalid_request", 900144)
    assert "'grant_type'" in description


def test_unsupported_grant_type_is_refused(stack: DevStack) -> None:
    tid = stack.seed.contoso.id
    form = client_credentials_form(stack, tid) | {"grant_type": "urn:example:magic"}
    description = assert_http_error(
        post_token(stack, tid, form), 400, "unsupported_grant_type", 70003
    )
    assert "urn:example:magic" in description


# -- fault switches and counters ----------------------------------------------------------
def test_throttling_fault_answers_429_with_retry_after_once(stack: DevStack) -> None:
    tid = stack.seed.contoso.id
    stack.entra.inject(Fault(status=429, retry_after=3, route="token", count=1))
    form = client_credentials_form(stack, tid)
    throttled = post_token(stack, tid, form)
    assert throttled.status_code == 429
    assert throttled.headers["Retry-After"] == "3"
    retried = post_token(stack, tid, form)
    assert retried.status_code == 200, retried.text
    assert "access_token" in retried.json()
    assert stack.entra.calls("token", tid) == 2


def test_msal_holds_back_after_retry_after(stack: DevStack) -> None:
    tid = stack.seed.contoso.id
    stack.entra.inject(Fault(status=429, retry_after=3, route="token", count=1))
    app, http = confidential(stack, tid)
    first = app.acquire_token_for_client([f"{GRAPH}/.default"])
    assert "access_token" not in first
    # Within the Retry-After window MSAL replays the 429 instead of calling again.
    second = app.acquire_token_for_client([f"{GRAPH}/.default"])
    assert "access_token" not in second
    assert [r.status_code for r in http.token_responses()] == [429]
    assert stack.entra.calls("token", tid) == 1


def test_dropped_connection_raises_connection_error(stack: DevStack) -> None:
    tid = stack.seed.contoso.id
    stack.entra.inject(Fault(drop=True, route="token", count=1))
    with pytest.raises(requests.ConnectionError):
        post_token(stack, tid, client_credentials_form(stack, tid))
    assert post_token(stack, tid, client_credentials_form(stack, tid)).status_code == 200

    stack.entra.inject(Fault(drop=True, route="token", count=1))
    app, _ = confidential(stack, tid)
    with pytest.raises(requests.ConnectionError):  # MSAL does not swallow it
        app.acquire_token_for_client([f"{GRAPH}/.default"])
    assert stack.entra.calls("token", tid) == 3


def test_latency_fault_delays_the_answer(stack: DevStack) -> None:
    tid = stack.seed.contoso.id
    latency = 0.3
    stack.entra.inject(Fault(latency=latency, route="token", count=1))
    started = time.perf_counter()
    resp = post_token(stack, tid, client_credentials_form(stack, tid))
    elapsed = time.perf_counter() - started
    assert resp.status_code == 200, resp.text  # slow, but answered
    assert elapsed >= latency


def test_counters_are_exact_per_route_and_tenant(stack: DevStack) -> None:
    seed = stack.seed
    contoso, fabrikam = seed.contoso, seed.fabrikam
    entra = stack.entra
    assert entra.calls("token") == entra.calls("discovery_v2") == 0

    result, _ = obo(stack, seed.user_token(seed.alice))
    assert "access_token" in result, result
    app, _ = confidential(stack, fabrikam.id)
    assert "access_token" in app.acquire_token_for_client([f"{GRAPH}/.default"])
    get(stack, "/contoso.onmicrosoft.com/v2.0/.well-known/openid-configuration")
    get(stack, f"/{contoso.id}/discovery/v2.0/keys")
    get(stack, "/nowhere/no/such/route")  # 404: no route, not counted

    # MSAL discovers once per application and posts once per acquisition.
    assert entra.calls("discovery_v2", contoso.id) == 1
    assert entra.calls("discovery_v2", fabrikam.id) == 1
    # Counters keep the tenant as it appeared in the path.
    assert entra.calls("discovery_v2", "contoso.onmicrosoft.com") == 1
    assert entra.calls("discovery_v2") == 3
    assert entra.calls("token", contoso.id) == 1
    assert entra.calls("token", fabrikam.id) == 1
    assert entra.calls("token") == 2
    assert entra.calls("keys", contoso.id) == 1
    assert entra.calls("token_v1") == entra.calls("keys_v1") == entra.calls("discovery_v1") == 0
    assert sum(entra.counters.values()) == 6
