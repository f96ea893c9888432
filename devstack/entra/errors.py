"""Entra's error answers: the JSON the token and discovery endpoints send, and the common ones.

Shape from "Microsoft identity platform and OAuth 2.0 authorization code flow" (error
response: ``error``, ``error_description``, ``error_codes``, ``timestamp``, ``trace_id``,
``correlation_id``, ``error_uri``; ``suberror`` and ``claims`` when they apply); codes and
wording from "Microsoft Entra authentication and authorization error codes".
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

from devstack.directory import Directory, Tenant
from devstack.httpserver import Request, Response


@dataclass
class EntraError(Exception):
    """One of Entra's error answers, rendered exactly as the token endpoint does."""

    error: str
    code: int
    message: str
    status: int = 400
    suberror: str | None = None
    claims: str | None = None


def invalid_client(code: int, message: str) -> EntraError:
    """The client failed to authenticate: always 401."""
    return EntraError("invalid_client", code, message, status=401)


def missing(name: str) -> EntraError:
    return EntraError(
        "invalid_request",
        900144,
        f"The request body must contain the following parameter: '{name}'.",
    )


def require(form: dict[str, str], name: str) -> str:
    """The form parameter, or AADSTS900144 naming it."""
    value = form.get(name, "")
    if not value:
        raise missing(name)
    return value


def no_tenant(ref: str) -> EntraError:
    return EntraError(
        "invalid_tenant",
        90002,
        f"Tenant '{ref}' not found. Check to make sure you have the correct tenant ID and "
        "are signing into the correct cloud. Check with your subscription administrator, "
        "this may happen if there are no active subscriptions for the tenant.",
    )


def no_resource(identifier: str, tenant: Tenant) -> EntraError:
    return EntraError(
        "invalid_resource",
        500011,
        f"The resource principal named {identifier} was not found in the tenant named "
        f"{tenant.domain}. This can happen if the application has not been installed by the "
        "administrator of the tenant or consented to by any user in the tenant.",
    )


def error_response(directory: Directory, req: Request, err: EntraError) -> Response:
    """The error JSON; the correlation id is the caller's ``client-request-id`` if it sent one."""
    trace_id = str(uuid.uuid4())
    correlation_id = req.headers.get("client-request-id") or str(uuid.uuid4())
    timestamp = iso(directory.clock(), sep=" ")
    body: dict[str, object] = {
        "error": err.error,
        "error_description": f"AADSTS{err.code}: {err.message} Trace ID: {trace_id} "
        f"Correlation ID: {correlation_id} Timestamp: {timestamp}",
        "error_codes": [err.code],
        "timestamp": timestamp,
        "trace_id": trace_id,
        "correlation_id": correlation_id,
        "error_uri": f"{directory.authority_host}/error?code={err.code}",
    }
    if err.suberror:
        body["suberror"] = err.suberror
    if err.claims:
        body["claims"] = err.claims
    return Response.json(body, err.status, {"Cache-Control": "no-store"})


def iso(epoch: float, sep: str = "T") -> str:
    return dt.datetime.fromtimestamp(epoch, dt.UTC).strftime(f"%Y-%m-%d{sep}%H:%M:%SZ")
