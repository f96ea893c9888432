"""``OBO_ALLOWED_TENANTS=*``: what a made-up ``tid`` can cost, end to end (issue 9, finding 3).

Forged tokens name tenants of their choosing before any signature is checked. Counted at the
Entra stand-in: a tenant Entra does not know is a 401 and is not asked about again for a
while; discovering unverified tenants draws on a global budget; tenants with a verified
token are never evicted by the others; ``*,-<tid>`` excludes tenants before any discovery.
"""

from __future__ import annotations

import uuid

import pytest
import requests

from devstack.directory import GRAPH_APP_ID
from devstack.keys import SigningKey
from obo.config import Settings
from obo.errors import ConfigurationError
from obo.jwks import ABSENT_FOR, KeySource
from obo.transport import new_session
from obo.validation import TokenValidator
from tests.client import call

MSA_TENANT = "9188040d-6c67-4c5b-b112-36a304b66dad"  # personal Microsoft accounts
FORGER = SigningKey()  # a key no tenant publishes


def _forged(stack, tid: str | None = None) -> str:
    """Alice's token with another ``tid``, signed by an attacker."""
    seed, tid = stack.seed, tid or str(uuid.uuid4())
    issuer = stack.directory.issuer_v2(tid)
    return seed.user_token(seed.alice, key=FORGER, extra={"tid": tid, "iss": issuer})


@pytest.fixture
def multi_tenant(configure, clock):
    """``multi_tenant(**limits)``: the app with ``OBO_ALLOWED_TENANTS=*`` and a key source
    built with small limits (its constructor arguments)."""

    def build(**limits) -> KeySource:
        service = configure(OBO_ALLOWED_TENANTS="*")
        settings = service.settings
        keys = KeySource(new_session(settings.ca_bundle), settings.authority_host, clock, **limits)
        service.keys = keys
        service.validator = TokenValidator(settings, keys, clock)
        return keys

    return build


@pytest.fixture
def extra_tenants(stack):
    """``extra_tenants(n)``: tenants that exist in the stand-in's directory, removed after."""
    added: list[str] = []

    def add(count: int, **fields) -> list:
        tenants = []
        for _ in range(count):
            tenant = stack.directory.add_tenant(f"extra-{uuid.uuid4().hex[:8]}")
            for name, value in fields.items():
                setattr(tenant, name, value)
            added.append(tenant.id)
            tenants.append(tenant)
        return tenants

    yield add
    for tid in added:
        stack.directory.tenants.pop(tid, None)
        for key in [k for k in stack.directory.consents if k[0] == tid]:
            del stack.directory.consents[key]
        stack.directory.service_principals -= {
            sp for sp in stack.directory.service_principals if sp[0] == tid
        }


def _problem(reply, status: int, code: str) -> dict:
    assert reply.status == status, reply.body
    assert reply.headers["Content-Type"] == "application/problem+json"
    body = reply.json()
    assert body["code"] == code
    return body


# -- the stand-in answers as Entra does ---------------------------------------------------
def test_entra_stand_in_answers_discovery_for_an_unknown_tenant_id_like_entra(stack):
    tid = str(uuid.uuid4())
    reply = requests.get(
        f"{stack.entra.base_url}/{tid}/v2.0/.well-known/openid-configuration",
        verify=str(stack.ca.ca_file),
        timeout=10,
    )
    assert reply.status_code == 400
    body = reply.json()
    assert body["error"] == "invalid_tenant"
    assert body["error_codes"] == [90002]
    assert body["error_description"].startswith(f"AADSTS90002: Tenant '{tid}' not found.")
    assert {"trace_id", "correlation_id", "timestamp", "error_uri"} <= body.keys()


# -- a tenant Entra does not know ----------------------------------------------------------
def test_unknown_tenant_is_401_and_not_asked_about_again_within_the_negative_ttl(
    multi_tenant, stack, clock
):
    multi_tenant()
    tid = str(uuid.uuid4())
    first = call("me", _forged(stack, tid))
    body = _problem(first, 401, "OBO3021")
    assert body["aadsts"] == "AADSTS90002"
    assert 'error="invalid_token"' in first.www_authenticate
    assert "Retry-After" not in first.headers
    assert stack.entra.calls("discovery_v2", tid) == 1

    clock.advance(ABSENT_FOR - 1)
    _problem(call("me", _forged(stack, tid)), 401, "OBO3021")
    assert stack.entra.calls("discovery_v2", tid) == 1  # remembered: Entra not asked again
    assert stack.entra.calls("keys") == 0

    clock.advance(2)  # the negative entry has a bounded lifetime
    _problem(call("me", _forged(stack, tid)), 401, "OBO3021")
    assert stack.entra.calls("discovery_v2", tid) == 2


# -- the budget ----------------------------------------------------------------------------
def test_forty_forged_tenants_cost_at_most_the_budget_in_discoveries(multi_tenant, stack):
    multi_tenant(discovery_burst=5, discovery_interval=3600)
    replies = [call("me", _forged(stack)) for _ in range(40)]
    assert stack.entra.calls("discovery_v2") == 5
    assert stack.entra.calls("keys") == 0
    assert [r.json()["code"] for r in replies[:5]] == ["OBO3021"] * 5
    for reply in replies[5:]:
        _problem(reply, 503, "OBO3022")
        assert 1 <= int(reply.headers["Retry-After"]) <= 3600
    assert stack.entra.calls("token") == 0


def test_known_tenants_are_served_while_the_budget_is_exhausted(multi_tenant, stack):
    seed = stack.seed
    multi_tenant(discovery_burst=2, discovery_interval=3600)
    assert call("me", seed.user_token(seed.alice)).status == 200  # contoso: 1 of 2
    _problem(call("me", _forged(stack)), 401, "OBO3021")  # 2 of 2
    _problem(call("me", _forged(stack)), 503, "OBO3022")  # exhausted
    discoveries = stack.entra.calls("discovery_v2")

    alice = call("me", seed.user_token(seed.alice))  # a new token of a known tenant
    assert alice.status == 200, alice.body
    _problem(call("me", seed.user_token(seed.bob)), 503, "OBO3022")  # fabrikam: never seen
    assert stack.entra.calls("discovery_v2", seed.fabrikam.id) == 0
    # no discovery at all since the budget ran out (keys and MSAL client are known)
    assert stack.entra.calls("discovery_v2") == discoveries


def test_a_genuine_token_signed_with_known_keys_is_admitted_without_the_budget(
    multi_tenant, stack, extra_tenants
):
    """Entra signs every tenant's tokens with the same keys: a new tenant whose token
    verifies with a key already trusted for another tenant exists, budget or not."""
    seed = stack.seed
    (shared,) = extra_tenants(1, keys=list(seed.contoso.keys))
    for app_id in (seed.api.app_id, seed.spa.app_id, GRAPH_APP_ID):
        stack.directory.service_principals.add((shared.id, app_id))
    graph = stack.directory.apps[GRAPH_APP_ID]
    stack.directory.grant_consent(shared, seed.api, graph, ["User.Read"])
    dana = stack.directory.add_user("Dana", shared)
    multi_tenant(discovery_burst=1, discovery_interval=3600)
    assert call("me", seed.user_token(seed.alice)).status == 200  # contoso, verified
    _problem(call("me", seed.user_token(seed.bob)), 503, "OBO3022")  # exhausted

    reply = call("me", seed.user_token(dana, shared))
    assert reply.status == 200, reply.body
    assert stack.entra.calls("discovery_v2", shared.id) >= 1
    # a forged token naming another new tenant and a known kid does not get in for free
    forged = seed.user_token(
        seed.alice,
        key=FORGER,
        extra={"tid": str(uuid.uuid4())},
    ).split(".")
    header = seed.user_token(seed.alice).split(".")[0]  # contoso's kid, forger's signature
    _problem(call("me", ".".join([header, *forged[1:]])), 503, "OBO3022")


# -- two tiers -----------------------------------------------------------------------------
def test_verified_tenants_survive_a_flood_of_unverified_ones(multi_tenant, stack, extra_tenants):
    seed = stack.seed
    multi_tenant(max_probation=3, discovery_burst=100, discovery_interval=3600)
    assert call("me", seed.user_token(seed.alice)).status == 200
    assert call("me", seed.user_token(seed.bob)).status == 200
    known = {t: stack.entra.calls("keys", t) for t in (seed.contoso.id, seed.fabrikam.id)}

    flood = extra_tenants(12)  # real tenants, but the tokens naming them are forged
    for tenant in flood:
        _problem(call("me", _forged(stack, tenant.id)), 401, "OBO3003")
    for _ in range(20):  # and tenants that do not exist
        _problem(call("me", _forged(stack)), 401, "OBO3021")

    for user in (seed.alice, seed.bob):
        reply = call("me", seed.user_token(user))
        assert reply.status == 200, reply.body
    # their keys were neither evicted nor fetched again
    assert {t: stack.entra.calls("keys", t) for t in known} == known
    # ...while the unverified tier stayed bounded: the first flooded tenant was evicted
    before = stack.entra.calls("keys", flood[0].id)
    _problem(call("me", _forged(stack, flood[0].id)), 401, "OBO3003")
    assert stack.entra.calls("keys", flood[0].id) == before + 1


def test_verified_tenants_evict_only_each_other_beyond_their_bound(multi_tenant, stack):
    seed = stack.seed
    multi_tenant(max_verified=1, discovery_burst=100, discovery_interval=3600)
    assert call("me", seed.user_token(seed.alice)).status == 200
    assert call("me", seed.user_token(seed.bob)).status == 200  # evicts contoso (LRU)
    assert call("me", seed.user_token(seed.alice)).status == 200
    assert stack.entra.calls("keys", seed.contoso.id) == 2


# -- '*' with exclusions -------------------------------------------------------------------
def test_excluded_tenants_are_refused_before_any_discovery(configure, stack):
    seed = stack.seed
    configure(OBO_ALLOWED_TENANTS=f"*,-{MSA_TENANT},-{seed.fabrikam.id}")
    for token in (_forged(stack, MSA_TENANT), seed.user_token(seed.bob)):
        _problem(call("me", token), 401, "OBO3006")
    assert stack.entra.calls("discovery_v2") == 0
    assert call("me", seed.user_token(seed.alice)).status == 200  # any other tenant


GOOD = {
    "OBO_TENANT_ID": "11111111-1111-1111-1111-111111111111",
    "OBO_CLIENT_ID": "22222222-2222-2222-2222-222222222222",
    "OBO_KEY_VAULT_URL": "https://kv.vault.azure.net",
    "OBO_CERTIFICATE_NAME": "cert",
}


def test_star_with_exclusions_is_parsed_into_any_tenant_but_those():
    settings = Settings.from_env({**GOOD, "OBO_ALLOWED_TENANTS": f" * , -{MSA_TENANT.upper()}"})
    assert settings.allowed_tenants is None
    assert settings.excluded_tenants == frozenset({MSA_TENANT})
    assert not settings.tenant_allowed(MSA_TENANT)
    assert settings.tenant_allowed(str(uuid.uuid4()))


@pytest.mark.parametrize(
    "value",
    [
        f"-{MSA_TENANT}",  # an exclusion without '*'
        f"{GOOD['OBO_TENANT_ID']},*",  # '*' not first
        f"*,{GOOD['OBO_TENANT_ID']}",  # an inclusion after '*'
        "*,-consumers",  # exclusions are tenant ids
        ",",  # no tenant at all
    ],
)
def test_malformed_tenant_lists_are_refused_at_start_up(value):
    with pytest.raises(ConfigurationError) as refused:
        Settings.from_env({**GOOD, "OBO_ALLOWED_TENANTS": value})
    assert refused.value.extra["setting"] == "OBO_ALLOWED_TENANTS"
