"""docs/configuration.md lists every environment variable settings.py reads."""
from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _variables_read_by_settings() -> set[str]:
    source = (ROOT / "gochat_site" / "settings.py").read_text()
    names = set(re.findall(r'env_(?:str|bool|int|float|list)\(\s*"([A-Z0-9_]+)"', source))
    names |= set(re.findall(r'os\.environ(?:\.get)?[\[(]\s*"([A-Z0-9_]+)"', source))
    return names


def test_every_setting_variable_is_documented():
    documented = set(re.findall(r"`([A-Z0-9_]+)`", (ROOT / "docs" / "configuration.md").read_text()))
    names = _variables_read_by_settings()
    assert len(names) > 50  # the parser found the settings at all
    assert sorted(names - documented) == []
