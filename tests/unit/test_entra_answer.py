"""obo/entra_answer.py: Entra's JSON read field by field, nothing trusted to have the type the
docs promise ("Microsoft identity platform and OAuth 2.0 On-Behalf-Of flow"; RFC 6749
section 5), and the one place where a failed token request becomes the API's error."""

from __future__ import annotations

import pytest

from obo.entra_answer import (
    CERTIFICATE_REJECTED,
    MAX_LIFETIME,
    EntraAnswer,
    EntraAnswerUnreadable,
    EntraRefused,
    EntraTimeout,
    EntraUnavailable,
    EntraUnreachable,
    entra_failures,
)
from obo.errors import ClaimsChallenge, DependencyFailed, Forbidden, OboError

TOKEN = "eyJ0eXAiOiJKV1QifQ.eyJzdWIiOiJ4In0.c2ln"
GUID = "0b8c1f7e-3c1a-4b1e-9a51-6a2b1e0c9d11"
SCOPES = ("api://orders/Orders.Read",)
MISSING = object()  # the member is absent


# -- token answers --------------------------------------------------------------------------
@pytest.mark.parametrize("expires_in", [3599, 3599.0, "3599", "3599.5", MAX_LIFETIME])
def test_a_token_answer_gives_the_token_and_a_lifetime_from_a_number_or_numeric_string(
    expires_in,
):
    answer = EntraAnswer.read({"access_token": TOKEN, "expires_in": expires_in, "trace_id": GUID})
    assert (answer.token, answer.lifetime) == (TOKEN, float(expires_in))
    assert (answer.ids, answer.error, answer.challenge) == ({"trace_id": GUID}, None, False)
    assert TOKEN not in repr(answer)


NOT_A_STRING = "its access_token is not a non-empty string"
ODD_CHARACTERS = "its access_token holds characters no token has"
NO_LIFETIME = "its expires_in is missing or not a lifetime in seconds"
UNUSABLE = [
    *[("access_token", v, NOT_A_STRING) for v in (None, 42, True, "", ["x"], {}, "a" * 262145)],
    *[("access_token", v, ODD_CHARACTERS) for v in (f"Bearer {TOKEN}", f"{TOKEN}\r\nX: y", "ä")],
    *[("expires_in", v, NO_LIFETIME) for v in (MISSING, None, 0, -1, "-60", MAX_LIFETIME + 1)],
    *[("expires_in", v, NO_LIFETIME) for v in ("1e400", "NaN", "inf", float("nan"), True, [1])],
]


@pytest.mark.parametrize(("field", "value", "why"), UNUSABLE, ids=lambda v: repr(v)[:16])
def test_a_token_or_lifetime_not_as_entra_documents_is_obo5004_and_never_quoted(field, value, why):
    body = {"access_token": TOKEN, "expires_in": 3599, field: value}
    if value is MISSING:
        del body[field]
    with pytest.raises(DependencyFailed) as refused:
        EntraAnswer.read(body)
    assert (refused.value.code, refused.value.status) == ("OBO5004", 502)
    assert refused.value.detail == f"Entra ID's answer to the token exchange is not usable: {why}."
    assert refused.value.public_detail == "Entra ID's answer to the token exchange is not usable."


# -- error answers --------------------------------------------------------------------------
def test_an_answer_without_a_token_is_a_refusal_with_entras_fields():
    body = {"error": "invalid_grant", "error_codes": [50013], "suberror": "bad_token"}
    with pytest.raises(EntraRefused) as refused:
        EntraAnswer.read({**body, "correlation_id": GUID, "trace_id": GUID.upper()})
    answer = refused.value.answer
    assert (answer.error, answer.codes, answer.suberror) == ("invalid_grant", (50013,), "bad_token")
    assert answer.ids == {"correlation_id": GUID, "trace_id": GUID.upper()}
    assert refused.value.outcome == "invalid_grant"


ODD = [True, None, 1.5, -1, 0, 10**9, "12x", "", " 1", {"c": 1}, [7]]


@pytest.mark.parametrize(
    ("error_codes", "codes"),
    [([50076, "65001"], (50076, 65001)), ([*ODD, 700027], (700027,))]
    + [(odd, ()) for odd in (50076, "50076", {"0": 50076}, None)],
)
def test_error_codes_of_odd_types_yield_only_the_aadsts_numbers_they_really_hold(
    error_codes, codes
):
    assert EntraAnswer.refusal({"error_codes": error_codes}).codes == codes


@pytest.mark.parametrize(
    "body",
    [
        {"error": "Invalid Grant", "suberror": "x y", "correlation_id": "not-a-guid"},
        {"error": 7, "suberror": {"a": 1}, "correlation_id": 42, "trace_id": f"{GUID}\r\n"},
    ],
)
def test_an_error_name_suberror_or_id_of_another_shape_reads_as_absent(body):
    answer = EntraAnswer.refusal(body)
    assert (answer.error, answer.suberror, answer.ids) == (None, None, {})


@pytest.mark.parametrize(
    ("body", "challenge", "claims"),
    [
        ({"error": "invalid_grant", "claims": '{"a":1}'}, True, '{"a":1}'),
        ({"error": "interaction_required"}, True, ""),
        ({"error": "invalid_grant", "claims": {"access_token": {}}}, True, ""),  # odd, but asked
        ({"error": "invalid_grant", "claims": ""}, False, ""),
    ],
)
def test_claims_or_interaction_required_make_a_challenge(body, challenge, claims):
    answer = EntraAnswer.refusal(body)
    assert (answer.challenge, answer.claims) == (challenge, claims)


@pytest.mark.parametrize("code", sorted(CERTIFICATE_REJECTED))
def test_only_invalid_client_with_a_certificate_code_means_the_certificate_is_rejected(code):
    def rejected(error: str, code: int) -> bool:
        return EntraAnswer.refusal({"error": error, "error_codes": [code]}).certificate_rejected

    assert rejected("invalid_client", code)
    assert not rejected("invalid_grant", code)
    assert not rejected("invalid_client", 7000215)  # a wrong secret, not a certificate


# -- entra_failures: each failure becomes the API's error -----------------------------------
def _mapped(failure: Exception) -> OboError:
    with pytest.raises(OboError) as mapped, entra_failures(SCOPES):
        raise failure
    assert mapped.value.__cause__ is failure  # raise ... from: the log keeps the cause
    return mapped.value


def _refused(**body: object) -> EntraRefused:
    return EntraRefused(EntraAnswer.refusal(body))


def test_a_claims_challenge_becomes_a_401_with_entras_code_claims_and_ids():
    answer = {"error": "interaction_required", "error_codes": [50076], "claims": '{"x":1}'}
    error = _mapped(_refused(**answer, trace_id=GUID))
    assert isinstance(error, ClaimsChallenge)
    assert (error.status, error.code, error.claims) == (401, "AADSTS50076", '{"x":1}')
    assert error.extra["trace_id"] == GUID


def test_missing_admin_consent_is_a_403_whose_body_does_not_name_the_scopes():
    error = _mapped(_refused(error="invalid_grant", error_codes=[65001]))
    assert isinstance(error, Forbidden)
    assert (error.status, error.code) == (403, "AADSTS65001")
    assert SCOPES[0] in error.detail  # the operator's log names them
    assert SCOPES[0] not in error.public_detail + error.render()[2].decode()


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"error": "invalid_grant", "error_codes": [50013, 50076]}, "AADSTS50013"),  # the first
        ({"error": "invalid_client", "error_codes": [99999999]}, "AADSTS99999999"),  # unknown
        ({"error": "invalid_request"}, "invalid_request"),  # no AADSTS code: the OAuth error
        ({"error_description": "AADSTS50013: no error"}, "OBO5004"),  # neither token nor error
    ],
)
def test_any_other_refusal_is_a_502_under_entras_own_code(body, code):
    error = _mapped(_refused(**body))
    assert (type(error), error.status, error.code) == (DependencyFailed, 502, code)


MAPPED = {  # failure -> "class status code Retry-After"
    "429": (EntraUnavailable(429, 17, {"trace_id": GUID}), "DependencyUnavailable 503 OBO5001 17"),
    "5xx": (EntraUnavailable(503, 0, {}), "DependencyUnavailable 503 OBO5001 1"),
    "no connection": (EntraUnreachable("refused"), "DependencyUnavailable 503 OBO5002 5"),
    "not JSON": (EntraAnswerUnreadable(200, "no JSON"), "DependencyFailed 502 OBO5003 -"),
    "timeout": (EntraTimeout("read timed out"), "DependencyTimeout 504 OBO5005 -"),
    "discovery": (
        EntraAnswerUnreadable(200, "a JSON array", discovery=True),
        "DependencyFailed 502 OBO5006 -",
    ),
}


@pytest.mark.parametrize(("failure", "expected"), MAPPED.values(), ids=MAPPED.keys())
def test_transport_and_answer_failures_map_to_their_class_status_and_code(failure, expected):
    error = _mapped(failure)
    retry_after = error.render()[1].get("Retry-After", "-")
    assert f"{type(error).__name__} {error.status} {error.code} {retry_after}" == expected
    assert error.extra == failure.answer.ids  # Entra's ids, for a support case


def test_an_unreadable_answer_tells_the_caller_only_that_it_could_not_be_read():
    error = _mapped(EntraAnswerUnreadable(502, "a JSON string"))
    assert "502" in error.detail and "a JSON string" in error.detail
    assert error.public_detail == "Entra ID's answer to the token exchange could not be read."


@pytest.mark.parametrize("other", [DependencyFailed("OBO5004", "unusable"), ValueError("x")])
def test_anything_else_passes_unchanged(other):
    with pytest.raises(type(other)) as passed, entra_failures(SCOPES):
        raise other
    assert passed.value is other
