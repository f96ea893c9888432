"""The documentation stays true to the code."""

from __future__ import annotations

import re
from pathlib import Path

from obo.aadsts import markdown
from obo.config import SETTING_NAMES

ROOT = Path(__file__).resolve().parent.parent
TROUBLESHOOTING = (ROOT / "docs" / "troubleshooting.md").read_text()


def test_aadsts_table_in_docs_is_generated_from_the_code():
    assert markdown() in TROUBLESHOOTING


def test_every_error_code_the_code_can_return_is_documented():
    used = set()
    for path in (ROOT / "obo").glob("*.py"):
        used |= set(re.findall(r'"(OBO\d{4})"', path.read_text()))
    documented = set(re.findall(r"^\| (OBO\d{4}) \|", TROUBLESHOOTING, re.MULTILINE))
    assert used and used == documented


def test_every_setting_is_in_the_sample_and_the_configuration_reference():
    sample = (ROOT / "local.settings.sample.json").read_text()
    reference = (ROOT / "docs" / "configuration.md").read_text()
    for name in SETTING_NAMES:
        assert f'"{name}"' in sample
        assert f"`{name}`" in reference
