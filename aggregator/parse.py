"""Bytes + response headers -> ParsedFeed. Knows feed formats, nothing of HTTP or SQLite."""

from __future__ import annotations

import io
import logging
import time
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import feedparser

from aggregator import jsonfeed
from aggregator.errors import ParseError
from aggregator.html import one_line, outbound_links, plain_summary, plain_title
from aggregator.models import OutboundLink, ParsedEntry, ParsedFeed
from aggregator.urls import web_url

log = logging.getLogger(__name__)

GUID_MAX = 2048
MAX_TAGS = 50
# Bozo exceptions that leave a perfectly usable feed behind: log, don't warn.
SURVIVABLE = ("CharacterEncodingOverride", "NonXMLContentType")


def as_utc(value: Any) -> datetime | None:
    """feedparser's struct_time (already UTC) or a datetime -> aware UTC, or None."""
    if isinstance(value, datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=UTC)
        return moment.astimezone(UTC)
    if isinstance(value, time.struct_time):
        try:
            return datetime(*value[:6], tzinfo=UTC)
        except (ValueError, OverflowError):
            return None
    return None


def _tags(values: Iterable[Any]) -> tuple[str, ...]:
    tags = (one_line(plain_title(str(v)), 200) for v in values if v)
    return tuple(dict.fromkeys(t for t in tags if t))[:MAX_TAGS]


def _links(fragments: Iterable[str | None], base: str | None) -> tuple[OutboundLink, ...]:
    found: dict[str, OutboundLink] = {}
    for fragment in fragments:
        for link in outbound_links(fragment, base):
            found.setdefault(link.url, link)
    return tuple(found.values())


def _guid(value: Any) -> str | None:
    return one_line(value, GUID_MAX) if isinstance(value, str) else None


def _feedparser_entry(entry: Any, base: str) -> ParsedEntry:
    link = web_url(entry.get("link"), base)
    contents = [c.get("value") for c in entry.get("content", []) if c.get("value")]
    summary = entry.get("summary")
    published = as_utc(entry.get("published_parsed")) or as_utc(entry.get("created_parsed"))
    updated = as_utc(entry.get("updated_parsed"))
    return ParsedEntry(
        guid=_guid(entry.get("id")),
        link=link,
        title=plain_title(entry.get("title")),
        published=published or updated,
        updated=updated,
        author=one_line(plain_title(entry.get("author")), 500),
        summary=plain_summary(summary or (contents[0] if contents else None)),
        tags=_tags(t.get("term") or t.get("label") for t in entry.get("tags", [])),
        links=_links([*contents, summary], link or base),
    )


def _jsonfeed_entry(item: dict[str, Any], base: str) -> ParsedEntry:
    text = jsonfeed.text
    link = web_url(text(item.get("url")), base) or web_url(text(item.get("external_url")), base)
    html = text(item.get("content_html"))
    summary = text(item.get("summary")) or html or text(item.get("content_text"))
    published = as_utc(jsonfeed.date(item.get("date_published")))
    updated = as_utc(jsonfeed.date(item.get("date_modified")))
    tags = item.get("tags")
    tags = tags if isinstance(tags, list) else []
    return ParsedEntry(
        guid=_guid(text(item.get("id"))),
        link=link,
        title=plain_title(text(item.get("title"))),
        published=published or updated,
        updated=updated,
        author=one_line(plain_title(jsonfeed.authors(item)), 500),
        summary=plain_summary(summary),
        tags=_tags(t for t in tags if isinstance(t, str)),
        links=_links([html], link or base),
    )


def _ttl(value: Any) -> timedelta | None:
    try:
        minutes = int(str(value).strip())
    except (TypeError, ValueError):
        return None
    return timedelta(minutes=minutes) if minutes > 0 else None


def _entries(raw: Iterable[Any], convert: Any, url: str, base: str) -> tuple[ParsedEntry, ...]:
    """Convert each entry; a bad one is logged and skipped, all bad is a ParseError."""
    entries: list[ParsedEntry] = []
    failures: list[Exception] = []
    for item in raw:
        try:
            entries.append(convert(item, base))
        except (ValueError, TypeError, AttributeError, KeyError) as e:
            failures.append(e)
            log.warning("%s: skipped an entry: %s: %s", url, type(e).__name__, e)
    if failures and not entries:
        raise ParseError(url, f"every entry failed to parse ({len(failures)})") from failures[0]
    return tuple(entries)


def parse(body: bytes, headers: Mapping[str, str], url: str) -> ParsedFeed:
    """Parse a feed document fetched from `url` (relative links resolve against it)."""
    headers = {k.lower(): v for k, v in headers.items()}
    if not body.strip():
        raise ParseError(url, "not a feed: empty document")
    if jsonfeed.looks_like_jsonfeed(body, headers.get("content-type", "")):
        document = jsonfeed.load(body, url)
        return ParsedFeed(
            title=plain_title(document.title),
            link=web_url(document.home_page_url, url),
            version=document.version,
            entries=_entries(document.items, _jsonfeed_entry, url, document.base_url),
        )
    # A BytesIO, never bytes: feedparser treats a bare string as a URL or a file path.
    result = feedparser.parse(
        io.BytesIO(body),
        response_headers={**headers, "content-location": url},
        sanitize_html=True,
        resolve_relative_uris=True,
    )
    warnings: tuple[str, ...] = ()
    if result.get("bozo"):
        problem = result.get("bozo_exception")
        cause = f"{type(problem).__name__}: {problem}"
        if not result.get("version") and not result.entries:
            raise ParseError(url, f"not a feed ({cause})")
        if type(problem).__name__ in SURVIVABLE:
            log.info("%s: %s", url, cause)
        else:
            warnings = (cause,)
            log.warning("%s: malformed feed, kept what could be read: %s", url, cause)
    elif not result.get("version"):
        raise ParseError(url, "not a feed: unknown format")
    feed = result.feed
    site = web_url(feed.get("link"), url)
    return ParsedFeed(
        title=plain_title(feed.get("title")),
        link=site,
        version=result.get("version") or "unknown",
        entries=_entries(result.entries, _feedparser_entry, url, url),
        ttl=_ttl(feed.get("ttl")),
        warnings=warnings,
    )
