"""The registry of error codes (obo/codes.py): one cause per code, raised by the class its
entry names, rendered into obo/errors.py and docs/troubleshooting.md (tests/project/test_docs.py)."""

from __future__ import annotations

import ast
import json
import re
import textwrap
from pathlib import Path

import pytest

import obo.errors as errors
from obo.codes import Code, lookup, tree
from obo.errors import (
    ClaimsChallenge,
    ConfigurationError,
    DependencyFailed,
    DependencyTimeout,
    DependencyUnavailable,
    Forbidden,
    OboError,
    RememberedFailure,
    Unauthorized,
)
from obo.shared_load import SharedLoad

ROOT = Path(__file__).resolve().parents[2]
SOURCES = [
    *sorted((ROOT / "obo").glob("*.py")),
    ROOT / "function_app.py",
    *sorted((ROOT / "devstack").rglob("*.py")),
]
# In the registry, raised once the raise sites in files other helpers rewrote for issue 10
# use them: validation.py (OBO3016 oid, OBO3017, OBO3018), entra_http.py/exchange.py (OBO5006).
# The coordinator empties this set as it converts them.
_CODE_STRING = re.compile(r"[\"'](OBO\d{4})[\"']")
_CODE_MEMBER = re.compile(r"\bCode\.([A-Z][A-Z0-9_]*)\b")


def _error_classes() -> dict[str, type[OboError]]:
    return {
        name: value
        for name, value in vars(errors).items()
        if isinstance(value, type) and issubclass(value, OboError)
    }


def _code_of(node: ast.expr) -> Code | None:
    if (
        isinstance(node, ast.Attribute)
        and isinstance(node.value, ast.Name)
        and node.value.id == "Code"
    ):
        return Code[node.attr]
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        if node.value.startswith("OBO"):
            return lookup(node.value)
    return None


def _raise_sites() -> list[tuple[str, str, Code]]:
    """``(where, class name, code)`` for every construction of an error class in the
    product's source whose first argument is a code (member or string), and every token
    rule's ``Finding``, which the validator raises as Unauthorized (InsufficientScope for a
    missing scope)."""
    classes = _error_classes()
    sites = []
    for path in SOURCES:
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Call) or not node.args:
                continue
            func = node.func
            name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
            code = _code_of(node.args[0]) if name in classes or name == "Finding" else None
            if code is not None and name == "Finding":  # a token rule (see _refusal), or
                name = (  # diagnose's report of a refused setting
                    "ConfigurationError"
                    if code.error is ConfigurationError
                    else "InsufficientScope"
                    if code is Code.SCOPE_MISSING
                    else "Unauthorized"
                )
            if code is not None:
                sites.append((f"{path.relative_to(ROOT)}:{node.lineno}", str(name), code))
    return sites


def test_the_tree_atop_errors_py_is_rendered_from_the_registry():
    rendered = textwrap.indent(tree(), "    ")
    assert errors.__doc__ is not None
    assert rendered in errors.__doc__, f"paste obo.codes.tree() into obo/errors.py:\n{rendered}"
    listed = ["OboError", *re.findall(r"── (\w+) ", tree())]
    assert sorted(listed) == sorted(_error_classes())
    for code in Code:  # each code under the class that raises it
        assert f"{code.value}  {code.title}" in tree()


def test_each_code_is_one_entry_in_its_band_with_its_class_status():
    assert len(Code.__members__) == len(Code)  # no code under two names (an Enum alias)
    values = [code.value for code in Code]
    assert values == sorted(values)
    assert "OBO2103" not in values  # retired: a code is never reused
    for code in Code:
        assert (code.value[3] == "1") == (code.error is ConfigurationError), code
        assert code.status == code.error.status
        assert code.error.__module__ == "obo.errors"
        assert code.title and len(code.title) <= 52 and code.meaning and code.fix
        assert "|" not in code.meaning + code.fix  # a cell of the troubleshooting table
        assert lookup(code.value) is code


def test_every_raise_site_passes_a_code_its_class_raises():
    sites = _raise_sites()
    assert len(sites) > 60
    wrong = [
        (where, name, code.value, code.error.__name__)
        for where, name, code in sites
        if code.error is not _error_classes()[name]
    ]
    assert not wrong


def test_every_code_the_source_names_is_registered():
    for path in SOURCES:
        text = path.read_text()
        for value in _CODE_STRING.findall(text):
            lookup(value)  # ValueError names an unregistered code
        for name in _CODE_MEMBER.findall(text):
            assert name in Code.__members__, f"{path}: Code.{name}"


def test_every_code_the_docs_name_is_registered():
    for path in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for value in set(re.findall(r"\bOBO\d{4}\b", path.read_text())):
            lookup(value)  # ValueError names a code the registry does not hold


def test_every_registered_code_is_raised_somewhere():
    text = "\n".join(p.read_text() for p in SOURCES if p.name != "codes.py")
    used = {Code[name] for name in _CODE_MEMBER.findall(text)}
    used |= {lookup(value) for value in _CODE_STRING.findall(text)}
    assert set(Code) - used == set()


def test_errors_are_caught_by_type_not_by_code_or_message():
    compared = re.compile(r"\.code\s*(==|!=|\bin\b|\bnot in\b)|str\(\w+\)\s*(==|!=)")
    hits = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
        for path in SOURCES
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if compared.search(line)
    ]
    assert not hits


def test_a_registered_string_is_looked_up_while_raise_sites_move_to_members():
    by_string = Unauthorized("OBO3001", "The bearer token is not a well-formed JWT.")
    by_member = Unauthorized(Code.MALFORMED_TOKEN, "The bearer token is not a well-formed JWT.")
    assert by_string.registered is by_member.registered is Code.MALFORMED_TOKEN
    assert by_string.code == by_member.code == "OBO3001"
    assert by_string.render() == by_member.render()
    status, _, body = by_member.render()
    assert status == 401 and json.loads(body)["type"].endswith(":OBO3001")


@pytest.mark.parametrize(
    "build, error",
    [
        (lambda: Unauthorized("OBO3099", "a typo"), ValueError),
        (lambda: Unauthorized("OB03001", "a letter O for a zero"), ValueError),
        (lambda: DependencyFailed(Code.MALFORMED_TOKEN, "401 code as a 502"), TypeError),
        (lambda: DependencyUnavailable(Code.KEY_VAULT_TIMEOUT, "504 code as 503"), TypeError),
        (lambda: Unauthorized(Code.SCOPE_MISSING, "the subclass's code"), TypeError),
        (lambda: RememberedFailure(Code.NO_AUTHORIZATION, "not a dependency's"), TypeError),
        (lambda: Unauthorized("AADSTS50076", "Entra's code where it does not go"), ValueError),
        (lambda: DependencyFailed("AADSTS<b>", "not Entra's shape"), ValueError),
    ],
    ids=["unknown", "typo", "status", "timeout-as-503", "subclass", "replay", "entra", "shape"],
)
def test_an_unknown_or_misplaced_code_fails_where_it_is_raised(build, error):
    with pytest.raises(error):
        build()


@pytest.mark.parametrize(
    "cls, code",
    [
        (DependencyFailed, "AADSTS700016"),
        (DependencyFailed, "invalid_grant"),
        (Forbidden, "AADSTS65001"),
        (ClaimsChallenge, "AADSTS50076"),
    ],
)
def test_entra_codes_pass_through_untouched(cls, code):
    extra = {"claims": "{}"} if cls is ClaimsChallenge else {}
    exc = cls(code, "Entra ID refused the token exchange.", **extra)
    assert (exc.code, exc.registered) == (code, None)
    assert json.loads(exc.render()[2])["code"] == code


def test_a_remembered_failure_keeps_its_code_and_the_callers_detail():
    """The replay within the failure window is a 503 under the first answer's code, and the
    caller still reads the generic sentence, never the operator's (it names the vault)."""

    def load() -> None:
        raise DependencyTimeout(
            Code.KEY_VAULT_TIMEOUT,
            "Key Vault timed out reading the certificate 'c' in https://vault.example/.",
            public_detail="Key Vault did not answer in time for the API's credential.",
        )

    loads = SharedLoad(
        load, deadline=5, remember_failure=5, too_slow=lambda: None, clock=lambda: 100.0
    )
    with pytest.raises(DependencyTimeout) as first:
        loads.get()
    with pytest.raises(RememberedFailure) as again:
        loads.get()
    status, headers, body = again.value.render()
    assert (status, headers["Retry-After"]) == (503, "5")
    assert again.value.registered is first.value.registered is Code.KEY_VAULT_TIMEOUT
    problem = json.loads(body)
    assert problem["code"] == "OBO4005"
    assert problem["detail"] == "Key Vault did not answer in time for the API's credential."
    assert "vault.example" in again.value.detail  # the log keeps the specifics
