"""Helpers for tests/project/test_infra.py: parse infra/*.bicep with pycep-parser and read the result.

pycep turns a Bicep file into JSON-like dicts. Identifiers and string literals both come out as
plain strings, so `resolve` follows a string that names a variable (or a parameter with a
default) to its value; that is enough to check the templates' shape without a Bicep compiler.
"""

from __future__ import annotations

import functools
import json
import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

from obo.settings_table import SETTINGS

REPO = Path(__file__).resolve().parents[1]
INFRA = REPO / "infra"

# Files that use the Microsoft Graph extension. checkov's pinned pycep-parser (0.5.1) predates
# the `extension` keyword and has no Microsoft.Graph checks, so checkov skips them; the tests
# check that they hold nothing but Microsoft.Graph resources, so no Azure resource escapes it.
GRAPH_ONLY_FILES = ("app/entra.bicep",)

# Settings for local runs only (obo/settings_table.py: ``deployed=False``).
LOCAL_ONLY_SETTINGS = frozenset(s.name for s in SETTINGS if not s.deployed)
# Settings infra/ deploys before obo/settings_table.py declares them (none today): name one
# here while a feature lands in infra/ first, and remove it when the table has it.
PENDING_SETTINGS: frozenset[str] = frozenset()

# siteConfig properties a Flex Consumption site may carry, each with where it comes from. Flex
# rejects others with ARM error 51021 (see infra/app/api.bicep), region by region, so the list is
# what Microsoft's own Flex templates set, not what the ARM schema allows.
FLEX_SITE_CONFIG_ALLOWED = {
    "alwaysOn": "Azure-Samples/functions-quickstart-python-http-azd infra/app/api.bicep (false only)",
    "appSettings": "Azure-Samples/azure-functions-flex-consumption-samples IaC/bicep/core/host/function.bicep",
    "minTlsVersion": "Microsoft's FC1 Bicep quickstart (Azure/terraform-azurerm-avm-res-web-site#353)",
    "cors": "the portal's API > CORS blade on Flex apps (Azure/azure-functions-dotnet-worker#2524) "
    "and azurerm_function_app_flex_consumption site_config.cors",
}
# Named in verbatim ARM 51021 rejections (microsoft/azure-pipelines-tasks#21032,
# Azure/terraform-azurerm-avm-res-web-site#283, #360, PR #345).
FLEX_SITE_CONFIG_REJECTED = frozenset(
    {
        "ftpsState",
        "use32BitWorkerProcess",
        "netFrameworkVersion",
        "functionsRuntimeScaleMonitoringEnabled",
        "preWarmedInstanceCount",
        "linuxFxVersion",
        "windowsFxVersion",
    }
)

# Resource providers every subscription has registered (Learn: "Azure resource providers and
# types", registration): the templates use them but nobody has to register them.
REGISTERED_BY_DEFAULT = frozenset({"Microsoft.Resources", "Microsoft.Authorization"})
# Providers a template needs without naming them as a resource type: Flex Consumption runs on
# Microsoft.App (hashicorp/terraform-provider-azurerm#30397, Azure/azure-cli#33177), and the
# certificate deployment script runs in a container instance (Microsoft.ContainerInstance).
IMPLICIT_PROVIDERS = frozenset({"Microsoft.App", "Microsoft.ContainerInstance"})

GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
UPPER_SNAKE = re.compile(r"^[A-Z][A-Z0-9]*(_[A-Z0-9]+)*$")


def bicep_files() -> list[Path]:
    return sorted(INFRA.rglob("*.bicep"))


def rel(path: Path) -> str:
    return path.relative_to(INFRA).as_posix()


@functools.cache
def parse(name: str) -> dict[str, Any]:
    """Parse infra/<name>; raises on a syntax pycep-parser does not accept."""
    try:
        from pycep import BicepParser
    except ImportError as exc:
        raise RuntimeError(
            "pycep-parser is missing: .venv/bin/pip install -r requirements-infra.txt"
        ) from exc

    return cast(dict[str, Any], BicepParser().parse(file_path=INFRA / name))


def unwrap(config: dict[str, Any]) -> dict[str, Any]:
    """The body of a resource or module, whether or not it has `if (...)` or a loop."""
    while "config" in config and ("condition" in config or "loop_type" in config):
        config = config["config"]
    return config


def allowed(name: str, param: str) -> list[Any]:
    """The @allowed values of a parameter of infra/<name>."""
    decorators = parse(name)["parameters"][param]["decorators"]
    return cast(list[Any], next(d["argument"] for d in decorators if d["type"] == "allowed"))


def condition(config: dict[str, Any]) -> Any:
    return config.get("condition") if "config" in config else None


def resources(name: str, type_: str) -> dict[str, dict[str, Any]]:
    """Resources of one type in infra/<name>, by symbolic name (raw entries)."""
    found = parse(name).get("resources", {})
    return {key: value for key, value in found.items() if value["type"] == type_}


def only_resource(name: str, type_: str) -> tuple[str, dict[str, Any]]:
    found = resources(name, type_)
    assert len(found) == 1, f"expected one {type_} in {name}, found {sorted(found)}"
    key, value = next(iter(found.items()))
    return key, value


def resolve(name: str, value: Any) -> Any:
    """Follow a string that names a variable, or a parameter with a default, to its value."""
    template = parse(name)
    seen: set[str] = set()
    while isinstance(value, str) and value not in seen:
        seen.add(value)
        if value in template.get("variables", {}):
            value = template["variables"][value]["value"]
        elif template.get("parameters", {}).get(value, {}).get("default") is not None:
            value = template["parameters"][value]["default"]
        else:
            break
    return value


def branches(name: str, value: Any) -> tuple[Any, Any]:
    """(true, false) values of a `cond ? a : b` expression, each resolved."""
    value = resolve(name, value)
    operator = value["operator"]
    assert operator["type"] == "conditional", value
    operands = operator["operands"]
    return resolve(name, operands["true_value"]), resolve(name, operands["false_value"])


def accessor(value: Any) -> str:
    """Dotted text of a property access like clientApp.appId, or '' for anything else."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and value.get("operator", {}).get("type") == "property_accessor":
        operands = value["operator"]["operands"]
        return f"{accessor(operands['operand_1'])}.{accessor(operands['operand_2'])}"
    return ""


def function(value: Any) -> tuple[str, dict[str, Any]]:
    """(type, parameters) of a function call, or ('', {})."""
    if isinstance(value, dict) and "function" in value:
        return value["function"]["type"], value["function"].get("parameters") or {}
    return "", {}


def walk(value: Any) -> Iterator[Any]:
    yield value
    if isinstance(value, dict):
        for item in value.values():
            yield from walk(item)
    elif isinstance(value, list):
        for item in value:
            yield from walk(item)


def app_settings() -> dict[str, Any]:
    """The Function App's app settings (name -> value expression) from infra/app/api.bicep."""
    _, site = only_resource("app/api.bicep", "Microsoft.Web/sites")
    settings = resolve(
        "app/api.bicep", unwrap(site["config"])["properties"]["siteConfig"]["appSettings"]
    )
    assert isinstance(settings, list), settings
    return {item["name"]: item["value"] for item in settings}


def checkov_executable() -> Path | None:
    configured = os.environ.get("OBO_CHECKOV")
    candidate = Path(configured) if configured else REPO / ".venv-checkov" / "bin" / "checkov"
    return candidate if candidate.is_file() and os.access(candidate, os.X_OK) else None


def run_checkov(executable: Path) -> dict[str, Any]:
    """Run checkov over infra/ (Bicep only) and return its JSON report for the bicep framework."""
    command = [str(executable), "-d", "infra", "--framework", "bicep", "-o", "json"]
    command += ["--skip-download", "--compact"]
    for graph_file in GRAPH_ONLY_FILES:
        command += ["--skip-path", re.escape(f"infra/{graph_file}")]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert done.returncode in (0, 1), f"checkov crashed ({done.returncode}):\n{done.stderr[-4000:]}"
    report = json.loads(done.stdout)
    if isinstance(report, list):  # one entry per framework when several ran
        report = next((r for r in report if r.get("check_type") == "bicep"), None)
        assert report is not None, f"checkov reported no Bicep results:\n{done.stdout[:2000]}"
    return cast(dict[str, Any], report)


def bicepparam(name: str) -> dict[str, str]:
    """``param NAME = EXPRESSION`` lines of infra/<name> (a .bicepparam file), by name.

    pycep-parser does not read .bicepparam files; these hold one parameter per line, so a line
    parser is enough. The ``using`` target is returned under the key ``using``.
    """
    found: dict[str, str] = {}
    for line in (INFRA / name).read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line.startswith("using "):
            found["using"] = line.split(None, 1)[1].strip("'")
        elif line.startswith("param "):
            key, value = line[len("param ") :].split("=", 1)
            found[key.strip()] = value.strip()
    return found


ENV_READ = re.compile(r"readEnvironmentVariable\('([A-Z0-9_]+)'(?:,\s*'([^']*)')?\)")
# azd's main.parameters.json placeholders: ${VAR} or ${VAR=default}
PLACEHOLDER = re.compile(r"\$\{([A-Z0-9_]+)(?:=([^}]*))?\}")


def documented_commands(prefix: str) -> list[tuple[str, str]]:
    """Every command starting with ``prefix`` in README.md, docs/*.md and the comments of
    infra/ files, with backslash continuations joined: (where, command)."""
    sources = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
    sources += sorted(INFRA.rglob("*.bicep")) + sorted(INFRA.rglob("*.bicepparam"))
    found = []
    for path in sources:
        lines = path.read_text(encoding="utf-8").splitlines()
        if path.suffix in (".bicep", ".bicepparam"):  # comments only
            lines = [line.split("//", 1)[1] for line in lines if "//" in line]
        text = "\n".join(lines)
        text = re.sub(r"\\\n\s*", " ", text)
        for line in text.splitlines():
            for match in re.finditer(rf"(?:^|[\s`$(]){re.escape(prefix)}\b[^`\n]*", line):
                found.append((path.relative_to(REPO).as_posix(), match.group(0).strip(" `$(")))
    return found


def markdown_section(path: Path, heading: str) -> str:
    """The text under the first heading that starts with ``heading`` up to the next heading of
    the same or a higher level."""
    text = path.read_text(encoding="utf-8")
    match = re.search(rf"^(#+) {re.escape(heading)}.*$", text, re.MULTILINE)
    assert match, f"{path.name}: no heading {heading!r}"
    level = len(match.group(1))
    end = re.compile(rf"^#{{1,{level}}} ", re.MULTILINE).search(text, match.end())
    return text[match.end() : end.start() if end else len(text)]
