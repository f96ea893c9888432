"""JWT-to-SAML On-Behalf-Of: a SAML 2.0 or 1.1 assertion for a downstream API that accepts
only SAML, asked for with ``requested_token_type`` (a Microsoft extension to OBO).

- Entra returns the assertion (UTF-8 XML) in ``access_token``, base64url-encoded without
  padding. Decoding it with the standard alphabet fails on ``-``/``_``, or silently drops
  them, so it is decoded strictly here and checked to be the assertion that was asked for.
- The downstream API receives ``Authorization: SAML <base64 of the XML>`` in the standard
  alphabet with padding, the form Apache CXF's JAX-RS SAML handler reads. A service that
  wants another form (a WS-Security header, an RFC 7522 grant) needs only
  :func:`authorization` changed.
- The v1 endpoint names the target with ``resource``; MSAL speaks only v2, so
  :class:`V1Client` makes that one request, authenticated with the same credential.
"""

from __future__ import annotations

import base64
import re
import time
import uuid
from collections.abc import Callable
from typing import Any, Protocol
from xml.etree.ElementTree import ParseError, XMLPullParser

from obo.codes import Code
from obo.credentials import ClientCredential
from obo.errors import DependencyFailed

TOKEN_TYPES = {
    "saml2": "urn:ietf:params:oauth:token-type:saml2",
    "saml1": "urn:ietf:params:oauth:token-type:saml1",
}
_ROOTS = {
    "saml2": "{urn:oasis:names:tc:SAML:2.0:assertion}Assertion",
    "saml1": "{urn:oasis:names:tc:SAML:1.0:assertion}Assertion",
}
_NAMES = {"saml2": "SAML 2.0", "saml1": "SAML 1.1"}
_BASE64URL = re.compile(r"[A-Za-z0-9_-]+={0,2}")
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


def decode_assertion(value: str, token_type: str) -> bytes:
    """Entra's base64url ``access_token`` as the assertion's XML, or OBO5010 (502)."""
    wanted = _NAMES[token_type]
    if not _BASE64URL.fullmatch(value):
        raise _not_saml(wanted, "it is not base64url text (a JWT, for one, has dots)")
    body = value.rstrip("=")
    padding = "=" * (-len(body) % 4)
    if value not in (body, body + padding):
        raise _not_saml(wanted, "it is not canonical base64url (padding)")
    try:
        xml = base64.b64decode(body + padding, altchars=b"-_", validate=True)
        text = xml.decode("utf-8")
    except (ValueError, UnicodeDecodeError):
        raise _not_saml(wanted, "it does not decode to UTF-8 text") from None
    if base64.urlsafe_b64encode(xml).decode().rstrip("=") != body:  # stray trailing bits
        raise _not_saml(wanted, "it is not canonical base64url")
    if "<!DOCTYPE" in text or "<!ENTITY" in text:  # never in an assertion; refuse, not expand
        raise _not_saml(wanted, "it carries a document type declaration")
    root = _root_tag(xml)
    if root != _ROOTS[token_type]:
        raise _not_saml(wanted, f"its root element is {root or 'missing'}")
    return xml


def authorization(xml: bytes) -> str:
    """The downstream's ``Authorization`` value for an assertion (see the module docstring)."""
    return "SAML " + base64.b64encode(xml).decode("ascii")


def _root_tag(xml: bytes) -> str | None:
    # Only the answer from Entra (over verified TLS) reaches here, DTDs were refused above,
    # and expat limits entity expansion: reading one start tag is safe. Bytes, not text, so
    # a declared encoding that is not the UTF-8 the downstream will read fails here too.
    parser: XMLPullParser[Any] = XMLPullParser(events=("start",))
    try:
        parser.feed(xml)
        parser.close()
    except ParseError:
        return None
    for event in parser.read_events():
        return str(getattr(event[-1], "tag", "")) or None
    return None


def _not_saml(wanted: str, why: str) -> DependencyFailed:
    return DependencyFailed(
        Code.NOT_SAML,
        f"Entra ID's answer is not the {wanted} assertion that was requested: {why}. Check "
        "OBO_SAML_ENDPOINT and that the downstream application is configured for SAML "
        "single sign-on.",
    )


class HttpPoster(Protocol):
    """:class:`obo.entra_http.EntraHttpClient`: a JSON object, or an ``EntraFailure``."""

    def post(self, url: str, **kwargs: Any) -> Any: ...


class V1Client:
    """OBO on the v1 token endpoint: ``resource=<entity id>`` and ``requested_token_type``.

    The client assertion is the credential's own (what MSAL would build from the certificate,
    or the managed identity's token), with the v1 token endpoint as its audience.
    """

    def __init__(
        self,
        authority_host: str,
        client_id: str,
        http: HttpPoster,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._host = authority_host
        self._client_id = client_id
        self._http = http
        self._clock = clock

    def on_behalf_of(
        self, credential: ClientCredential, tid: str, assertion: str, resource: str, token_type: str
    ) -> Any:
        """Entra's answer, a JSON object (the HTTP client refuses anything else)."""
        endpoint = f"{self._host}/{tid}/oauth2/token"
        form = {
            "grant_type": JWT_BEARER,
            "assertion": assertion,
            "client_id": self._client_id,
            "resource": resource,
            "requested_token_use": "on_behalf_of",
            "requested_token_type": TOKEN_TYPES[token_type],
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": credential.assertion(self._client_id, endpoint, self._clock()),
        }
        response = self._http.post(
            endpoint, data=form, headers={"client-request-id": str(uuid.uuid4())}
        )
        return response.json()
