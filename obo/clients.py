"""A handler's downstream APIs: one client per configured API, for the length of a request.

Modelled on Microsoft.Identity.Web's ``IDownstreamApi``: the client acquires the token on
behalf of the caller on its first call only (later requests find it in the exchanger's
cache), sends only that token, never the caller's, and gives back API 2's answer as parsed
JSON, as bytes, or whole (:class:`obo.responses.Result`).
"""

from __future__ import annotations

import asyncio
import json as _json
import re
from collections.abc import Mapping
from typing import Any

import azure.functions as func

from obo import telemetry
from obo.cache import OboToken
from obo.codes import Code
from obo.config import DownstreamSettings
from obo.downstream import forwarded_headers, safe_method, safe_path
from obo.errors import (
    ConfigurationError,
    DependencyFailed,
    DownstreamChallenge,
    DownstreamError,
    NotFound,
)
from obo.responses import Result
from obo.service import OboService
from obo.user_assertion import UserAssertion
from obo.validation import Caller

_JSON_TYPE = re.compile(r"application/(?:[\w.-]+\+)?json")  # RFC 6839 +json suffixes too


class DownstreamApi:
    """One downstream API, called as the signed-in user.

    ``get``/``post``/``put``/``patch``/``delete`` return the answer's JSON (``None`` when it
    has no body, ``bytes`` when it is not JSON) and raise :class:`obo.DownstreamError` for
    any status outside 2xx; ``request`` returns API 2's :class:`obo.Result` whatever its
    status. All of them raise the API's own errors for what the caller cannot fix here:
    502 (5xx, unreachable), 504 (timeout), 401 with a claims challenge (CAE).
    """

    def __init__(
        self,
        service: OboService,
        api: DownstreamSettings,
        caller: Caller,
        assertion: UserAssertion,
    ) -> None:
        self.name = api.name
        self._service = service
        self._api = api
        self._caller = caller
        self._assertion = assertion
        self._token: OboToken | None = None

    def request(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        json: Any = None,
        data: bytes = b"",
    ) -> Result:
        """``method`` on ``<base URL>/<path>``; ``path`` may not leave the base URL."""
        # before the exchange: a request that cannot be sent costs Entra nothing
        path = safe_path(path)
        safe_method(method.upper())
        forwarded_headers(headers or {})
        sent = dict(headers or {})
        if json is not None:
            data = _json.dumps(json).encode()
            sent.setdefault("Content-Type", "application/json")
        token = self._token or self._exchange()
        attributes = {"obo.api": self.name, "http.request.method": method.upper()}
        try:
            with telemetry.span("obo.downstream", **attributes) as span:
                result = self._service.downstream[self.name].call(
                    method.upper(), path, token.authorization, query=query, headers=sent, body=data
                )
                span.set_attribute("http.response.status_code", result.status)
                return result
        except DownstreamChallenge:  # CAE revoked this token: never serve it again
            self._service.exchanger.forget(self._caller, self._assertion, api=self._api)
            self._token = None
            raise

    def relay(self, req: func.HttpRequest, path: str) -> Result:
        """The caller's request passed on (method, query, body, safe headers) and API 2's
        answer passed back as is, 4xx included: what ``/api/downstream/{*path}`` does."""
        return self.request(
            req.method,
            path,
            query=dict(req.params),
            headers=dict(req.headers.items()),
            data=req.get_body() or b"",
        )

    def get(self, path: str, **options: Any) -> Any:
        return self._parsed("GET", path, options)

    def post(self, path: str, **options: Any) -> Any:
        return self._parsed("POST", path, options)

    def put(self, path: str, **options: Any) -> Any:
        return self._parsed("PUT", path, options)

    def patch(self, path: str, **options: Any) -> Any:
        return self._parsed("PATCH", path, options)

    def delete(self, path: str, **options: Any) -> Any:
        return self._parsed("DELETE", path, options)

    def _exchange(self) -> OboToken:
        self._token = self._service.exchanger.token_for(
            self._caller, self._assertion, api=self._api
        )
        return self._token

    def _parsed(self, method: str, path: str, options: dict[str, Any]) -> Any:
        result = self.request(method, path, **options)
        if not 200 <= result.status < 300:
            raise DownstreamError(self.name, result)
        if not result.body:
            return None
        if not _JSON_TYPE.fullmatch(result.content_type):
            return result.body
        try:
            return result.json()
        except ValueError:
            raise DependencyFailed(
                Code.DOWNSTREAM_JSON_INVALID,
                f"The downstream API '{self.name}' answered JSON that is not valid.",
            ) from None


class AsyncDownstreamApi:
    """:class:`DownstreamApi` for ``async def`` handlers: the same calls, awaitable. Each runs
    in a worker thread (``asyncio.to_thread``), so the Functions worker's event loop, which
    runs every async function of the instance, is never blocked by a network call
    (learn.microsoft.com/azure/azure-functions/python-scale-performance-reference)."""

    def __init__(self, client: DownstreamApi) -> None:
        self.name = client.name
        self._client = client

    async def request(self, method: str, path: str, **options: Any) -> Result:
        return await asyncio.to_thread(self._client.request, method, path, **options)

    async def relay(self, req: func.HttpRequest, path: str) -> Result:
        return await asyncio.to_thread(self._client.relay, req, path)

    async def get(self, path: str, **options: Any) -> Any:
        return await asyncio.to_thread(self._client.get, path, **options)

    async def post(self, path: str, **options: Any) -> Any:
        return await asyncio.to_thread(self._client.post, path, **options)

    async def put(self, path: str, **options: Any) -> Any:
        return await asyncio.to_thread(self._client.put, path, **options)

    async def patch(self, path: str, **options: Any) -> Any:
        return await asyncio.to_thread(self._client.patch, path, **options)

    async def delete(self, path: str, **options: Any) -> Any:
        return await asyncio.to_thread(self._client.delete, path, **options)


class _Clients:
    def __init__(
        self,
        service: OboService,
        caller: Caller,
        assertion: UserAssertion,
        declared: frozenset[str],
    ) -> None:
        self._service = service
        self._caller = caller
        self._assertion = assertion
        self._declared = declared
        self._clients: dict[str, DownstreamApi] = {}

    def _client(self, name: str) -> DownstreamApi:
        name = name.lower()
        if name not in self._declared:
            raise ConfigurationError(
                Code.API_UNDECLARED,
                f"This function did not declare the downstream API '{name[:40]}': add it to "
                "@obo.authorize(apis=[...]).",
            )
        return self._get(name)

    def _relayable(self, name: str) -> DownstreamApi:
        api = self._service.settings.apis.get(name.lower())
        if api is None or not api.relay:  # the same answer: names are not disclosed
            raise NotFound(Code.NO_RELAY, "No downstream API is relayed under this name.")
        return self._get(api.name)

    def _get(self, name: str) -> DownstreamApi:
        client = self._clients.get(name)
        if client is None:
            api = self._service.settings.apis[name]
            client = DownstreamApi(self._service, api, self._caller, self._assertion)
            self._clients[name] = client
        return client


class DownstreamApis(_Clients):
    """The downstream APIs a handler declared, by name: ``apis["graph"].get("me")``."""

    def __getitem__(self, name: str) -> DownstreamApi:
        return self._client(name)

    def relayable(self, name: str) -> DownstreamApi:
        """The API named in a relay route, if ``OBO_DOWNSTREAM__<NAME>__RELAY=true``; any
        other name is a 404 (``OBO2102``)."""
        return self._relayable(name)


class AsyncDownstreamApis(_Clients):
    """:class:`DownstreamApis` for ``async def`` handlers."""

    def __getitem__(self, name: str) -> AsyncDownstreamApi:
        return AsyncDownstreamApi(self._client(name))

    def relayable(self, name: str) -> AsyncDownstreamApi:
        return AsyncDownstreamApi(self._relayable(name))
