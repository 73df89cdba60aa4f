"""feeds.yaml validation: bad config fails before anything runs, naming file, feed and key."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
import yaml

from aggregator.config import SETTINGS, load
from aggregator.errors import ConfigError

ROOT = Path(__file__).parent.parent


def write(tmp_path: Path, document: object) -> Path:
    path = tmp_path / "feeds.yaml"
    path.write_text(yaml.safe_dump(document) if not isinstance(document, str) else document)
    return path


def test_shipped_feeds_yaml_is_valid() -> None:
    settings = load(ROOT / "feeds.yaml")
    names = [f.name for f in settings.feeds]
    assert names[:3] == ["TechCrunch", "The Register", "Hacker News"]
    assert settings.database == ROOT / "data" / "aggregator.db"


def test_defaults_and_overrides(tmp_path: Path) -> None:
    path = write(tmp_path, {
        "settings": {"interval": "2h", "timezone": "Europe/Berlin", "max_bytes": "1MB"},
        "feeds": ["https://a.example/feed", {"url": "https://b.example/rss", "name": "B",
                                             "tags": ["x", "x", "y"], "interval": 90}],
    })  # fmt: skip
    settings = load(path)
    a, b = settings.feeds
    assert (a.name, a.interval) == ("https://a.example/feed", timedelta(hours=2))
    assert (b.name, b.tags, b.interval) == ("B", ("x", "y"), timedelta(seconds=90))
    assert settings.max_bytes == 1_000_000 and settings.timezone == "Europe/Berlin"
    assert settings.database == tmp_path / "data" / "aggregator.db"
    assert settings.read_timeout == timedelta(seconds=30)
    assert settings.max_redirects == 5 and settings.per_host == 2


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({"settings": {"intervall": "1h"}}, "settings.intervall: unknown setting"),
        ({"settings": {"interval": "soon"}}, "settings.interval: expected a duration"),
        ({"settings": {"timezone": "Mars/Olympus"}}, "settings.timezone: unknown time zone"),
        ({"settings": {"workers": 0}}, "settings.workers: expected a whole number"),
        ({"settings": {"database": None}}, "settings.database: must have a value"),
        ({"settings": {"timezone": None}}, "settings.timezone: must have a value"),
        ({"feeds": [{"url": "https://x.example/f", "interval": None}]},
         "feeds[0] (https://x.example/f).interval"),
        ({"feeds": [{"url": "https://x.example/f", "name": None}]},
         "feeds[0] (https://x.example/f).name"),
        ({"feeds": [{"name": "No URL"}]}, "feeds[0]: missing url"),
        ({"feeds": [{"url": "ftp://x.example/f"}]}, "feeds[0] (ftp://x.example/f).url: url"),
        ({"feeds": [{"url": "https://x.example/f", "colour": "red"}]},
         "feeds[0] (https://x.example/f).colour: unknown key"),
        ({"feeds": [{"url": "https://x.example/f", "interval": "-5m"}]},
         "feeds[0] (https://x.example/f).interval"),
        ({"feeds": ["https://x.example/f", "https://x.example/f"]}, "duplicate of feeds[0]"),
        ({"feeds": {"url": "https://x.example/f"}}, "feeds: feeds must be a list"),
        ({"feed": []}, "feed: unknown top-level key"),
        ("feeds: [unclosed", "not valid YAML"),
    ],
)  # fmt: skip
def test_invalid_config_names_file_and_key(tmp_path: Path, document: object, message: str) -> None:
    path = write(tmp_path, document)
    with pytest.raises(ConfigError) as raised:
        load(path)
    assert str(path) in str(raised.value)
    assert message in str(raised.value)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="file not found"):
        load(tmp_path / "nope.yaml")


def test_every_setting_has_a_valid_default() -> None:
    for setting in SETTINGS:
        if setting.default is not None:
            setting.parse(setting.default)
