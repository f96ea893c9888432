"""Explain offline whether API 1 can exchange a token On-Behalf-Of, and what Entra would answer.

Uses :mod:`obo.validation`'s classifier (``token_kind``) and follows its order and OBO3xxx
codes (kind, tenant, issuer, lifetime, scope), but collects every finding instead of stopping
at the first, and names the AADSTS code Entra would return (:mod:`obo.aadsts`). Settings are
read with :meth:`obo.config.Settings.partial`, so incomplete ones still give a report.
Nothing is fetched, so the signature is never checked.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from obo.aadsts import describe
from obo.config import UNSET_ID, Settings
from obo.validation import LEEWAY, peek, token_kind

_GUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.IGNORECASE)
_UNITS = (("second", 1, 90), ("minute", 60, 90 * 60), ("hour", 3600, 48 * 3600))
@dataclass(frozen=True)
class Problem:
    """One reason API 1 cannot use the token: its own code, and Entra's answer were it asked."""

    code: str  # what API 1 answers (docs/troubleshooting.md); OBO1001 for a missing setting
    message: str
    fix: str = ""  # empty: the AADSTS table's fix applies
    aadsts: int | None = None

    def as_dict(self) -> dict[str, Any]:
        entry = describe(self.aadsts) if self.aadsts else None
        return {
            "code": self.code,
            "aadsts": f"AADSTS{self.aadsts}" if self.aadsts else None,
            "message": self.message,
            "fix": self.fix or (entry.fix if entry else ""),
            "meaning": entry.meaning if entry else None,
        }


@dataclass(frozen=True)
class Report:
    """What the token says (never the token itself), the findings, and refused settings."""

    facts: dict[str, Any]  # kind, version, issuer, tenant, audience, scopes, roles, expires_at...
    now: float
    problems: tuple[Problem, ...]
    notes: tuple[str, ...]
    settings_missing: dict[str, str]  # setting name -> why Settings refused it

    @property
    def usable_for_obo(self) -> bool:
        return not self.problems

    def as_dict(self) -> dict[str, Any]:
        exp = self.facts["expires_at"]
        return {
            **self.facts,
            "expired": exp is None or exp <= self.now,
            "signature_checked": False,
            "usable_for_obo": self.usable_for_obo,
            "problems": [p.as_dict() for p in self.problems],
            "notes": list(self.notes),
            "settings_missing": sorted(self.settings_missing),
        }


def diagnose(token: str, settings: Mapping[str, str], now: float | None = None) -> Report:
    """The report for ``token`` under app ``settings`` (the environment, local.settings.json).

    Raises :class:`obo.errors.Unauthorized` (OBO3001) when ``token`` is not a JWT at all.
    """
    header, claims = peek(token)
    now = time.time() if now is None else now
    conf, refused = Settings.partial(settings)
    unknown = {  # what cannot be judged, and the setting it needs
        "OBO_CLIENT_ID": "OBO_CLIENT_ID" in refused and not settings.get("OBO_AUDIENCES"),
        "OBO_ALLOWED_TENANTS": "OBO_ALLOWED_TENANTS" in refused
        or ("OBO_TENANT_ID" in refused and not settings.get("OBO_ALLOWED_TENANTS")),
        "OBO_AUTHORITY_HOST": "OBO_AUTHORITY_HOST" in refused,
        "OBO_REQUIRED_SCOPES": "OBO_REQUIRED_SCOPES" in refused,
    }
    audiences = None if unknown["OBO_CLIENT_ID"] else conf.audiences
    tid, idp = _tid(claims), str(claims.get("idp", ""))
    home = _GUID.search(idp)
    facts = {
        "kind": token_kind(header, claims, audiences),
        "version": str(claims.get("ver", "1.0")),
        "issuer": str(claims.get("iss", "")),
        "tenant": tid,
        "audience": str(claims.get("aud", "")),
        "scopes": str(claims.get("scp", "")).split(),
        "roles": [str(r) for r in _listed(claims.get("roles"))],
        "client_app": str(claims.get("azp") or claims.get("appid") or ""),
        "user": str(claims.get("preferred_username") or claims.get("upn") or ""),
        "expires_at": _int(claims.get("exp")),
        "guest": bool(idp) or claims.get("acct") == 1,
        "home_tenant": home.group(0).lower() if home else (idp or None),
        "authority": conf.authority(tid) if tid and not unknown["OBO_AUTHORITY_HOST"] else None,
    }
    problems = [
        Problem("OBO1001", f"Cannot check the token against {name}: "
                + refused.get(name, "it defaults to OBO_TENANT_ID, which is missing or invalid."),
                f"Set {name}, or pass --settings local.settings.json.")
        for name, missing in unknown.items() if missing
    ]
    problems += _findings(header, claims, facts, conf, audiences, unknown, now)
    return Report(facts, now, tuple(problems), tuple(_notes(facts)), refused)


def _findings(
    header: Mapping[str, Any], claims: Mapping[str, Any], facts: Mapping[str, Any],
    conf: Settings, audiences: frozenset[str] | None, unknown: Mapping[str, bool], now: float,
) -> list[Problem]:
    kind, tid, aud = facts["kind"], facts["tenant"], facts["audience"]
    client = "<API 1 client id>" if conf.client_id == UNSET_ID else conf.client_id
    scope = f"api://{client}/{sorted(conf.required_scopes)[0]}"
    ours = audiences is not None and aud in audiences
    expected = "" if ours or not audiences else f" API 1 expects {' or '.join(sorted(audiences))}."
    ask = f"Have the client request API 1's scope {scope} and send that access token."
    if kind == "b2c":  # nothing else matters: B2C has no On-Behalf-Of at all
        return [Problem(
            "OBO3012", f"This token comes from Azure AD B2C (issuer '{facts['issuer']}'): OBO "
            "is not supported for Azure AD B2C.", "Call the downstream API from the client "
            "with a token of its own for that API, or move API 1 and its users to an Entra ID "
            "(workforce) tenant.",
        )]
    found: list[Problem] = []
    if header.get("alg") != "RS256":
        found.append(Problem("OBO3002", f"The algorithm '{header.get('alg')}' is not RS256.",
                             "Only tokens Entra signed are accepted."))
    not_user = 50027 if ours else 500131  # Entra checks the audience before the token type
    if kind == "graph":
        found.append(Problem(
            "OBO3013", f"This is an access token for Microsoft Graph (aud '{aud}'). Graph token: "
            "its header nonce means only Graph can verify its signature, so Entra refuses it "
            f"as an assertion; its audience is not API 1 either (AADSTS500131).{expected}",
            ask, 50013,
        ))
    elif kind == "id_token":
        found.append(Problem("OBO3010", f"This is an ID token (aud '{aud}'): it proves a sign-in "
                             f"to the client app and cannot be exchanged.{expected}",
                             f"Send the access token for API 1 (scope {scope}), not the ID "
                             "token.", not_user))
    elif kind == "app_only":
        found.append(Problem("OBO3011", "This is an app-only token (no 'scp'; client credentials "
                             f"or managed identity): there is no user to act for.{expected}",
                             "OBO needs a delegated token from a signed-in user.", not_user))
    elif audiences is not None and not ours:
        found.append(Problem("OBO3007", f"The token's audience is '{aud}', another resource or "
                             f"app.{expected}", ask, 500131))
    if tid is None:
        found.append(Problem("OBO3015", "The token carries no valid tenant id (tid).",
                             "Only tokens from an Entra ID tenant can be exchanged."))
    else:
        if not unknown["OBO_ALLOWED_TENANTS"] and not conf.tenant_allowed(tid):
            found.append(Problem(
                "OBO3006", f"Tenant {tid} is not admitted by OBO_ALLOWED_TENANTS: API 1 "
                "refuses its users before any exchange.",
                f"Add {tid} to OBO_ALLOWED_TENANTS (or * for any "
                "tenant) if its users may call API 1; an admin there consents to API 1.",
            ))
        if not unknown["OBO_AUTHORITY_HOST"] or facts["version"] != "2.0":
            found += _issuer(str(facts["issuer"]), tid, facts["version"], conf.authority_host)
    exp, nbf = facts["expires_at"], _int(claims.get("nbf"))
    if exp is None or exp <= now:  # Entra allows no skew here, unlike API 1's validation
        ago = "has no valid exp" if exp is None else f"expired {relative(now - exp)} ago"
        found.append(Problem("OBO3008", f"The token {ago}.", aadsts=500133))
    if nbf is not None and nbf > now + LEEWAY:
        found.append(Problem("OBO3009", f"The token is valid only in {relative(nbf - now)}.",
                             "Check the clocks of the client and of this machine.", 500133))
    if kind == "delegated" and ours:
        if not claims.get("oid"):
            found.append(Problem("OBO3015", "The token carries no user object id (oid).",
                                 "Send a token a user obtained by signing in."))
        if not unknown["OBO_REQUIRED_SCOPES"] and not set(facts["scopes"]) & conf.required_scopes:
            found.append(Problem(
                "OBO3014", f"The token's scopes ({' '.join(facts['scopes']) or 'none'}) lack "
                f"{' or '.join(sorted(conf.required_scopes))}: API 1 answers 403 before any "
                f"exchange.", f"Have the client request {scope}; the user or an admin of "
                f"tenant {tid} consents to it.",
            ))
    return found


def _issuer(iss: str, tid: str, ver: str, host: str) -> list[Problem]:
    expected = f"{host}/{tid}/v2.0" if ver == "2.0" else f"https://sts.windows.net/{tid}/"
    if iss == expected:
        return []
    named = _GUID.search(iss)
    cause = (
        f"it names tenant {named.group(0).lower()} but tid is {tid}, whose keys cannot verify it"
        if named and named.group(0).lower() != tid
        else f"tenant {tid} issues v{ver} tokens as '{expected}'"
    )
    return [Problem("OBO3005", f"The issuer '{iss}' is not tenant {tid}'s: {cause}.",
                    f"Send a token tenant {tid} issued for API 1; check that OBO_AUTHORITY_HOST "
                    f"({host}) is the token's cloud.", 50013)]


def _notes(facts: Mapping[str, Any]) -> list[str]:
    notes = ["Signature not checked offline: a token signed with keys its tenant does not "
             "publish (another tenant's) would still fail with AADSTS50013."]
    if facts["guest"] and facts["tenant"]:
        right = facts["authority"] or f"{{OBO_AUTHORITY_HOST}}/{facts['tenant']}"
        notes.append(f"Guest account (home: {facts['home_tenant']}): exchange at {right}, the "
                     "tenant that issued this token. /common or /organizations would be the "
                     "wrong authority: they resolve to the user's home tenant (AADSTS50020).")
    return notes


def relative(seconds: float) -> str:
    """'45 seconds', '5 minutes', '3 hours', '2 days': what a person reads at a glance."""
    seconds = abs(seconds)
    unit, size = next(((u, n) for u, n, below in _UNITS if seconds < below), ("day", 86400))
    count = round(seconds / size)
    return f"{count} {unit}{'' if count == 1 else 's'}"


def _tid(claims: Mapping[str, Any]) -> str | None:
    match = _GUID.fullmatch(str(claims.get("tid", "")))
    return match.group(0).lower() if match else None


def _listed(value: Any) -> list[Any]:
    return [value] if isinstance(value, str) else list(value) if isinstance(value, list) else []


def _int(value: Any) -> int | None:
    try:
        return int(float(value))
    except (TypeError, ValueError, OverflowError):
        return None
