"""Explain offline whether API 1 can exchange a token On-Behalf-Of, and what Entra would answer.

The findings come from :mod:`obo.token_rules`, the very rules :mod:`obo.validation` enforces,
in its order; here every finding is reported instead of only the first, with the AADSTS code
Entra would return (:mod:`obo.aadsts`) and the fix. Settings are read with
:meth:`obo.config.Settings.partial`, so incomplete ones still give a report; a rule that needs
a missing setting stays silent and OBO1001 names the setting. Nothing is fetched, so the
signature is never checked.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from obo import token_rules
from obo.aadsts import describe
from obo.claims import numeric_date, tenant_id, tenant_named_in, token_kind
from obo.claims import relative as relative  # re-exported: the CLI and its tests use it here
from obo.codes import Code
from obo.config import Settings
from obo.token_rules import LEEWAY, Finding
from obo.validation import peek


@dataclass(frozen=True)
class Report:
    """What the token says (never the token itself), the findings, and refused settings."""

    facts: dict[str, Any]  # kind, version, issuer, tenant, audience, scopes, roles, expires_at...
    now: float
    findings: tuple[Finding, ...]
    notes: tuple[str, ...]
    settings_missing: dict[str, str]  # setting name -> why Settings refused it

    @property
    def usable_for_obo(self) -> bool:
        return not self.findings

    def as_dict(self) -> dict[str, Any]:
        exp = self.facts["expires_at"]
        return {
            **self.facts,
            "expired": exp is None or exp <= self.now,
            "signature_checked": False,
            "usable_for_obo": self.usable_for_obo,
            "problems": [_as_dict(f) for f in self.findings],  # the key predates Finding
            "notes": list(self.notes),
            "settings_missing": sorted(self.settings_missing),
        }


def diagnose(token: str, settings: Mapping[str, str], now: float | None = None) -> Report:
    """The report for ``token`` under app ``settings`` (the environment, local.settings.json).

    Raises :class:`obo.errors.Unauthorized` (OBO3001) when ``token`` is not a JWT at all.
    """
    header, claims = peek(token)
    at = time.time() if now is None else now
    conf, refused = Settings.partial(settings)
    unknown = {  # what cannot be judged, and the setting it needs
        "OBO_CLIENT_ID": "OBO_CLIENT_ID" in refused and not settings.get("OBO_AUDIENCES"),
        "OBO_ALLOWED_TENANTS": "OBO_ALLOWED_TENANTS" in refused
        or ("OBO_TENANT_ID" in refused and not settings.get("OBO_ALLOWED_TENANTS")),
        "OBO_AUTHORITY_HOST": "OBO_AUTHORITY_HOST" in refused,
        "OBO_REQUIRED_SCOPES": "OBO_REQUIRED_SCOPES" in refused,
    }
    context = token_rules.Context(
        conf, lambda: at, frozenset(name for name, missing in unknown.items() if missing)
    )
    tid, idp, exp = tenant_id(claims), str(claims.get("idp", "")), numeric_date(claims.get("exp"))
    facts = {
        "kind": token_kind(header, claims, context.audiences),
        "version": str(claims.get("ver", "1.0")),
        "issuer": str(claims.get("iss", "")),
        "tenant": tid,
        "audience": str(claims.get("aud", "")),
        "scopes": str(claims.get("scp", "")).split(),
        "roles": [str(r) for r in _listed(claims.get("roles"))],
        "client_app": str(claims.get("azp") or claims.get("appid") or ""),
        "user": str(claims.get("preferred_username") or claims.get("upn") or ""),
        "expires_at": None if exp is None else int(exp),
        "guest": bool(idp) or claims.get("acct") == 1,
        "home_tenant": tenant_named_in(idp) or idp or None,
        "authority": conf.authority(tid) if tid and context.knows("OBO_AUTHORITY_HOST") else None,
    }
    findings = [
        Finding(
            Code.SETTING_INVALID,
            f"Cannot check the token against {name}: "
            + refused.get(name, "it defaults to OBO_TENANT_ID, which is missing or invalid."),
            f"Set {name}, or pass --settings local.settings.json.",
        )
        for name, missing in unknown.items()
        if missing
    ]
    findings += token_rules.findings(header, claims, context)
    return Report(facts, at, tuple(findings), tuple(_notes(facts, at)), refused)


def _as_dict(finding: Finding) -> dict[str, Any]:
    entry = describe(finding.aadsts) if finding.aadsts else None
    return {
        "code": finding.code.value,
        "aadsts": f"AADSTS{finding.aadsts}" if finding.aadsts else None,
        "message": finding.message,
        "fix": finding.fix or (entry.fix if entry else ""),
        "meaning": entry.meaning if entry else None,
    }


def _notes(facts: Mapping[str, Any], now: float) -> list[str]:
    notes = [
        "Signature not checked offline: a token signed with keys its tenant does not "
        "publish (another tenant's) would still fail with AADSTS50013."
    ]
    exp = facts["expires_at"]
    if exp is not None and exp <= now < exp + LEEWAY:
        notes.append(
            f"The token expired {relative(now - exp)} ago: API 1 still accepts it "
            f"({LEEWAY} s of clock skew), but Entra may refuse to exchange it "
            "(AADSTS500133). The client should acquire a new one."
        )
    if facts["guest"] and facts["tenant"]:
        right = facts["authority"] or f"{{OBO_AUTHORITY_HOST}}/{facts['tenant']}"
        notes.append(
            f"Guest account (home: {facts['home_tenant']}): exchange at {right}, the "
            "tenant that issued this token. /common or /organizations would be the "
            "wrong authority: they resolve to the user's home tenant (AADSTS50020)."
        )
    return notes


def _listed(value: Any) -> list[Any]:
    return [value] if isinstance(value, str) else list(value) if isinstance(value, list) else []
