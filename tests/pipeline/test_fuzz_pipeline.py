"""Properties of the running pipeline against healthy stand-ins, for any input:

- the token validator returns a caller or a 401/403, nothing else, and only the exact text
  Entra signed is ever accepted (one token, one cache entry);
- the function handlers, driven like the Functions host would with any method, route
  parameter, headers, query and body, never answer 5xx and never let an exception out; what
  the API refuses itself is problem+json with a code and ``Cache-Control: no-store``, and
  costs no outbound call at all.
"""

from __future__ import annotations

import json

import azure.functions as func
import pytest
from hypothesis import event, given
from hypothesis import strategies as st

import function_app
from obo.config import Settings
from obo.errors import OboError
from obo.service import OboService
from obo.user_assertion import UserAssertion
from tests import tokens as builders
from tests.client import HANDLERS
from tests.fuzzing import CLAIM_NAMES, ODD_CLAIM, examples, mutated, outbound


class FrozenClock:
    """The product's clock stands still, so a key refresh cool-down never ends mid-run and a
    refused token can never be the one that happens to trigger a refresh."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def frozen_service(stack, app_settings, clock, sleeps):
    """A process-wide service with a frozen clock and warm key caches: every allowed
    tenant's keys fetched, and one unknown-kid refresh spent per tenant (the cool-down)."""
    service = OboService(
        Settings.from_env(), clock=FrozenClock(clock()), sleep=sleeps, read_timeout=2.0
    )
    function_app.obo.use(service)
    seed = stack.seed
    for user, tenant in (
        (seed.alice, seed.contoso),
        (seed.bob, seed.fabrikam),
        (seed.tess, seed.tailspin),
    ):
        valid = seed.user_token(user, tenant)
        service.validator.validate(UserAssertion(valid))
        unknown_kid = builders.resigned_with(valid, tenant.active_key, kid="no-such-key")
        with pytest.raises(OboError):
            service.validator.validate(UserAssertion(unknown_kid))
    yield service
    function_app.obo.use(None)


@pytest.fixture
def valid_tokens(stack) -> list[str]:
    """Tokens as Entra would sign them, minted once: some usable, some refused by rule."""
    seed, directory = stack.seed, stack.directory
    return [
        seed.user_token(seed.alice),
        seed.user_token(seed.alice, scopes=["other_scope"]),
        seed.user_token(seed.bob),
        seed.user_token(seed.carol, seed.contoso),
        seed.user_token(seed.nina),  # tenant not allowed
        seed.user_token(seed.tess),  # tenant allowed, no consent for Graph
        seed.user_token(seed.alice, version=1),
        seed.user_token(seed.alice, lifetime=-3600),  # expired
        directory.id_token(seed.alice, seed.contoso, seed.spa),
        directory.app_token(seed.contoso, seed.spa, seed.api),
        directory.user_token(seed.alice, seed.contoso, seed.spa, seed.graph, ["User.Read"]),
    ]


# -- (b) validation -------------------------------------------------------------------------


@examples(600)
@given(data=st.data())
def test_validator_accepts_only_the_exact_signed_text(frozen_service, valid_tokens, data):
    token = data.draw(mutated(st.sampled_from(valid_tokens)))
    try:
        caller = frozen_service.validator.validate(UserAssertion(token))
    except OboError as refused:
        assert refused.status in (401, 403), (refused.code, refused.detail)
        event(refused.code)
        return
    event("accepted")
    assert token in valid_tokens  # no other spelling, no other claims, no other signature
    assert caller.oid and caller.tid


@examples(200)
@given(data=st.data())
def test_signed_claims_of_any_type_are_a_caller_or_a_401_or_403(frozen_service, stack, data):
    valid = stack.seed.user_token(stack.seed.alice)
    odd = data.draw(
        st.dictionaries(st.sampled_from(CLAIM_NAMES), ODD_CLAIM, min_size=1, max_size=3)
    )
    claims = {**builders.claims_of(valid), **odd}
    header = {"typ": "JWT", "alg": "RS256", "kid": stack.seed.contoso.active_key.kid}
    token = builders.signed_raw(
        json.dumps(header).encode(), json.dumps(claims).encode(), stack.seed.contoso.active_key
    )
    try:
        frozen_service.validator.validate(UserAssertion(token))
    except OboError as refused:
        assert refused.status in (401, 403), (refused.code, refused.detail)
        event(refused.code)
        return
    event("accepted")


# -- (d) the whole handler ------------------------------------------------------------------

METHODS = st.one_of(
    st.sampled_from(["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "TRACE"]),
    st.text(max_size=8),
)
PATHS = st.one_of(
    st.sampled_from(["me", "echo/x", "echo/a/b", "me/messages", "users/x", "echo/..;/x"]),
    st.text(alphabet="abem/.;:%+~\\ ", max_size=16),
    st.text(max_size=16),
)
HEADER_NAMES = st.one_of(
    st.sampled_from(
        [
            "Accept",
            "Content-Type",
            "If-Match",
            "Prefer",
            "ConsistencyLevel",
            "client-request-id",
            "Cookie",
            "X-Forwarded-For",
            "Host",
            "authorization",
        ]
    ),
    st.text(max_size=10),
)
HEADER_VALUES = st.one_of(st.text(max_size=20), st.sampled_from(["application/json", "*/*"]))
QUERY = st.dictionaries(
    st.text(max_size=8).filter(lambda k: k != "echo_status"),  # a stand-in's test switch
    st.text(max_size=12),
    max_size=3,
)


def _authorization(valid: list[str]) -> st.SearchStrategy[str | None]:
    return st.one_of(
        st.none(),
        st.text(max_size=30),
        st.builds(lambda t: f"Bearer {t}", mutated(st.sampled_from(valid))),
        st.builds(lambda t: f"Bearer {t}", st.sampled_from(valid)),
    )


@examples(1200)
@given(data=st.data())
def test_any_request_gets_no_5xx_and_refusals_cost_nothing(
    frozen_service, stack, valid_tokens, data
):
    route = data.draw(st.sampled_from(["me", "downstream", "downstream", "health"]))
    headers = data.draw(st.dictionaries(HEADER_NAMES, HEADER_VALUES, max_size=4))
    authorization = data.draw(_authorization(valid_tokens))
    if authorization is not None:
        headers["Authorization"] = authorization
    path = data.draw(PATHS) if route == "downstream" else ""
    request = func.HttpRequest(
        data.draw(METHODS),
        f"http://localhost:7071/api/{route}",
        headers=headers,
        params=data.draw(QUERY),
        route_params={"path": path} if route == "downstream" else {},
        body=data.draw(st.binary(max_size=64)),
    )
    before = outbound(stack)
    response = HANDLERS[route](request)  # no exception may escape
    calls = outbound(stack) - before

    assert response.status_code < 500, response.get_body()
    if response.headers.get("Content-Type") != "application/problem+json":
        event(f"answered {response.status_code}")
        return
    problem = json.loads(response.get_body())
    assert response.headers["Cache-Control"] == "no-store"
    assert problem["status"] == response.status_code >= 400
    assert problem["code"].startswith("OBO") or problem["code"].startswith("AADSTS")
    event(f"refused {problem['code']}")
    if problem["code"][:4] in ("OBO2", "OBO3"):  # the request or token: refused locally
        assert calls == 0, (problem["code"], calls)
