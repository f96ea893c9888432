"""The public API for your own Azure Functions routes: ``@obo.authorize``.

Modelled on Microsoft.Identity.Web's ``[Authorize]`` + ``[RequiredScope]`` and named
``DownstreamApis``::

    app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)
    obo = OnBehalfOf()

    @app.route(route="profile", methods=["GET"])
    @obo.authorize(apis=["graph"])
    def profile(req: func.HttpRequest, caller: Caller, apis: DownstreamApis) -> dict:
        return apis["graph"].get("me")

The decorator validates the caller once per request, checks the function's scopes, hands
the handler the :class:`obo.Caller` (parameter ``caller``) and a client per declared API
(parameter ``apis``), and turns every :class:`obo.OboError` into problem+json. The Functions
worker sees only the other parameters (``req``, ``context``), as its indexing requires.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import json
import threading
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

import azure.functions as func

from obo.clients import AsyncDownstreamApis, DownstreamApis
from obo.codes import Code
from obo.config import DOWNSTREAM_PREFIX, Settings
from obo.errors import ConfigurationError, InsufficientScope, OboError
from obo.readiness import report as readiness_report
from obo.responses import Result, error_result
from obo.service import OboService
from obo.user_assertion import UserAssertion
from obo.validation import Caller

Handler = TypeVar("Handler", bound=Callable[..., Any])
INJECTED = ("caller", "apis")


class OnBehalfOf:
    """The app's On-Behalf-Of pipeline: built from the app settings on first use (or by
    :meth:`check` at start-up), once per process, shared by every decorated function."""

    def __init__(self) -> None:
        self._service: OboService | None = None
        self._lock = threading.Lock()
        self._uses: dict[str, str] = {}  # downstream API name -> a function that uses it

    @property
    def service(self) -> OboService:
        """The pipeline; raises :class:`obo.errors.ConfigurationError` if misconfigured."""
        if self._service is None:
            with self._lock:
                if self._service is None:
                    self._service = self._checked(OboService(Settings.from_env()))
        return self._service

    def check(self) -> None:
        """Build the pipeline now: settings, and every API a function declared, are checked
        at start-up instead of on the first request (no network call is made)."""
        _ = self.service

    def readiness(self) -> func.HttpResponse:
        """Whether this deployment could serve a user now (:mod:`obo.readiness`): for a route
        only operators reach, ``auth_level=func.AuthLevel.FUNCTION``. A setting that stops
        :meth:`check` is its failed ``settings`` check, not an error."""
        return _response(readiness_report(lambda: self.service))

    def use(self, service: OboService | None) -> None:
        """Serve with ``service`` (a test's, or a host's own); ``None`` rebuilds it from the
        settings on next use."""
        with self._lock:
            self._service = None if service is None else self._checked(service)

    def authorize(
        self, *, scopes: str | Iterable[str] = (), apis: str | Iterable[str] = ()
    ) -> Callable[[Handler], Handler]:
        """Protect a function: a valid access token for this API (``OBO_REQUIRED_SCOPES``),
        and, when ``scopes`` are given, one of them as well (403 ``insufficient_scope``
        naming them). ``apis`` names the downstream APIs the handler calls."""
        required = frozenset(_names(scopes))
        declared = frozenset(name.lower() for name in _names(apis))

        def decorate(handler: Handler) -> Handler:
            if not inspect.isfunction(handler):
                raise TypeError("@obo.authorize goes below @app.route, on the function itself")
            for name in declared:
                self._uses.setdefault(name, handler.__name__)
            return _wrap(self, handler, required, declared)

        return decorate

    def _checked(self, service: OboService) -> OboService:
        for name, function in sorted(self._uses.items()):
            if name not in service.settings.apis:
                setting = f"{DOWNSTREAM_PREFIX}{name.upper()}__BASE_URL"
                raise ConfigurationError(
                    Code.API_UNDEFINED,
                    f"Function '{function}' calls the downstream API '{name}', which no setting "
                    f"defines: set {setting} (and its __SCOPES).",
                    setting=setting,
                )
        return service

    def _prepare(
        self, req: func.HttpRequest, required: frozenset[str]
    ) -> tuple[OboService, Caller, UserAssertion]:
        service = self.service
        caller, assertion = service.authenticate(req.headers)
        if required and not caller.scopes & required:
            wanted = tuple(sorted(required))
            raise InsufficientScope(
                Code.SCOPE_MISSING,
                f"The token lacks the delegated scope {' or '.join(wanted)} this function "
                "requires.",
                wanted,
            )
        return service, caller, assertion


def _wrap(
    obo: OnBehalfOf, handler: Handler, required: frozenset[str], declared: frozenset[str]
) -> Handler:
    signature = inspect.signature(handler)
    injected = [name for name in INJECTED if name in signature.parameters]
    exposed = signature.replace(
        parameters=[p for n, p in signature.parameters.items() if n not in injected],
        return_annotation=func.HttpResponse,
    )
    trigger = next((n for n in exposed.parameters if n != "context"), None)
    if trigger is None:
        raise TypeError(f"{handler.__name__} needs the HttpRequest parameter (req)")

    def arguments(args: tuple[Any, ...], kwargs: dict[str, Any]) -> inspect.BoundArguments:
        return exposed.bind(*args, **kwargs)

    def extra(caller: Caller, apis: Any) -> dict[str, Any]:
        return {k: v for k, v in (("caller", caller), ("apis", apis)) if k in injected}

    if inspect.iscoroutinefunction(handler):

        async def wrapper(*args: Any, **kwargs: Any) -> func.HttpResponse:
            bound = arguments(args, kwargs)
            try:  # validation may fetch signing keys: off the event loop
                service, caller, assertion = await asyncio.to_thread(
                    obo._prepare, bound.arguments[trigger], required
                )
                apis = AsyncDownstreamApis(service, caller, assertion, declared)
                value = await handler(*bound.args, **bound.kwargs, **extra(caller, apis))
            except OboError as exc:
                return _response(error_result(exc))
            return _response(value)

    else:

        def wrapper(*args: Any, **kwargs: Any) -> func.HttpResponse:  # type: ignore[misc]
            bound = arguments(args, kwargs)
            try:
                service, caller, assertion = obo._prepare(bound.arguments[trigger], required)
                apis = DownstreamApis(service, caller, assertion, declared)
                value = handler(*bound.args, **bound.kwargs, **extra(caller, apis))
            except OboError as exc:
                return _response(error_result(exc))
            return _response(value)

    functools.update_wrapper(wrapper, handler)
    # What the worker indexes: the bindings' parameters only (inspect.signature stops here).
    wrapper.__signature__ = exposed  # type: ignore[attr-defined]
    wrapper.__annotations__ = {
        **{n: p.annotation for n, p in exposed.parameters.items() if p.annotation is not p.empty},
        "return": func.HttpResponse,
    }
    return wrapper  # type: ignore[return-value]


def _response(value: Any) -> func.HttpResponse:
    """What a handler returned, as the Functions response: an ``HttpResponse`` as is, a
    :class:`Result` (a relayed answer, a problem), or a dict/list as JSON (never cached)."""
    if isinstance(value, func.HttpResponse):
        return value
    if isinstance(value, Result):
        return func.HttpResponse(value.body, status_code=value.status, headers=value.headers)
    if isinstance(value, dict | list):
        return func.HttpResponse(
            json.dumps(value),
            status_code=200,
            mimetype="application/json",
            headers={"Cache-Control": "no-store"},
        )
    raise TypeError(
        f"a handler returned {type(value).__name__}: return a dict, list, "
        "Result or func.HttpResponse"
    )


def _names(value: str | Iterable[str]) -> list[str]:
    return [value] if isinstance(value, str) else list(value)
