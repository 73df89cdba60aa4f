"""feeds.yaml -> Settings: every key validated before anything opens or fetches."""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

from aggregator import __version__
from aggregator.errors import ConfigError
from aggregator.models import FeedSpec
from aggregator.urls import web_url

DEFAULT_CONFIG = "feeds.yaml"
DIGEST_FORMATS = ("refs", "markdown", "json", "csv", "html")

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)?\s*$")
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, None: 1}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(b|kb|mb|gb|kib|mib|gib)?\s*$", re.IGNORECASE)
_SIZES = {"b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "kib": 2**10, "mib": 2**20, "gib": 2**30}


def parse_duration(value: Any) -> timedelta:
    """`90`, `"90s"`, `"30m"`, `"1h"`, `"1d"` -> timedelta (a bare number is seconds)."""
    if isinstance(value, bool):
        raise ValueError(f"expected a duration like 30m, got {value!r}")
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        match = _DURATION.match(str(value))
        if not match:
            raise ValueError(f"expected a duration like 90s, 30m, 1h or 1d, got {value!r}")
        seconds = float(match.group(1)) * _UNITS[match.group(2)]
    if seconds <= 0:
        raise ValueError(f"must be positive, got {value!r}")
    return timedelta(seconds=seconds)


def parse_size(value: Any) -> int:
    """`1000000`, `"10MB"`, `"512KiB"` -> bytes."""
    match = _SIZE.match(str(value)) if not isinstance(value, bool) else None
    if not match:
        raise ValueError(f"expected a size like 10MB, got {value!r}")
    size = int(float(match.group(1)) * _SIZES[(match.group(2) or "b").lower()])
    if size <= 0:
        raise ValueError(f"must be positive, got {value!r}")
    return size


def parse_positive_int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"expected a whole number of at least 1, got {value!r}")
    return value


def parse_timezone(value: Any) -> str:
    try:
        ZoneInfo(str(value))
    except (ZoneInfoNotFoundError, ValueError) as e:
        raise ValueError(f"unknown time zone {value!r}") from e
    return str(value)


def parse_formats(value: Any) -> tuple[str, ...]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not items:
        raise ValueError(f"expected a list of formats from {', '.join(DIGEST_FORMATS)}")
    for item in items:
        if item not in DIGEST_FORMATS:
            raise ValueError(f"unknown format {item!r}; choose from {', '.join(DIGEST_FORMATS)}")
    return tuple(dict.fromkeys(items))


def parse_clock(value: Any) -> time:
    """`"00:15"` or `"00:15:30"` -> time of day."""
    try:
        hours, minutes, *seconds = (int(part) for part in str(value).split(":", 2))
        return time(hours, minutes, seconds[0] if seconds else 0)
    except (TypeError, ValueError) as e:
        raise ValueError(f"expected a time of day like 00:15, got {value!r}") from e


def parse_str(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"expected text, got {value!r}")
    return value


def parse_bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"expected true or false, got {value!r}")
    return value


def parse_days_or_off(value: Any) -> int | None:
    if value is None or value is False or value == 0:
        return None
    return parse_positive_int(value)


@dataclass(frozen=True, slots=True)
class Setting:
    name: str
    default: Any
    help: str
    parse: Callable[[Any], Any]


SETTINGS = (
    Setting("database", "data/aggregator.db", "SQLite file, relative to feeds.yaml.", parse_str),
    Setting("digest_dir", "data/digests", "Where digest files are written.", parse_str),
    Setting("timezone", "UTC", "Time zone whose calendar days make digests.", parse_timezone),
    Setting("interval", "60m", "Default time between two polls of a feed.", parse_duration),
    Setting("min_interval", "5m", "Floor for every feed's interval (politeness).", parse_duration),
    Setting("max_interval", "1d", "Longest interval; also caps error backoff.", parse_duration),
    Setting("connect_timeout", "10s", "Time to open a connection.", parse_duration),
    Setting("read_timeout", "30s", "Time to wait for each read.", parse_duration),
    Setting("deadline", "60s", "Total time for one request, body included.", parse_duration),
    Setting("max_bytes", "10MB", "Largest response body, after decompression.", parse_size),
    Setting("max_redirects", 5, "Redirects followed per request (http and https only).",
            parse_positive_int),
    Setting("workers", 8, "Feeds fetched at once.", parse_positive_int),
    Setting("per_host", 2, "Requests to one host at once.", parse_positive_int),
    Setting("user_agent", f"aggregator/{__version__} (feed aggregator)",
            "User-Agent header sent to every feed.", parse_str),
    Setting("digest_formats", ["refs"], "Formats the daemon writes each day.", parse_formats),
    Setting("digest_time", "00:15", "When the daemon writes yesterday's digest.", parse_clock),
    Setting("fetch_log_days", 90, "Days of fetch log kept; older rows are pruned.",
            parse_positive_int),
    Setting("entry_days", None, "Days of entries kept (off by default: nothing is deleted).",
            parse_days_or_off),
)  # fmt: skip
FEED_KEYS = {
    "url": parse_str,
    "name": parse_str,
    "tags": None,
    "interval": parse_duration,
    "timeout": parse_duration,
    "max_bytes": parse_size,
}


@dataclass(frozen=True, slots=True)
class Settings:
    path: Path
    database: Path
    digest_dir: Path
    timezone: str
    interval: timedelta
    min_interval: timedelta
    max_interval: timedelta
    connect_timeout: timedelta
    read_timeout: timedelta
    deadline: timedelta
    max_bytes: int
    max_redirects: int
    workers: int
    per_host: int
    user_agent: str
    digest_formats: tuple[str, ...]
    digest_time: time
    fetch_log_days: int
    entry_days: int | None
    feeds: tuple[FeedSpec, ...] = field(default=())

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def with_database(self, database: str | Path | None) -> Settings:
        return self if database is None else replace(self, database=Path(database))


def _settings_block(raw: Any, path: str) -> dict[str, Any]:
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError("settings must be a mapping of key: value", path, "settings")
    known = {s.name for s in SETTINGS}
    for key in raw:
        if key not in known:
            raise ConfigError(f"unknown setting; known: {', '.join(sorted(known))}", path,
                              f"settings.{key}")  # fmt: skip
    values: dict[str, Any] = {}
    for setting in SETTINGS:
        value = raw.get(setting.name, setting.default)
        try:
            # Only a setting whose default is None (off) may be null.
            if value is None and setting.default is not None:
                raise ValueError("must have a value (leave the key out for the default)")
            values[setting.name] = None if value is None else setting.parse(value)
        except ValueError as e:
            raise ConfigError(str(e), path, f"settings.{setting.name}") from None
    return values


def _tags(value: Any, path: str, key: str) -> tuple[str, ...]:
    if value is None:
        return ()
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not all(isinstance(t, str) and t.strip() for t in items):
        raise ConfigError("tags must be a list of words", path, key)
    return tuple(dict.fromkeys(t.strip() for t in items))


def _feed(raw: Any, index: int, path: str, default_interval: timedelta) -> FeedSpec:
    where = f"feeds[{index}]"
    if isinstance(raw, str):
        raw = {"url": raw}
    if not isinstance(raw, dict):
        raise ConfigError("each feed must be a mapping with at least url", path, where)
    if "url" in raw and isinstance(raw["url"], str):
        where = f"feeds[{index}] ({raw['url']})"
    for key in raw:
        if key not in FEED_KEYS:
            raise ConfigError(f"unknown key; known: {', '.join(FEED_KEYS)}", path,
                              f"{where}.{key}")  # fmt: skip
    if "url" not in raw:
        raise ConfigError("missing url", path, where)
    values: dict[str, Any] = {}
    for key, parse in FEED_KEYS.items():
        if key in raw and parse is not None:
            try:
                values[key] = parse(raw[key])
            except ValueError as e:
                raise ConfigError(str(e), path, f"{where}.{key}") from None
    url = values["url"].strip()
    if web_url(url) != url:
        raise ConfigError("url must be an absolute http(s) URL", path, f"{where}.url")
    timeout = values.get("timeout")
    return FeedSpec(
        url=url,
        name=values.get("name", url).strip(),
        tags=_tags(raw.get("tags"), path, f"{where}.tags"),
        interval=values.get("interval", default_interval),
        timeout=timeout.total_seconds() if timeout else None,
        max_bytes=values.get("max_bytes"),
    )


def parse_config(raw: Any, path: Path) -> Settings:
    """Validate a loaded feeds.yaml document; relative paths are taken from its folder."""
    where = str(path)
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError("expected a mapping with settings: and feeds:", where)
    for key in raw:
        if key not in ("settings", "feeds"):
            raise ConfigError("unknown top-level key; expected settings and feeds", where, key)
    values = _settings_block(raw.get("settings"), where)
    feeds_raw = raw.get("feeds") or []
    if not isinstance(feeds_raw, list):
        raise ConfigError("feeds must be a list", where, "feeds")
    feeds = tuple(_feed(f, i, where, values["interval"]) for i, f in enumerate(feeds_raw))
    seen: dict[str, int] = {}
    for i, feed in enumerate(feeds):
        if feed.url in seen:
            raise ConfigError(f"duplicate of feeds[{seen[feed.url]}]", where,
                              f"feeds[{i}] ({feed.url})")  # fmt: skip
        seen[feed.url] = i
    base = path.parent
    values["database"] = base / values["database"]
    values["digest_dir"] = base / values["digest_dir"]
    return Settings(path=path, feeds=feeds, **values)


def load(path: str | Path) -> Settings:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError("file not found (pass --config or set AGGREGATOR_CONFIG)",
                          str(path)) from None  # fmt: skip
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"cannot read: {e}", str(path)) from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise ConfigError(f"not valid YAML: {e}", str(path)) from None
    return parse_config(raw, path)


def config_path(explicit: str | None) -> Path:
    return Path(explicit or os.environ.get("AGGREGATOR_CONFIG") or DEFAULT_CONFIG)
