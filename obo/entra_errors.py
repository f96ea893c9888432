"""Reading Entra's token-endpoint answers: AADSTS codes, the ids to quote, and the API's
error for a refusal (the AADSTS code passed through, meaning and fix from obo.aadsts)."""

from __future__ import annotations

from typing import Any

from obo.aadsts import describe
from obo.errors import ClaimsChallenge, DependencyFailed, Forbidden

# invalid_client answers that mean "your certificate is not (or no longer) accepted"
CERTIFICATE_REJECTED = frozenset({700027, 700024, 7000214, 1000502, 700021})


def codes(result: dict[str, Any]) -> list[int]:
    """The AADSTS numbers in ``error_codes`` (whatever their JSON type)."""
    raw = result.get("error_codes") or []
    return [int(c) for c in raw if isinstance(c, int | str) and str(c).isdigit()]


def ids(body: dict[str, Any]) -> dict[str, str]:
    """Entra's correlation and trace ids: what a support case and the sign-in logs need."""
    return {k: str(body[k]) for k in ("correlation_id", "trace_id") if body.get(k)}


def certificate_rejected(result: dict[str, Any]) -> bool:
    return result.get("error") == "invalid_client" and bool(
        CERTIFICATE_REJECTED.intersection(codes(result))
    )


def entra_error(result: dict[str, Any], scopes: list[str]) -> Exception:
    """Entra's error answer as the API's error (the AADSTS code passed through)."""
    found = codes(result)
    code = f"AADSTS{found[0]}" if found else str(result.get("error", "unknown"))
    quoted = ids(result)
    known = describe(found[0]) if found else None
    summary = known.meaning if known else "Entra ID refused the token exchange."
    fix = known.fix if known else None
    if result.get("claims") or result.get("error") == "interaction_required":
        return ClaimsChallenge(
            code,
            f"{summary} The client must acquire a new token with the claims challenge and retry.",
            claims=str(result.get("claims") or ""),
            suberror=result.get("suberror"),
            **quoted,
        )
    if 65001 in found:
        return Forbidden(
            code,
            "An administrator must grant consent for this API to call the downstream API with "
            f"the scopes {' '.join(scopes)} in the user's tenant (admin consent), then retry.",
            scopes=scopes,
            fix=fix,
            **quoted,
        )
    return DependencyFailed(code, summary, fix=fix, error=result.get("error"), **quoted)
