"""Conditional Access as the On-Behalf-Of grant meets it: blocked, or MFA still to do.

From "Microsoft identity platform and OAuth 2.0 On-Behalf-Of flow" (error response
example: ``interaction_required`` with a ``claims`` challenge the client passes back when it
signs the user in again) and the AADSTS codes 53003, 50076 and 50079.
"""

from __future__ import annotations

import json
import uuid

from devstack.directory import App, User
from devstack.entra.errors import EntraError

_CHANGED = (
    "Due to a configuration change made by your administrator, or because you moved to a new "
    "location, you must"
)


def check_policies(user: User, claims: dict[str, object], resource: App) -> None:
    if user.policy == "blocked":
        raise EntraError(
            "access_denied",
            53003,
            "Access has been blocked by Conditional Access policies. The access policy does not "
            "allow token issuance.",
            suberror="message_only",
        )
    has_mfa = "mfa" in (claims.get("amr") or [])
    if user.policy not in ("mfa", "mfa_registration") or has_mfa:
        return
    if user.policy == "mfa":
        code = 50076
        text = f"{_CHANGED} use multi-factor authentication to access '{resource.app_id}'."
    else:
        code = 50079
        text = f"{_CHANGED} enroll in multi-factor authentication to access this resource."
    challenge = {"access_token": {"capolids": {"essential": True, "values": [policy_id(user)]}}}
    raise EntraError(
        "interaction_required",
        code,
        text,
        suberror="basic_action",
        claims=json.dumps(challenge, separators=(",", ":")),
    )


def policy_id(user: User) -> str:
    """The (stable) id of the policy that applies to ``user``, named in the claims challenge."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"ca-policy:{user.upn}"))
