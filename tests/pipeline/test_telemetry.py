"""The telemetry contract (obo/telemetry.py), read back from the OpenTelemetry SDK's in-memory
exporters that tests/conftest.py installs as the global providers, as a host would."""

from __future__ import annotations

from pathlib import Path

from opentelemetry.trace import StatusCode

from tests.client import call, through
from tests.conftest import METRICS, SPANS


def spans(name: str) -> list:
    return [s for s in SPANS.get_finished_spans() if s.name == name]


def points(metric: str) -> dict[tuple, float]:
    """Cumulative value per attribute set: a counter's sum, a histogram's count."""
    found: dict[tuple, float] = {}
    data = METRICS.get_metrics_data()
    for resource in data.resource_metrics if data else []:
        for scope in resource.scope_metrics:
            for m in scope.metrics:
                if m.name != metric:
                    continue
                for p in m.data.data_points:
                    key = tuple(sorted(p.attributes.items()))
                    found[key] = getattr(p, "count", None) or getattr(p, "value", 0)
    return found


def delta(before: dict, after: dict) -> dict:
    return {k: v - before.get(k, 0) for k, v in after.items() if v != before.get(k, 0)}


def test_a_miss_then_a_hit(service, stack):
    token = stack.seed.user_token(stack.seed.alice)
    lookups, durations = points("obo.cache.lookups"), points("obo.exchange.duration")

    assert call("me", token).status == 200
    assert call("me", token).status == 200

    first, second = spans("obo.exchange")
    for span in (first, second):
        assert span.attributes["obo.tenant_id"] == stack.seed.contoso.id
        assert span.attributes["obo.api"] == "default"
        assert span.end_time > span.start_time
    assert (first.attributes["obo.cache"], second.attributes["obo.cache"]) == ("miss", "l1")
    assert delta(lookups, points("obo.cache.lookups")) == {
        (("obo.cache", "miss"),): 1,
        (("obo.cache", "l1"),): 1,
    }
    # Entra's round trip only: the cache hit adds no duration
    assert delta(durations, points("obo.exchange.duration")) == {
        (("obo.api", "default"), ("obo.outcome", "ok")): 1
    }


def test_validation_and_the_downstream_call_have_spans(service, stack):
    assert call("me", stack.seed.user_token(stack.seed.alice)).status == 200
    (validate,) = spans("obo.validate")
    (downstream,) = spans("obo.downstream")
    assert validate.attributes["obo.tenant_id"] == stack.seed.contoso.id
    assert downstream.attributes["obo.api"] == "default"
    assert downstream.attributes["http.request.method"] == "GET"
    assert downstream.attributes["http.response.status_code"] == 200
    # one trace: the exchange and the downstream call are children of nothing else here,
    # but both are recorded with the validation before them
    assert validate.end_time <= downstream.start_time


def test_a_refused_exchange_carries_its_aadsts_code(service, stack):
    reply = call("me", stack.seed.user_token(stack.seed.tess))
    assert reply.status == 403
    (span,) = spans("obo.exchange")
    assert span.status.status_code == StatusCode.ERROR
    assert span.attributes["obo.aadsts"] == "AADSTS65001"
    assert span.attributes["obo.correlation_id"] == reply.json()["correlation_id"]
    assert span.attributes["error.type"] == "Forbidden"
    assert span.attributes["obo.cache"] == "miss"


def test_a_refused_token_marks_the_validation_span(service, stack):
    reply = call("me", "not-a-jwt")
    assert reply.status == 401
    (span,) = spans("obo.validate")
    assert span.attributes["error.type"] == "Unauthorized"
    assert span.attributes["obo.code"] == reply.json()["code"]
    assert spans("obo.exchange") == []


def test_an_entry_from_the_shared_cache_is_an_l2_hit(configure, stack, redis_server):
    token = stack.seed.user_token(stack.seed.alice)
    first, second = (configure(OBO_CACHE_URL=redis_server.url) for _ in range(2))
    assert through(first, token).status == 200
    assert through(second, token).status == 200
    layers = [s.attributes["obo.cache"] for s in spans("obo.exchange")]
    assert layers == ["miss", "l2"]


def test_no_attribute_holds_the_token(service, stack):
    token = stack.seed.user_token(stack.seed.alice)
    call("me", token)
    call("me", stack.seed.user_token(stack.seed.tess))
    recorded = SPANS.get_finished_spans()
    assert recorded
    for span in recorded:
        values = [str(v) for v in (span.attributes or {}).values()]
        values += [str(e.attributes) for e in span.events]
        assert not any(token in v or token.split(".")[2] in v for v in values)


def test_the_operators_guide_names_every_span_metric_and_attribute(service, stack):
    call("me", stack.seed.user_token(stack.seed.alice))
    call("me", stack.seed.user_token(stack.seed.tess))  # a refusal: the failure attributes
    guide = (Path(__file__).resolve().parents[2] / "docs" / "troubleshooting.md").read_text()
    names = {s.name for s in SPANS.get_finished_spans()}
    names |= {k for s in SPANS.get_finished_spans() for k in (s.attributes or {})}
    names |= {"obo.cache.lookups", "obo.exchange.duration"}
    assert sorted(n for n in names if f"`{n}`" not in guide) == []
