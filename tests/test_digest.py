"""Digest selection and rendering: exact reference lines that read back losslessly."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from aggregator.digest import (
    RENDERERS,
    digest_path,
    export_digest,
    parse_refs,
    render,
    render_refs,
    select_day,
)
from aggregator.models import DigestEntry, FeedSpec
from aggregator.store import Store
from tests.test_store import entry, outcome

UTC_ZONE = ZoneInfo("UTC")
DAY = date(2026, 4, 20)
A = FeedSpec(url="http://127.0.0.1/a", name="Site A")
B = FeedSpec(url="http://127.0.0.1/b", name="Aggregator B")


def story(guid: str, title: str, url: str, published: datetime) -> object:
    return entry(guid, title=title, link=url, published=published, links=())


@pytest.fixture
def store(db_path: Path) -> Store:
    with Store.open(db_path) as store:
        store.sync_feeds([A, B], datetime(2026, 4, 22, tzinfo=UTC))
        yield store


def at(hour: int, minute: int = 0, day: int = 20) -> datetime:
    return datetime(2026, 4, day, hour, minute, tzinfo=UTC)


FETCHED = datetime(2026, 4, 22, tzinfo=UTC)


def test_lines_follow_feed_order_then_time(store: Store) -> None:
    store.apply(outcome(story("b1", "B early", "https://b.example/1", at(1)), spec=B, now=FETCHED))
    store.apply(outcome(
        story("a2", "A late", "https://a.example/2", at(20)),
        story("a1", "A early", "https://a.example/1", at(9)),
        spec=A, now=FETCHED,
    ))  # fmt: skip
    text = render_refs(select_day(store, DAY, UTC_ZONE), DAY)
    assert text == (
        "- (A early, 2026-04-20)[https://a.example/1]\n"
        "- (A late, 2026-04-20)[https://a.example/2]\n"
        "- (B early, 2026-04-20)[https://b.example/1]\n"
    )


def test_day_is_taken_in_the_configured_time_zone(store: Store) -> None:
    # 23:30 UTC on the 19th is already the 20th in Berlin (UTC+2 in April).
    store.apply(outcome(story("x", "Late night", "https://a.example/x", at(23, 30, day=19)),
                        spec=A, now=FETCHED))  # fmt: skip
    berlin = ZoneInfo("Europe/Berlin")
    assert [e.title for e in select_day(store, DAY, berlin)] == ["Late night"]
    assert select_day(store, DAY, UTC_ZONE) == ()
    assert [e.day for e in select_day(store, date(2026, 4, 19), UTC_ZONE)] == [date(2026, 4, 19)]


def test_a_story_seen_in_two_feeds_is_titled_by_its_publisher(store: Store) -> None:
    # Aggregator B links to Site A's story first and with tracking parameters.
    store.apply(outcome(
        story("b", "Site A story (a.example)", "https://a.example/s?utm_source=b", at(8)),
        spec=B, now=FETCHED,
    ))  # fmt: skip
    store.apply(outcome(
        story("a", "The real title", "https://www.a.example/s", at(7)), spec=A, now=FETCHED
    ))  # fmt: skip
    store.db.execute("UPDATE feeds SET site_url = 'https://a.example/' WHERE url = ?", [A.url])
    entries = select_day(store, DAY, UTC_ZONE)
    # different host spelling (www.) is a different canonical URL: two lines
    assert len(entries) == 2
    store.apply(outcome(
        story("a", "The real title", "https://a.example/s", at(7)), spec=A, now=FETCHED
    ))  # fmt: skip
    entries = select_day(store, DAY, UTC_ZONE)
    assert [(e.title, e.url, e.feed_name, e.also_in) for e in entries] == [
        ("The real title", "https://a.example/s", "Site A", ("Aggregator B",))
    ]


def test_a_story_appears_on_one_day_only(store: Store) -> None:
    store.apply(outcome(story("a", "Published", "https://a.example/p", at(22, day=19)),
                        spec=A, now=FETCHED))  # fmt: skip
    store.apply(outcome(story("b", "Discussed", "https://a.example/p", at(9)),
                        spec=B, now=FETCHED))  # fmt: skip
    store.db.execute("UPDATE feeds SET site_url = 'https://a.example/' WHERE url = ?", [A.url])
    assert select_day(store, DAY, UTC_ZONE) == ()
    assert [e.title for e in select_day(store, date(2026, 4, 19), UTC_ZONE)] == ["Published"]


def test_entries_without_a_link_are_left_out(store: Store) -> None:
    store.apply(outcome(entry("n", link=None, published=at(9)), spec=A, now=FETCHED))
    assert select_day(store, DAY, UTC_ZONE) == ()


TRICKY = (
    "Costs $5B, rises (again) to $100B, [sic]",
    "Ends with a date, 2026-04-19",
    "Parens (a)[b] and )[ in the middle",
    "Ünïcödé “quotes” – dashes",
)


def digest_entry(title: str, n: int) -> DigestEntry:
    return DigestEntry(
        entry_id=n, title=title, url=f"https://a.example/{n}?q=1", day=DAY, published=None,
        feed_name="Site A", feed_url=A.url,
    )  # fmt: skip


def test_refs_read_back_losslessly() -> None:
    entries = [digest_entry(t, n) for n, t in enumerate(TRICKY)]
    back = parse_refs(render_refs(entries, DAY))
    assert [(r.title, r.day, r.url) for r in back] == [(e.title, e.day, e.url) for e in entries]


def test_parse_refs_skips_prose_and_keeps_line_numbers() -> None:
    text = "Intro with a (paren, 2026-04-20).\n\n- (Real, 2026-04-20)[https://x.example/]\n"
    assert [(r.title, r.line_number) for r in parse_refs(text)] == [("Real", 3)]


def test_every_format_carries_the_same_entries() -> None:
    entries = [digest_entry(t, n) for n, t in enumerate(TRICKY)]
    markdown = render(entries, DAY, "markdown")
    data = json.loads(render(entries, DAY, "json"))
    rows = list(csv.DictReader(io.StringIO(render(entries, DAY, "csv"))))
    page = render(entries, DAY, "html")
    assert [e["title"] for e in data["entries"]] == list(TRICKY)
    assert [r["title"] for r in rows] == list(TRICKY)
    assert all(f"https://a.example/{n}?q=1" in markdown for n in range(len(TRICKY)))
    assert page.count("<li>") == len(TRICKY) and "&quot;" not in page
    assert "“quotes”" in page and "$5B" in markdown


def test_html_escapes_what_the_title_holds() -> None:
    page = render([digest_entry("<script>alert(1)</script> & co", 1)], DAY, "html")
    assert "<script>" not in page and "&lt;script&gt;" in page


def test_export_writes_each_format_atomically(store: Store, tmp_path: Path) -> None:
    store.apply(outcome(story("a", "Story", "https://a.example/s", at(9)), spec=A, now=FETCHED))
    paths = export_digest(store, DAY, UTC_ZONE, tmp_path / "out", list(RENDERERS))
    assert [p.name for p in paths] == [
        "2026-04-20.refs.md", "2026-04-20.md", "2026-04-20.json", "2026-04-20.csv",
        "2026-04-20.html",
    ]  # fmt: skip
    assert paths[0].read_text() == "- (Story, 2026-04-20)[https://a.example/s]\n"
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(p.name for p in paths)
    assert digest_path(tmp_path, DAY, "refs") == tmp_path / "2026-04-20.refs.md"


def test_first_seen_decides_the_day_of_undated_entries(store: Store) -> None:
    seen = at(6, day=21)
    store.apply(outcome(replace(entry("u", link="https://a.example/u"), published=None),
                        spec=A, now=seen))  # fmt: skip
    assert [e.day for e in select_day(store, date(2026, 4, 21), UTC_ZONE)] == [seen.date()]
    assert select_day(store, DAY - timedelta(days=0), UTC_ZONE) == ()


def test_csv_cells_cannot_become_spreadsheet_formulas() -> None:
    entries = [digest_entry('=HYPERLINK("https://evil.example","click")', 1),
               digest_entry("@SUM(A1)", 2), digest_entry("Plain", 3)]  # fmt: skip
    rows = list(csv.DictReader(io.StringIO(render(entries, DAY, "csv"))))
    assert [r["title"] for r in rows] == [
        '\'=HYPERLINK("https://evil.example","click")',
        "'@SUM(A1)",
        "Plain",
    ]
    assert rows[0]["url"] == "https://a.example/1?q=1"


def test_digest_files_are_readable_like_any_file(store: Store, tmp_path: Path) -> None:
    import stat

    from aggregator.digest import UMASK

    store.apply(outcome(story("a", "Story", "https://a.example/s", at(9)), spec=A, now=FETCHED))
    [path] = export_digest(store, DAY, UTC_ZONE, tmp_path / "out", ["refs"])
    expected = 0o666 & ~UMASK  # what any other file written by this process gets
    assert stat.S_IMODE(path.stat().st_mode) == expected != 0o600
