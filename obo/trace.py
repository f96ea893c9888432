"""Verbose exchange traces (``OBO_TRACE=verbose``): what each token request carried, as a
network capture would show it, minus every value that grants anything.

Recorded: the names of the form parameters, and from the client assertion only its header
(algorithm, ``x5t``/``x5t#S256`` thumbprints, and the subject and expiry of the ``x5c``
certificate). Never a parameter value, the user's assertion, the client assertion's claims
or signature, or a key. The notes are per thread, so concurrent exchanges never mix.
"""

from __future__ import annotations

import base64
import binascii
import threading
from typing import Any

import jwt
from cryptography import x509

HEADER_FIELDS = ("alg", "typ", "kid", "x5t", "x5t#S256")


class RequestTrace:
    def __init__(self) -> None:
        self._local = threading.local()

    def start(self) -> None:
        self._local.requests = []

    def note(self, data: Any) -> None:
        requests: list[dict[str, Any]] | None = getattr(self._local, "requests", None)
        if requests is None or not isinstance(data, dict):
            return
        entry: dict[str, Any] = {"parameters": sorted(str(name) for name in data)}
        client_assertion = data.get("client_assertion")
        if isinstance(client_assertion, bytes):  # MSAL passes its assertion as bytes
            client_assertion = client_assertion.decode("ascii", "replace")
        if isinstance(client_assertion, str):
            entry["client_assertion_header"] = assertion_header(client_assertion)
        requests.append(entry)

    def collect(self) -> list[dict[str, Any]]:
        requests: list[dict[str, Any]] = getattr(self._local, "requests", None) or []
        self._local.requests = None
        return requests


def assertion_header(assertion: str) -> dict[str, Any]:
    """The public part of a client assertion's JOSE header, with ``x5c`` summarised."""
    try:
        header = jwt.get_unverified_header(assertion)
    except jwt.PyJWTError:
        return {"malformed": True}
    summary: dict[str, Any] = {
        name: header[name] for name in HEADER_FIELDS if isinstance(header.get(name), str)
    }
    chain = header.get("x5c")
    if isinstance(chain, list) and chain and isinstance(chain[0], str):
        der = "".join(chain[0].split())  # MSAL keeps the PEM body's line breaks
        try:
            cert = x509.load_der_x509_certificate(base64.b64decode(der, validate=True))
        except (ValueError, binascii.Error):
            summary["x5c"] = "unreadable"
        else:
            summary["x5c_subject"] = cert.subject.rfc4514_string()
            summary["x5c_not_after"] = cert.not_valid_after_utc.strftime("%Y-%m-%dT%H:%M:%SZ")
    return summary
