"""The store on a real SQLite file: dedup, updates in place, FTS, errors, migrations."""

from __future__ import annotations

import sqlite3
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from aggregator.errors import StoreError
from aggregator.models import (
    ErrorInfo,
    FeedSpec,
    FeedState,
    FetchResult,
    OutboundLink,
    Outcome,
    ParsedEntry,
    ParsedFeed,
)
from aggregator.store import Store, migrations

T0 = datetime(2026, 4, 20, 12, 0, tzinfo=UTC)
SPEC = FeedSpec(url="http://127.0.0.1/feed", name="Feed")
OTHER = FeedSpec(url="http://127.0.0.1/other", name="Other")


def entry(guid: str | None = "g1", **changes: object) -> ParsedEntry:
    base = ParsedEntry(
        guid=guid,
        link="https://example.com/story?utm_source=x",
        title="A story",
        published=T0 - timedelta(hours=2),
        updated=None,
        summary="Plain words about quokkas",
        links=(OutboundLink("https://cited.example/a", "cited"),),
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def outcome(
    *entries: ParsedEntry, spec: FeedSpec = SPEC, now: datetime = T0, status: int = 200
) -> Outcome:
    fetch = FetchResult(
        url=spec.url, final_url=spec.url, status=status, headers={"etag": '"e"'},
        body=b"x", fetched_at=now, elapsed_s=0.01,
    )  # fmt: skip
    parsed = ParsedFeed(title="Feed", link="https://example.com/", version="rss20",
                        entries=entries)  # fmt: skip
    return Outcome(FeedState(spec), fetch, parsed, None, now + timedelta(hours=1), "hash")


@pytest.fixture
def store(db_path: Path) -> Store:
    with Store.open(db_path) as store:
        store.sync_feeds([SPEC, OTHER], T0)
        yield store


def count(store: Store, sql: str) -> int:
    return int(store.db.execute(sql).fetchone()[0])


def test_repolling_is_idempotent(store: Store) -> None:
    first = store.apply(outcome(entry("g1"), entry("g2", title="Second")))
    again = store.apply(outcome(entry("g1"), entry("g2", title="Second")))
    assert (first.new_entries, again.new_entries, again.updated_entries) == (2, 0, 0)
    assert count(store, "SELECT count(*) FROM entries") == 2
    assert count(store, "SELECT count(*) FROM links") == 2


def test_a_changed_entry_is_updated_in_place(store: Store) -> None:
    store.apply(outcome(entry(title="Old title")))
    result = store.apply(outcome(entry(title="New title"), now=T0 + timedelta(hours=1)))
    assert (result.new_entries, result.updated_entries) == (0, 1)
    rows = store.rows("SELECT title, first_seen, changed_at FROM entries")
    assert rows == [{"title": "New title", "first_seen": "2026-04-20T12:00:00+00:00",
                     "changed_at": "2026-04-20T13:00:00+00:00"}]  # fmt: skip
    assert [r["title"] for r in store.search("title")] == ["New title"]
    assert store.search("old") == []


def test_duplicate_guids_in_one_document_are_one_entry(store: Store) -> None:
    result = store.apply(outcome(entry("same", title="one"), entry("same", title="two")))
    assert result.new_entries == 1
    assert store.rows("SELECT title FROM entries") == [{"title": "two"}]


def test_entries_without_guid_or_link_are_kept(store: Store) -> None:
    no_guid = entry(None, link="https://example.com/no-guid")
    bare = entry(None, link=None, title="Only a title")
    store.apply(outcome(no_guid, bare))
    store.apply(outcome(no_guid, bare))
    keys = sorted(r["guid_key"][:5] for r in store.rows("SELECT guid_key FROM entries"))
    assert keys == ["hash:", "link:"]


def test_same_story_in_two_feeds_is_kept_per_feed(store: Store) -> None:
    store.apply(outcome(entry("a")))
    store.apply(outcome(entry("b", link="https://EXAMPLE.com/story#top"), spec=OTHER))
    rows = store.rows("SELECT DISTINCT canonical_url FROM entries")
    assert rows == [{"canonical_url": "https://example.com/story"}]
    assert count(store, "SELECT count(*) FROM entries") == 2


def test_unbelievable_dates_fall_back_to_first_seen(store: Store) -> None:
    store.apply(outcome(
        entry("future", published=T0 + timedelta(days=400)),
        entry("ancient", published=datetime(1970, 1, 1, tzinfo=UTC)),
        entry("missing", published=None),
        entry("fine"),
    ))  # fmt: skip
    dated = {r["guid"]: r["dated"] for r in store.rows("SELECT guid, dated FROM entries")}
    assert dated == {
        "future": "2026-04-20T12:00:00+00:00",
        "ancient": "2026-04-20T12:00:00+00:00",
        "missing": "2026-04-20T12:00:00+00:00",
        "fine": "2026-04-20T10:00:00+00:00",
    }


def test_an_error_is_recorded_and_entries_stay(store: Store) -> None:
    store.apply(outcome(entry()))
    error = ErrorInfo(type="FetchError", message="http://127.0.0.1/feed: HTTP 500", status=500)
    failed = Outcome(FeedState(SPEC), None, None, error, T0 + timedelta(hours=2))
    store.apply(failed)
    feed = store.rows("SELECT last_error, error_count, etag FROM feeds WHERE url = ?", [SPEC.url])
    assert feed == [{"last_error": "http://127.0.0.1/feed: HTTP 500", "error_count": 1,
                     "etag": '"e"'}]  # fmt: skip
    assert count(store, "SELECT count(*) FROM entries") == 1
    assert store.feed_states([SPEC])[0].error_count == 1


def test_removed_feed_is_deactivated_not_deleted(store: Store) -> None:
    store.apply(outcome(entry(), spec=OTHER))
    store.sync_feeds([SPEC], T0)
    assert store.rows("SELECT url, active FROM feeds ORDER BY url") == [
        {"url": SPEC.url, "active": 1},
        {"url": OTHER.url, "active": 0},
    ]
    assert count(store, "SELECT count(*) FROM entries") == 1


def test_due_feeds_respect_next_fetch_time(store: Store) -> None:
    store.apply(outcome(entry()))  # next fetch at T0 + 1h
    assert [s.spec for s in store.feed_states([SPEC, OTHER], now=T0)] == [OTHER]
    assert len(store.feed_states([SPEC, OTHER], now=T0 + timedelta(hours=2))) == 2


def test_search_treats_query_words_literally(store: Store) -> None:
    store.apply(outcome(entry(title="NOT a problem: quokkas OR wombats")))
    assert len(store.search('quokkas OR "wombats')) == 1
    assert store.search("platypus") == []


def test_migrations_are_recorded_and_reopening_keeps_data(db_path: Path) -> None:
    with Store.open(db_path) as store:
        store.sync_feeds([SPEC], T0)
        store.apply(outcome(entry()))
    with Store.open(db_path) as store:
        names = [r["name"] for r in store.rows("SELECT name FROM _sqlite_migrations")]
        assert names[0] == "m001_initial" and migrations.pending(store.db) == []
        assert count(store, "SELECT count(*) FROM entries") == 1
        assert store.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_locked_database_is_a_store_error(db_path: Path) -> None:
    with Store.open(db_path) as store:
        store.sync_feeds([SPEC], T0)
    blocker = sqlite3.connect(db_path, isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    try:
        with Store.open(db_path, timeout=0.1) as store:
            with pytest.raises(StoreError, match="locked"):
                store.apply(outcome(entry()))
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()


def test_unopenable_database_is_a_store_error(tmp_path: Path) -> None:
    not_a_db = tmp_path / "garbage.db"
    not_a_db.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError):
        Store.connect(not_a_db)


def test_publish_gap_is_the_median_time_between_entries(store: Store) -> None:
    entries = [entry(f"g{n}", published=T0 - n * timedelta(hours=10)) for n in range(6)]
    store.apply(outcome(*entries))
    assert store.feed_states([SPEC])[0].publish_gap == timedelta(hours=10)
    assert store.feed_states([OTHER])[0].publish_gap is None  # never fetched


def test_changed_outbound_links_are_stored(store: Store) -> None:
    store.apply(outcome(entry(links=(OutboundLink("https://wrong.example/x", "x"),))))
    result = store.apply(outcome(entry(links=(OutboundLink("https://right.example/x", "x"),))))
    assert result.updated_entries == 1
    assert store.rows("SELECT url FROM links") == [{"url": "https://right.example/x"}]


def test_ttl_is_remembered_across_not_modified(store: Store) -> None:
    with_ttl = outcome(entry())
    parsed = replace(with_ttl.parsed, ttl=timedelta(hours=4))  # type: ignore[type-var]
    store.apply(replace(with_ttl, parsed=parsed))
    assert store.feed_states([SPEC])[0].ttl == timedelta(hours=4)
    not_modified = replace(
        with_ttl, parsed=None, fetch=replace(with_ttl.fetch, status=304, body=None)
    )  # type: ignore[type-var]
    store.apply(not_modified)
    assert store.feed_states([SPEC])[0].ttl == timedelta(hours=4)


def test_the_documents_window_is_remembered(store: Store) -> None:
    entries = [entry(f"w{n}", published=T0 - n * timedelta(minutes=10)) for n in range(4)]
    store.apply(outcome(*entries))
    assert store.feed_states([SPEC])[0].window == timedelta(minutes=30)


def test_a_gone_feed_is_polled_again_once_removed_and_re_added(store: Store) -> None:
    gone = ErrorInfo(type="FetchError", message="HTTP 410 Gone", status=410)
    store.apply(Outcome(FeedState(SPEC), None, None, gone, T0 + timedelta(hours=1)))
    assert store.feed_states([SPEC, OTHER], now=T0 + timedelta(days=9)) == [
        s for s in store.feed_states([OTHER], now=T0 + timedelta(days=9))
    ]
    store.sync_feeds([SPEC, OTHER], T0)  # still listed: still gone
    assert store.feed_states([SPEC])[0].gone
    store.sync_feeds([OTHER], T0)  # removed from feeds.yaml ...
    store.sync_feeds([SPEC, OTHER], T0)  # ... and added back
    assert not store.feed_states([SPEC])[0].gone
