"""Spans and metrics through OpenTelemetry's global providers: the telemetry contract.

The library depends on ``opentelemetry-api`` only, so whatever SDK the host configures (the
Azure Monitor distro in Azure, the in-memory exporters in tests) receives them; without an
SDK every call is a no-op. Dashboards rely on these names (docs/troubleshooting.md):

- span ``obo.exchange`` per token request, cached or not: ``obo.tenant_id``, ``obo.api``,
  ``obo.cache`` (``l1``, ``l2`` or ``miss``); on failure ``error.type``, ``obo.aadsts``,
  ``obo.correlation_id``;
- spans ``obo.validate`` and ``obo.downstream``;
- counter ``obo.cache.lookups`` (attribute ``obo.cache``);
- histogram ``obo.exchange.duration``: Entra's round trip in seconds, cache hits excluded.

Attribute values are ids, codes and claims, never a token, an assertion or a key. Exceptions
are not recorded as span events: their text is the log's business, and an event would be one
more place to keep free of secrets.
"""

from __future__ import annotations

from types import TracebackType

from opentelemetry import context, metrics, trace
from opentelemetry.trace import Span, StatusCode
from opentelemetry.util.types import AttributeValue

from obo.errors import OboError

_tracer = trace.get_tracer("obo")
_meter = metrics.get_meter("obo")
_cache_lookups = _meter.create_counter(
    "obo.cache.lookups",
    unit="{lookup}",
    description="OBO token lookups, by the layer that answered: l1, l2 or miss",
)
_exchange_duration = _meter.create_histogram(
    "obo.exchange.duration",
    unit="s",
    description="Entra ID's round trip for one On-Behalf-Of exchange",
)


def span(name: str, **attributes: AttributeValue) -> _Scope:
    """A span around a block, marking an escaping error with ``error.type`` and, for Entra's
    refusals, the AADSTS code and correlation id the sign-in logs are searched by."""
    return _Scope(_tracer.start_span(name, attributes=attributes))


class _Scope:
    """``with span(...) as current:``. The span becomes the current one (the parent of what
    the block starts) only when it records: without an SDK, or when sampled out, making it
    current would cost more than the whole cached request (a context attach, ~4 us) for
    nothing, so the warm path stays as fast as without telemetry (docs/performance.md)."""

    __slots__ = ("_span", "_token")

    def __init__(self, current: Span) -> None:
        self._span = current
        self._token: object | None = None

    def __enter__(self) -> Span:
        if self._span.is_recording():
            self._token = context.attach(trace.set_span_in_context(self._span))
        return self._span

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc is not None:
            mark_failed(self._span, exc)
        if self._token is not None:
            context.detach(self._token)  # type: ignore[arg-type]
        self._span.end()


def mark_failed(current: Span, exc: BaseException) -> None:
    current.set_status(StatusCode.ERROR)
    current.set_attribute("error.type", type(exc).__qualname__)
    if isinstance(exc, OboError):
        current.set_attribute("obo.code", exc.code)
        aadsts = exc.code if exc.code.startswith("AADSTS") else exc.extra.get("aadsts")
        if isinstance(aadsts, str):
            current.set_attribute("obo.aadsts", aadsts)
        correlation = exc.extra.get("correlation_id")
        if isinstance(correlation, str):
            current.set_attribute("obo.correlation_id", correlation)


def cache_lookup(current: Span, layer: str) -> None:
    """Which cache layer answered (``l1``, ``l2``) or that none did (``miss``)."""
    current.set_attribute("obo.cache", layer)
    _cache_lookups.add(1, {"obo.cache": layer})


def exchange_duration(seconds: float, api: str, ok: bool) -> None:
    """One round trip to Entra (never a cache hit), answered or failed."""
    _exchange_duration.record(seconds, {"obo.api": api, "obo.outcome": "ok" if ok else "error"})
