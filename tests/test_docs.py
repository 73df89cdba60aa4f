"""The README documents every setting, feed key and command there is."""

from __future__ import annotations

from pathlib import Path

import pytest

from aggregator.cli import cli
from aggregator.config import FEED_KEYS, SETTINGS

README = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")


@pytest.mark.parametrize("name", [s.name for s in SETTINGS])
def test_setting_is_documented(name: str) -> None:
    assert f"| `{name}` |" in README


@pytest.mark.parametrize("name", list(FEED_KEYS))
def test_feed_key_is_documented(name: str) -> None:
    assert f"| `{name}` |" in README


@pytest.mark.parametrize("name", sorted(cli.commands))
def test_command_is_documented(name: str) -> None:
    assert f"### `aggregator {name}" in README
