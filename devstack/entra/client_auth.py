"""How the token endpoint authenticates the calling app: a secret, or a signed client assertion.

From "Microsoft identity platform application authentication certificate credentials" (the
assertion's header ``x5t``/``x5t#S256``, claims ``aud``, ``iss``, ``sub``, ``jti``, ``exp``)
and the AADSTS codes Entra answers for each mistake. An assertion whose issuer is a URL is an
identity provider's token, accepted only through a federated credential (``federation.py``).
"""

from __future__ import annotations

import threading

import jwt

from devstack.directory import App, Directory, Tenant
from devstack.entra.errors import EntraError, invalid_client, require
from devstack.entra.federation import verify_federated_assertion
from devstack.httpserver import Request

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
_BAD_SIGNATURE = (
    "Client assertion failed signature validation. [Reason - The provided signature value "
    "did not match the expected signature value.]"
)


class ClientAuthentication:
    """Checks each client; remembers the ``jti`` of each assertion it accepted (replays)."""

    def __init__(self, directory: Directory) -> None:
        self.directory = directory
        self._seen_jti: dict[str, str] = {}
        self._jti_lock = threading.Lock()
        self.last_client_assertion_header: dict[str, object] | None = None

    def authenticate(self, req: Request, form: dict[str, str], tenant: Tenant, *, v1: bool) -> App:
        client_id = require(form, "client_id")
        app = self.directory.apps.get(client_id)
        if app is None or (tenant.id, client_id) not in self.directory.service_principals:
            raise EntraError(
                "unauthorized_client",
                700016,
                f"Application with identifier '{client_id}' was not found in the directory "
                f"'{tenant.domain}'. This can happen if the application has not been installed "
                "by the administrator of the tenant or consented to by any user in the tenant. "
                "You might have sent your authentication request to the wrong tenant.",
            )
        if "client_secret" in form:
            if form["client_secret"] not in app.secrets:
                raise invalid_client(
                    7000215,
                    "Invalid client secret provided. Ensure the secret being sent in the request "
                    "is the client secret value, not the client secret ID, for a secret added to "
                    f"app '{client_id}'.",
                )
            return app
        either = "The request body must contain the following parameter: 'client_assertion' or "
        assertion = form.get("client_assertion")
        if not assertion:
            raise invalid_client(7000218, either + "'client_secret'.")
        if form.get("client_assertion_type") != ASSERTION_TYPE:
            raise invalid_client(
                7000218,
                either + f"'client_secret' (client_assertion_type must be {ASSERTION_TYPE}).",
            )
        try:
            claims = jwt.decode(assertion, options={"verify_signature": False})
        except jwt.PyJWTError:
            raise invalid_client(50027, "JWT token is invalid or malformed.") from None
        # An assertion the app signed itself names a client id as issuer; an identity
        # provider's token (issuer URL) is accepted only through a federated credential.
        if str(claims.get("iss", "")).startswith("https://"):
            self.last_client_assertion_header = {"federated": True, "iss": str(claims["iss"])}
            verify_federated_assertion(self.directory, assertion, claims, app)
        else:
            self._verify_client_assertion(req, assertion, app, tenant, v1=v1)
        return app

    def _verify_client_assertion(
        self, req: Request, assertion: str, app: App, tenant: Tenant, *, v1: bool
    ) -> None:
        header = jwt.get_unverified_header(assertion)
        self.last_client_assertion_header = {k: v for k, v in header.items() if k != "x5c"} | {
            "x5c_present": "x5c" in header,
        }
        alg = header.get("alg")
        cert = app.certificate_by_thumbprint(header.get("x5t"), header.get("x5t#S256"))
        if cert is None:
            thumb = header.get("x5t#S256") or header.get("x5t")
            raise invalid_client(
                700027,
                "The certificate with identifier used to sign the client assertion is not "
                "registered on application. [Reason - The key was not found., Thumbprint of key "
                f"used by client: '{thumb}', Please visit the Azure Portal, Graph Explorer or "
                f"directly use MS Graph to see configured keys for app Id '{app.app_id}'.]",
            )
        if alg not in ("RS256", "PS256"):
            raise invalid_client(
                700027,
                "Client assertion failed signature validation. [Reason - The algorithm "
                f"'{alg}' is not supported.]",
            )
        host = self.directory.authority_host
        endpoint = "oauth2/token" if v1 else "oauth2/v2.0/token"
        audiences = {
            f"{host}/{ref}/{endpoint}" for ref in (req.params["tenant"], tenant.id, tenant.domain)
        }
        # times are checked below against the directory's clock (tests move it)
        unchecked = ("verify_aud", "verify_exp", "verify_nbf", "verify_iat")
        options = dict.fromkeys(unchecked, False) | {"require": ["exp", "iss", "sub", "jti", "aud"]}
        try:
            claims = jwt.decode(assertion, cert.public_key(), algorithms=[alg], options=options)
        except jwt.MissingRequiredClaimError as exc:
            raise invalid_client(
                50027, f"JWT token is invalid or malformed. Missing claim '{exc.claim}'."
            ) from None
        except jwt.PyJWTError:
            raise invalid_client(700027, _BAD_SIGNATURE) from None
        if claims["aud"] not in audiences:
            raise invalid_client(
                700023,
                "Client assertion audience claim does not match Realm issuer. Audience "
                f"'{claims['aud']}'; expected the token endpoint, one of: {sorted(audiences)}.",
            )
        if claims["iss"] != app.app_id or claims["sub"] != app.app_id:
            raise invalid_client(
                700021,
                "Client assertion application identifier doesn't match 'client_id' parameter.",
            )
        now = self.directory.clock()
        if float(claims["exp"]) < now - 300 or float(claims.get("nbf", 0)) > now + 300:
            raise invalid_client(700024, "Client assertion is not within its valid time range.")
        # Entra accepts the same signed assertion again while it is valid (MSAL reuses one for
        # up to 9 minutes); a jti that comes back in a *different* assertion is a replay.
        with self._jti_lock:
            seen = self._seen_jti.setdefault(str(claims["jti"]), assertion)
        if seen != assertion:
            raise invalid_client(
                50027,
                "JWT token is invalid: the 'jti' of the client assertion was already used.",
            )
