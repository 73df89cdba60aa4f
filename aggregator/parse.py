"""Bytes + response headers -> ParsedFeed. Knows feed formats, nothing of HTTP or SQLite."""

from __future__ import annotations

import email.utils
import io
import logging
import re
import time
from collections.abc import Callable, Iterable, Mapping
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


# A bare number is an epoch timestamp or a year, which feedparser "normalises" into nonsense.
_NUMBER = re.compile(r"[+-]?\d+(?:\.\d+)?")
_ISO_LIKE = re.compile(r"\d{4}-?\d\d")
# The fields of an ISO 8601 calendar date that fromisoformat() refused; feedparser would roll
# impossible ones over (2026-13-45 -> 2027-01-01), so its answer is only taken when they fit.
_ISO_FIELDS = re.compile(
    r"(\d{4})-(\d\d)-(\d\d)(?:[T ](\d\d):(\d\d)(?::(\d\d)(?:[.,]\d+)?)?)?"
    r"\s*(?:Z|[+-]\d\d(?::?\d\d)?|[A-Za-z]{1,5})?",
    re.IGNORECASE,
)


def as_utc(value: Any) -> datetime | None:
    """feedparser's struct_time (already UTC) or a datetime -> aware UTC to the second, or None.

    A datetime without a time zone is taken as UTC."""
    if isinstance(value, datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=UTC)
        return moment.astimezone(UTC).replace(microsecond=0)
    if isinstance(value, time.struct_time):
        try:
            return datetime(*value[:6], tzinfo=UTC)
        except (ValueError, OverflowError):
            return None
    return None


def _iso_fields_fit(text: str) -> bool:
    match = _ISO_FIELDS.fullmatch(text)
    if match is None:
        return False
    year, month, day, hour, minute, second = (int(g or 0) for g in match.groups())
    try:
        datetime(year, month, day, hour, minute, min(second, 59))
    except ValueError:
        return False
    return True


def feed_date(raw: Any, parsed: Any) -> datetime | None:
    """A feed's date string, checked before feedparser's reading of it (`parsed`) is believed.

    Bare numbers and ISO dates with impossible fields are None rather than rolled over;
    a date without a time zone (ISO or RFC 822) is taken as UTC."""
    if not isinstance(raw, str):
        return as_utc(parsed)
    text = raw.strip()
    if not text or _NUMBER.fullmatch(text):
        return None
    if _ISO_LIKE.match(text):
        try:
            return as_utc(datetime.fromisoformat(text))
        except ValueError:
            return as_utc(parsed) if _iso_fields_fit(text) else None
    if parsed is None:
        # feedparser gives up on an RFC 822 date without a zone; read it as UTC.
        fields = email.utils.parsedate_tz(text)
        if fields is None:
            return None
        try:
            moment = datetime(*fields[:6], tzinfo=UTC)
        except (ValueError, OverflowError):
            return None
        return moment - timedelta(seconds=fields[9] or 0)
    return as_utc(parsed)


def _entry_date(entry: Any, key: str) -> datetime | None:
    # dict.get, not entry.get: feedparser answers `updated` with `published` when missing.
    return feed_date(dict.get(entry, key), dict.get(entry, key + "_parsed"))


def _is_html(detail: Any, version: str) -> bool:
    """Atom says when text is plain (type="text"); RSS text is HTML in practice, whatever
    feedparser's text/plain says."""
    plain = version.startswith("atom") and isinstance(detail, dict)
    return not (plain and detail.get("type") == "text/plain")


def _author(source: Any) -> str | None:
    """The name alone, not feedparser's "Name (email)"."""
    detail = source.get("author_detail")
    name = detail.get("name") if isinstance(detail, dict) else None
    return one_line(plain_title(name or source.get("author")), 500)


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


def _feedparser_entry(
    entry: Any, base: str, version: str, feed_author: str | None = None
) -> ParsedEntry:
    link = web_url(entry.get("link"), base)
    contents = [c for c in entry.get("content", []) if c.get("value")]
    markup = [c["value"] for c in contents if _is_html(c, version)]
    summary = entry.get("summary")
    if summary:
        summary_is_html = _is_html(entry.get("summary_detail"), version)
        summary_text = plain_summary(summary, summary_is_html)
        if summary_is_html:
            markup.append(summary)
    elif contents:
        summary_text = plain_summary(contents[0]["value"], _is_html(contents[0], version))
    else:
        summary_text = None
    published = _entry_date(entry, "published") or _entry_date(entry, "created")
    updated = _entry_date(entry, "updated")
    return ParsedEntry(
        guid=_guid(entry.get("id")),
        link=link,
        title=plain_title(entry.get("title"), _is_html(entry.get("title_detail"), version)),
        published=published or updated,
        updated=updated,
        author=_author(entry) or feed_author,
        summary=summary_text,
        tags=_tags(t.get("term") or t.get("label") for t in entry.get("tags", [])),
        links=_links(markup, link or base),
    )


def _jsonfeed_entry(item: dict[str, Any], base: str, feed_author: str | None) -> ParsedEntry:
    text = jsonfeed.text
    link = web_url(text(item.get("url")), base) or web_url(text(item.get("external_url")), base)
    html = text(item.get("content_html"))
    # JSON Feed's summary and content_text are plain text; only content_html is HTML.
    plain = text(item.get("summary"))
    summary = plain_summary(plain, False) if plain else plain_summary(html)
    if summary is None:
        summary = plain_summary(text(item.get("content_text")), False)
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
        author=one_line(plain_title(jsonfeed.authors(item)), 500) or feed_author,
        summary=summary,
        tags=_tags(t for t in tags if isinstance(t, str)),
        links=_links([html], link or base),
    )


def _ttl(value: Any) -> timedelta | None:
    try:
        minutes = int(str(value).strip())
    except (TypeError, ValueError):
        return None
    return timedelta(minutes=minutes) if minutes > 0 else None


def _entries(
    raw: Iterable[Any], convert: Callable[[Any], ParsedEntry], url: str
) -> tuple[ParsedEntry, ...]:
    """Convert each entry; a bad one is logged and skipped, all bad is a ParseError."""
    entries: list[ParsedEntry] = []
    failures: list[Exception] = []
    for item in raw:
        try:
            entries.append(convert(item))
        except (ValueError, TypeError, AttributeError, KeyError) as e:
            failures.append(e)
            log.warning("%s: skipped an entry: %s: %s", url, type(e).__name__, e)
    if failures and not entries:
        raise ParseError(url, f"every entry failed to parse ({len(failures)})") from failures[0]
    return tuple(entries)


def parse(body: bytes, headers: Mapping[str, str], url: str) -> ParsedFeed:
    """Parse a feed document fetched from `url`; relative links resolve against it, and
    relative links in an entry's content against the entry's link."""
    headers = {k.lower(): v for k, v in headers.items()}
    if not body.strip():
        raise ParseError(url, "not a feed: empty document")
    if jsonfeed.looks_like_jsonfeed(body, headers.get("content-type", "")):
        document = jsonfeed.load(body, url)
        # Feed-level authors apply to items without their own (JSON Feed 1.1, 1.0's author).
        author = one_line(plain_title(document.author), 500)
        return ParsedFeed(
            title=plain_title(document.title),
            link=web_url(document.home_page_url, url),
            version=document.version,
            entries=_entries(
                document.items,
                lambda item: _jsonfeed_entry(item, document.base_url, author),
                url,
            ),
        )
    # A BytesIO, never bytes: feedparser treats a bare string as a URL or a file path.
    # No content-location: feedparser applies only xml:base, and links relative to the
    # document stay relative until web_url() resolves them, after it has checked what they
    # say (`&amp;#106;avascript:` made absolute would pass for a path). Content links then
    # resolve against their entry's link, right for feeds served from a mirror or a proxy.
    result = feedparser.parse(
        io.BytesIO(body),
        response_headers={k: v for k, v in headers.items() if k != "content-location"},
        sanitize_html=True,
        resolve_relative_uris=True,
    )
    warnings: tuple[str, ...] = ()
    if result.get("bozo"):
        problem = result.get("bozo_exception")
        cause = f"{type(problem).__name__}: {problem}"
        survivable = type(problem).__name__ in SURVIVABLE
        if not result.get("version") and not result.entries:
            # A survivable complaint (no Content-Type) is not why a sitemap isn't a feed.
            raise ParseError(
                url, "not a feed: unknown format" if survivable else f"not a feed ({cause})"
            )
        if survivable:
            log.info("%s: %s", url, cause)
        else:
            warnings = (cause,)
            log.warning("%s: malformed feed, kept what could be read: %s", url, cause)
    elif not result.get("version"):
        raise ParseError(url, "not a feed: unknown format")
    feed = result.feed
    site = web_url(feed.get("link"), url)
    version = result.get("version") or "unknown"
    # An Atom feed's author is the author of every entry that names none (RFC 4287 4.2.1);
    # an RSS channel's managingEditor is not.
    author = _author(feed) if version.startswith("atom") else None
    return ParsedFeed(
        title=plain_title(feed.get("title"), _is_html(feed.get("title_detail"), version)),
        link=site,
        version=version,
        entries=_entries(
            result.entries, lambda entry: _feedparser_entry(entry, url, version, author), url
        ),
        ttl=_ttl(feed.get("ttl")),
        warnings=warnings,
    )
