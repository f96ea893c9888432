"""Readiness: could this deployment serve a user now? ``/api/health`` only says it runs.

Three named checks, each with the product's own code on failure (docs/troubleshooting.md):

- ``settings``: the pipeline builds from the app settings, every downstream API a function
  declared included (:meth:`obo.OnBehalfOf.check`); when it fails the others are skipped;
- ``entra``: the home tenant's (``OBO_TENANT_ID``) OpenID metadata and signing keys, through
  the validator's own key cache (:meth:`obo.jwks.KeySource.probe`);
- ``credential``: API 1's client credential loads (the Key Vault certificate, or in secretless
  mode the managed identity's token) and signs a client assertion, which is never sent: no
  exchange is made.

Each check reuses the service's caches and deadlines, so a repeated check asks Key Vault
and Entra no more often than user requests would. The answer names checks and codes only:
no detail of an error, which may name a vault, a certificate, a URL or a tenant. The log
gets the details, for operators.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import TypeVar

from obo.errors import DependencyUnavailable, OboError
from obo.responses import Result
from obo.service import OboService

log = logging.getLogger("obo.readiness")
T = TypeVar("T")

RETRY_AFTER = 5  # seconds, unless a failed check's own Retry-After is longer

DETAILS = {  # name -> (passed, failed): fixed sentences, nothing from the error itself
    "settings": (
        "The settings are valid and define every downstream API the functions use.",
        "A setting is missing or invalid.",
    ),
    "entra": (
        "Entra ID's OpenID metadata and signing keys for the home tenant were fetched.",
        "Entra ID's OpenID metadata or signing keys for the home tenant could not be fetched.",
    ),
    "credential": (
        "The API's client credential loaded.",
        "The API's client credential could not be loaded.",
    ),
}
SKIPPED = "Skipped: the settings check failed."


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    code: str | None
    detail: str


def report(service: Callable[[], OboService]) -> Result:
    """200 ``ready`` when every check passes, else 503 ``not_ready`` with ``Retry-After``;
    JSON, never cached. ``service`` builds (or returns) the pipeline, raising an
    :class:`obo.errors.OboError` (a ``ConfigurationError``) when the settings are wrong."""
    checks: list[Check] = []
    failures: list[OboError] = []

    def run(name: str, check: Callable[[], T]) -> T | None:
        try:
            value = check()
        except OboError as exc:
            log.warning("readiness check %s failed: %s %s", name, exc.code, exc.detail)
            failures.append(exc)
            checks.append(Check(name, False, exc.code, DETAILS[name][1]))
            return None
        checks.append(Check(name, True, None, DETAILS[name][0]))
        return value

    svc = run("settings", service)
    if svc is None:
        checks += [Check(name, False, None, SKIPPED) for name in ("entra", "credential")]
    else:
        run("entra", lambda: svc.keys.probe(svc.settings.tenant_id))
        run("credential", lambda: _credential(svc))

    ready = all(check.ok for check in checks)
    headers = {"Content-Type": "application/json", "Cache-Control": "no-store"}
    if not ready:
        waits = [e.retry_after for e in failures if isinstance(e, DependencyUnavailable)]
        headers["Retry-After"] = str(max([RETRY_AFTER, *waits]))
    body = {"status": "ready" if ready else "not_ready", "checks": [asdict(c) for c in checks]}
    return Result(200 if ready else 503, json.dumps(body).encode(), headers)


def _credential(service: OboService) -> None:
    """A client assertion for the home tenant's token endpoint, built and dropped. It loads
    the certificate (once per version: :class:`obo.credentials.CertificateSource`) or the
    managed identity's token (reused until near expiry: :mod:`obo.managed_identity`)."""
    settings = service.settings
    audience = settings.authority(settings.tenant_id) + "/oauth2/v2.0/token"
    service.credentials.current().assertion(settings.client_id, audience, time.time())
