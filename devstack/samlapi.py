"""A downstream API that accepts only SAML assertions ("API 2" for JWT-to-SAML exchange).

It reads the assertion the way Apache CXF's JAX-RS SAML handler does:
``Authorization: SAML <base64 of the assertion XML>`` with the standard base64 alphabet
(RFC 4648 section 4), so a middle tier that forwards Entra's base64url text unchanged is
refused. It then behaves like a SAML relying party configured with one identity provider
(Contoso): the signature must cover the assertion and verify with that tenant's certificate,
every audience restriction must name its entity ID, the assertion and its bearer confirmation
must be within their validity periods and ``Recipient`` must be its own URL. ``GET /whoami``
answers what it believed.
"""

from __future__ import annotations

import base64
import binascii

from devstack.directory import Directory, Tenant
from devstack.httpserver import Request, Response, Service
from devstack.saml import SamlRejected, verify


class SamlApi(Service):
    name = "saml"

    def __init__(
        self, directory: Directory, entity_id: str, tenant: Tenant, recipient: str
    ) -> None:
        super().__init__()
        self.directory = directory
        self.entity_id = entity_id
        self.tenant = tenant  # the one identity provider its federation metadata names
        self.recipient = recipient  # its assertion consumer URL, checked against Recipient
        self.route("GET", "/whoami", "whoami", self._whoami)

    def _whoami(self, req: Request) -> Response:
        scheme, _, value = req.headers.get("authorization", "").partition(" ")
        if scheme != "SAML" or not value:
            return self._refuse("expected 'Authorization: SAML <base64 assertion>'")
        try:
            xml = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            return self._refuse("the assertion is not standard base64")
        trusted = {  # read per request: the tenant's keys may roll over
            self.directory.issuer_v1(self.tenant.id): [
                k.certificate for k in self.tenant.keys if k.certificate
            ]
        }
        try:
            statement = verify(xml, trusted, self.entity_id, self.directory.clock(), self.recipient)
        except SamlRejected as exc:
            return self._refuse(str(exc))
        return Response.json(
            {
                "subject": statement.subject,
                "oid": statement.object_id,
                "tid": statement.tenant_id,
                "issuer": statement.issuer,
                "audience": statement.audience,
                "saml_version": statement.version,
                "recipient": statement.recipient,
            }
        )

    @staticmethod
    def _refuse(reason: str) -> Response:
        return Response.json(
            {"error": "invalid_token", "error_description": reason},
            401,
            {"WWW-Authenticate": 'SAML realm="saml-api"'},
        )
