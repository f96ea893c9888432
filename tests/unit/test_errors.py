"""obo/errors.py: each error renders its own HTTP face, a problem+json body (RFC 9457
section 3) and the headers its status needs (RFC 6750 section 3 for 401/403, RFC 9110 for
405 and 503), and shows the caller only what is meant for the caller."""

from __future__ import annotations

import base64
import json
import re
from types import SimpleNamespace

import pytest

from obo import errors
from obo.bearer import bearer_token
from obo.codes import Code
from obo.errors import (
    BadRequest,
    ClaimsChallenge,
    ConfigurationError,
    DependencyFailed,
    DependencyTimeout,
    DependencyUnavailable,
    DownstreamChallenge,
    DownstreamError,
    Forbidden,
    InsufficientScope,
    MethodNotAllowed,
    NotFound,
    OboError,
    RememberedFailure,
    Unauthorized,
)
from tests.conftest import _SECRET_SHAPES

CLAIMS = '{"access_token":{"acrs":{"essential":true,"value":"c1"}}}'
B64_CLAIMS = base64.b64encode(CLAIMS.encode()).decode()
TOKEN = "eyJhbGciOiJSUzI1NiJ9.eyJ0aWQiOiJ0ZW5hbnQtMSJ9.c2lnbmF0dXJl"
BEARER = 'Bearer realm="api"'
GRAPH_403 = SimpleNamespace(status=403, body=b'{"error":{"code":"Forbidden","message":"m"}}')


def _www(params: str) -> dict[str, str]:
    return {"WWW-Authenticate": f"{BEARER}, {params}"}


INVALID = _www('error="invalid_token", error_description="Expired."')
CHALLENGE = _www(f'error="insufficient_claims", claims="{B64_CLAIMS}"')
SCOPE = _www('error="insufficient_scope", scope="access_as_user Orders.Read"')
CASES = [  # one error of each class, its status, and the headers it adds to the common two
    (ConfigurationError(Code.SETTING_INVALID, "bad", setting="X"), 500, {}),
    (BadRequest(Code.PATH_REFUSED, "no '..'"), 400, {}),
    (MethodNotAllowed(Code.METHOD_NOT_RELAYED, "no", ("GET", "PUT")), 405, {"Allow": "GET, PUT"}),
    (NotFound(Code.NO_RELAY, "no such API"), 404, {}),
    (Unauthorized(Code.EXPIRED, "Expired."), 401, INVALID),
    (ClaimsChallenge("AADSTS50076", "MFA", claims=CLAIMS), 401, CHALLENGE),
    (DownstreamChallenge(Code.DOWNSTREAM_CLAIMS_CHALLENGE, "CAE", claims=CLAIMS), 401, CHALLENGE),
    (Forbidden("AADSTS65001", "no consent"), 403, {}),
    (InsufficientScope(Code.SCOPE_MISSING, "s", ("access_as_user", "Orders.Read")), 403, SCOPE),
    (DependencyFailed(Code.DOWNSTREAM_FAILED, "500"), 502, {}),
    (DownstreamError("graph", GRAPH_403), 502, {}),
    (
        DependencyUnavailable(Code.ENTRA_THROTTLED, "429", retry_after=17),
        503,
        {"Retry-After": "17"},
    ),
    (RememberedFailure(Code.KEY_VAULT_TIMEOUT, "slow", retry_after=3), 503, {"Retry-After": "3"}),
    (DependencyTimeout(Code.ENTRA_TIMEOUT, "slow"), 504, {}),
]


def test_every_error_class_a_code_or_entra_can_raise_has_a_case_here():
    classes = [c for c in vars(errors).values() if isinstance(c, type) and issubclass(c, OboError)]
    raised = {c.error for c in Code} | {c for c in classes if c.passes_entra_codes or c.replays}
    assert raised <= {type(error) for error, _, _ in CASES}


@pytest.mark.parametrize(
    ("error", "status", "headers"), CASES, ids=[type(e).__name__ for e, _, _ in CASES]
)
def test_each_error_renders_its_status_problem_json_and_its_own_headers(error, status, headers):
    rendered_status, rendered_headers, body = error.render()
    assert rendered_status == error.status == status
    common = {"Content-Type": "application/problem+json", "Cache-Control": "no-store"}
    assert rendered_headers == {**common, **headers}
    assert json.loads(body) == {
        "type": f"urn:obo-middle-tier:problem:{error.code}",
        "title": type(error).title,
        "status": status,
        "detail": error.public_detail,
        "code": error.code,
        **error.extra,
    }


def test_the_body_carries_the_callers_detail_and_the_log_the_operators():
    error = DependencyFailed(
        Code.CERTIFICATE_NOT_FOUND,
        "Certificate 'api-cert' not found in https://kv1.vault.azure.net.",
        public_detail="The API's certificate was not found.",
    )
    assert json.loads(error.render()[2])["detail"] == "The API's certificate was not found."
    assert "kv1.vault.azure.net" in str(error) and "kv1" not in error.render()[2].decode()


def test_a_401_without_a_presented_token_names_no_error_rfc_6750_3_1():
    error = Unauthorized(Code.NO_AUTHORIZATION, "Send a token.", token_presented=False)
    assert error.render()[1]["WWW-Authenticate"] == BEARER


def test_error_description_takes_the_public_detail_never_the_operators():
    error = Unauthorized(Code.EXPIRED, "exp 1700000000 < now", public_detail="The token expired.")
    assert error.headers()["WWW-Authenticate"].endswith('error_description="The token expired."')


HOSTILE = 'say "hi"\\ \r\nSet-Cookie: a=b\x00\x7f\té\u202e' + "x" * 400


@pytest.mark.parametrize("public", [True, False])
def test_error_description_is_header_safe_whatever_the_detail_holds(public):
    extra = {"public_detail": HOSTILE} if public else {}
    header = Unauthorized(Code.MALFORMED_TOKEN, HOSTILE, **extra).headers()["WWW-Authenticate"]
    description = re.fullmatch(
        r'Bearer realm="api", error="invalid_token", error_description="(.*)"', header
    )
    assert description is not None
    # RFC 6750 section 3: error_description is %x20-21 / %x23-5B / %x5D-7E
    assert re.fullmatch(r"[\x20\x21\x23-\x5b\x5d-\x7e]{1,300}", description[1])
    assert description[1].startswith("say hi")


def test_details_are_made_printable_for_the_log_and_the_body():
    error = BadRequest(Code.PATH_REFUSED, "a\r\nforged: line\u202e", public_detail="b\n")
    assert (error.detail, error.public_detail) == ("a\\r\\nforged: line\\u202e", "b\\n")


def test_a_claims_challenge_sends_the_claims_base64_in_the_header_and_raw_in_the_body():
    error = ClaimsChallenge("AADSTS50076", "MFA required", claims=CLAIMS, suberror="basic_action")
    header = error.headers()["WWW-Authenticate"]
    sent = re.search(r'claims="([^"]*)"', header)
    assert sent is not None and base64.b64decode(sent[1]).decode() == CLAIMS
    assert json.loads(error.render()[2])["claims"] == CLAIMS
    assert json.loads(error.render()[2])["suberror"] == "basic_action"


@pytest.mark.parametrize(("given", "sent"), [(17, "17"), (1, "1"), (0, "1"), (-30, "1")])
def test_retry_after_is_whole_seconds_and_at_least_one(given, sent):
    error = DependencyUnavailable(Code.ENTRA_UNREACHABLE, "down", retry_after=given)
    assert error.render()[1]["Retry-After"] == sent


def test_a_downstream_error_names_the_api_status_and_code_never_the_body():
    body = json.loads(DownstreamError("graph", GRAPH_403).render()[2])
    assert (body["downstream_status"], body["downstream_code"]) == (403, "Forbidden")
    assert '"m"' not in json.dumps(body)
    token_body = SimpleNamespace(status=401, body=json.dumps({"error": TOKEN}).encode())
    assert TOKEN not in DownstreamError("graph", token_body).render()[2].decode()


@pytest.mark.parametrize(
    "header",
    [
        f"Basic {TOKEN}",
        f"Bearer {TOKEN} {TOKEN}",
        f"Bearer {TOKEN}\r\n",
        f"Bearer {TOKEN}" + "A" * 20000,
    ],
)
def test_an_error_about_a_presented_token_never_quotes_it(header):
    with pytest.raises(Unauthorized) as refused:
        bearer_token(header)
    _, headers, body = refused.value.render()
    text = f"{refused.value} {headers} {body.decode()}"
    assert TOKEN not in text and not _SECRET_SHAPES.search(text)
