"""Workload identity federation: another issuer's token as an app's client assertion.

From "Workload identity federation" and "Configure an app to trust a managed identity": a
federated identity credential of the app names the issuer, subject and audiences it trusts;
Entra answers AADSTS700211 (issuer), 70021 (no record), 700212 (audience) and 700213
(subject). Here the other issuer is a tenant of the directory (a managed identity's token).
"""

from __future__ import annotations

from devstack.directory import App, Directory, VerifyError, VerifyFailure
from devstack.entra.errors import EntraError, invalid_client


def _no_record(code: int, what: str, value: str) -> EntraError:
    return invalid_client(
        code,
        f"No matching federated identity record found for presented assertion {what} "
        f"'{value}'. Please check your federated identity credential Subject, Audience and "
        "Issuer against the presented assertion.",
    )


def verify_federated_assertion(
    directory: Directory, assertion: str, claims: dict[str, object], app: App
) -> None:
    """Accept ``assertion`` for ``app`` or raise; ``claims`` are the unverified ones, the
    signature and lifetime are checked with the issuing tenant's keys."""
    iss, sub, aud = (str(claims.get(name, "")) for name in ("iss", "sub", "aud"))
    candidates = [f for f in app.federated_credentials if f.issuer == iss]
    if not candidates:
        raise _no_record(700211, "issuer", iss)
    issuer_tenant = directory.tenant(iss.removeprefix(directory.authority_host + "/").split("/")[0])
    try:
        if issuer_tenant is None:
            raise VerifyError(VerifyFailure.ISSUER)
        directory.verify(assertion, issuer_tenant)
    except VerifyError as exc:
        if exc.reason is VerifyFailure.LIFETIME:
            raise invalid_client(
                700024, "Client assertion is not within its valid time range."
            ) from None
        raise invalid_client(
            700027, f"Client assertion failed signature validation. [Reason - {exc.reason}]"
        ) from None
    if not any(aud in f.audiences or f.subject == sub for f in candidates):
        raise invalid_client(
            70021,
            "No matching federated identity record found for presented assertion. Assertion "
            f"Issuer: '{iss}'. Assertion Subject: '{sub}'. Assertion Audience: '{aud}'.",
        )
    candidates = [f for f in candidates if aud in f.audiences]
    if not candidates:
        raise _no_record(700212, "audience", aud)
    if not any(f.subject == sub for f in candidates):
        raise _no_record(700213, "subject", sub)
