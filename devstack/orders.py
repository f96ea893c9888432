"""Contoso's Orders API: a small JSON API of the customer's own ("your API" beside Graph).

It validates tokens as an API protected with Microsoft.Identity.Web would (single-tenant,
``[Authorize]`` + ``[RequiredScope]``): a token Contoso issued (signature, issuer, lifetime),
audience its client id or App ID URI, then the delegated scope for the route
(``Orders.Read`` to read, ``Orders.ReadWrite`` to create). Refusals follow RFC 6750: 401
with ``WWW-Authenticate: Bearer error="invalid_token"``, 403 ``insufficient_scope``; bodies
are ``{"error": {"code", "message"}}``.

``GET /orders`` lists the caller's orders, ``GET /orders/{id}`` reads one (404
``OrderNotFound`` otherwise), ``POST /orders`` creates one (201).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable

from devstack.directory import App, Directory, Tenant, VerifyError
from devstack.httpserver import Request, Response, Service

Claims = dict[str, object]
READ, WRITE = ("Orders.Read", "Orders.ReadWrite"), ("Orders.ReadWrite",)


class OrdersApi(Service):
    name = "orders"

    def __init__(self, directory: Directory, app: App, tenant: Tenant) -> None:
        super().__init__()
        self.directory, self.app, self.tenant = directory, app, tenant
        self.route("GET", "/orders", "orders", self._guarded(READ, self._list))
        self.route("GET", "/orders/{id}", "order", self._guarded(READ, self._one))
        self.route("POST", "/orders", "create", self._guarded(WRITE, self._create))

    def _guarded(
        self, scopes: tuple[str, ...], handler: Callable[[Request, Claims], Response]
    ) -> Callable[[Request], Response]:
        def run(req: Request) -> Response:
            scheme, _, token = req.headers.get("authorization", "").partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                return _refuse(401, "invalid_token", "No bearer token.", 'Bearer realm="orders"')
            try:
                claims = self.directory.verify(token.strip(), self.tenant)
            except VerifyError:
                return _refuse(401, "invalid_token", "The token is not valid.")
            if not self.app.accepts_audience(str(claims.get("aud"))):
                return _refuse(401, "invalid_token", "The token is for another audience.")
            if float(str(claims.get("exp", 0))) <= self.directory.clock():
                return _refuse(401, "invalid_token", "The token has expired.")
            if not set(str(claims.get("scp", "")).split()) & set(scopes):
                challenge = f'Bearer error="insufficient_scope", scope="{" ".join(scopes)}"'
                needs = f"Needs {' or '.join(scopes)}."
                return _refuse(403, "insufficient_scope", needs, challenge)
            return handler(req, claims)

        return run

    def orders_of(self, oid: str) -> list[dict[str, object]]:
        return [
            {
                "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"order:{oid}:{n}")),
                "item": item,
                "quantity": n + 1,
                "owner": oid,
            }
            for n, item in enumerate(("Paper, A4", "Toner, black"))
        ]

    def _list(self, req: Request, claims: Claims) -> Response:
        return Response.json({"value": self.orders_of(str(claims.get("oid")))})

    def _one(self, req: Request, claims: Claims) -> Response:
        found = [o for o in self.orders_of(str(claims.get("oid"))) if o["id"] == req.params["id"]]
        if not found:
            error = {"code": "OrderNotFound", "message": "No such order."}
            return Response.json({"error": error}, 404)
        return Response.json(found[0])

    def _create(self, req: Request, claims: Claims) -> Response:
        try:
            order = req.json()
        except ValueError:
            order = None
        if not isinstance(order, dict) or not isinstance(order.get("item"), str):
            error = {"code": "BadOrder", "message": 'Send {"item": ...}.'}
            return Response.json({"error": error}, 400)
        created = {
            "id": str(uuid.uuid4()),
            "item": order["item"],
            "quantity": 1,
            "owner": claims.get("oid"),
        }
        return Response.json(created, 201)


def _refuse(status: int, code: str, message: str, challenge: str | None = None) -> Response:
    challenge = challenge or f'Bearer realm="orders", error="{code}"'
    return Response.json(
        {"error": {"code": code, "message": message}}, status, {"WWW-Authenticate": challenge}
    )
