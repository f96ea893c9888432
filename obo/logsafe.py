"""Values from outside made safe to write into a log line or an error detail.

A claim from a token nothing has verified yet (``aud``, ``alg``, ``kid``...) or a string from
Entra's or API 2's answer can hold CR/LF, which forges log lines in any text sink (CWE-117,
OWASP "Log Injection"), or bidi and zero-width controls, which make a line read differently
than it is. :func:`printable` escapes them; :func:`loggable_url` drops what a URL may carry
that is secret (userinfo, a SAS signature in the query).
"""

from __future__ import annotations

from urllib.parse import urlsplit


def printable(value: object, limit: int = 200) -> str:
    """``value`` as one line: unprintable characters as ``\\xNN``/``\\uNNNN``, at most
    ``limit`` characters (then ``…``), so no value can end a log line or flood it."""
    text = value if isinstance(value, str) else str(value)
    if len(text) > limit:
        text = text[:limit] + "…"
    if text.isprintable():  # the common case
        return text
    # str.isprintable is False for controls (CR, LF, ESC...), format characters (bidi
    # overrides, zero-width), line/paragraph separators (U+2028/9) and unassigned code
    # points; repr() escapes exactly those.
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def loggable_url(value: str) -> str:
    """Scheme, host, port and path of an http(s) URL; never userinfo, query or fragment."""
    try:
        parts = urlsplit(value)
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "(not a URL)"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "(not an http(s) URL; not shown)"
    hidden = " (query not shown)" if parts.query else ""
    return printable(f"{parts.scheme}://{parts.hostname}{port}{parts.path}", 120) + hidden
