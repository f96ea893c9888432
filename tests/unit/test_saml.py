"""Decoding Entra's SAML answer (base64url without padding) and re-encoding it for the
downstream API, with the assertions the Entra stand-in signs."""

from __future__ import annotations

import base64

import pytest

from devstack import saml as issuer
from devstack.keys import SigningKey
from obo.errors import DependencyFailed
from obo.saml import authorization, decode_assertion


@pytest.fixture(scope="module")
def assertions() -> dict[str, bytes]:
    key = SigningKey()

    def make(version: int, subject: str) -> bytes:
        return issuer.issue(
            version,
            key=key,
            issuer="https://sts.windows.net/t/",
            audience="https://sp",
            recipient=None,
            subject=subject,
            object_id="o",
            tenant_id="t",
            now=0,
            lifetime=60,
        )

    # a subject with '>>?' puts '-' or '_' into the base64url text
    return {"saml2": make(2, "ab>>?@x.example"), "saml1": make(1, "ab>>?@x.example")}


def entra_form(xml: bytes) -> str:
    return base64.urlsafe_b64encode(xml).rstrip(b"=").decode()


@pytest.mark.parametrize("kind", ["saml2", "saml1"])
def test_base64url_without_padding_decodes_to_the_exact_assertion(assertions, kind):
    text = entra_form(assertions[kind])
    assert len(text) % 4 or "-" in text or "_" in text  # what a standard decoder trips on
    assert decode_assertion(text, kind) == assertions[kind]
    assert decode_assertion(text + "=" * (-len(text) % 4), kind) == assertions[kind]


def test_downstream_form_is_standard_base64_of_the_same_bytes(assertions):
    value = authorization(assertions["saml2"])
    scheme, encoded = value.split(" ")
    assert scheme == "SAML"
    assert base64.b64decode(encoded, validate=True) == assertions["saml2"]


def refused(value: str, kind: str, fragment: str) -> None:
    with pytest.raises(DependencyFailed) as info:
        decode_assertion(value, kind)
    assert info.value.code == "OBO5010" and info.value.status == 502
    assert fragment in info.value.detail


def test_a_jwt_is_not_an_assertion():
    refused("eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln", "saml2", "not base64url")


def test_the_other_saml_version_is_refused(assertions):
    refused(entra_form(assertions["saml1"]), "saml2", "SAML:1.0:assertion}Assertion")
    refused(entra_form(assertions["saml2"]), "saml1", "SAML 1.1")


@pytest.mark.parametrize(
    ("xml", "fragment"),
    [
        (b"\xff\xfe<Assertion/>", "UTF-8"),
        (
            b'<!DOCTYPE a [<!ENTITY x "y">]><Assertion xmlns="urn:oasis:names:tc:SAML:2.0:assertion"/>',
            "document type",
        ),
        (b"<Assertion xmlns='urn:oasis:names:tc:SAML:2.0:assertion'>", "missing"),
        (b"<Response xmlns='urn:oasis:names:tc:SAML:2.0:protocol'/>", "SAML:2.0:protocol}Response"),
        (b"", "not base64url"),
    ],
)
def test_anything_else_is_refused_with_the_reason(xml, fragment):
    refused(entra_form(xml), "saml2", fragment)


ROOT = b'<Assertion xmlns="urn:oasis:names:tc:SAML:2.0:assertion"/>'
ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


@pytest.mark.parametrize("spaces", [0, 1, 2])
def test_only_canonical_base64url_is_accepted(spaces):
    xml = ROOT + b" " * spaces
    text = entra_form(xml)
    padded = text + "=" * (-len(text) % 4)
    assert decode_assertion(text, "saml2") == decode_assertion(padded, "saml2") == xml
    refused(padded + "====", "saml2", "not base64url")  # excess padding
    if len(text) % 4 == 0:
        refused(text + "=", "saml2", "canonical")  # padding where none is due
    else:  # unused trailing bits set: decodes, but is not what Entra sends
        refused(text[:-1] + ALPHABET[ALPHABET.index(text[-1]) + 1], "saml2", "canonical")


def test_a_declared_encoding_the_downstream_would_misread_is_refused():
    xml = b'<?xml version="1.0" encoding="UTF-16"?><Assertion xmlns="urn:oasis:names:tc:SAML:2.0:assertion"/>'
    refused(entra_form(xml), "saml2", "missing")


def test_a_byte_order_mark_and_comments_before_the_root_are_fine():
    xml = b'\xef\xbb\xbf<?xml version="1.0" encoding="utf-8"?><!-- x --><Assertion xmlns="urn:oasis:names:tc:SAML:2.0:assertion"/>'
    assert decode_assertion(entra_form(xml), "saml2") == xml
