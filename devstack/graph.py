"""Graph-like downstream API stand-in ("API 2"), served at ``{base_url}/v1.0``.

Behaviour follows Microsoft's documentation:

* "Microsoft Graph error responses and resource types": the ``{"error": {"code", "message",
  "innerError": {"date", "request-id", "client-request-id"}}}`` body, the ``request-id`` and
  ``client-request-id`` response headers, ``Retry-After`` on 429/503.
* "Get user" / "user resource type", "List messages" and "List a user's direct
  memberships": the shapes of ``/me``, ``/users/{id}``, ``/me/messages`` and
  ``/me/memberOf`` (``@odata.context``, ``value``, ``@odata.type``), the delegated
  permissions each needs (least privileged first), ``Request_ResourceNotFound`` for an
  unknown user or path, 400 for ``/me`` with an app-only token.
* "Limited information returned for inaccessible member objects" (Graph permissions
  overview): with ``User.Read`` alone, ``/me/memberOf`` lists the groups with only
  ``@odata.type`` and ``id``, every other property ``null``; ``GroupMember.Read.All`` (or
  ``Group.Read.All``, ``Directory.Read.All``) reveals them.
* "Microsoft identity platform access tokens": Graph accepts only tokens whose ``aud`` is
  ``https://graph.microsoft.com`` or its app id, issued by the tenant named in ``tid``;
  401 ``InvalidAuthenticationToken`` otherwise, 403 ``Authorization_RequestDenied`` when a
  valid token lacks the permission.
* "Claims challenges, claims requests and client capabilities" and "How to use Continuous
  Access Evaluation enabled APIs in your applications": the 401 ``insufficient_claims``
  challenge with the claims as base64 in ``WWW-Authenticate``.

``/v1.0/echo/{rest...}`` is not Graph: it answers any method with what arrived, so relay
tests can see the method, path, query, body and headers the middle tier forwarded
(``echo_status`` and ``echo_location`` pick the status and a ``Location`` header).
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import re
import threading
import urllib.parse
import uuid
from collections.abc import Callable

import jwt

from devstack.directory import (
    GRAPH_APP_ID,
    GRAPH_RESOURCE,
    Directory,
    User,
    VerifyError,
    VerifyFailure,
)
from devstack.httpserver import Fault, Request, Response, Service

AUTHORIZATION_URI = "https://login.microsoftonline.com/common/oauth2/authorize"
BEARER_CHALLENGE = (
    f'Bearer realm="", authorization_uri="{AUTHORIZATION_URI}", client_id="{GRAPH_APP_ID}"'
)
AUDIENCES = frozenset({GRAPH_RESOURCE, GRAPH_RESOURCE + "/", GRAPH_APP_ID})
ODATA_JSON = "application/json;odata.metadata=minimal;odata.streaming=true;charset=utf-8"
ECHO_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
# Delegated permissions that allow each route (any one of them will do).
ME_SCOPES = (
    "User.Read",
    "User.ReadWrite",
    "User.ReadBasic.All",
    "User.Read.All",
    "User.ReadWrite.All",
    "Directory.Read.All",
    "Directory.ReadWrite.All",
)
USER_SCOPES = ME_SCOPES[2:]
MAIL_SCOPES = ("Mail.ReadBasic", "Mail.Read", "Mail.ReadWrite")
MEMBER_OF_SCOPES = (
    "User.Read",
    "GroupMember.Read.All",
    "Group.Read.All",
    "Directory.Read.All",
    "Directory.ReadWrite.All",
)
GROUP_READ_SCOPES = frozenset(MEMBER_OF_SCOPES[1:])
FAULT_CODES = {429: "TooManyRequests", 503: "serviceNotAvailable", 504: "gatewayTimeout"}

Claims = dict[str, object]


class GraphError(Exception):
    def __init__(self, status: int, code: str, message: str, challenge: str | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.challenge = status, code, message, challenge


class GraphApi(Service):
    name = "graph"

    def __init__(self, directory: Directory) -> None:
        super().__init__()
        self.directory = directory
        self.clock_skew = 0.0  # seconds of grace after ``exp``
        self._challenges: dict[str, str] = {}  # oid -> base64 claims
        self._claims_lock = threading.Lock()
        self.route("GET", "/v1.0/me", "me", self._guarded(ME_SCOPES, self._me))
        self.route(
            "GET", "/v1.0/me/messages", "messages", self._guarded(MAIL_SCOPES, self._messages)
        )
        self.route(
            "GET", "/v1.0/me/memberOf", "memberOf", self._guarded(MEMBER_OF_SCOPES, self._member_of)
        )
        self.route("GET", "/v1.0/users/{id}", "user", self._guarded(USER_SCOPES, self._user))
        # Service.route's {name} is one segment: the echo catch-all gets its own pattern.
        echo = re.compile(r"^/v1\.0/echo(?:/(?P<rest>.*))?$")
        for method in ECHO_METHODS:
            self._routes.append((method, echo, "echo", self._guarded((), self._echo)))

    # -- continuous access evaluation switch -------------------------------------------
    def require_claims(self, oid: str, claims_json: str | None = None) -> str:
        """Answer this user's requests with a CAE claims challenge until ``clear_claims``."""
        if claims_json is None:
            epoch = int(self.directory.clock())
            claims_json = json.dumps(
                {"access_token": {"nbf": {"essential": True, "value": str(epoch)}}},
                separators=(",", ":"),
            )
        encoded = base64.b64encode(claims_json.encode()).decode()
        with self._claims_lock:
            self._challenges[oid] = encoded
        return encoded

    def clear_claims(self, oid: str | None = None) -> None:
        with self._claims_lock:
            if oid is None:
                self._challenges.clear()
            else:
                self._challenges.pop(oid, None)

    # -- validation, in Graph's order --------------------------------------------------
    def _guarded(
        self, scopes: tuple[str, ...], handler: Callable[[Request, Claims], Response]
    ) -> Callable[[Request], Response]:
        def run(req: Request) -> Response:
            try:
                claims = self._authenticate(req)
                self._authorize(req, claims, scopes)
                return handler(req, claims)
            except GraphError as err:
                return self._error(req, err)

        return run

    def _authenticate(self, req: Request) -> Claims:
        scheme, _, token = req.headers.get("authorization", "").strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise _invalid_token("Access token is empty.")
        try:
            unverified = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError:
            raise _invalid_token("IDX14100: JWT is not well formed.") from None
        tenant = self.directory.tenants.get(str(unverified.get("tid", "")).lower())
        if tenant is None:
            raise _invalid_token("Access token validation failure. Invalid tenant.")
        try:
            claims = self.directory.verify(token, tenant, graph=True)
        except VerifyError as exc:
            if exc.reason is VerifyFailure.LIFETIME:
                raise _invalid_token("Lifetime validation failed, the token is expired.") from None
            raise _invalid_token("Access token validation failure.") from None
        if claims.get("aud") not in AUDIENCES:
            raise _invalid_token("Access token validation failure. Invalid audience.")
        if float(str(claims.get("exp", 0))) + self.clock_skew <= self.directory.clock():
            raise _invalid_token("Lifetime validation failed, the token is expired.")
        with self._claims_lock:
            challenge = self._challenges.get(str(claims.get("oid")))
        if challenge is not None:
            header = f'{BEARER_CHALLENGE}, error="insufficient_claims", claims="{challenge}"'
            raise GraphError(
                401,
                "InvalidAuthenticationToken",
                "Continuous access evaluation resulted in challenge with result: "
                "InteractionRequired and code: TokenIssuedBeforeRevocationTimestamp",
                header,
            )
        return claims

    @staticmethod
    def _authorize(req: Request, claims: Claims, scopes: tuple[str, ...]) -> None:
        if "scp" not in claims:  # app-only token (roles, no scp)
            if req.path.startswith("/v1.0/me"):
                raise GraphError(
                    400,
                    "BadRequest",
                    "/me request is only valid with delegated authentication flow.",
                )
            if scopes:
                raise _denied()
            return
        granted = set(str(claims["scp"]).split())
        if scopes and not granted.intersection(scopes):
            raise _denied()

    # -- resources ------------------------------------------------------------------
    def _context(self, fragment: str) -> str:
        return f"{self.base_url or GRAPH_RESOURCE}/v1.0/$metadata#{fragment}"

    def _me(self, req: Request, claims: Claims) -> Response:
        upn = str(claims.get("upn") or claims.get("preferred_username") or "")
        user = self.directory.user_by_oid(str(claims["tid"]), str(claims.get("oid")))
        body = {
            "@odata.context": self._context("users/$entity"),
            "businessPhones": [],
            "displayName": claims.get("name"),
            "givenName": None,
            "jobTitle": None,
            "mail": user.upn if user else upn or None,
            "mobilePhone": None,
            "officeLocation": None,
            "preferredLanguage": None,
            "surname": None,
            "userPrincipalName": upn,
            "id": claims.get("oid"),
            "tenantId": claims.get("tid"),
        }
        return self._ok(req, body)

    def _messages(self, req: Request, claims: Claims) -> Response:
        oid = str(claims.get("oid"))
        sender = {"emailAddress": {"name": "Contoso IT", "address": "it@contoso.example"}}
        value = [
            {
                "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"msg:{oid}:{n}")),
                "subject": subject,
                "from": sender,
                "isRead": n > 0,
                "receivedDateTime": f"2024-05-0{n + 1}T08:00:00Z",
            }
            for n, subject in enumerate(("Welcome", "Your weekly digest"))
        ]
        return self._ok(
            req, {"@odata.context": self._context("users('" + oid + "')/messages"), "value": value}
        )

    def _member_of(self, req: Request, claims: Claims) -> Response:
        tid, oid = str(claims["tid"]), str(claims.get("oid"))
        visible = bool(GROUP_READ_SCOPES.intersection(str(claims.get("scp", "")).split()))
        value = []
        for group in self.directory.groups_of(tid, oid):
            entry: dict[str, object] = {
                "@odata.type": "#microsoft.graph.group",
                "id": group.id,
                "displayName": None,
                "description": None,
                "securityEnabled": None,
                "mailEnabled": None,
                "groupTypes": None,
            }
            if visible:
                entry.update(
                    displayName=group.name,
                    description=group.description,
                    securityEnabled=True,
                    mailEnabled=False,
                    groupTypes=[],
                )
            value.append(entry)
        return self._ok(req, {"@odata.context": self._context("directoryObjects"), "value": value})

    def _user(self, req: Request, claims: Claims) -> Response:
        tid, ref = str(claims["tid"]), urllib.parse.unquote(req.params["id"])
        user = self.directory.user_by_oid(tid, ref) or self._user_by_upn(tid, ref)
        if user is None:
            return self._error(
                req,
                GraphError(
                    404,
                    "Request_ResourceNotFound",
                    f"Resource '{ref}' does not exist or one of its queried reference-property "
                    "objects are not present.",
                ),
            )
        body: dict[str, object] = {
            "@odata.context": self._context("users/$entity"),
            "businessPhones": [],
            "displayName": user.name,
            "givenName": None,
            "jobTitle": None,
            "mail": user.upn,
            "mobilePhone": None,
            "officeLocation": None,
            "preferredLanguage": None,
            "surname": None,
            "userPrincipalName": _upn_in(user, tid, self.directory),
            "id": user.object_ids[tid],
        }
        return self._ok(req, body)

    def _user_by_upn(self, tid: str, ref: str) -> User | None:
        user = self.directory.users.get(ref.lower())
        return user if user is not None and tid in user.object_ids else None

    def _echo(self, req: Request, claims: Claims) -> Response:
        body = req.body.decode("utf-8", "replace")
        headers = {k: v for k, v in req.headers.items() if k != "authorization"}
        echoed = {
            "method": req.method,
            "path": req.path,
            "rest": req.params.get("rest") or "",
            "query": req.query,
            "body": body,
            "headers": headers,
            "oid": claims.get("oid"),
            "tid": claims.get("tid"),
            "aud": claims.get("aud"),
            "scp": claims.get("scp"),
        }
        status = req.query.get("echo_status", "200")  # lets a test pick API 2's status
        response = self._ok(req, echoed, int(status) if status.isdigit() else 200)
        if "echo_location" in req.query:  # ...and a Location, e.g. Graph's 302 to a
            # pre-authenticated download URL on another host ("Download driveItem content")
            response.headers["Location"] = req.query["echo_location"]
        return response

    # -- rendering --------------------------------------------------------------------
    def _ids(self, req: Request) -> dict[str, str]:
        return {
            "request-id": str(uuid.uuid4()),
            "client-request-id": req.headers.get("client-request-id") or str(uuid.uuid4()),
        }

    def _ok(self, req: Request, body: object, status: int = 200) -> Response:
        return Response.json(body, status, {"Content-Type": ODATA_JSON, **self._ids(req)})

    def _error(
        self, req: Request, err: GraphError, extra: dict[str, str] | None = None
    ) -> Response:
        ids = self._ids(req)
        date = dt.datetime.fromtimestamp(self.directory.clock(), dt.UTC)
        body = {
            "error": {
                "code": err.code,
                "message": err.message,
                "innerError": {"date": date.strftime("%Y-%m-%dT%H:%M:%S"), **ids},
            }
        }
        headers = {**ids, **(extra or {})}
        if err.challenge:
            headers["WWW-Authenticate"] = err.challenge
        return Response.json(body, err.status, headers)

    def fault_response(self, fault: Fault) -> Response:
        status = fault.status or 503
        code = FAULT_CODES.get(status, "UnknownError")
        headers = {"Retry-After": str(fault.retry_after)} if fault.retry_after is not None else {}
        fake = Request("GET", "", {}, {}, b"")
        return self._error(fake, GraphError(status, code, f"Injected fault ({status})."), headers)

    def _route(self, request: Request) -> tuple[str, Response | None]:
        name, response = super()._route(request)
        if name != "-" or response is None:
            return name, response
        if response.status == 405:
            err = GraphError(
                405,
                "Request_BadRequest",
                f"The HTTP method '{request.method}' is not allowed here.",
            )
        else:
            path = request.path.removeprefix("/v1.0/")
            err = GraphError(
                404,
                "Request_ResourceNotFound",
                f"Resource '{path}' does not exist or one of its queried "
                "reference-property objects are not present.",
            )
        return name, self._error(request, err)


def _invalid_token(message: str) -> GraphError:
    return GraphError(401, "InvalidAuthenticationToken", message, BEARER_CHALLENGE)


def _denied() -> GraphError:
    return GraphError(
        403, "Authorization_RequestDenied", "Insufficient privileges to complete the operation."
    )


def _upn_in(user: User, tid: str, directory: Directory) -> str:
    """A B2B guest's UPN in the inviting tenant: ``name_home#EXT#@resource-domain``."""
    if not user.is_guest_in(tid):
        return user.upn
    local = user.upn.replace("@", "_")
    return f"{local}#EXT#@{directory.tenants[tid].domain}"
