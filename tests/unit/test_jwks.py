"""obo/jwks.py against the Entra stand-in over HTTPS: when a tenant's signing keys are fetched
again, following Entra's guidance (https://learn.microsoft.com/entra/identity-platform/
signing-key-rollover): on an unknown ``kid``, at most once per cool-down, at least daily, and
never at the cost of the keys already known. Admission of unknown tenants (the discovery
budget, the negative cache, the two tiers) is tests/pipeline/test_tenant_discovery.py's."""

from __future__ import annotations

import uuid

import pytest

from devstack.httpserver import Fault
from obo.jwks import MAX_AGE, REFRESH_COOLDOWN, KeySource, UnknownKey
from obo.transport import new_session


@pytest.fixture
def tenant(stack):
    """A tenant of its own in the stand-in's directory (its keys can be rolled), removed after."""
    added = stack.directory.add_tenant(f"jwks-{uuid.uuid4().hex[:8]}")
    yield added
    stack.directory.tenants.pop(added.id, None)


@pytest.fixture
def keys(stack, clock) -> KeySource:
    """A key source as the service builds it: the shared session trusting the stand-in's CA."""
    return KeySource(new_session(str(stack.ca.ca_file)), stack.entra.base_url, clock)


def _fetches(stack, tenant) -> tuple[int, int]:
    """How often the stand-in was asked for the tenant's discovery document and key set."""
    return stack.entra.calls("discovery_v2", tenant.id), stack.entra.calls("keys", tenant.id)


def _same(public_key, signing_key) -> bool:
    return public_key.public_numbers() == signing_key.private_key.public_key().public_numbers()


def test_a_published_kid_is_fetched_once_then_served_from_the_cache(keys, stack, tenant):
    for signing_key in (*tenant.keys, tenant.keys[0]):
        assert _same(keys.key(tenant.id, signing_key.kid), signing_key)
    assert _fetches(stack, tenant) == (1, 1)


def test_an_unknown_kid_costs_one_refresh_per_cool_down_then_is_an_unknown_key(
    keys, stack, tenant, clock
):
    keys.key(tenant.id, tenant.keys[0].kid)
    unpublished = tenant.prepare_rollover()
    with pytest.raises(UnknownKey):
        keys.key(tenant.id, unpublished.kid)
    assert _fetches(stack, tenant) == (1, 1)  # the keys were fetched just now
    clock.advance(REFRESH_COOLDOWN)
    for _ in range(3):
        with pytest.raises(UnknownKey):
            keys.key(tenant.id, unpublished.kid)
    assert _fetches(stack, tenant) == (2, 2)  # one refresh, not one per token


def test_a_kid_published_since_the_last_fetch_is_found_by_the_refresh(keys, stack, tenant, clock):
    keys.key(tenant.id, tenant.keys[0].kid)
    rolled = tenant.prepare_rollover()
    tenant.publish(rolled)
    clock.advance(REFRESH_COOLDOWN)
    assert _same(keys.key(tenant.id, rolled.kid), rolled)
    assert _same(keys.key(tenant.id, rolled.kid), rolled)
    assert _fetches(stack, tenant) == (2, 2)


def test_no_second_refresh_for_an_unknown_kid_before_the_cool_down_ends(keys, stack, tenant, clock):
    keys.key(tenant.id, tenant.keys[0].kid)
    rolled = tenant.prepare_rollover()
    clock.advance(REFRESH_COOLDOWN)
    with pytest.raises(UnknownKey):
        keys.key(tenant.id, rolled.kid)  # refreshed, but not published yet
    tenant.publish(rolled)
    clock.advance(REFRESH_COOLDOWN - 1)
    with pytest.raises(UnknownKey):
        keys.key(tenant.id, rolled.kid)  # published now, but too soon to ask again
    assert _fetches(stack, tenant) == (2, 2)
    clock.advance(1)
    assert _same(keys.key(tenant.id, rolled.kid), rolled)
    assert _fetches(stack, tenant) == (3, 3)


def test_known_keys_are_refreshed_daily_so_a_retired_key_drops_out(keys, stack, tenant, clock):
    current, retired = tenant.keys
    for signing_key in (current, retired):
        keys.key(tenant.id, signing_key.kid)
    clock.advance(MAX_AGE - 1)
    keys.key(tenant.id, current.kid)
    assert _fetches(stack, tenant) == (1, 1)  # less than a day old: no refresh
    tenant.keys.remove(retired)
    clock.advance(1)
    assert _same(keys.key(tenant.id, current.kid), current)
    assert _fetches(stack, tenant) == (2, 2)  # a day old: refreshed although the kid is known
    with pytest.raises(UnknownKey):
        keys.key(tenant.id, retired.kid)
    assert _fetches(stack, tenant) == (2, 2)


@pytest.mark.parametrize("route", ["discovery_v2", "keys"])
def test_known_keys_are_served_while_a_refresh_fails_and_retried_after_the_cool_down(
    keys, stack, tenant, clock, route
):
    known = tenant.keys[0]
    keys.key(tenant.id, known.kid)
    stack.entra.inject(Fault(status=503, route=route))
    clock.advance(MAX_AGE)  # a refresh is due, and Entra fails it
    assert _same(keys.key(tenant.id, known.kid), known)
    assert _same(keys.key(tenant.id, known.kid), known)  # no new attempt right away
    assert stack.entra.calls(route, tenant.id) == 2

    stack.entra.clear_faults()
    clock.advance(REFRESH_COOLDOWN - 1)
    keys.key(tenant.id, known.kid)
    assert stack.entra.calls(route, tenant.id) == 2
    clock.advance(1)
    keys.key(tenant.id, known.kid)  # the cool-down after the failed attempt has passed
    assert stack.entra.calls(route, tenant.id) == 3
    clock.advance(REFRESH_COOLDOWN)  # that successful refresh is the day's
    keys.key(tenant.id, known.kid)
    assert stack.entra.calls(route, tenant.id) == 3


def test_a_new_kid_while_entra_fails_the_refresh_is_unavailable_not_an_unknown_key(
    keys, stack, tenant, clock
):
    from obo.errors import DependencyUnavailable

    keys.key(tenant.id, tenant.keys[0].kid)
    rolled = tenant.prepare_rollover()
    tenant.publish(rolled)  # Entra rolled its key, but its key set cannot be read just now
    stack.entra.inject(Fault(status=503, route="keys"))
    clock.advance(REFRESH_COOLDOWN)
    with pytest.raises(DependencyUnavailable) as refused:
        keys.key(tenant.id, rolled.kid)
    assert refused.value.code == "OBO3020"  # retry later, not "a key the tenant does not publish"
    with pytest.raises(DependencyUnavailable):  # still unknown within the cool-down: still 503
        keys.key(tenant.id, rolled.kid)

    stack.entra.clear_faults()
    clock.advance(REFRESH_COOLDOWN)
    assert _same(keys.key(tenant.id, rolled.kid), rolled)
