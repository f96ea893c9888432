"""Path containment: no downstream path may reach API 2 outside the base URL, under the
normalisation rules of Tomcat, Jetty, Spring, IIS/ASP.NET Core or nginx (docs/security.md)."""

from __future__ import annotations

import pytest

from obo.downstream import safe_path
from obo.errors import BadRequest
from tests.client import call

ESCAPES = {
    # plain and servlet dot segments: Tomcat/Jetty/Spring strip ';params' before resolving
    "dot-dot": "../me",
    "dot": "echo/./x",
    "dot-dot inside": "echo/../../admin",
    "dot-dot last": "echo/..",
    "matrix dot-dot": "..;/admin",
    "matrix dot-dot with value": "echo/..;x=1/admin",
    "matrix dot-dot jsessionid": "echo/..;jsessionid=ABC/admin",
    "matrix dot": "echo/.;/x",
    "matrix dot with value": "echo/.;x/y",
    "matrix empty segment": "echo/;/x",
    "matrix chain": "echo/..;a;b/x",
    "matrix after a name": "echo;x/..;/admin",
    "semicolon anywhere": "echo/a;b",
    # percent-encoding, double encoding, overlong UTF-8, IIS %u
    "encoded dots": "echo/%2e%2e/x",
    "encoded dots upper": "echo/%2E%2E/x",
    "half encoded": "echo/.%2e/x",
    "double encoded": "echo/%252e%252e/x",
    "encoded slash": "echo/%2F",
    "encoded backslash": "echo/..%5cadmin",
    "overlong utf-8 dot": "echo/%c0%ae%c0%ae/x",
    "IIS %u dot": "echo/%u002e%u002e/x",
    "encoded NUL": "echo/..%00/x",
    # separators other than '/', empty segments
    "backslash": "echo\\x",
    "backslash dot-dot": "echo/..\\admin",
    "backslash leading": "\\\\evil.example\\x",
    "double slash": "echo//x",
    "leading slash": "/echo",
    "protocol-relative": "//evil.example/x",
    "trailing slash": "echo/",
    "empty": "",
    # Windows/IIS: trailing dots and spaces trimmed, NTFS streams, '+' read as a space
    "three dots": "echo/.../x",
    "four dots": "echo/..../x",
    "dot-dot space": "echo/.. /x",
    "dot-dot tab": "echo/..\t/x",
    "dot space": "echo/. /x",
    "dot-dot plus": "echo/..+/x",
    "plus dot-dot": "echo/+../x",
    "plus dot": "echo/.+/x",
    "only plus": "echo/+/x",
    "NTFS index allocation": "echo/..::$INDEX_ALLOCATION/x",
    "NTFS data stream": "echo/..:$DATA/x",
    "NTFS dot stream": "echo/.:x/y",
    "NTFS unnamed stream": "echo/:x/y",
    # Unicode that NFKC or a lenient decoder folds to '.', '/' or '\'
    "full-width dots": "echo/\uff0e\uff0e/x",
    "two dot leader": "echo/\u2025/x",
    "one dot leaders": "echo/\u2024\u2024/x",
    "small full stops": "echo/\ufe52\ufe52/x",
    "full-width solidus": "echo/a\uff0fb",
    "division slash": "echo/a\u2215b",
    "full-width reverse solidus": "echo/a\uff3cb",
    "combining dot": "echo/.\u0307/x",
    "non-breaking space": "echo/..\u00a0/x",
    # nul, controls, whitespace, query and fragment delimiters
    "nul": "echo/..\x00/x",
    "CR LF": "echo/x\r\nHost: evil.example",
    "space": "echo/a b",
    "DEL": "echo/a\x7fb",
    "query after dot-dot": "echo/..?x=1",
    "fragment after dot-dot": "echo/..#x",
    "question mark": "echo?x",
    # scheme and authority
    "scheme": "https:evil.example",
    "absolute URL": "http://evil.example/",
    "userinfo": "@evil.example/x",
    "at sign": "echo/a@b",
    # bounds
    "too long": "echo/" + "a" * 2044,
}

PLAIN = [
    "me",
    "me/messages",
    "echo/items/42",
    "me/drive/root:/Documents/report.docx:/content",
    "users/0c3f/photo/$value",
    "me/calendarView(startDateTime='2024-01-01T00:00:00Z')",
    "workbook/worksheets('Sheet1')/range(address='A1:B2')",
    "echo/.well-known/x",
    "echo/a.b/c..d/..e/f...",
    "echo/x:..",
    "echo/a+b/c*d/e!f/g,h/i=j/~k",
    "echo/" + "a" * 2043,
]


@pytest.mark.parametrize("path", ESCAPES.values(), ids=ESCAPES.keys())
def test_refused(path):
    with pytest.raises(BadRequest) as caught:
        safe_path(path)
    assert caught.value.code == "OBO2101"
    assert caught.value.status == 400


@pytest.mark.parametrize("path", PLAIN)
def test_accepted_unchanged(path):
    assert safe_path(path) == path


@pytest.fixture
def alice_token(stack) -> str:
    return stack.seed.user_token(stack.seed.alice)


@pytest.mark.parametrize("path", ESCAPES.values(), ids=ESCAPES.keys())
def test_refused_end_to_end_before_any_exchange_or_downstream_call(
    service, stack, alice_token, path
):
    reply = call("downstream/" + path, alice_token)
    assert reply.status == 400, reply.body
    assert reply.headers["Content-Type"] == "application/problem+json"
    assert reply.headers["Cache-Control"] == "no-store"
    assert reply.json()["code"] == "OBO2101"
    assert stack.entra.calls("token") == 0
    assert sum(stack.graph.answers.values()) == 0  # API 2 saw nothing


@pytest.mark.parametrize(
    "path", ["echo/a./b", "echo/.well-known/x", "echo/x:..", "echo/a+b/c*d/e!f/g,h/i=j/~k"]
)
def test_accepted_end_to_end_and_reaches_api2_unchanged(service, alice_token, path):
    reply = call("downstream/" + path, alice_token)
    assert reply.status == 200, reply.body
    assert reply.json()["path"] == "/v1.0/" + path
