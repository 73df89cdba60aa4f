"""Plain data that crosses module boundaries. Imports nothing of ours."""

from __future__ import annotations

import traceback
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

HOUR = timedelta(hours=1)


@dataclass(frozen=True, slots=True)
class FeedSpec:
    """One feed as configured in feeds.yaml; per-feed overrides are None when unset."""

    url: str
    name: str
    tags: tuple[str, ...] = ()
    interval: timedelta = HOUR
    timeout: float | None = None
    max_bytes: int | None = None


@dataclass(frozen=True, slots=True)
class FeedState:
    """What the store remembers about a feed between polls."""

    spec: FeedSpec
    url: str | None = None  # where to fetch now: differs from spec.url after a 301/308
    etag: str | None = None
    last_modified: str | None = None
    body_hash: str | None = None
    error_count: int = 0
    next_fetch_at: datetime | None = None
    last_fetch_at: datetime | None = None
    gone: bool = False
    publish_gap: timedelta | None = None  # typical time between the feed's entries
    ttl: timedelta | None = None  # the feed's RSS <ttl>, remembered across 304s
    window: timedelta | None = None  # time its last document spanned, newest to oldest

    @property
    def fetch_url(self) -> str:
        return self.url or self.spec.url


@dataclass(frozen=True, slots=True)
class FetchResult:
    """Any HTTP status is a result, not an exception; body is None on 304."""

    url: str
    final_url: str
    status: int
    headers: Mapping[str, str]
    body: bytes | None
    fetched_at: datetime
    elapsed_s: float
    permanent_url: str | None = None  # set when every redirect hop was 301/308

    @property
    def not_modified(self) -> bool:
        return self.status == 304


@dataclass(frozen=True, slots=True)
class OutboundLink:
    url: str  # absolute http(s), canonical
    text: str | None = None


@dataclass(frozen=True, slots=True)
class ParsedEntry:
    guid: str | None
    link: str | None  # absolute http(s) or None
    title: str | None
    published: datetime | None  # aware UTC or None
    updated: datetime | None
    author: str | None = None
    summary: str | None = None  # plain text
    tags: tuple[str, ...] = ()
    links: tuple[OutboundLink, ...] = ()


@dataclass(frozen=True, slots=True)
class ParsedFeed:
    title: str | None
    link: str | None
    version: str
    entries: tuple[ParsedEntry, ...]
    ttl: timedelta | None = None  # RSS <ttl>
    warnings: tuple[str, ...] = ()

    @property
    def window(self) -> timedelta | None:
        """How much time the document covers: newest minus oldest dated entry."""
        dates = [e.published for e in self.entries if e.published is not None]
        return max(dates) - min(dates) if len(dates) >= 2 else None


@dataclass(frozen=True, slots=True)
class ErrorInfo:
    type: str
    message: str
    traceback: str = ""
    status: int | None = None
    retry_after: datetime | None = None

    @classmethod
    def from_exception(cls, exc: BaseException) -> ErrorInfo:
        return cls(
            type=type(exc).__name__,
            message=str(exc),
            traceback="".join(traceback.format_exception(exc)),
            status=getattr(exc, "status", None),
            retry_after=getattr(exc, "retry_after", None),
        )


@dataclass(frozen=True, slots=True)
class Outcome:
    """The result of polling one feed; the single writer applies it."""

    state: FeedState
    fetch: FetchResult | None
    parsed: ParsedFeed | None
    error: ErrorInfo | None
    next_fetch_at: datetime
    body_hash: str | None = None

    @property
    def spec(self) -> FeedSpec:
        return self.state.spec

    @property
    def unchanged(self) -> bool:
        """304, or a 200 whose body hashes like the last one: nothing to parse."""
        return self.error is None and self.parsed is None


@dataclass(frozen=True, slots=True)
class ApplyResult:
    """What storing one outcome changed."""

    feed_url: str
    new_entries: int = 0
    updated_entries: int = 0
    error: ErrorInfo | None = None


@dataclass(frozen=True, slots=True)
class DigestEntry:
    """One line of a digest: a story, titled by the feed that published it."""

    entry_id: int
    title: str
    url: str
    day: date
    published: datetime | None
    feed_name: str
    feed_url: str
    author: str | None = None
    summary: str | None = None
    tags: tuple[str, ...] = ()
    also_in: tuple[str, ...] = field(default=())  # names of other feeds that carried it


@dataclass(frozen=True, slots=True)
class Citation:
    """One reference in an article, as written, and what the stored entries say of it."""

    line: int
    url: str  # as written in the article
    canonical_url: str | None  # None when the URL is not an absolute http(s) URL
    status: str  # verified, mismatched, unknown or linked (see aggregator.refs)
    title: str | None = None  # a reference line's title, or a Markdown link's text
    day: date | None = None  # a reference line's date; Markdown links have none
    entry_id: int | None = None  # the stored entry it was matched to
