"""Properties of the three input readers, for any input: the Authorization header parser,
the token reader, and the downstream path check. Pure functions, so thousands of examples."""

from __future__ import annotations

import json
import posixpath
import re
import unicodedata
import urllib.parse

from hypothesis import event, example, given
from hypothesis import strategies as st

from obo import jwt_segments
from obo.bearer import bearer_token
from obo.downstream import safe_path
from obo.errors import BadRequest, Unauthorized
from tests.fuzzing import ALPHABET, b64, examples, json_values, mutated, unb64

B64TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]+=*")
SAMPLE = (
    "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiIsImtpZCI6ImsifQ."
    "eyJ0aWQiOiJ0IiwiZXhwIjoxLCJzY3AiOiJhY2Nlc3NfYXNfdXNlciJ9."
    "c2lnbmF0dXJlIGJ5dGVzIG9mIHNvbWUgbGVuZ3Ro"
)

# -- (a) the Authorization header -------------------------------------------------------------

headers = st.one_of(
    st.none(),
    st.text(max_size=60),
    st.builds(
        lambda scheme, sep, credential, tail: scheme + sep + credential + tail,
        st.sampled_from(
            ["Bearer"] * 4 + ["bearer", "BEARER", "Basic", "Bearer\t", "B\u0435arer", ""]
        ),
        st.sampled_from([" "] * 4 + ["  ", "\t", "", "\u00a0"]),
        st.one_of(st.just(SAMPLE), st.text(alphabet=ALPHABET + ".~+/= ,\t\u00a0\r\n", max_size=40)),
        st.sampled_from([""] * 4 + [" ", "\t", "\u00a0", "\r\n", ", Bearer x", "="]),
    ),
)


@examples(3000)
@given(headers)
@example(f"Bearer {SAMPLE}")
def test_bearer_parser_returns_one_b64token_or_a_401(header):
    try:
        credential = bearer_token(header)
    except Unauthorized as refused:
        assert refused.status == 401
        assert refused.code in {"OBO2001", "OBO2002", "OBO2003", "OBO2004"}
        event(refused.code)
        assert refused.headers()["WWW-Authenticate"].startswith("Bearer realm=")
        return
    event("accepted")
    assert B64TOKEN.fullmatch(credential)
    scheme, _, rest = header.strip(" \t").partition(" ")
    assert scheme.lower() == "bearer" and rest.lstrip(" ") == credential


# -- (b) the token reader ---------------------------------------------------------------------

tokens = st.one_of(
    mutated(st.just(SAMPLE)),
    st.text(max_size=80),
    st.builds(
        lambda h, p, s: f"{b64(h)}.{b64(p)}.{s}",
        st.binary(max_size=30),
        st.binary(max_size=30),
        st.text(alphabet=ALPHABET, max_size=12),
    ),
    st.builds(lambda p: f"{b64(b'{}')}.{p}.", st.text(alphabet=ALPHABET + "=+/", max_size=20)),
)


@examples(2000)
@given(tokens)
def test_token_reader_accepts_only_canonical_json_objects_and_says_why_otherwise(token):
    try:
        header, claims = jwt_segments.read(token)
    except jwt_segments.MalformedToken as refused:
        assert re.match(r"it is |its (header|payload|signature) ", refused.reason)
        assert len(token) < 12 or token not in refused.reason  # fixed text, no token data
        event(refused.reason)
        return
    event("accepted")
    segments = token.split(".")
    assert len(segments) == 3
    for segment in segments:  # the one spelling of its bytes
        assert b64(unb64(segment)) == segment
    assert header == json.loads(unb64(segments[0]))
    assert claims == json.loads(unb64(segments[1]))


@examples(1000)
@given(json_values(max_leaves=30))
def test_any_json_object_within_bounds_reads_back_unchanged(value):
    token = f"{b64(b'{}')}.{b64(json.dumps(value).encode())}."
    try:
        _, claims = jwt_segments.read(token)
    except jwt_segments.MalformedToken:
        assert not isinstance(value, dict) or _beyond_bounds(value)
        return
    event("accepted")
    assert claims == value


def _beyond_bounds(value, depth: int = 1) -> bool:
    if isinstance(value, dict | list):
        items = value.values() if isinstance(value, dict) else value
        keys = value.keys() if isinstance(value, dict) else ()
        return (
            depth > jwt_segments.MAX_DEPTH
            or any(re.search(r"[\x00-\x1f\x7f]", k) for k in keys)
            or any(_beyond_bounds(v, depth + 1) for v in items)
        )
    if isinstance(value, str):
        return bool(re.search(r"[\x00-\x1f\x7f]", value))
    if isinstance(value, int) and not isinstance(value, bool):
        return len(str(abs(value))) > jwt_segments.MAX_NUMBER_DIGITS
    return False


# -- (c) the downstream path ------------------------------------------------------------------

DANGEROUS = "./\\;:%+~ $@?#\t\x00abAZ09-_=2eEfF\uff0e\u2025\uff0f"
paths = st.one_of(
    st.text(alphabet=DANGEROUS, max_size=24),
    st.text(max_size=24),
    st.lists(st.text(alphabet="ab.:+~=$;%", min_size=1, max_size=5), min_size=1, max_size=5).map(
        "/".join
    ),
    st.lists(
        st.sampled_from(
            [
                "..",
                ".",
                "...",
                "..;",
                ".;x",
                "..:",
                "a",
                "a.",
                "+",
                "..+",
                "%2e",
                "x:..",
                "me",
                "",
                " ",
                "\uff0e\uff0e",
                "a;b",
                ":x",
            ]
        ),
        min_size=1,
        max_size=5,
    ).map("/".join),
)


def _servlet(path: str) -> str:
    """Tomcat/Jetty: strip ;parameters per segment, %-decode, '\\' as '/'."""
    stripped = "/".join(s.split(";")[0] for s in path.split("/"))
    return urllib.parse.unquote(stripped).replace("\\", "/")


def _windows(path: str) -> str:
    """IIS on NTFS: '+' as a space, '\\' as '/', no stream names, trailing dots/spaces trimmed."""
    path = urllib.parse.unquote_plus(path).replace("\\", "/")
    return "/".join(s.split(":")[0].rstrip(". ") for s in path.split("/"))


def _nfkc_then_servlet(path: str) -> str:
    return _servlet(unicodedata.normalize("NFKC", path))


@examples(3500)
@given(paths)
@example("..;/admin")
@example("me/drive/root:/a.txt:/content")
def test_an_accepted_path_stays_under_the_base_url_for_every_server(path):
    try:
        assert safe_path(path) == path
    except BadRequest as refused:
        assert (refused.code, refused.status) == ("OBO2101", 400)
        return
    event("accepted")
    for normalise in (_servlet, _windows, _nfkc_then_servlet, lambda p: p):
        seen = normalise(path)
        assert all(s not in ("", ".", "..") for s in seen.split("/")), (normalise, seen)
        assert posixpath.normpath("/base/" + seen).startswith("/base/")
    assert urllib.parse.urlsplit("https://api.example/base/" + path).netloc == "api.example"
