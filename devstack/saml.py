"""SAML 2.0 and 1.1 assertions as Entra issues them from a JWT-to-SAML On-Behalf-Of
exchange, and their verification as a SAML relying party performs it.

Follows the OBO documentation's section on SAML assertions and the SAML token claims
reference: the issuer is ``https://sts.windows.net/{tid}/``; the assertion is signed with
the tenant's signing certificate (enveloped XML-DSig, exclusive c14n, RSA-SHA256); the
audience is the target application's identifier (its entity ID); the bearer subject
confirmation's ``Recipient`` is the target's first reply URL, and it carries no
``InResponseTo`` because no SAML request preceded it.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping
from dataclasses import dataclass

from cryptography import x509
from lxml import etree
from signxml import InvalidInput, InvalidSignature, XMLSigner, XMLVerifier
from signxml.algorithms import CanonicalizationMethod

from devstack.keys import SigningKey

SAML2 = "urn:ietf:params:oauth:token-type:saml2"
SAML1 = "urn:ietf:params:oauth:token-type:saml1"
NS2 = "urn:oasis:names:tc:SAML:2.0:assertion"
NS1 = "urn:oasis:names:tc:SAML:1.0:assertion"
DS = "http://www.w3.org/2000/09/xmldsig#"
EMAIL_FORMAT = "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress"
CLAIMS = "http://schemas.microsoft.com/identity/claims"
SKEW = 300  # seconds of clock skew a relying party tolerates


@dataclass(frozen=True)
class Statement:
    """What a verified assertion says about the user."""

    version: int  # 2 or 1
    issuer: str
    audience: str
    subject: str
    object_id: str
    tenant_id: str
    recipient: str | None


class SamlRejected(Exception):
    """A relying party refuses the assertion; the message says why (no assertion content)."""


def issue(
    version: int,
    *,
    key: SigningKey,
    issuer: str,
    audience: str,
    recipient: str | None,
    subject: str,
    object_id: str,
    tenant_id: str,
    now: float,
    lifetime: int,
    also_restricted_to: str | None = None,
) -> bytes:
    """A signed assertion (UTF-8 XML) for ``subject`` at ``audience``. Entra writes one
    audience restriction; ``also_restricted_to`` adds a second (tests of relying parties)."""
    times = {"NotBefore": _iso(now), "NotOnOrAfter": _iso(now + lifetime)}
    attributes = {f"{CLAIMS}/objectidentifier": object_id, f"{CLAIMS}/tenantid": tenant_id}
    assertion_id = f"_{uuid.uuid4()}"
    root = (_saml2 if version == 2 else _saml1)(
        assertion_id, issuer, audience, recipient, subject, attributes, times, now
    )
    if also_restricted_to:
        ns = NS2 if version == 2 else NS1
        tag = "AudienceRestriction" if version == 2 else "AudienceRestrictionCondition"
        extra = etree.SubElement(root.find(f"{{{ns}}}Conditions"), f"{{{ns}}}{tag}")
        etree.SubElement(extra, f"{{{ns}}}Audience").text = also_restricted_to
    signer = XMLSigner(c14n_algorithm=CanonicalizationMethod.EXCLUSIVE_XML_CANONICALIZATION_1_0)
    signed = signer.sign(
        root,
        key=key.private_key,
        cert=[key.certificate],
        reference_uri=assertion_id,
        id_attribute="ID" if version == 2 else "AssertionID",
    )
    return etree.tostring(signed, xml_declaration=False, encoding="utf-8")


def _saml2(assertion_id, issuer, audience, recipient, subject, attributes, times, now):
    e = _maker(NS2)
    confirmation = e("SubjectConfirmationData", NotOnOrAfter=times["NotOnOrAfter"])
    if recipient:
        confirmation.set("Recipient", recipient)
    root = e("Assertion", ID=assertion_id, IssueInstant=_iso(now), Version="2.0")
    root.append(e("Issuer", text=issuer))
    # the SAML 2.0 schema wants the signature right after Issuer
    root.append(etree.Element(f"{{{DS}}}Signature", Id="placeholder", nsmap={"ds": DS}))
    subject_el = e("Subject")
    subject_el.append(e("NameID", text=subject, Format=EMAIL_FORMAT))
    method = e("SubjectConfirmation", Method="urn:oasis:names:tc:SAML:2.0:cm:bearer")
    method.append(confirmation)
    subject_el.append(method)
    root.append(subject_el)
    root.append(_conditions(e, times, "AudienceRestriction", audience))
    statement = e("AttributeStatement")
    for name, value in attributes.items():
        attribute = e("Attribute", Name=name)
        attribute.append(e("AttributeValue", text=value))
        statement.append(attribute)
    root.append(statement)
    authn = e("AuthnStatement", AuthnInstant=_iso(now), SessionIndex=assertion_id)
    context = e("AuthnContext")
    password = "urn:oasis:names:tc:SAML:2.0:ac:classes:Password"
    context.append(e("AuthnContextClassRef", text=password))
    authn.append(context)
    root.append(authn)
    return root


def _conditions(e, times, restriction_tag: str, audience: str):
    conditions = e("Conditions", **times)
    restriction = e(restriction_tag)
    restriction.append(e("Audience", text=audience))
    conditions.append(restriction)
    return conditions


def _saml1(assertion_id, issuer, audience, recipient, subject, attributes, times, now):
    e = _maker(NS1)

    def subject_el():
        element = e("Subject")
        element.append(e("NameIdentifier", text=subject, Format=EMAIL_FORMAT))
        confirmation = e("SubjectConfirmation")
        confirmation.append(e("ConfirmationMethod", text="urn:oasis:names:tc:SAML:1.0:cm:bearer"))
        element.append(confirmation)
        return element

    root = e(
        "Assertion",
        AssertionID=assertion_id,
        Issuer=issuer,
        IssueInstant=_iso(now),
        MajorVersion="1",
        MinorVersion="1",
    )
    root.append(_conditions(e, times, "AudienceRestrictionCondition", audience))
    statement = e("AttributeStatement")
    statement.append(subject_el())
    for name, value in attributes.items():
        namespace, _, short = name.rpartition("/")
        attribute = e("Attribute", AttributeName=short, AttributeNamespace=namespace)
        attribute.append(e("AttributeValue", text=value))
        statement.append(attribute)
    root.append(statement)
    authn = e(
        "AuthenticationStatement",
        AuthenticationInstant=_iso(now),
        AuthenticationMethod="urn:oasis:names:tc:SAML:1.0:am:password",
    )
    authn.append(subject_el())
    root.append(authn)
    return root  # SAML 1.1 puts the signature last, where the signer appends it


def verify(
    xml: bytes,
    trusted: Mapping[str, list[x509.Certificate]],
    audience: str,
    now: float,
    recipient: str | None = None,
) -> Statement:
    """Check what a SAML relying party checks: a signature over the whole assertion by the
    claimed issuer's certificate, every audience restriction naming us, the validity period,
    the bearer confirmation (its expiry, and ``Recipient`` when one is configured).

    Everything is read from the signed element signxml returns, never from the input, so a
    second, unsigned assertion wrapped around a signed one cannot change what is believed.
    """
    try:
        parser = etree.XMLParser(resolve_entities=False, no_network=True)
        unverified = etree.fromstring(xml, parser=parser)
    except etree.XMLSyntaxError as exc:
        raise SamlRejected("not well-formed XML") from exc
    version = {f"{{{NS2}}}Assertion": 2, f"{{{NS1}}}Assertion": 1}.get(unverified.tag)
    if version is None:
        raise SamlRejected(f"not a SAML assertion (root element {unverified.tag})")
    claimed = _issuer(unverified, version)
    certificates = trusted.get(claimed)
    if not certificates:
        raise SamlRejected(f"issuer {claimed!r} is not trusted")
    signed = _verified(xml, certificates, version)
    id_attribute = "ID" if version == 2 else "AssertionID"
    if signed.tag != unverified.tag or signed.get(id_attribute) != unverified.get(id_attribute):
        raise SamlRejected("the signature does not cover the assertion itself")
    if _issuer(signed, version) != claimed:
        raise SamlRejected("the signed assertion names another issuer")
    ns = {"s": NS2 if version == 2 else NS1}
    _check_conditions(signed, ns, version, audience, now)
    if version == 2:
        subject = signed.findtext("s:Subject/s:NameID", namespaces=ns)
        found_recipient = _check_bearer_v2(signed, ns, now, recipient)
        attributes = {
            a.get("Name"): a.findtext("s:AttributeValue", namespaces=ns)
            for a in signed.iterfind("s:AttributeStatement/s:Attribute", ns)
        }
    else:
        subject = signed.findtext("s:AttributeStatement/s:Subject/s:NameIdentifier", namespaces=ns)
        method = signed.findtext(
            "s:AttributeStatement/s:Subject/s:SubjectConfirmation/s:ConfirmationMethod",
            namespaces=ns,
        )
        if method != "urn:oasis:names:tc:SAML:1.0:cm:bearer":
            raise SamlRejected(f"confirmation method {method!r} is not bearer")
        found_recipient = None
        attributes = {
            f"{a.get('AttributeNamespace')}/{a.get('AttributeName')}": a.findtext(
                "s:AttributeValue", namespaces=ns
            )
            for a in signed.iterfind("s:AttributeStatement/s:Attribute", ns)
        }
    return Statement(
        version,
        claimed,
        audience,
        subject or "",
        attributes.get(f"{CLAIMS}/objectidentifier") or "",
        attributes.get(f"{CLAIMS}/tenantid") or "",
        found_recipient,
    )


def _check_conditions(signed, ns: dict[str, str], version: int, audience: str, now: float) -> None:
    if _epoch(signed.get("IssueInstant")) > now + SKEW:
        raise SamlRejected("the assertion was issued in the future")
    conditions = signed.find("s:Conditions", ns)
    if conditions is None:
        raise SamlRejected("the assertion has no Conditions")
    tag = "s:AudienceRestriction" if version == 2 else "s:AudienceRestrictionCondition"
    restrictions = conditions.findall(tag, ns)
    # SAML core 2.5.1.4: every restriction must name this relying party
    if not restrictions or any(
        audience not in [a.text for a in r.findall("s:Audience", ns)] for r in restrictions
    ):
        named = [a.text for r in restrictions for a in r.findall("s:Audience", ns)]
        raise SamlRejected(f"audience {named} is not {audience!r}")
    not_before = _epoch(conditions.get("NotBefore"))
    not_after = _epoch(conditions.get("NotOnOrAfter"))
    if now + SKEW < not_before or now - SKEW >= not_after:
        raise SamlRejected("the assertion is outside its validity period")


def _check_bearer_v2(signed, ns: dict[str, str], now: float, recipient: str | None) -> str | None:
    confirmation = signed.find("s:Subject/s:SubjectConfirmation", ns)
    bearer = "urn:oasis:names:tc:SAML:2.0:cm:bearer"
    if confirmation is None or confirmation.get("Method") != bearer:
        raise SamlRejected("the subject confirmation is not bearer")
    data = confirmation.find("s:SubjectConfirmationData", ns)
    if data is None:
        raise SamlRejected("the bearer confirmation has no SubjectConfirmationData")
    if data.get("InResponseTo"):
        raise SamlRejected("unexpected InResponseTo")
    if now - SKEW >= _epoch(data.get("NotOnOrAfter")):
        raise SamlRejected("the bearer confirmation has expired (outside its validity period)")
    found = data.get("Recipient")
    if recipient is not None and found != recipient:
        raise SamlRejected(f"recipient {found!r} is not {recipient!r}")
    return found


def _verified(xml: bytes, certificates: list[x509.Certificate], version: int):
    last: Exception | None = None
    for cert in certificates:
        try:
            result = XMLVerifier().verify(
                xml,
                x509_cert=cert,
                id_attribute="ID" if version == 2 else "AssertionID",
            )
        except (InvalidSignature, InvalidInput) as exc:
            last = exc
            continue
        return result.signed_xml
    raise SamlRejected(f"signature does not verify with the issuer's certificates ({last})")


def _issuer(element, version: int) -> str:
    if version == 2:
        return element.findtext(f"{{{NS2}}}Issuer") or ""
    return element.get("Issuer") or ""


def _maker(namespace: str):
    def make(tag: str, text: str | None = None, **attributes: str):
        element = etree.Element(f"{{{namespace}}}{tag}", nsmap={None: namespace}, **attributes)
        element.text = text
        return element

    return make


def _iso(epoch: float) -> str:
    """Entra's form: UTC with milliseconds, e.g. 2026-11-22T08:00:00.123Z."""
    moment = dt.datetime.fromtimestamp(epoch, dt.UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _epoch(value: str | None) -> float:
    """An xs:dateTime in UTC, with or without fractional seconds (Entra sends milliseconds)."""
    try:
        parsed = dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise SamlRejected(f"time {value!r} is not an xs:dateTime") from None
    if parsed.tzinfo is None:
        raise SamlRejected(f"time {value!r} has no time zone")
    return parsed.timestamp()
