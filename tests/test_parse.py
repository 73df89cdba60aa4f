"""The parser corpus: every file in tests/data/feeds against its expected JSON, plus invariants.

Regenerate the expectations deliberately, then read the diff:
    .venv/bin/pytest tests/test_parse.py --update-expected
"""

from __future__ import annotations

import dataclasses
import html
import json
import re
import time
import unicodedata
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest

from aggregator.errors import ParseError
from aggregator.models import ParsedFeed
from aggregator.parse import parse

DATA = Path(__file__).parent / "data"
FEEDS = DATA / "feeds"
BASE = "http://127.0.0.1/feeds/"


def is_feed(path: Path) -> bool:
    return (
        path.is_file()
        and path.name != "README.md"
        and not path.name.endswith((".expected.json", ".headers"))
    )


CASES = sorted(filter(is_feed, FEEDS.rglob("*")))


def case_id(path: Path) -> str:
    return path.relative_to(FEEDS).as_posix()


def headers_for(path: Path) -> dict[str, str]:
    """The HTTP response headers in `PATH.headers` (`Name: value` lines), if there is one."""
    headers: dict[str, str] = {}
    headers_file = path.with_name(path.name + ".headers")
    if headers_file.exists():
        for line in headers_file.read_text(encoding="utf-8").splitlines():
            if ":" in line:
                key, value = line.split(":", 1)
                headers[key.strip()] = value.strip()
    return headers


def url_for(path: Path) -> str:
    return BASE + case_id(path)


def parse_case(path: Path) -> ParsedFeed:
    return parse(path.read_bytes(), headers_for(path), url_for(path))


def as_jsonable(value: Any) -> Any:
    """Dataclasses to dicts, tuples to lists, datetimes to ISO text, timedeltas to seconds."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: as_jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, tuple | list):
        return [as_jsonable(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    return value


def outcome(path: Path) -> Any:
    try:
        return as_jsonable(parse_case(path))
    except ParseError as e:
        return {"error": type(e).__name__, "message": str(e)}


def parsed_or_none(path: Path) -> ParsedFeed | None:
    try:
        return parse_case(path)
    except ParseError:
        return None


@pytest.mark.parametrize("path", CASES, ids=case_id)
def test_parse(path: Path, update_expected: bool) -> None:
    got = outcome(path)
    expected = path.with_name(path.name + ".expected.json")
    if update_expected:
        expected.write_text(json.dumps(got, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    assert got == json.loads(expected.read_text(encoding="utf-8"))


def test_corpus_is_complete() -> None:
    """Every feed file has an expectation, and every expectation a feed file."""
    assert len(CASES) >= 60
    assert all(p.with_name(p.name + ".expected.json").exists() for p in CASES)
    orphans = [
        p
        for p in FEEDS.rglob("*.expected.json")
        if not p.with_name(p.name.removesuffix(".expected.json")).exists()
    ]
    assert orphans == []


# --- invariants over every file (feedparser's everything_is_unicode) ---------------------------


def texts(feed: ParsedFeed) -> Iterator[tuple[str, Any]]:
    """(field name, value) for every text field of the feed and its entries."""
    yield "feed.title", feed.title
    yield "feed.version", feed.version
    for warning in feed.warnings:
        yield "feed.warnings", warning
    for entry in feed.entries:
        yield "guid", entry.guid
        yield "title", entry.title
        yield "author", entry.author
        yield "summary", entry.summary
        for tag in entry.tags:
            yield "tag", tag
        for link in entry.links:
            yield "links.text", link.text


def links(feed: ParsedFeed) -> Iterator[str | None]:
    yield feed.link
    for entry in feed.entries:
        yield entry.link
        for link in entry.links:
            yield link.url


def is_control(ch: str) -> bool:
    return ch != "\u200d" and unicodedata.category(ch) in ("Cc", "Cf", "Cs")


@pytest.mark.parametrize("path", CASES, ids=case_id)
def test_text_is_clean_str(path: Path) -> None:
    feed = parsed_or_none(path)
    if feed is None:
        return
    for name, value in texts(feed):
        if value is None:
            continue
        assert isinstance(value, str), name
        assert value, f"{name}: empty string instead of None"
        allowed = "\n" if name == "summary" else ""
        assert not [ch for ch in value if ch not in allowed and is_control(ch)], (name, value)


@pytest.mark.parametrize("path", CASES, ids=case_id)
def test_titles_are_one_short_line(path: Path) -> None:
    feed = parsed_or_none(path)
    if feed is None:
        return
    titles = [feed.title, *(e.title for e in feed.entries)]
    for title in titles:
        if title is not None:
            assert "\n" not in title and "\r" not in title
            assert title == title.strip()
            assert len(title) <= 1024


# `javascript:code`; a title may still name "javascript:" in words (hostile/javascript-links).
SCRIPT_URL = re.compile(r"(java|vb)script:\S", re.IGNORECASE)


@pytest.mark.parametrize("path", CASES, ids=case_id)
def test_nothing_executable_survives(path: Path) -> None:
    feed = parsed_or_none(path)
    if feed is None:
        return
    for value in [v for _, v in texts(feed) if v]:
        assert "<script" not in value.lower(), value
        assert not SCRIPT_URL.search(value), value
    for url in [u for u in links(feed) if u]:
        assert "script:" not in unquote(html.unescape(url)).lower(), url


@pytest.mark.parametrize("path", CASES, ids=case_id)
def test_dates_are_aware_utc(path: Path) -> None:
    feed = parsed_or_none(path)
    if feed is None:
        return
    for entry in feed.entries:
        for moment in (entry.published, entry.updated):
            if moment is not None:
                assert isinstance(moment, datetime)
                assert moment.utcoffset() == timedelta(0)
                assert moment.tzinfo is UTC


@pytest.mark.parametrize("path", CASES, ids=case_id)
def test_links_are_absolute_http(path: Path) -> None:
    feed = parsed_or_none(path)
    if feed is None:
        return
    for url in links(feed):
        if url is not None:
            assert url.startswith(("http://", "https://")), url
            assert url.split("://", 1)[1].split("/", 1)[0], url


# --- focused tests: what a user would notice --------------------------------------------------


def feed_of(relative: str) -> ParsedFeed:
    return parse_case(FEEDS / relative)


def titles(relative: str) -> list[str | None]:
    return [e.title for e in feed_of(relative).entries]


def test_title_entities_decoded_and_curly_quotes_kept() -> None:
    assert titles("atom/atom10-content-html-entities.atom") == ["Ben & Jerry’s <3 café"]
    assert "“Smart quotes” – it’s €5…" in titles("encoding/windows-1252-curly-quotes.rss")
    assert titles("bozo/unescaped-ampersand.rss")[0] == "AT&T & Verizon"
    assert titles("atom/atom10-title-text-markup.atom") == ["Why <b> is not bold & AT&T &amp; co"]


def test_markup_never_reaches_titles() -> None:
    assert titles("hostile/script-in-title.rss") == ["Breaking news", "Image title", "Bold click"]
    assert titles("hostile/control-chars.rss") == [
        "Control chars in title",
        "Escaped control refs",
        "Nul byte",
        "Tab here",
    ]


def test_relative_links_resolved() -> None:
    feed = feed_of("atom/atom10-xml-base.atom")
    assert feed.link == "https://example.org/blog/"
    assert [e.link for e in feed.entries] == [
        "https://example.org/blog/2026/04/20/post",
        "https://cdn.example.net/mirror/post-2",
        "https://example.org/about",
    ]
    assert "https://example.org/blog/other" in [link.url for link in feed.entries[0].links]
    assert [e.link for e in feed_of("jsonfeed/jsonfeed11-relative-urls.json").entries] == [
        "https://example.org/blog/posts/hello",
        "https://example.org/about",
        "https://cdn.example.net/x",
    ]


TRACKED_HTML = (
    '<a href="https://Example.COM:443/story?id=7&utm_source=rss&utm_medium=feed&fbclid=x#top">'
    "story</a> "
    '<a href="https://example.com/rel?gclid=abc&page=2&utm_campaign=z">two</a> '
    '<a href="https://example.com/story?id=7&mc_cid=1">same story</a>'
)
TRACKED = (
    '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>Tracked</title>'
    "<item><title>Links</title><link>https://example.com/t/1</link>"
    f"<description>{html.escape(TRACKED_HTML)}</description></item></channel></rss>"
).encode()


def test_tracking_params_absent_from_outbound_links() -> None:
    feed = parse(TRACKED, {}, BASE + "tracked.rss")
    urls = [link.url for link in feed.entries[0].links]
    assert urls == ["https://example.com/story?id=7", "https://example.com/rel?page=2"]
    for url in urls:
        assert "utm_" not in url and "clid" not in url and "#" not in url


BARE_HOST_HTML = (
    '<a href="https://www.ricord.ai">site</a> '
    '<a href="https://WWW.ricord.ai:443/">same site</a> '
    '<a href="https://www.ricord.ai?utm_source=rss#top">same again</a> '
    '<a href="http://www.ricord.ai">plain http</a> '
    '<a href=" ">blank</a>'
)
BARE_HOST = (
    '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>Bare</title>'
    "<item><title>Home</title><link>https://www.ricord.ai</link>"
    f"<description>{html.escape(BARE_HOST_HTML)}</description></item></channel></rss>"
).encode()


def test_bare_host_links_are_one_story() -> None:
    """Outbound links are canonical: an empty path is `/`, so `https://host` and
    `https://host/` are one link. The entry's own link stays as written (no added slash);
    a blank href is no link at all, not the entry's own URL."""
    entry = parse(BARE_HOST, {}, BASE + "bare.rss").entries[0]
    assert entry.link == "https://www.ricord.ai"
    assert [link.url for link in entry.links] == [
        "https://www.ricord.ai/",
        "http://www.ricord.ai/",
    ]


def test_xxe_reads_no_file() -> None:
    feed = feed_of("hostile/xxe-file.rss")
    assert "Survivor" in [e.title for e in feed.entries]
    dumped = json.dumps(as_jsonable(feed))
    assert "root:" not in dumped


def test_billion_laughs_does_not_expand() -> None:
    start = time.perf_counter()
    feed = feed_of("hostile/billion-laughs.rss")
    assert time.perf_counter() - start < 2
    assert "lollol" not in json.dumps(as_jsonable(feed))
    survivor = [e for e in feed.entries if e.title == "Survivor"]
    assert [e.link for e in survivor] == ["https://example.com/lol/2"]


def test_jsonfeed_item_with_only_id_is_kept() -> None:
    feed = feed_of("jsonfeed/jsonfeed11-item-id-only.json")
    first, second = feed.entries
    assert first.guid == "only-id-123"
    assert (first.title, first.link, first.summary, first.published) == (None, None, None, None)
    assert (second.title, second.link) == ("Normal item", "https://example.org/normal")


@pytest.mark.parametrize(
    "relative",
    ["notfeed/empty.xml", "notfeed/html-page.html", "notfeed/plain-text.txt",
     "notfeed/not-jsonfeed.json", "notfeed/sitemap.xml"],
)  # fmt: skip
def test_not_a_feed(relative: str) -> None:
    with pytest.raises(ParseError, match="not a feed"):
        feed_of(relative)


def one_item(date: str) -> bytes:
    return (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>D</title>'
        f"<item><title>t</title><link>https://example.com/d</link><pubDate>{date}</pubDate>"
        "</item></channel></rss>"
    ).encode()


@pytest.mark.parametrize(
    ("raw", "published"),
    [
        ("Mon, 20 Apr 2026 14:00:00 +0200", "2026-04-20T12:00:00+00:00"),
        ("Mon, 20 Apr 2026 14:00:00", "2026-04-20T14:00:00+00:00"),  # no zone: UTC
        ("2026-04-20T14:00:00", "2026-04-20T14:00:00+00:00"),
        ("2026-04-20 14:00:00 +0000", "2026-04-20T14:00:00+00:00"),
        ("20260420T140000Z", "2026-04-20T14:00:00+00:00"),  # feedparser drops the time
        ("2026-04-20T14:00:00.999Z", "2026-04-20T14:00:00+00:00"),  # to the second
        ("2026-13-45T99:99:99Z", None),  # feedparser: 2027-01-01
        ("2026-04-31", None),  # feedparser: 2026-05-01
        ("2026-110", None),  # feedparser: 2026-11-01
        ("Mon, 31 Apr 2026 14:00:00", None),
        ("1776693600", None),  # feedparser: 1776-11-01
        ("2026", None),
        ("yesterday", None),
    ],
)
def test_dates_are_read_or_refused(raw: str, published: str | None) -> None:
    entry = parse(one_item(raw), {}, BASE + "dates.rss").entries[0]
    assert as_jsonable(entry.published) == published
    assert entry.updated is None  # an RSS item has no updated date, only pubDate


def test_content_links_resolve_against_their_entry() -> None:
    """A feed served from a mirror: relative content links belong to the entry's site."""
    body = (
        (FEEDS / "rss/rss20-full.rss")
        .read_bytes()
        .replace(b'href="https://example.org/ref"', b'href="/ref"')
    )
    feed = parse(body, {}, "https://mirror.example.net/feeds/full.rss")
    assert [link.url for link in feed.entries[0].links] == ["https://example.com/ref"]
