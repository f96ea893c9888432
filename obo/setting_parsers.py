"""What each app setting may hold: one parser per format, ``(setting name, value) -> value``.

A parser sees one non-blank, stripped value and either returns it typed or raises
:class:`obo.errors.ConfigurationError` naming the setting and the rule, never the value: it
may be a secret pasted into the wrong setting, or a URL with a SAS. The table in
:mod:`obo.settings_table` says which setting uses which parser.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlsplit

from obo.codes import Code
from obo.errors import ConfigurationError
from obo.logsafe import loggable_url

T = TypeVar("T")
Mode = TypeVar("Mode", bound=str)
Parser = Callable[[str, str], T]
# (allowed tenants or None for any, excluded tenants): OBO_ALLOWED_TENANTS
TenantPolicy = tuple[frozenset[str] | None, frozenset[str]]

_SPLIT = re.compile(r"[\s,]+")


def invalid(name: str, why: str, for_operators: str = "") -> ConfigurationError:
    """OBO1001 naming the setting and the rule, never the refused value. ``for_operators``
    (the log only) may add what is safe to show, such as a URL without its query."""
    public = f"Setting {name} {why}."
    detail = f"{public} {for_operators}" if for_operators else public
    return ConfigurationError(Code.SETTING_INVALID, detail, public_detail=public, setting=name)


def split(value: str) -> list[str]:
    """Lists in app settings are separated by commas, spaces or both."""
    return [part for part in _SPLIT.split(value) if part]


def choice(allowed: tuple[Mode, ...]) -> Parser[Mode]:
    """One of ``allowed`` (the arguments of a ``Literal`` mode type), case-insensitively."""

    def parse(name: str, value: str) -> Mode:
        for option in allowed:
            if value.lower() == option:
                return option
        raise invalid(name, f"must be one of {', '.join(allowed)}")

    return parse


def flag(name: str, value: str) -> bool:
    if value.lower() not in ("true", "false"):
        raise invalid(name, "must be true or false")
    return value.lower() == "true"


def verbatim(name: str, value: str) -> str:
    """Taken as given: a value another library interprets (azure-identity's client id)."""
    return value


def words(name: str, value: str) -> frozenset[str]:
    """A free-form list (``OBO_AUDIENCES``); an empty one means the default."""
    return frozenset(split(value))


def delegated_scopes(name: str, value: str) -> frozenset[str]:
    scopes = frozenset(split(value))
    if not scopes:
        raise invalid(name, "must name at least one delegated scope")
    return scopes


def api_scopes(name: str, value: str) -> tuple[str, ...]:
    """A downstream API's scopes, in order (one resource: a rule of the whole API)."""
    scopes = tuple(split(value))
    if not scopes:
        raise invalid(name, "must name at least one scope")
    return scopes


def guid(name: str, value: str) -> str:
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise invalid(name, "must be a GUID") from None


def tenants(name: str, value: str) -> TenantPolicy:
    """GUIDs, or ``*`` (any tenant) optionally followed by ``-<guid>`` exclusions, e.g.
    ``*,-9188040d-6c67-4c5b-b112-36a304b66dad`` for any Entra tenant but personal Microsoft
    accounts."""
    parts = split(value)
    if not parts:
        raise invalid(name, "names no tenant")
    if parts[0] != "*":
        if any(p == "*" or p.startswith("-") for p in parts):
            raise invalid(name, "may hold '*' only first, and '-<tenant id>' only after '*'")
        return frozenset(guid(name, p) for p in parts), frozenset()
    if not all(p.startswith("-") for p in parts[1:]):
        raise invalid(name, "after '*' may only list exclusions, '-<tenant id>'")
    return None, frozenset(guid(name, p[1:]) for p in parts[1:])


def https_url(name: str, value: str) -> str:
    try:
        parts = urlsplit(value)
        valid = parts.scheme == "https" and bool(parts.hostname) and not parts.query
        valid = valid and not parts.fragment and not parts.username and not parts.password
        parts.port  # noqa: B018 - raises ValueError on a port that is not a number
    except ValueError:
        valid = False
    if not valid:
        raise invalid(
            name,
            "must be an https:// URL without query, fragment or user name",
            f"(got {loggable_url(value)})",
        )
    return value.rstrip("/")


def certificate_name(name: str, value: str) -> str:
    """Key Vault object names: 1-127 letters, digits and dashes."""
    if not re.fullmatch(r"[0-9A-Za-z-]{1,127}", value):
        raise invalid(name, "may hold only letters, digits and dashes")
    return value


def existing_file(name: str, value: str) -> str:
    if not Path(value).is_file():
        raise invalid(name, "names a file that does not exist", f"(path: {value!r})")
    return value


def redis_url(name: str, value: str) -> str:
    """``redis://`` or ``rediss://`` (redis-py's ``from_url`` forms, without options)."""
    usage = (
        "must be redis://[:password@]host[:port][/db] or rediss://... "
        "(rediss:// without a password: Entra ID as the managed identity)"
    )
    try:
        parts = urlsplit(value)
        port = parts.port  # raises on a port that is not a number in range
    except ValueError:
        raise invalid(name, usage) from None
    path = parts.path.strip("/")
    if (
        parts.scheme not in ("redis", "rediss")
        or not parts.hostname
        or parts.query
        or parts.fragment
        or port == 0
        or (path and not path.isdigit())
    ):
        raise invalid(name, usage)
    return value
