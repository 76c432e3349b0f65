"""The README's configuration table is generated from the settings object and must be current."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import ValidationError

from schemas.settings import Settings, settings_table_markdown

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_configuration_table_is_current():
    text = README.read_text()
    found = re.search(r"<!-- settings:begin -->\n(.*)\n<!-- settings:end -->", text, re.S)
    assert found, "README.md lost its settings markers"
    assert found.group(1) == settings_table_markdown(), "regenerate with: python -m schemas.settings"


def test_env_overrides_and_unknown_keys(monkeypatch):
    monkeypatch.setenv("GRIDWATCH_MQTT_PORT", "1999")
    assert Settings().mqtt_port == 1999
    with pytest.raises(ValidationError):
        Settings(no_such_setting=1)
