"""Shared fixtures: one running stand-in stack per session, reset between tests."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from devstack.stack import DevStack

# The machine may point requests at its own CA bundle; tests must trust only what they pass.
for _name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE"):
    os.environ.pop(_name, None)


class Clock:
    """A clock tests move instead of sleeping."""

    def __init__(self) -> None:
        import time

        self.offset = 0.0
        self._time = time.time

    def __call__(self) -> float:
        return self._time() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += seconds


@pytest.fixture(scope="session")
def clock() -> Clock:
    return Clock()


@pytest.fixture(scope="session")
def _running_stack(clock: Clock) -> Iterator[DevStack]:
    with DevStack(clock=clock) as stack:
        yield stack


@pytest.fixture
def stack(_running_stack: DevStack, clock: Clock) -> Iterator[DevStack]:
    """The shared stack, reset to its seeded behaviour, with the clock at real time."""
    _running_stack.reset()
    clock.offset = 0.0
    yield _running_stack
    _running_stack.reset()
    clock.offset = 0.0


# -- the function app against the stack ------------------------------------------------

# azure-identity variables that would pick another credential than the managed identity
_AZURE_IDENTITY_NOISE = (
    "AZURE_TENANT_ID",
    "AZURE_CLIENT_SECRET",
    "AZURE_CLIENT_CERTIFICATE_PATH",
    "AZURE_CLIENT_CERTIFICATE_PASSWORD",
    "AZURE_USERNAME",
    "AZURE_PASSWORD",
    "AZURE_FEDERATED_TOKEN_FILE",
    "AZURE_AUTHORITY_HOST",
    "AZURE_TOKEN_CREDENTIALS",
    "MSI_ENDPOINT",
    "MSI_SECRET",
    "IDENTITY_SERVER_THUMBPRINT",
    "IMDS_ENDPOINT",
    "AZURE_POD_IDENTITY_AUTHORITY_HOST",
)


@pytest.fixture
def app_settings(stack: DevStack, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The stack's settings in the environment, as the Functions host would provide them."""
    for name in _AZURE_IDENTITY_NOISE:
        monkeypatch.delenv(name, raising=False)
    settings = stack.settings()
    for name, value in settings.items():
        monkeypatch.setenv(name, value)
    return settings


class Sleeps(list):
    """Records back-off waits instead of sleeping."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def service(app_settings: dict[str, str], configure):
    """The function app's OboService, fresh (empty caches), built from the stack's settings."""
    return configure()


@pytest.fixture
def configure(stack: DevStack, monkeypatch: pytest.MonkeyPatch, clock: Clock, sleeps: Sleeps):
    """``configure(**overrides)``: the function app served by a fresh service from the
    stack's settings with some changed (token type, trace mode...), as a restarted Functions
    host would run, on the test's clock and without real back-off waits."""
    from function_app import obo
    from obo.config import Settings
    from obo.service import OboService

    for name in _AZURE_IDENTITY_NOISE:
        monkeypatch.delenv(name, raising=False)

    def build(**overrides: str) -> OboService:
        for name, value in stack.settings(**overrides).items():
            monkeypatch.setenv(name, value)
        svc = OboService(Settings.from_env(), clock=clock, sleep=sleeps, read_timeout=1.0)
        obo.use(svc)
        return svc

    yield build
    obo.use(None)


# -- a real redis-server for the shared cache (OBO_CACHE_URL) -----------------------------


@pytest.fixture(scope="session")
def _redis_session():
    from tests.redis_server import RedisServer, require_redis_server

    require_redis_server()
    with RedisServer() as server:
        yield server


@pytest.fixture
def redis_server(_redis_session):
    """The session's redis-server, running (restarted if a test stopped it) and empty."""
    import redis

    try:
        admin = _redis_session.admin()
        admin.flushall()
        admin.acl_log_reset()
    except redis.RedisError:  # stopped, or left with a password by a failed test
        _redis_session.restart()
        admin = _redis_session.admin()
    yield _redis_session
    admin.close()


# -- nothing replayable in the logs, in any test -----------------------------------------

import logging  # noqa: E402
import re  # noqa: E402

_SECRET_SHAPES = re.compile(
    r"eyJ[\w-]{8,}\.eyJ[\w-]{8,}\.[\w-]*"  # a JWT (token, assertion)
    r"|-----BEGIN [A-Z ]*-----"  # a PEM block (key, certificate)
    r"|rt\.[\w-]{20,}"  # the stand-in's refresh tokens
    # a SAML assertion as XML, or "Assertion" base64-encoded at any of the three alignments
    r"|<(?:\w+:)?Assertion\b|QXNzZXJ0aW9u|Fzc2VydGlvb|Bc3NlcnRpb2"
)


# The stand-ins run in the test process; what they (and signxml for them) log is not the app's.
STAND_IN_LOGGERS = frozenset({"devstack", "signxml"})


class _LeakWatch(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.leaks: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.name.split(".")[0] in STAND_IN_LOGGERS:
            return
        text = record.getMessage() + " " + repr(exchange_fields(record))
        if record.exc_info:
            text += logging.Formatter().formatException(record.exc_info)
        if _SECRET_SHAPES.search(text):
            self.leaks.append(f"{record.name}: {text[:200]}")


def exchange_fields(record: logging.LogRecord) -> dict:
    """The flat ``obo.*`` attributes an exchange record carries (customDimensions in
    Application Insights), without the prefix."""
    return {k[4:]: v for k, v in vars(record).items() if k.startswith("obo.")}


# -- OpenTelemetry: the SDK with in-memory exporters, as a host would configure it ------------

from opentelemetry import metrics, trace  # noqa: E402
from opentelemetry.sdk.metrics import MeterProvider  # noqa: E402
from opentelemetry.sdk.metrics.export import InMemoryMetricReader  # noqa: E402
from opentelemetry.sdk.trace import TracerProvider  # noqa: E402
from opentelemetry.sdk.trace.export import SimpleSpanProcessor  # noqa: E402
from opentelemetry.sdk.trace.export.in_memory_span_exporter import (  # noqa: E402
    InMemorySpanExporter,
)

SPANS = InMemorySpanExporter()
METRICS = InMemoryMetricReader()
_tracer_provider = TracerProvider()
_tracer_provider.add_span_processor(SimpleSpanProcessor(SPANS))
trace.set_tracer_provider(_tracer_provider)
metrics.set_meter_provider(MeterProvider(metric_readers=[METRICS]))


def _span_leaks() -> list[str]:
    leaks = []
    for span in SPANS.get_finished_spans():
        texts = [span.name, repr(dict(span.attributes or {}))]
        texts += [f"{e.name} {dict(e.attributes or {})!r}" for e in span.events]
        leaks += [f"span {span.name}: {t[:200]}" for t in texts if _SECRET_SHAPES.search(t)]
    return leaks


@pytest.fixture(autouse=True)
def no_secrets_in_logs():
    """Every test, end to end: no log record of the app or its libraries (msal, azure-*,
    urllib3...), at any level down to DEBUG, and no span attribute or event holds a token,
    assertion or key."""
    watch = _LeakWatch()
    logger = logging.getLogger()
    previous = logger.level
    logger.setLevel(logging.DEBUG)
    logger.addHandler(watch)
    SPANS.clear()
    yield watch
    logger.removeHandler(watch)
    logger.setLevel(previous)
    leaks = watch.leaks + _span_leaks()
    assert leaks == [], "secret material logged:\n" + "\n".join(leaks)
