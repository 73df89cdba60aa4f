"""The only writer: schema, migrations, upserts, dedup and queries, on one SQLite file."""

from __future__ import annotations

import functools
import hashlib
import json
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

from sqlite_utils import Database, Migrations
from sqlite_utils.db import Table

from aggregator.errors import StoreError
from aggregator.models import (
    ApplyResult,
    Citation,
    FeedSpec,
    FeedState,
    Outcome,
    ParsedEntry,
)
from aggregator.urls import canonical, host_of, strip_tracking
from aggregator.views import VIEWS

P = ParamSpec("P")
R = TypeVar("R")

FTS = {"entries": ["title", "summary"]}
# A date this far past the fetch is a feed's clock or template gone wrong, not news.
FUTURE_SLACK = timedelta(days=1)
OLDEST_BELIEVABLE = datetime(1990, 1, 1, tzinfo=UTC)
CHUNK = 500

migrations = Migrations("aggregator")


def iso(moment: datetime) -> str:
    """Aware datetime -> ISO 8601 text in UTC, which sorts and facets as text."""
    return moment.astimezone(UTC).isoformat(timespec="seconds")


def maybe_iso(moment: datetime | None) -> str | None:
    return None if moment is None else iso(moment)


def from_iso(text: str | None) -> datetime | None:
    return None if not text else datetime.fromisoformat(text)


def _table(db: Database, name: str) -> Table:
    table = db[name]
    assert isinstance(table, Table)
    return table


def _insert(db: Database, table: str, values: dict[str, Any]) -> int:
    """A plain INSERT: sqlite-utils' Table.insert inspects the schema on every call, which
    dominates the cost of storing a poll. Table and column names are ours, never a feed's."""
    columns = ", ".join(f"[{c}]" for c in values)
    marks = ", ".join("?" * len(values))
    sql = f"INSERT INTO [{table}] ({columns}) VALUES ({marks})"
    cursor = db.execute(sql, list(values.values()))
    return int(cursor.lastrowid or 0)


def _insert_many(db: Database, table: str, rows: Iterable[dict[str, Any]]) -> None:
    """executemany for rows that share their keys."""
    rows = list(rows)
    if not rows:
        return
    columns = ", ".join(f"[{c}]" for c in rows[0])
    marks = ", ".join("?" * len(rows[0]))
    db.conn.executemany(
        f"INSERT INTO [{table}] ({columns}) VALUES ({marks})", [list(r.values()) for r in rows]
    )


def _update(db: Database, table: str, row_id: int, values: dict[str, Any]) -> None:
    sets = ", ".join(f"[{c}] = ?" for c in values)
    db.execute(f"UPDATE [{table}] SET {sets} WHERE id = ?", [*values.values(), row_id])


@migrations()
def m001_initial(db: Database) -> None:
    _table(db, "feeds").create(
        {
            "id": int, "url": str, "name": str, "tags": str, "position": int, "active": int,
            "interval_s": float, "current_url": str, "site_url": str, "title": str,
            "version": str, "etag": str, "last_modified": str, "body_hash": str,
            "added_at": str, "last_fetch_at": str, "last_status": int,
            "last_success_at": str, "last_error": str, "last_error_type": str,
            "error_count": int, "next_fetch_at": str, "gone": int,
        },
        pk="id",
        not_null=["url", "name"],
        defaults={"active": 1, "error_count": 0, "gone": 0, "tags": "[]"},
    )  # fmt: skip
    _table(db, "feeds").create_index(["url"], unique=True)
    _table(db, "entries").create(
        {
            "id": int, "feed_id": int, "guid_key": str, "guid": str, "url": str,
            "canonical_url": str, "title": str, "summary": str, "author": str, "tags": str,
            "published": str, "updated": str, "first_seen": str, "changed_at": str,
            "dated": str,
        },
        pk="id",
        foreign_keys=[("feed_id", "feeds", "id")],
        not_null=["feed_id", "guid_key", "first_seen", "dated"],
        defaults={"tags": "[]"},
    )  # fmt: skip
    entries = _table(db, "entries")
    entries.create_index(["feed_id", "guid_key"], unique=True)
    entries.create_index(["canonical_url"])
    entries.create_index(["dated"])
    _table(db, "links").create(
        {"id": int, "entry_id": int, "url": str, "text": str},
        pk="id",
        foreign_keys=[("entry_id", "entries", "id")],
        not_null=["entry_id", "url"],
    )
    _table(db, "links").create_index(["entry_id", "url"], unique=True)
    _table(db, "links").create_index(["url"])
    _table(db, "fetches").create(
        {
            "id": int, "feed_id": int, "fetched_at": str, "duration_s": float,
            "status": int, "bytes": int, "outcome": str, "new_entries": int,
            "updated_entries": int, "error_type": str, "error": str,
        },
        pk="id",
        foreign_keys=[("feed_id", "feeds", "id")],
    )  # fmt: skip
    _table(db, "fetches").create_index(["feed_id", "fetched_at"])
    _table(db, "fetches").create_index(["fetched_at"])


@migrations()
def m002_daemon(db: Database) -> None:
    """One row describing the running (or last) daemon: the heartbeat `status` reads."""
    _table(db, "daemon").create(
        {
            "id": int, "pid": int, "host": str, "config": str, "started_at": str,
            "beat_at": str, "stopped_at": str, "last_round_at": str, "last_round": str,
            "last_digest_day": str, "last_maintenance_at": str,
        },
        pk="id",
    )  # fmt: skip
    # The polling policy reads each due feed's latest entries.
    _table(db, "entries").create_index(["feed_id", "dated"])


# ON DELETE clauses, which sqlite-utils' create() cannot write, let entry retention (`prune`)
# delete entries that a digest or an article refers to.
M003_REFERENCES = (
    """CREATE TABLE [digests] (
        [id] INTEGER PRIMARY KEY, [day] TEXT NOT NULL, [format] TEXT NOT NULL,
        [timezone] TEXT NOT NULL, [generated_at] TEXT NOT NULL, [path] TEXT)""",
    "CREATE INDEX [idx_digests_day] ON [digests] ([day], [timezone], [generated_at])",
    """CREATE TABLE [digest_entries] (
        [digest_id] INTEGER NOT NULL REFERENCES [digests]([id]) ON DELETE CASCADE,
        [entry_id] INTEGER NOT NULL REFERENCES [entries]([id]) ON DELETE CASCADE,
        [position] INTEGER NOT NULL, PRIMARY KEY ([digest_id], [position]))""",
    "CREATE INDEX [idx_digest_entries_entry_id] ON [digest_entries] ([entry_id])",
    """CREATE TABLE [articles] (
        [id] INTEGER PRIMARY KEY, [name] TEXT NOT NULL UNIQUE, [path] TEXT,
        [imported_at] TEXT NOT NULL)""",
    """CREATE TABLE [citations] (
        [id] INTEGER PRIMARY KEY,
        [article_id] INTEGER NOT NULL REFERENCES [articles]([id]) ON DELETE CASCADE,
        [line] INTEGER NOT NULL, [title] TEXT, [day] TEXT, [url] TEXT NOT NULL,
        [canonical_url] TEXT,
        [entry_id] INTEGER REFERENCES [entries]([id]) ON DELETE SET NULL,
        [status] TEXT NOT NULL)""",
    "CREATE INDEX [idx_citations_article_id] ON [citations] ([article_id], [line])",
    "CREATE INDEX [idx_citations_canonical_url] ON [citations] ([canonical_url])",
    "CREATE INDEX [idx_citations_entry_id] ON [citations] ([entry_id])",
)


@migrations()
def m003_references(db: Database) -> None:
    """Digest history (which entries each exported digest held, in order) and the
    citations of imported articles (issue 4)."""
    for statement in M003_REFERENCES:
        db.execute(statement)


@migrations()
def m004_ttl_and_links_hash(db: Database) -> None:
    """feeds.ttl_s and window_s keep a feed's RSS <ttl> and the time its document spans
    across 304s; entries.links_hash notices an entry whose outbound links changed while its
    text did not."""
    _table(db, "feeds").add_column("ttl_s", float)
    _table(db, "feeds").add_column("window_s", float)
    _table(db, "entries").add_column("links_hash", str)


def ensure_shape(db: Database) -> None:
    """Idempotent parts of the schema: full-text search, and views (recreated, so a new
    version's definition replaces the old one)."""
    for name, columns in FTS.items():
        if not _table(db, f"{name}_fts").exists():
            _table(db, name).enable_fts(columns, create_triggers=True, tokenize="porter")
    existing = dict(db.execute("SELECT name, sql FROM sqlite_master WHERE type = 'view'"))
    for name, sql in VIEWS.items():
        create = f"CREATE VIEW [{name}] AS {sql.strip()}"
        if existing.get(name) != create:
            with db.atomic():
                db.execute(f"DROP VIEW IF EXISTS [{name}]")
                db.execute(create)


def wrap_errors(method: Callable[P, R]) -> Callable[P, R]:
    """Turn what the user can fix (locked, full, read-only, corrupt) into StoreError."""

    @functools.wraps(method)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return method(*args, **kwargs)
        except sqlite3.OperationalError as e:
            raise StoreError(f"database error in {method.__name__}") from e
        except sqlite3.DatabaseError as e:
            if isinstance(e, sqlite3.ProgrammingError | sqlite3.IntegrityError):
                raise
            raise StoreError(f"database error in {method.__name__}") from e

    return wrapper


def guid_key(entry: ParsedEntry) -> str:
    """What identifies an entry within its feed: its guid, else its link, else its content."""
    if entry.guid:
        return entry.guid
    if entry.link:
        return "link:" + canonical(entry.link)
    basis = "\x1f".join(
        [entry.title or "", maybe_iso(entry.published) or "", (entry.summary or "")[:2000]]
    )
    return "hash:" + hashlib.sha256(basis.encode()).hexdigest()


def dated(published: datetime | None, first_seen: datetime) -> datetime:
    """The moment that puts an entry on a digest day: its publication date when believable,
    else the moment it was first seen."""
    if published is None or published < OLDEST_BELIEVABLE:
        return first_seen
    if published > first_seen + FUTURE_SLACK:
        return first_seen
    return published


def _links_hash(entry: ParsedEntry) -> str | None:
    if not entry.links:
        return None
    text = "\x1f".join(f"{link.url}\x1e{link.text or ''}" for link in entry.links)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _entry_values(entry: ParsedEntry) -> dict[str, Any]:
    return {
        "guid": entry.guid,
        "url": strip_tracking(entry.link) if entry.link else None,
        "canonical_url": canonical(entry.link) if entry.link else None,
        "title": entry.title,
        "summary": entry.summary,
        "author": entry.author,
        "tags": json.dumps(list(entry.tags), ensure_ascii=False),
        "published": maybe_iso(entry.published),
        "updated": maybe_iso(entry.updated),
        "links_hash": _links_hash(entry),
    }


class Store:
    """One SQLite database in WAL mode. Open with `Store.open(path)`."""

    def __init__(self, db: Database) -> None:
        self.db = db

    @classmethod
    @contextmanager
    def open(cls, path: str | Path, timeout: float = 10.0) -> Iterator[Store]:
        store = cls.connect(path, timeout)
        try:
            yield store
        finally:
            store.close()

    @classmethod
    def connect(cls, path: str | Path, timeout: float = 10.0) -> Store:
        path = Path(path)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(path, timeout=timeout, check_same_thread=False)
        except (OSError, sqlite3.Error) as e:
            raise StoreError(f"cannot open database {path}") from e
        store = cls(Database(conn))
        try:
            store._prepare()
        except BaseException:
            conn.close()
            raise
        return store

    @wrap_errors
    def _prepare(self) -> None:
        self.db.execute("PRAGMA foreign_keys = ON")
        if self.db.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
            self.db.enable_wal()
        self.db.execute("PRAGMA synchronous = NORMAL")
        migrations.apply(self.db)
        ensure_shape(self.db)

    def close(self) -> None:
        self.db.close()

    @contextmanager
    def writing(self) -> Iterator[None]:
        """A write transaction that takes the write lock up front (BEGIN IMMEDIATE): with a
        plain BEGIN, a reader that later writes while another process commits fails at once
        with "database is locked" instead of waiting for the busy timeout."""
        conn = self.db.conn
        if conn.in_transaction:
            with self.db.atomic():  # a savepoint inside the caller's transaction
                yield
            return
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            conn.rollback()
            raise
        conn.execute("COMMIT")

    def rows(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> list[dict[str, Any]]:
        cursor = self.db.execute(sql, params)
        columns = [c[0] for c in cursor.description]
        return [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]

    # feeds ---------------------------------------------------------------------------

    @wrap_errors
    def sync_feeds(self, specs: Sequence[FeedSpec], now: datetime) -> None:
        """Make the feeds table match feeds.yaml; a feed no longer listed is deactivated,
        never deleted, so its entries stay."""
        with self.writing():
            listed = [spec.url for spec in specs]
            for position, spec in enumerate(specs):
                self.db.execute(
                    """
                    INSERT INTO feeds (url, name, tags, position, active, interval_s, added_at)
                    VALUES (?, ?, ?, ?, 1, ?, ?)
                    ON CONFLICT(url) DO UPDATE SET name = excluded.name, tags = excluded.tags,
                        position = excluded.position, active = 1,
                        interval_s = excluded.interval_s,
                        gone = CASE WHEN feeds.active THEN feeds.gone ELSE 0 END
                    """,
                    [
                        spec.url,
                        spec.name,
                        json.dumps(list(spec.tags), ensure_ascii=False),
                        position,
                        spec.interval.total_seconds(),
                        iso(now),
                    ],
                )
            placeholders = ",".join("?" * len(listed))
            self.db.execute(
                f"UPDATE feeds SET active = 0 WHERE url NOT IN ({placeholders})", listed
            )

    def _publish_gap(self, feed_id: int) -> timedelta | None:
        """Median time between the feed's last 20 dated entries (index on feed_id, dated)."""
        moments = [
            datetime.fromisoformat(row[0])
            for row in self.db.execute(
                "SELECT dated FROM entries WHERE feed_id = ? ORDER BY dated DESC LIMIT 20",
                [feed_id],
            )
        ]
        deltas = sorted(a - b for a, b in zip(moments, moments[1:], strict=False))
        return deltas[len(deltas) // 2] if len(deltas) >= 4 else None

    @wrap_errors
    def feed_states(
        self, specs: Sequence[FeedSpec], now: datetime | None = None
    ) -> list[FeedState]:
        """State for each configured feed, in feeds.yaml order; with `now`, only feeds due
        then (never gone ones)."""
        rows = {r["url"]: r for r in self.rows("SELECT * FROM feeds")}
        states = []
        for spec in specs:
            row = rows.get(spec.url)
            if row is None:
                states.append(FeedState(spec=spec))
                continue
            next_fetch_at = from_iso(row["next_fetch_at"])
            if now is not None and (
                row["gone"] or (next_fetch_at is not None and next_fetch_at > now)
            ):
                continue
            state = FeedState(
                spec=spec,
                url=row["current_url"],
                etag=row["etag"],
                last_modified=row["last_modified"],
                body_hash=row["body_hash"],
                error_count=row["error_count"] or 0,
                next_fetch_at=next_fetch_at,
                last_fetch_at=from_iso(row["last_fetch_at"]),
                gone=bool(row["gone"]),
                ttl=timedelta(seconds=row["ttl_s"]) if row["ttl_s"] else None,
                window=timedelta(seconds=row["window_s"]) if row["window_s"] else None,
                publish_gap=self._publish_gap(row["id"]),
            )
            states.append(state)
        return states

    def _feed_id(self, url: str) -> int:
        row = self.db.execute("SELECT id FROM feeds WHERE url = ?", [url]).fetchone()
        if row is None:
            raise StoreError(f"{url}: feed is not in the database; sync feeds first")
        return int(row[0])

    # applying outcomes ---------------------------------------------------------------

    @wrap_errors
    def apply(self, outcome: Outcome) -> ApplyResult:
        """Record one poll: feed state, entries, the fetch log row. All or nothing."""
        spec = outcome.spec
        fetch = outcome.fetch
        now = fetch.fetched_at if fetch else datetime.now(UTC)
        with self.writing():
            feed_id = self._feed_id(spec.url)
            new = updated = 0
            if outcome.parsed is not None:
                new, updated = self._upsert_entries(feed_id, outcome.parsed.entries, now)
            self._update_feed(feed_id, outcome, now)
            if outcome.error:
                kind = "error"
            elif fetch is not None and fetch.not_modified:
                kind = "not_modified"
            elif outcome.parsed is None:
                kind = "unchanged"
            else:
                kind = "ok"
            _insert(
                self.db,
                "fetches",
                {
                    "feed_id": feed_id,
                    "fetched_at": iso(now),
                    "duration_s": round(fetch.elapsed_s, 3) if fetch else None,
                    "status": fetch.status if fetch else None,
                    "bytes": len(fetch.body) if fetch and fetch.body is not None else None,
                    "outcome": kind,
                    "new_entries": new,
                    "updated_entries": updated,
                    "error_type": outcome.error.type if outcome.error else None,
                    "error": outcome.error.message if outcome.error else None,
                },
            )
        return ApplyResult(spec.url, new, updated, outcome.error)

    def _update_feed(self, feed_id: int, outcome: Outcome, now: datetime) -> None:
        fetch, parsed, error = outcome.fetch, outcome.parsed, outcome.error
        values: dict[str, Any] = {
            "last_fetch_at": iso(now),
            "last_status": fetch.status if fetch else None,
            "next_fetch_at": iso(outcome.next_fetch_at),
        }
        if error is not None:
            values |= {
                "last_error": error.message,
                "last_error_type": error.type,
                "error_count": outcome.state.error_count + 1,
                "gone": int(error.status == 410),
            }
        else:
            values |= {
                "last_error": None,
                "last_error_type": None,
                "error_count": 0,
                "gone": 0,
                "last_success_at": iso(now),
                "body_hash": outcome.body_hash,
            }
            if fetch is not None and not fetch.not_modified:
                values["etag"] = fetch.headers.get("etag")
                values["last_modified"] = fetch.headers.get("last-modified")
            if fetch is not None and fetch.permanent_url:
                values["current_url"] = fetch.permanent_url
        if parsed is not None:
            values |= {
                "site_url": parsed.link,
                "title": parsed.title,
                "version": parsed.version,
                "ttl_s": parsed.ttl.total_seconds() if parsed.ttl else None,
                "window_s": parsed.window.total_seconds() if parsed.window else None,
            }
        _update(self.db, "feeds", feed_id, values)

    def _existing(self, feed_id: int, keys: list[str]) -> dict[str, dict[str, Any]]:
        found: dict[str, dict[str, Any]] = {}
        for start in range(0, len(keys), CHUNK):
            chunk = keys[start : start + CHUNK]
            marks = ",".join("?" * len(chunk))
            for row in self.rows(
                f"SELECT * FROM entries WHERE feed_id = ? AND guid_key IN ({marks})",
                [feed_id, *chunk],
            ):
                found[row["guid_key"]] = row
        return found

    def _upsert_entries(
        self, feed_id: int, entries: Iterable[ParsedEntry], now: datetime
    ) -> tuple[int, int]:
        """Insert new entries; update changed ones in place. Returns (new, updated)."""
        batch = {guid_key(e): e for e in entries}  # the last of duplicate guids wins
        existing = self._existing(feed_id, list(batch))
        new = updated = 0
        for key, entry in batch.items():
            values = _entry_values(entry)
            row = existing.get(key)
            if row is None:
                values |= {
                    "feed_id": feed_id,
                    "guid_key": key,
                    "first_seen": iso(now),
                    "changed_at": iso(now),
                    "dated": iso(dated(entry.published, now)),
                }
                entry_id = _insert(self.db, "entries", values)
                new += 1
            else:
                if all(row[k] == v for k, v in values.items()):
                    continue
                first_seen = datetime.fromisoformat(row["first_seen"])
                values |= {
                    "changed_at": iso(now),
                    "dated": iso(dated(entry.published, first_seen)),
                }
                entry_id = row["id"]
                _update(self.db, "entries", entry_id, values)
                self.db.execute("DELETE FROM links WHERE entry_id = ?", [entry_id])
                updated += 1
            if entry.links:
                _insert_many(
                    self.db,
                    "links",
                    ({"entry_id": entry_id, "url": link.url, "text": link.text}
                     for link in entry.links),
                )  # fmt: skip
        return new, updated

    # daemon --------------------------------------------------------------------------

    @wrap_errors
    def daemon_started(self, pid: int, host: str, config: str, now: datetime) -> None:
        with self.writing():
            self.db.execute(
                """
                INSERT INTO daemon (id, pid, host, config, started_at, beat_at, stopped_at)
                VALUES (1, ?, ?, ?, ?, ?, NULL)
                ON CONFLICT(id) DO UPDATE SET pid = excluded.pid, host = excluded.host,
                    config = excluded.config, started_at = excluded.started_at,
                    beat_at = excluded.beat_at, stopped_at = NULL
                """,
                [pid, host, config, iso(now), iso(now)],
            )

    @wrap_errors
    def daemon_update(self, **values: Any) -> None:
        """Heartbeat and progress: beat_at, last_round_at, last_round, stopped_at, ..."""
        with self.writing():
            _update(self.db, "daemon", 1, values)

    @wrap_errors
    def daemon_row(self) -> dict[str, Any] | None:
        rows = self.rows("SELECT * FROM daemon WHERE id = 1")
        return rows[0] if rows else None

    @wrap_errors
    def next_due(self) -> datetime | None:
        """The earliest next fetch among active feeds that are not gone."""
        row = self.db.execute(
            "SELECT min(coalesce(next_fetch_at, '')) FROM feeds WHERE active AND NOT gone"
        ).fetchone()
        if row is None or row[0] is None:
            return None
        return from_iso(row[0]) or datetime.min.replace(tzinfo=UTC)

    @wrap_errors
    def first_fetch_day(self) -> str | None:
        row = self.db.execute("SELECT min(fetched_at) FROM fetches").fetchone()
        return row[0] if row and row[0] else None

    @wrap_errors
    def prune(self, now: datetime, fetch_log_days: int, entry_days: int | None) -> dict[str, int]:
        """Retention: old fetch log rows, and (only when configured) old entries."""
        removed = {"fetches": 0, "entries": 0}
        with self.writing():
            cutoff = iso(now - timedelta(days=fetch_log_days))
            removed["fetches"] = self.db.execute(
                "DELETE FROM fetches WHERE fetched_at < ?", [cutoff]
            ).rowcount
            if entry_days is not None:
                old = iso(now - timedelta(days=entry_days))
                self.db.execute(
                    "DELETE FROM links WHERE entry_id IN (SELECT id FROM entries WHERE dated < ?)",
                    [old],
                )
                removed["entries"] = self.db.execute(
                    "DELETE FROM entries WHERE dated < ?", [old]
                ).rowcount
        return removed

    @wrap_errors
    def optimize(self) -> None:
        """PRAGMA optimize and FTS index merge; cheap enough to run daily."""
        for name in FTS:
            self.db.execute(f"INSERT INTO [{name}_fts]([{name}_fts]) VALUES ('optimize')")
        self.db.execute("PRAGMA optimize")
        self.db.execute("PRAGMA wal_checkpoint(PASSIVE)")

    # queries -------------------------------------------------------------------------

    @wrap_errors
    def feed_health(self) -> list[dict[str, Any]]:
        return self.rows(
            """
            SELECT feeds.name, feeds.url, feeds.current_url, feeds.active, feeds.gone,
                   feeds.last_fetch_at, feeds.last_status, feeds.last_success_at,
                   feeds.last_error, feeds.error_count, feeds.next_fetch_at,
                   (SELECT count(*) FROM entries WHERE entries.feed_id = feeds.id) AS entries
            FROM feeds ORDER BY feeds.active DESC, feeds.position, feeds.name
            """
        )

    @wrap_errors
    def search(self, query: str, limit: int = 20) -> list[dict[str, Any]]:
        """Full-text search on titles and summaries; words are matched literally."""
        quoted = self.db.quote_fts(query)
        if not quoted.strip('" '):
            return []
        return self.rows(
            """
            SELECT entries.id, entries.title, entries.url, entries.published, entries.dated,
                   feeds.name AS feed,
                   snippet(entries_fts, 1, '[', ']', '…', 12) AS snippet
            FROM entries_fts
            JOIN entries ON entries.id = entries_fts.rowid
            JOIN feeds ON feeds.id = entries.feed_id
            WHERE entries_fts MATCH ?
            ORDER BY rank LIMIT ?
            """,
            [quoted, limit],
        )

    @wrap_errors
    def stats(self) -> dict[str, Any]:
        one = self.rows(
            """
            SELECT (SELECT count(*) FROM feeds WHERE active) AS feeds,
                   (SELECT count(*) FROM feeds WHERE active AND error_count > 0) AS failing,
                   (SELECT count(*) FROM entries) AS entries,
                   (SELECT count(DISTINCT canonical_url) FROM entries) AS stories,
                   (SELECT count(*) FROM links) AS links,
                   (SELECT count(*) FROM fetches) AS fetches,
                   (SELECT min(dated) FROM entries) AS oldest,
                   (SELECT max(dated) FROM entries) AS newest
            """
        )[0]
        return one

    @wrap_errors
    def entries_between(self, start: datetime, end: datetime) -> list[dict[str, Any]]:
        """Entries dated in [start, end), with their feed, for the digest."""
        return self.rows(
            f"""
            SELECT {ENTRY_COLUMNS}
            FROM entries JOIN feeds ON feeds.id = entries.feed_id
            WHERE entries.dated >= ? AND entries.dated < ?
            """,
            [iso(start), iso(end)],
        )

    @wrap_errors
    def entries_for_urls(self, canonical_urls: Iterable[str]) -> list[dict[str, Any]]:
        """Every sighting of these stories, in any feed, on any day."""
        urls = list(dict.fromkeys(canonical_urls))
        found: list[dict[str, Any]] = []
        for start in range(0, len(urls), CHUNK):
            chunk = urls[start : start + CHUNK]
            marks = ",".join("?" * len(chunk))
            found += self.rows(
                f"""
                SELECT {ENTRY_COLUMNS}
                FROM entries JOIN feeds ON feeds.id = entries.feed_id
                WHERE entries.canonical_url IN ({marks})
                """,
                chunk,
            )
        return found

    # references ----------------------------------------------------------------------

    def _citing_sql(self, links_where: str, entries_where: str) -> str:
        self.db.register_function(host_of, deterministic=True, name="aggregator_host")
        return CITING.format(links_where=links_where, entries_where=entries_where)

    @wrap_errors
    def most_cited(
        self, since: datetime | None, min_feeds: int, limit: int
    ) -> list[dict[str, Any]]:
        """The URLs cited by the most distinct feeds in entries dated since `since`: one row
        per (URL, citing entry), most-cited URL first, each URL's citers oldest first."""
        where = "entries.dated >= :since" if since is not None else "1"
        citing = self._citing_sql(where, where)
        return self.rows(
            f"""
            WITH citing AS ({citing}),
            top AS (
              SELECT url, count(DISTINCT feed_id) AS feeds, count(DISTINCT entry_id) AS entries,
                     max(dated) AS last_cited
              FROM citing GROUP BY url HAVING count(DISTINCT feed_id) >= :min_feeds
              ORDER BY feeds DESC, entries DESC, last_cited DESC, url LIMIT :limit)
            SELECT top.url, top.feeds, top.entries, citing.how, citing.text, {CITER_COLUMNS}
            FROM top JOIN citing ON citing.url = top.url
            JOIN entries ON entries.id = citing.entry_id JOIN feeds ON feeds.id = entries.feed_id
            ORDER BY top.feeds DESC, top.entries DESC, top.last_cited DESC, top.url,
                     entries.dated, entries.id, citing.how
            """,
            {"since": maybe_iso(since), "min_feeds": min_feeds, "limit": limit},
        )

    @wrap_errors
    def citing(self, canonical_url: str) -> list[dict[str, Any]]:
        """The entries that cite one URL, by link or by linking out to it, oldest first."""
        citing = self._citing_sql("links.url = :url", "entries.canonical_url = :url")
        return self.rows(
            f"""
            WITH citing AS ({citing})
            SELECT citing.url, citing.how, citing.text, {CITER_COLUMNS}
            FROM citing JOIN entries ON entries.id = citing.entry_id
            JOIN feeds ON feeds.id = entries.feed_id
            ORDER BY entries.dated, entries.id, citing.how
            """,
            {"url": canonical_url},
        )

    @wrap_errors
    def link_counts(self, canonical_urls: Iterable[str]) -> dict[str, int]:
        """How many entries link to each URL in their HTML."""
        urls = list(dict.fromkeys(canonical_urls))
        counts: dict[str, int] = {}
        for start in range(0, len(urls), CHUNK):
            chunk = urls[start : start + CHUNK]
            marks = ",".join("?" * len(chunk))
            for url, n in self.db.execute(
                f"SELECT url, count(DISTINCT entry_id) FROM links WHERE url IN ({marks})"
                " GROUP BY url",
                chunk,
            ).fetchall():
                counts[url] = int(n)
        return counts

    @wrap_errors
    def record_digest(
        self,
        day: date,
        fmt: str,
        timezone: str,
        generated_at: datetime,
        path: str | None,
        entry_ids: Sequence[int],
    ) -> int:
        """Remember an exported digest and the entries it held, in order."""
        with self.writing():
            row = {
                "day": day.isoformat(),
                "format": fmt,
                "timezone": timezone,
                "generated_at": iso(generated_at),
                "path": path,
            }
            digest_id = _insert(self.db, "digests", row)
            _insert_many(
                self.db,
                "digest_entries",
                [
                    {"digest_id": digest_id, "entry_id": entry_id, "position": position}
                    for position, entry_id in enumerate(entry_ids, start=1)
                ],
            )
        return int(digest_id)

    @wrap_errors
    def last_digest(self, day: date, timezone: str) -> dict[str, Any] | None:
        """The latest export of a day (any format) made in this time zone."""
        rows = self.rows(
            "SELECT * FROM digests WHERE day = ? AND timezone = ?"
            " ORDER BY generated_at DESC, id DESC LIMIT 1",
            [day.isoformat(), timezone],
        )
        return rows[0] if rows else None

    @wrap_errors
    def digest_rows(self, digest_id: int) -> list[dict[str, Any]]:
        """The entries a digest held, in its order (entries deleted since are missing)."""
        return self.rows(
            f"""
            SELECT {ENTRY_COLUMNS}, digest_entries.position
            FROM digest_entries JOIN entries ON entries.id = digest_entries.entry_id
            JOIN feeds ON feeds.id = entries.feed_id
            WHERE digest_entries.digest_id = ? ORDER BY digest_entries.position
            """,
            [digest_id],
        )

    @wrap_errors
    def exported_days(self, timezone: str, since: date | None = None) -> list[date]:
        rows = self.db.execute(
            "SELECT DISTINCT day FROM digests WHERE timezone = ? AND day >= ? ORDER BY day",
            [timezone, since.isoformat() if since else ""],
        ).fetchall()
        return [date.fromisoformat(row[0]) for row in rows]

    @wrap_errors
    def digests_with(self, canonical_url: str) -> list[dict[str, Any]]:
        """Every exported digest that held a sighting of this story, oldest day first."""
        return self.rows(
            """
            SELECT digests.id, digests.day, digests.format, digests.timezone,
                   digests.generated_at, digests.path, digest_entries.position,
                   entries.id AS entry_id, entries.title, feeds.name AS feed_name
            FROM digest_entries JOIN digests ON digests.id = digest_entries.digest_id
            JOIN entries ON entries.id = digest_entries.entry_id
            JOIN feeds ON feeds.id = entries.feed_id
            WHERE entries.canonical_url = ?
            ORDER BY digests.day, digests.generated_at, digests.id
            """,
            [canonical_url],
        )

    @wrap_errors
    def import_article(
        self, name: str, path: str | None, now: datetime, citations: Iterable[Citation]
    ) -> int:
        """Record an article's citations; importing the same name again replaces them."""
        with self.writing():
            self.db.execute(
                """
                INSERT INTO articles (name, path, imported_at) VALUES (?, ?, ?)
                ON CONFLICT(name) DO UPDATE SET path = excluded.path,
                    imported_at = excluded.imported_at
                """,
                [name, path, iso(now)],
            )
            article_id = int(
                self.db.execute("SELECT id FROM articles WHERE name = ?", [name]).fetchone()[0]
            )
            self.db.execute("DELETE FROM citations WHERE article_id = ?", [article_id])
            _insert_many(
                self.db,
                "citations",
                [
                    {
                        "article_id": article_id,
                        "line": c.line,
                        "title": c.title,
                        "day": c.day.isoformat() if c.day else None,
                        "url": c.url,
                        "canonical_url": c.canonical_url,
                        "entry_id": c.entry_id,
                        "status": c.status,
                    }
                    for c in citations
                ],
            )
        return article_id


ENTRY_COLUMNS = """
    entries.id, entries.feed_id, entries.title, entries.url, entries.canonical_url,
    entries.published, entries.dated, entries.first_seen, entries.author, entries.summary,
    entries.tags, feeds.name AS feed_name, feeds.url AS feed_url, feeds.site_url,
    feeds.current_url AS feed_current_url, feeds.position AS feed_position,
    feeds.active AS feed_active
"""


# Who cites what. An entry cites each URL its HTML links to, except its own; and an entry
# whose link points off its feed's own site (an aggregator linking out, as Hacker News does)
# cites the story it links to. `aggregator_host` is urls.host_of, registered on the connection.
CITING = """
    SELECT links.url AS url, entries.id AS entry_id, entries.feed_id AS feed_id,
           entries.dated AS dated, 'link' AS how, links.text AS text
    FROM links JOIN entries ON entries.id = links.entry_id
    WHERE links.url IS NOT entries.canonical_url AND {links_where}
    UNION ALL
    SELECT entries.canonical_url, entries.id, entries.feed_id, entries.dated, 'story', NULL
    FROM entries JOIN feeds ON feeds.id = entries.feed_id
    WHERE entries.canonical_url IS NOT NULL AND {entries_where}
      AND aggregator_host(entries.canonical_url) NOT IN (
          coalesce(aggregator_host(feeds.site_url), ''),
          coalesce(aggregator_host(feeds.url), ''),
          coalesce(aggregator_host(feeds.current_url), ''))
"""
CITER_COLUMNS = """
    entries.id AS entry_id, entries.title, entries.url AS entry_url, entries.dated,
    feeds.name AS feed_name
"""
