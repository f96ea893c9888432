"""The caller's token is read strictly: one spelling per token, and any hostile content is a
401 (never a 500), refused before Entra is asked for anything."""

from __future__ import annotations

import base64
import json

import pytest

from obo import jwt_segments
from obo.jwt_segments import MalformedToken
from tests import tokens
from tests.client import call

ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _token(header: bytes, payload: bytes, signature: str = "c2ln") -> str:
    return f"{_b64(header)}.{_b64(payload)}.{signature}"


HEADER = b'{"alg":"RS256","kid":"k"}'
PAYLOAD = b'{"tid":"t","exp":1}'


def _assert_refused(reply, code: str = "OBO3001", status: int = 401) -> dict:
    assert reply.status == status, reply.body
    assert reply.headers["Content-Type"] == "application/problem+json"
    assert reply.headers["Cache-Control"] == "no-store"
    problem = reply.json()
    assert problem["code"] == code
    return problem


# -- one text per token -------------------------------------------------------------------


def _respellings(segment: str) -> dict[str, str]:
    """Every other spelling of ``segment`` that a lenient base64 decoder reads the same."""
    tail = len(segment) % 4
    out = {
        "padding": segment + "=" * (-len(segment) % 4 or 4),
        "whitespace": segment[:4] + " " + segment[4:],
        "newline": segment[:4] + "\n" + segment[4:],
        "standard alphabet": segment.replace("-", "+").replace("_", "/") + "+/",
        "length 1 mod 4": segment + "A" * ((1 - tail) % 4 or 4),
    }
    if tail in (2, 3):  # the last character carries unused bits
        index = ALPHABET.index(segment[-1])
        out["trailing bits"] = segment[:-1] + ALPHABET[index + 1]
    return out


def _aligned_token(stack, tail: int) -> str:
    """Alice's token, validly signed, with header and payload lengths of ``tail`` mod 4 so
    each segment has unused trailing bits to flip (the RS256 signature always has 4)."""
    valid = stack.seed.user_token(stack.seed.alice)
    key = stack.seed.contoso.active_key
    for header_pad in range(4):
        for claims_pad in range(4):
            token = tokens.resigned_with(
                tokens.tampered(valid, pad="x" * claims_pad), key, pad="y" * header_pad
            )
            if all(len(part) % 4 == tail for part in token.split(".")[:2]):
                return token
    raise AssertionError("no alignment found")


@pytest.mark.parametrize("tail", [2, 3])
@pytest.mark.parametrize("part", [0, 1, 2], ids=["header", "payload", "signature"])
def test_every_respelling_of_a_valid_token_is_refused_before_any_cache_or_exchange(
    service, stack, tail, part
):
    token = _aligned_token(stack, tail)
    segments = token.split(".")
    for name, spelling in _respellings(segments[part]).items():
        respelled = ".".join([*segments[:part], spelling, *segments[part + 1 :]])
        reply = call("me", headers={"Authorization": f"Bearer {respelled}"})
        assert reply.status == 401, (name, reply.body)
        assert reply.json()["code"] in ("OBO2003", "OBO3001"), name  # header grammar or JWT
    assert stack.entra.calls("token") == 0
    assert len(service.validator._validated) == 0  # nothing remembered under another text
    assert call("me", token).status == 200  # the canonical spelling still works
    assert stack.entra.calls("token") == 1


def test_respelling_a_cached_token_does_not_reach_the_cache(service, stack):
    token = stack.seed.user_token(stack.seed.alice)
    assert call("me", token).status == 200
    header, payload, signature = token.split(".")
    padded = f"{header}.{payload}.{signature}=="
    _assert_refused(call("me", padded))
    assert stack.entra.calls("token") == 1


@pytest.mark.parametrize("part", [0, 1, 2])
def test_split_canonical_names_the_part_that_is_not_canonical(part):
    segments = [_b64(HEADER), _b64(PAYLOAD), "c2lnbmF0dXJl"]
    for spelling in _respellings(segments[part]).values():
        if any(c in spelling for c in " \n+/="):
            continue  # outside the alphabet: refused as not a JWT at all
        with pytest.raises(MalformedToken, match=["header", "payload", "signature"][part]):
            jwt_segments.split_canonical(
                ".".join([*segments[:part], spelling, *segments[part + 1 :]])
            )


def test_an_empty_signature_is_canonical_so_alg_none_gets_its_own_answer():
    header, claims = jwt_segments.read(_token(HEADER, PAYLOAD, ""))
    assert header["alg"] == "RS256" and claims["tid"] == "t"


# -- hostile content -----------------------------------------------------------------------

HOSTILE_PAYLOADS = {
    "deep nesting (RecursionError in json)": b'{"a":' + b"[" * 5000 + b"]" * 5000 + b"}",
    "nesting past the depth bound": b'{"a":' + b"[" * 9 + b"]" * 9 + b"}",
    "huge integer": b'{"exp":1' + b"0" * 400 + b"}",
    "integer past int()'s digit limit": b'{"n":' + b"9" * 5000 + b"}",
    "float overflowing to inf": b'{"exp":1e999}',
    "NaN": b'{"exp":NaN}',
    "Infinity": b'{"exp":Infinity}',
    "-Infinity": b'{"nbf":-Infinity}',
    "JSON array": b"[1,2]",
    "JSON string": b'"claims"',
    "JSON null": b"null",
    "JSON number": b"7",
    "empty": b"",
    "duplicate names": b'{"oid":"victim","oid":"attacker"}',
    "latin-1 text": '{"name":"Ren\xe9"}'.encode("latin-1"),
    "UTF-16 JSON": '{"tid":"t"}'.encode("utf-16"),
    "UTF-8 BOM": b'\xef\xbb\xbf{"tid":"t"}',
    "overlong UTF-8": b'{"name":"\xc0\xae"}',
    "lone surrogate escape": b'{"name":"\\ud800"}',
    "CR LF in a claim": b'{"aud":"a\\r\\nb"}',
    "NUL in a member name": b'{"ti\\u0000d":"t"}',
    "trailing garbage": b'{"tid":"t"} x',
}


@pytest.mark.parametrize("payload", HOSTILE_PAYLOADS.values(), ids=HOSTILE_PAYLOADS.keys())
def test_hostile_payload_is_malformed(payload):
    with pytest.raises(MalformedToken):
        jwt_segments.read(_token(HEADER, payload))


@pytest.mark.parametrize("header", HOSTILE_PAYLOADS.values(), ids=HOSTILE_PAYLOADS.keys())
def test_hostile_header_is_malformed(header):
    with pytest.raises(MalformedToken):
        jwt_segments.read(_token(header, PAYLOAD))


@pytest.mark.parametrize(
    "token",
    [
        "",
        "a",
        "a.b",
        "a.b.c.d",
        "..",
        "a..c",
        "a.b.c\n",
        " a.b.c",
        "a.b.c" + "A" * 17000,
        _token(HEADER, PAYLOAD, "A" * 1100),
        _token(b'{"x":"' + b"y" * 4000 + b'"}', PAYLOAD),
    ],
)
def test_shapes_and_sizes_outside_the_bounds_are_malformed(token):
    with pytest.raises(MalformedToken):
        jwt_segments.split_canonical(token)


@pytest.mark.parametrize("payload", HOSTILE_PAYLOADS.values(), ids=HOSTILE_PAYLOADS.keys())
def test_hostile_tokens_signed_with_the_tenants_key_are_401_without_exchange(
    service, stack, payload
):
    token = tokens.signed_raw(
        json.dumps(
            {"typ": "JWT", "alg": "RS256", "kid": stack.seed.contoso.active_key.kid}
        ).encode(),
        payload,
        stack.seed.contoso.active_key,
    )
    problem = _assert_refused(call("me", token))
    assert "well-formed" in problem["detail"]
    assert stack.entra.calls("token") == 0


SIGNED_ODD_CLAIMS = [
    {"exp": True},
    {"exp": False},
    {"nbf": True},
    {"exp": "1999999999"},
    {"exp": "nan"},
    {"exp": [1999999999]},
    {"exp": {"at": 1}},
    {"exp": None},
    {"nbf": "0"},
    {"nbf": [0]},
    {"exp": 1e308},
    {"exp": 10**30},
    {"nbf": -1e308},
    {"tid": ["x"]},
    {"tid": {"id": 1}},
    {"tid": 1.5},
    {"tid": True},
    {"tid": ""},
    {"oid": ["x"]},
    {"oid": {}},
    {"oid": None},
    {"oid": ""},
    {"scp": {"access_as_user": True}},
    {"scp": 1},
    {"scp": None},
    {"aud": {"x": 1}},
    {"aud": 1},
    {"aud": True},
    {"aud": []},
    {"ver": ["2.0"]},
    {"ver": None},
    {"azp": ["x"]},
    {"name": {"a": 1}},
    {"idp": ["x"]},
    {"acct": "1"},
    {"tfp": None},
    {"acr": ["b2c_1"]},
]


@pytest.mark.parametrize("odd", SIGNED_ODD_CLAIMS, ids=[json.dumps(o) for o in SIGNED_ODD_CLAIMS])
def test_signed_claims_of_odd_types_never_make_a_5xx(service, stack, odd):
    reply = call("me", stack.seed.user_token(stack.seed.alice, extra=odd))
    assert reply.status in (200, 401, 403), (odd, reply.status, reply.body)
    if reply.status != 200:
        _assert_refused(reply, reply.json()["code"], reply.status)


@pytest.mark.parametrize("odd", [{"exp": True}, {"exp": "1999999999"}, {"nbf": "0"}, {"nbf": None}])
def test_exp_and_nbf_must_be_json_numbers(service, stack, odd):
    token = stack.seed.user_token(stack.seed.alice, extra=odd)
    problem = _assert_refused(call("me", token), "OBO3017")  # a field Entra always issues
    assert "exp/nbf" in problem["detail"]


def test_duplicate_claim_with_a_valid_signature_is_refused_not_last_one_wins(service, stack):
    valid = stack.seed.user_token(stack.seed.alice)
    claims = json.dumps(tokens.claims_of(valid))
    doubled = claims[:-1] + ', "oid": "00000000-0000-0000-0000-000000000bad"}'
    header = json.dumps({"typ": "JWT", "alg": "RS256", "kid": stack.seed.contoso.active_key.kid})
    token = tokens.signed_raw(header.encode(), doubled.encode(), stack.seed.contoso.active_key)
    assert "repeats a member name" in _assert_refused(call("me", token))["detail"]
    assert stack.entra.calls("token") == 0


@pytest.mark.parametrize("raised", [RecursionError, KeyError, OverflowError, AttributeError])
def test_whatever_the_jwt_library_raises_while_reading_is_a_401(
    service, stack, monkeypatch, raised
):
    """Older PyJWT raised RecursionError on nested JSON (fixed in 2.14.0); any version may
    raise something new. Stand in for such a version at the one call that decodes."""
    import obo.validation

    def old_library(*args, **kwargs):
        raise raised("from inside the JWT library")

    monkeypatch.setattr(obo.validation.jwt, "decode", old_library)
    # what the signature check anticipates is a malformed token; anything else is unexpected
    expected = "OBO3001" if raised is RecursionError else "OBO3018"
    problem = _assert_refused(call("me", stack.seed.user_token(stack.seed.alice)), expected)
    assert "token" in problem["detail"]
    assert stack.entra.calls("token") == 0
