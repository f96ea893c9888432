"""What the claims of an Entra token mean, read before anything trusts them.

The kind of token, its tenant, its dates and the issuer its tenant signs as: values that
:mod:`obo.token_rules` judges and ``python -m obo diagnose`` reports. Entra's claims are
described in "Access token claims reference" (learn.microsoft.com/entra/identity-platform/
access-token-claims-reference).
"""

from __future__ import annotations

import math
import re
import uuid
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

Header = Mapping[str, Any]
Claims = Mapping[str, Any]
GRAPH_AUDIENCES = frozenset({"https://graph.microsoft.com", "00000003-0000-0000-c000-000000000000"})
# The v1 token issuer is not the authority host: Microsoft's answer "What are the token
# issuers for the sovereign clouds" (learn.microsoft.com/en-us/answers/questions/1190472)
# lists https://sts.windows.net for the global service and Azure AD for US Government
# (login.microsoftonline.us), https://sts.chinacloudapi.cn for Azure China (21Vianet, whose
# authority hosts are listed at learn.microsoft.com/entra/identity-platform/
# authentication-national-cloud). Azure/Azurite's src/common/utils/constants.ts
# (VALID_ISSUE_PREFIXES) accepts the same two v1 prefixes. Any other host (GCC uses the
# global one; the local stand-in) gets sts.windows.net.
_V1_ISSUERS = {
    "login.chinacloudapi.cn": "https://sts.chinacloudapi.cn",
    "login.partner.microsoftonline.cn": "https://sts.chinacloudapi.cn",
}
_GUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.IGNORECASE)
_UNITS = (("second", 1, 90), ("minute", 60, 90 * 60), ("hour", 3600, 48 * 3600))


def token_kind(header: Header, claims: Claims, audiences: frozenset[str] | None) -> str:
    """``delegated``, ``id_token``, ``app_only``, ``graph`` or ``b2c``, from the unverified
    header and claims; ``audiences=None`` when API 1's audiences are unknown (diagnose)."""
    iss, aud, acr = (str(claims.get(name, "")) for name in ("iss", "aud", "acr"))
    if ".b2clogin.com/" in iss or "tfp" in claims or acr.lower().startswith("b2c_"):
        return "b2c"
    if "nonce" in header or aud in GRAPH_AUDIENCES:
        return "graph"  # Graph signs over a hashed header nonce: only Graph can verify these
    has_scp, has_roles, app = "scp" in claims, "roles" in claims, claims.get("idtyp") == "app"
    foreign = audiences is not None and aud not in audiences
    if not (has_scp or has_roles or app) and ("nonce" in claims or "at_hash" in claims or foreign):
        return "id_token"
    # Without scp it is never a user's delegated token (v1 app tokens carry no idtyp).
    return "delegated" if has_scp and not app else "app_only"


def tenant_id(claims: Claims) -> str | None:
    """The ``tid`` claim as a lower-case GUID, or None when it is not one."""
    try:
        return str(uuid.UUID(str(claims.get("tid"))))
    except ValueError:
        return None


def tenant_named_in(text: str) -> str | None:
    """The first GUID in ``text`` (an issuer, an ``idp``), lower-case."""
    found = _GUID.search(text)
    return found.group(0).lower() if found else None


def v1_issuer(authority_host: str, tid: str) -> str:
    """The issuer of tenant ``tid``'s v1 tokens in the cloud of ``authority_host``."""
    host = (urlsplit(authority_host).hostname or "").lower()
    return f"{_V1_ISSUERS.get(host, 'https://sts.windows.net')}/{tid}/"


def numeric_date(value: Any) -> float | None:
    """A JSON number (RFC 7519 section 2, NumericDate) as seconds, or None: never a bool, a
    string such as "nan", or a value ``float()`` cannot hold."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        seconds = float(value)
    except OverflowError:
        return None
    return seconds if math.isfinite(seconds) else None


def relative(seconds: float) -> str:
    """'45 seconds', '5 minutes', '3 hours', '2 days': what a person reads at a glance."""
    seconds = abs(seconds)
    unit, size = next(((u, n) for u, n, below in _UNITS if seconds < below), ("day", 86400))
    count = round(seconds / size)
    return f"{count} {unit}{'' if count == 1 else 's'}"
