"""The Entra ID stand-in's endpoints: discovery, signing keys, and the v1 and v2 token endpoints.

``_token`` runs a token request in Entra's order: the form, the grant type, the tenant, the
client's authentication, what is asked for, then the grant; every refusal is an
:class:`~devstack.entra.errors.EntraError` rendered in Entra's error JSON.
"""

from __future__ import annotations

from collections.abc import Callable

from devstack.directory import Directory
from devstack.entra import discovery, grants, token_request
from devstack.entra.client_auth import ClientAuthentication
from devstack.entra.errors import EntraError, error_response, missing, require
from devstack.entra.token_request import JWT_BEARER
from devstack.entra.token_response import shape
from devstack.httpserver import Request, Response, Service

_Endpoint = Callable[[Request], Response]


class Entra(Service):
    name = "entra"

    def __init__(self, directory: Directory) -> None:
        super().__init__()
        self.directory = directory
        self.clients = ClientAuthentication(directory)
        # Simulates a token endpoint that ignores requested_token_type and answers a JWT.
        self.ignore_requested_token_type = False
        routes: list[tuple[str, str, str, _Endpoint]] = [
            (
                "GET",
                "/{tenant}/v2.0/.well-known/openid-configuration",
                "discovery_v2",
                lambda req: discovery.openid_configuration(directory, req, v2=True),
            ),
            (
                "GET",
                "/{tenant}/.well-known/openid-configuration",
                "discovery_v1",
                lambda req: discovery.openid_configuration(directory, req, v2=False),
            ),
            (
                "GET",
                "/{tenant}/discovery/v2.0/keys",
                "keys",
                lambda req: discovery.signing_keys(directory, req),
            ),
            (
                "GET",
                "/{tenant}/discovery/keys",
                "keys_v1",
                lambda req: discovery.signing_keys(directory, req),
            ),
            (
                "POST",
                "/{tenant}/oauth2/v2.0/token",
                "token",
                lambda req: self._token(req, v1=False),
            ),
            ("POST", "/{tenant}/oauth2/token", "token_v1", lambda req: self._token(req, v1=True)),
        ]
        for method, pattern, name, endpoint in routes:
            self.route(method, pattern, name, self._answering_errors(endpoint))

    @property
    def last_client_assertion_header(self) -> dict[str, object] | None:
        """The header of the last client assertion (``x5c`` only as ``x5c_present``), or
        ``{"federated": True, "iss": ...}`` for another issuer's token: what tests check."""
        return self.clients.last_client_assertion_header

    def _answering_errors(self, endpoint: _Endpoint) -> _Endpoint:
        def answer(req: Request) -> Response:
            try:
                return endpoint(req)
            except EntraError as err:
                return error_response(self.directory, req, err)

        return answer

    def _token(self, req: Request, *, v1: bool) -> Response:
        form = req.form()
        if "application/x-www-form-urlencoded" not in req.headers.get("content-type", ""):
            raise missing("grant_type")
        grant = require(form, "grant_type")
        if grant not in ("client_credentials", JWT_BEARER):
            raise EntraError(
                "unsupported_grant_type",
                70003,
                f"The app requested an unsupported grant type '{grant}'.",
            )
        tenant = token_request.token_tenant(self.directory, req, form, grant)
        client = self.clients.authenticate(req, form, tenant, v1=v1)
        resource, scopes = token_request.requested(self.directory, form, tenant, v1=v1)
        saml_version = token_request.saml_version(
            form, grant, scopes, ignore_token_type=self.ignore_requested_token_type
        )
        if grant == "client_credentials":
            body = grants.client_credentials(self.directory, tenant, client, resource, scopes)
        else:
            body = grants.on_behalf_of(
                self.directory, form, tenant, client, resource, scopes, saml_version
            )
        answer = shape(self.directory, body, resource, v1=v1)
        return Response.json(answer, headers={"Cache-Control": "no-store"})
