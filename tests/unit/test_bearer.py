"""The Authorization header grammar (RFC 6750 section 2.1), one row per way to get it wrong."""

from __future__ import annotations

import pytest

from obo.bearer import bearer_token
from obo.errors import Unauthorized

TOKEN = "eyJhbGciOiJSUzI1NiJ9.eyJ0aWQiOiJ0In0.c2ln"


@pytest.mark.parametrize(
    "header",
    [
        f"Bearer {TOKEN}",
        f"bearer {TOKEN}",
        f"BEARER {TOKEN}",
        f"Bearer    {TOKEN}",
        f" Bearer {TOKEN}\t",
        f"\tBearer {TOKEN} ",
        "Bearer abc+/~_-.==",
        "Bearer a",
    ],
)
def test_accepted(header):
    assert bearer_token(header) == header.strip(" \t").partition(" ")[2].lstrip(" ")


@pytest.mark.parametrize(
    ("header", "code", "presented"),
    [
        (None, "OBO2001", False),
        ("", "OBO2001", False),
        (" \t ", "OBO2001", False),
        ("Basic dXNlcjpwYXNz", "OBO2002", False),
        (f"Bearer\t{TOKEN}", "OBO2002", False),  # 1*SP, not HTAB
        (f"Bearer\u00a0{TOKEN}", "OBO2002", False),  # no-break space is not SP
        (f"Bearer\u3000{TOKEN}", "OBO2002", False),
        (f"Bearers {TOKEN}", "OBO2002", False),
        (f"B\u0435arer {TOKEN}", "OBO2002", False),  # Cyrillic e
        (f"DPoP {TOKEN}", "OBO2002", False),
        (TOKEN, "OBO2002", False),
        ("Bearer", "OBO2003", True),
        ("Bearer ", "OBO2003", True),
        (f"Bearer {TOKEN} {TOKEN}", "OBO2003", True),
        (f"Bearer {TOKEN},{TOKEN}", "OBO2003", True),
        (f"Bearer {TOKEN}, Bearer {TOKEN}", "OBO2003", True),  # two headers joined by a host
        (f"Bearer {TOKEN}\u00a0", "OBO2003", True),  # Unicode whitespace is not trimmed
        (f"Bearer {TOKEN}\u2028", "OBO2003", True),
        (f"Bearer {TOKEN}\r\nX-Injected: 1", "OBO2003", True),
        (f"Bearer {TOKEN}\x00", "OBO2003", True),
        ("Bearer =abc", "OBO2003", True),  # '=' only at the end
        ("Bearer a=b", "OBO2003", True),
        (f"Bearer \u0435{TOKEN}", "OBO2003", True),
        (f"Bearer {TOKEN[:-1]}\uff0e", "OBO2003", True),  # full-width dot
        (f'Bearer "{TOKEN}"', "OBO2003", True),
        ("Bearer " + "a" * 17000, "OBO2004", True),
    ],
)
def test_refused(header, code, presented):
    with pytest.raises(Unauthorized) as caught:
        bearer_token(header)
    assert caught.value.code == code
    assert caught.value.status == 401
    challenge = caught.value.headers()["WWW-Authenticate"]
    assert challenge.startswith("Bearer")
    # RFC 6750 section 3.1: no error code when no credentials were sent
    assert ('error="invalid_token"' in challenge) is presented
