"""JSON Feed 1.0 and 1.1 (feedparser 6 has no JSON Feed parser)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from aggregator.errors import ParseError

VERSIONS = {
    "https://jsonfeed.org/version/1": "json1",
    "https://jsonfeed.org/version/1.1": "json11",
}


def looks_like_jsonfeed(body: bytes, content_type: str) -> bool:
    if "json" in content_type.lower():
        return True
    head = body[:64].lstrip(b"\xef\xbb\xbf \t\r\n")
    return head.startswith(b"{")


def _text(value: Any) -> str | None:
    if isinstance(value, str) and value.strip():
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return None


@dataclass(frozen=True, slots=True)
class JsonFeedDocument:
    title: str | None
    home_page_url: str | None
    base_url: str  # what relative item URLs resolve against
    version: str
    items: tuple[dict[str, Any], ...]
    author: str | None = None  # of every item that names none


def load(body: bytes, url: str) -> JsonFeedDocument:
    """Decode and validate a JSON Feed document; items stay raw for parse.py to convert."""
    try:
        document = json.loads(body.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ParseError(url, "not a feed: invalid JSON") from e
    if not isinstance(document, dict) or document.get("version") not in VERSIONS:
        raise ParseError(url, "not a feed: JSON without a JSON Feed version")
    items = document.get("items")
    if not isinstance(items, list):
        raise ParseError(url, "JSON Feed without an items list")
    home = _text(document.get("home_page_url"))
    base = home or _text(document.get("feed_url")) or url
    return JsonFeedDocument(
        title=_text(document.get("title")),
        home_page_url=home,
        base_url=base,
        version=VERSIONS[document["version"]],
        items=tuple(item for item in items if isinstance(item, dict)),
        author=authors(document),
    )


def authors(item: dict[str, Any]) -> str | None:
    """1.1 `authors` list or 1.0 `author` object (of an item or the feed) -> "Name, Name"."""
    people = item.get("authors")
    if not isinstance(people, list):
        people = [item.get("author")]
    names = [_text(p.get("name")) for p in people if isinstance(p, dict)]
    return ", ".join(n for n in names if n) or None


def date(value: Any) -> datetime | None:
    """An RFC 3339 string; a JSON number is not a date (nor an epoch timestamp)."""
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        return datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None


text = _text
