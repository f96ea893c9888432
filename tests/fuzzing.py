"""Hypothesis profiles and strategies shared by the ``test_fuzz_*`` files.

Profiles: ``ci`` (the default, about 10,000 examples for the whole fuzz suite) and ``long``
(ten times as many), chosen with ``HYPOTHESIS_PROFILE=long``. No example database is kept,
so a run leaves nothing in the repository; a failure prints the blob to reproduce it.
"""

from __future__ import annotations

import base64
import json
import os
from typing import Any

from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st

settings.register_profile(
    "ci",
    deadline=None,  # examples cross real HTTPS to the stand-ins; their timing is not the point
    database=None,
    print_blob=True,
    phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink],
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,  # one service for all examples is the point
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.filter_too_much,
    ],
)
settings.register_profile("long", settings.get_profile("ci"))
PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "ci")
SCALE = {"ci": 1, "long": 10}[PROFILE]


def examples(n: int) -> settings:
    """Settings for a property that runs ``n`` examples in the ci profile (scaled by profile)."""
    return settings(settings.get_profile(PROFILE), max_examples=n * SCALE)


# -- base64url and tokens ---------------------------------------------------------------------

ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def json_values(max_leaves: int = 12) -> st.SearchStrategy[Any]:
    """Any JSON value, odd ones included: huge and negative numbers, NaN-free floats, deep
    nesting, empty containers, control characters and non-ASCII text."""
    scalars = st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.integers(min_value=-(10**40), max_value=10**40),
        st.floats(allow_nan=False, allow_infinity=False),
        st.text(max_size=12),
    )
    return st.recursive(
        scalars,
        lambda inner: st.one_of(
            st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=6), inner, max_size=3)
        ),
        max_leaves=max_leaves,
    )


ODD_CLAIM = st.one_of(
    json_values(4),
    st.sampled_from([True, False, "nan", "inf", "-1", 1e308, -1e308, 10**30, 0]),
)


def _respell(segment: str, how: int) -> str:
    """One of the spellings a lenient decoder would read as the same bytes."""
    tail = len(segment) % 4
    if how == 0:
        return segment + "=" * (-len(segment) % 4 or 4)
    if how == 1:
        return segment.replace("-", "+").replace("_", "/")
    if how == 2 and tail in (2, 3):
        return segment[:-1] + ALPHABET[(ALPHABET.index(segment[-1]) + 1) % 64]
    if how == 3:
        return segment[: len(segment) // 2] + "\n" + segment[len(segment) // 2 :]
    return segment + "A"


@st.composite
def mutated(draw: st.DrawFn, valid: st.SearchStrategy[str]) -> str:
    """A valid token, untouched or changed in one of the ways an attacker would try, so
    that the fuzzer reaches the validator's deeper paths as well as its early refusals."""
    token = draw(valid)
    parts = token.split(".")
    kind = draw(st.integers(0, 9))
    if kind == 0:
        return token
    if kind == 1:  # replace, insert or delete a few characters
        at = draw(st.integers(0, len(token)))
        junk = draw(st.text(alphabet=ALPHABET + "=+/. \t\n%\x00\u00e9", max_size=3))
        cut = draw(st.integers(0, 3))
        return token[:at] + junk + token[at + cut :]
    if kind == 2:  # another spelling of one segment
        part = draw(st.integers(0, 2))
        parts[part] = _respell(parts[part], draw(st.integers(0, 4)))
        return ".".join(parts)
    if kind == 3:  # segments from two tokens
        other = draw(valid).split(".")
        part = draw(st.integers(0, 2))
        parts[part] = other[part]
        return ".".join(parts)
    if kind == 4:  # claims changed after signing
        claims = json.loads(unb64(parts[1]))
        claims[draw(st.sampled_from(CLAIM_NAMES))] = draw(ODD_CLAIM)
        parts[1] = b64(json.dumps(claims).encode())
        return ".".join(parts)
    if kind == 5:  # header changed after signing
        header = json.loads(unb64(parts[0]))
        header[draw(st.sampled_from(["alg", "kid", "typ", "crit", "b64", "jku", "x5u"]))] = draw(
            ODD_CLAIM | st.sampled_from(["none", "HS256", "RS512", "ES256", "RS256", "unknown"])
        )
        parts[0] = b64(json.dumps(header).encode())
        return ".".join(parts)
    if kind == 6:  # a segment that is any JSON at all
        part = draw(st.integers(0, 1))
        parts[part] = b64(json.dumps(draw(json_values())).encode())
        return ".".join(parts)
    if kind == 7:  # raw bytes in a segment: not UTF-8, not JSON, or nothing
        part = draw(st.integers(0, 2))
        parts[part] = b64(draw(st.binary(max_size=40)))
        return ".".join(parts)
    if kind == 8:  # parts dropped or repeated
        count = draw(st.integers(0, 5))
        return ".".join((parts * 2)[:count])
    return token[: draw(st.integers(0, len(token)))]  # truncated


CLAIM_NAMES = [
    "exp",
    "nbf",
    "iat",
    "tid",
    "oid",
    "scp",
    "aud",
    "iss",
    "ver",
    "azp",
    "appid",
    "roles",
    "idtyp",
    "nonce",
    "tfp",
    "acr",
    "idp",
    "acct",
    "name",
    "upn",
]


# -- what left the process --------------------------------------------------------------------


def outbound(stack: Any) -> int:
    """Requests the stand-ins have answered so far (matched routes or not): Entra, Key Vault,
    managed identity, API 2 and the SAML API."""
    services = (stack.entra, stack.vault, stack.identity, stack.graph, stack.saml_api)
    return sum(sum(service.answers.values()) for service in services)
