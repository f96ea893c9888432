"""A successful token answer, shaped as Entra's v1 or v2 endpoint sends it.

From "Microsoft identity platform and OAuth 2.0 On-Behalf-Of flow" (success response: v2
``scope``, ``expires_in`` and ``ext_expires_in`` as numbers; v1 ``resource``, ``expires_on``
and ``not_before``, every number as a string).
"""

from __future__ import annotations

from devstack.directory import App, Directory


def shape(
    directory: Directory, body: dict[str, object], resource: App, *, v1: bool
) -> dict[str, object]:
    """``body`` is the grant's answer; its ``scope`` is a list of names, or "" for none."""
    lifetime = directory.token_lifetime
    scope = body.pop("scope")
    identifier = resource.identifier_uris[0] if resource.identifier_uris else resource.app_id
    if v1:
        now = int(directory.clock())
        shaped: dict[str, object] = {
            "token_type": "Bearer",
            "expires_in": str(lifetime),
            "ext_expires_in": str(lifetime),
            "expires_on": str(now + lifetime),
            "not_before": str(now),
            "resource": identifier,
        }
    else:
        shaped = {"token_type": "Bearer"}
        # Client credentials answers carry no "scope" (as Entra's): MSAL keys its cache on a
        # returned scope, and an empty one would make every later lookup miss.
        if isinstance(scope, list):
            shaped["scope"] = " ".join(f"{identifier}/{s}" for s in scope)
        shaped.update(expires_in=lifetime, ext_expires_in=lifetime)
    shaped.update(body)
    return shaped
