"""Dependency outages, end to end (issue 9, finding 9): one load at a time with its outcome
shared, a failure answered at once for a few seconds, a failed routine look kept harmless,
and recovery without a restart. Counted at the stand-ins; the clock is moved, never slept."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable

import pytest

from devstack.httpserver import Fault
from devstack.stack import CERTIFICATE_NAME
from obo.credentials import KEY_VAULT_FAILURE_MEMO, VERSION_CHECK_INTERVAL, VERSION_CHECK_RETRY
from obo.exchange import DISCOVERY_FAILURE_MEMO
from obo.jwks import FIRST_FETCH_RETRY
from obo.managed_identity import IDENTITY_FAILURE_MEMO
from tests.client import Reply, call


def _problem(reply: Reply, status: int, code: str) -> dict:
    assert reply.status == status, reply.body
    assert reply.headers["Content-Type"] == "application/problem+json"
    body = reply.json()
    assert body["code"] == code, body
    return body


def _unavailable(reply: Reply, code: str) -> None:
    _problem(reply, 503, code)
    assert int(reply.headers["Retry-After"]) >= 1


def _concurrently(work: Callable[[str], Reply], tokens: list[str]) -> list[Reply]:
    replies: list[Reply] = []
    threads = [threading.Thread(target=lambda t=t: replies.append(work(t))) for t in tokens]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(replies) == len(tokens)
    return replies


def _new_users(stack, count: int) -> list[str]:
    """Tokens of ``count`` new Contoso users: distinct users never share an exchange."""
    seed = stack.seed
    users = [
        stack.directory.add_user(f"Out{uuid.uuid4().hex[:8]}", seed.contoso) for _ in range(count)
    ]
    return [seed.user_token(user) for user in users]


@pytest.fixture
def rotated(service, stack):
    """Alice was served with certificate version 1; then Entra stopped accepting it, and
    Key Vault holds version 2. Yields version 2."""
    seed = stack.seed
    assert call("me", seed.user_token(seed.alice)).status == 200
    version, _key, new_cert = stack.vault.create_certificate_version(CERTIFICATE_NAME)
    old = list(seed.api.certificates)
    seed.api.certificates[:] = [new_cert]
    stack.vault.reset_counters()
    stack.entra.reset_counters()
    yield version
    seed.api.certificates[:] = old
    stack.vault.import_certificate(CERTIFICATE_NAME, seed.api_key, seed.api_certificate)


def _served_once_back(stack, dependency, clock, memo: float) -> None:
    """The dependency recovers; once the remembered failure has lapsed, a new user is served."""
    dependency.clear_faults()
    clock.advance(memo)
    (token,) = _new_users(stack, 1)
    reply = call("me", token)
    assert reply.status == 200, reply.body


# -- Key Vault -----------------------------------------------------------------------------
def test_key_vault_down_after_a_rejection_costs_one_load_whatever_the_number_of_requests(
    service, stack, clock, rotated
):
    stack.vault.inject(Fault(status=503, latency=0.3))  # slow to fail: requests pile up
    replies = _concurrently(lambda token: call("me", token), _new_users(stack, 8))
    for reply in replies:
        _unavailable(reply, "OBO4007")
    assert stack.vault.calls("get_certificate") == 1  # one load, shared (before: 8 in a row)
    assert stack.vault.calls("get_secret") == 0
    assert stack.entra.calls("token") == 8  # each refused once, none retried with version 1

    # within the window the failure is answered at once: no Key Vault call
    (token,) = _new_users(stack, 1)
    _unavailable(call("me", token), "OBO4007")
    assert stack.vault.calls("get_certificate") == 1

    # Key Vault is back: after the window the next request loads version 2 and is served
    _served_once_back(stack, stack.vault, clock, KEY_VAULT_FAILURE_MEMO)
    assert service.credentials.current().version == rotated
    assert stack.vault.calls("get_certificate") == 2


def test_key_vault_slower_than_the_deadline_answers_in_time(configure, stack, monkeypatch):
    monkeypatch.setattr("obo.credentials.KEY_VAULT_DEADLINE", 0.2)
    configure()
    stack.vault.inject(Fault(status=503, latency=1.0, route="get_certificate", count=1))
    _problem(call("me", stack.seed.user_token(stack.seed.alice)), 504, "OBO4005")
    # the load is still under way: the next request does not wait for it, nor start another
    _unavailable(call("me", stack.seed.user_token(stack.seed.alice)), "OBO4005")
    # the one load reaches Key Vault in its own time (the identity token first; a loaded
    # machine can take longer than the deadline): wait for it, then there is still one
    deadline = time.monotonic() + 10
    while stack.vault.calls("get_certificate") == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert stack.vault.calls("get_certificate") == 1
    assert stack.entra.calls("token") == 0


def test_failed_version_check_keeps_serving_the_current_certificate(service, stack, clock):
    seed = stack.seed
    clock.advance(-VERSION_CHECK_INTERVAL)
    first = service.credentials.current()  # loaded an hour ago
    clock.advance(VERSION_CHECK_INTERVAL)
    stack.vault.reset_counters()
    stack.vault.inject(Fault(status=503))

    reply = call("me", seed.user_token(seed.alice))  # the hourly look is due, and fails
    assert reply.status == 200, reply.body
    assert stack.vault.calls("get_certificate") == 1
    reply = call("me", seed.user_token(seed.bob))
    assert reply.status == 200, reply.body
    assert stack.vault.calls("get_certificate") == 1  # not every request looks again
    assert service.credentials.current() is first

    stack.vault.clear_faults()
    clock.advance(VERSION_CHECK_RETRY)  # looked at again later, successfully
    reply = call("me", seed.user_token(seed.alice, mfa=True))
    assert reply.status == 200, reply.body
    assert stack.vault.answered("get_certificate", 200) == 1


# -- signing keys (JWKS) -------------------------------------------------------------------
def test_concurrent_first_requests_of_a_tenant_share_one_key_fetch(service, stack):
    stack.entra.inject(Fault(latency=0.3, route="keys", count=1))
    replies = _concurrently(lambda token: call("me", token), _new_users(stack, 8))
    assert [r.status for r in replies] == [200] * 8
    assert stack.entra.calls("keys", stack.seed.contoso.id) == 1


def test_entra_down_at_a_tenants_first_use_is_remembered_briefly(service, stack, clock):
    seed = stack.seed
    stack.entra.inject(Fault(status=500, route="discovery_v2"))
    _unavailable(call("me", seed.user_token(seed.alice)), "OBO3020")
    _unavailable(call("me", seed.user_token(seed.alice)), "OBO3020")
    assert stack.entra.calls("discovery_v2") == 1
    stack.entra.clear_faults()
    clock.advance(FIRST_FETCH_RETRY)
    reply = call("me", seed.user_token(seed.alice))
    assert reply.status == 200, reply.body


# -- MSAL's tenant discovery ---------------------------------------------------------------
def test_msal_discovery_failure_is_shared_and_remembered(service, stack, clock):
    seed = stack.seed
    # the tenant's keys are known (a token refused only for its scope), MSAL's client is not
    assert call("me", seed.user_token(seed.alice, scopes=["nope"])).status == 403
    stack.entra.reset_counters()
    stack.entra.inject(Fault(status=503, retry_after=3, latency=0.3, route="discovery_v2"))
    replies = _concurrently(lambda token: call("me", token), _new_users(stack, 6))
    for reply in replies:
        _unavailable(reply, "OBO5001")
    assert stack.entra.calls("discovery_v2") == 1
    (token,) = _new_users(stack, 1)
    _unavailable(call("me", token), "OBO5001")
    assert stack.entra.calls("discovery_v2") == 1
    assert stack.entra.calls("token") == 0

    _served_once_back(stack, stack.entra, clock, DISCOVERY_FAILURE_MEMO)


# -- managed identity (secretless) ---------------------------------------------------------
SECRETLESS = {
    "OBO_CLIENT_CREDENTIAL": "managed_identity",
    "OBO_KEY_VAULT_URL": "",
    "OBO_CERTIFICATE_NAME": "",
}


def test_identity_endpoint_down_costs_one_fetch_and_is_remembered(configure, stack, clock):
    configure(**SECRETLESS)
    # a dropped connection (MSAL would itself hold back after a 5xx, for 5 s of real time)
    stack.identity.inject(Fault(drop=True, latency=0.3))
    replies = _concurrently(lambda token: call("me", token), _new_users(stack, 6))
    for reply in replies:
        _unavailable(reply, "OBO4004")
    fetches = stack.identity.calls("token")
    assert fetches == 2  # one fetch: the first attempt and azure-identity's one retry
    (token,) = _new_users(stack, 1)
    _unavailable(call("me", token), "OBO4004")
    assert stack.identity.calls("token") == fetches

    stack.identity.clear_faults()
    clock.advance(IDENTITY_FAILURE_MEMO)
    (token,) = _new_users(stack, 1)
    reply = call("me", token)
    assert reply.status == 200, reply.body
