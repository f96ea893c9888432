"""The documentation stays true to the code."""

from __future__ import annotations

import json
import re
from pathlib import Path

from obo import settings_table
from obo.aadsts import markdown
from obo.codes import Code
from obo.codes import markdown as codes_markdown
from obo.config import SETTING_NAMES

ROOT = Path(__file__).resolve().parents[2]
TROUBLESHOOTING = (ROOT / "docs" / "troubleshooting.md").read_text()
CONFIGURATION = (ROOT / "docs" / "configuration.md").read_text()


def test_aadsts_table_in_docs_is_generated_from_the_code():
    assert markdown() in TROUBLESHOOTING


def test_codes_table_in_docs_is_generated_from_the_registry():
    # every code the API can return has a row: raise sites take obo.codes.Code members
    # (tests/unit/test_codes.py), and the rows are rendered from them
    assert codes_markdown() in TROUBLESHOOTING
    documented = re.findall(r"^\| (OBO\d{4}) \|", TROUBLESHOOTING, re.MULTILINE)
    assert documented == [code.value for code in Code]


def test_every_setting_is_in_the_sample_and_the_configuration_reference():
    sample = (ROOT / "local.settings.sample.json").read_text()
    reference = (ROOT / "docs" / "configuration.md").read_text()
    for name in SETTING_NAMES:
        assert f'"{name}"' in sample
        assert f"`{name}`" in reference


def test_settings_tables_in_docs_are_generated_from_the_settings_table():
    assert settings_table.markdown() in CONFIGURATION
    assert settings_table.named_api_markdown() in CONFIGURATION
    assert settings_table.identity_markdown() in CONFIGURATION


def test_every_setting_in_the_sample_is_one_the_code_reads():
    values = json.loads((ROOT / "local.settings.sample.json").read_text())["Values"]
    ours = [name for name in values if name.startswith("OBO_")]
    named = [n for n in ours if n.startswith(settings_table.DOWNSTREAM_PREFIX)]
    assert named, "the sample shows a named downstream API setting"
    for name in ours:
        assert name in SETTING_NAMES or settings_table.named_api_setting(name), name
