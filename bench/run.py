"""Benchmarks for aggregator: speeds as ratios against a baseline measured in the same run.

    .venv/bin/python bench/run.py [--quick] [--output bench/results.json]

Every number that depends on the machine is reported next to a baseline timed in the same
run on the same data (bare feedparser, bare sqlite3, a bare SQL count, bare HTTP GETs), so
the ratios compare across machines. Everything is generated (bench/corpus.py) and served
from 127.0.0.1 by a child process this script starts and stops (bench/origin.py). Not run
by CI; see bench/README.md for what each number means.
"""

from __future__ import annotations

import argparse
import gc
import io
import json
import os
import platform
import random
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from importlib import metadata
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # corpus, when run from elsewhere

import feedparser  # noqa: E402
import requests  # noqa: E402
from corpus import parsed_entries, rss_feed, rss_of_size  # noqa: E402

from aggregator import digest  # noqa: E402
from aggregator.config import Settings, parse_config  # noqa: E402
from aggregator.fetch import HostLimiter  # noqa: E402
from aggregator.html import outbound_links, plain_summary  # noqa: E402
from aggregator.models import (  # noqa: E402
    FeedSpec,
    FeedState,
    FetchResult,
    Outcome,
    ParsedEntry,
    ParsedFeed,
)
from aggregator.parse import parse  # noqa: E402
from aggregator.rounds import RoundSummary, poll_round  # noqa: E402
from aggregator.store import Store, guid_key, iso  # noqa: E402
from aggregator.urls import canonical, strip_tracking  # noqa: E402

FEED_URL = "https://www.example.com/feed/"
RSS_HEADERS = {"content-type": "application/rss+xml; charset=utf-8"}


# reporting ---------------------------------------------------------------------------


@dataclass
class Row:
    section: str
    metric: str
    value: float | str
    unit: str = ""
    baseline: float | str | None = None  # the baseline's value, same unit
    ratio: float | None = None  # time(subject) / time(baseline): >1 is slower


class Report:
    def __init__(self) -> None:
        self.rows: list[Row] = []
        self.notes: list[str] = []  # printed under the table (query plans, ...)
        self.details: dict[str, dict[str, Any]] = {}

    def add(self, section: str, metric: str, value: float | str, unit: str = "", **kw: Any) -> None:
        self.rows.append(Row(section, metric, value, unit, **kw))

    def table(self) -> str:
        def show(value: float | str | None) -> str:
            if value is None:
                return ""
            if isinstance(value, str):
                return value
            if abs(value) >= 100:
                return f"{value:,.0f}"
            return f"{value:.3g}" if abs(value) < 10 else f"{value:.1f}"

        head = ("metric", "value", "unit", "baseline", "x baseline time")
        lines: list[tuple[str, ...]] = []
        section = None
        for row in self.rows:
            if row.section != section:
                section = row.section
                lines.append((f"[{section}]", "", "", "", ""))
            ratio = "" if row.ratio is None else f"{row.ratio:.2f}x"
            lines.append(("  " + row.metric, show(row.value), row.unit, show(row.baseline), ratio))
        widths = [max(len(x[i]) for x in [head, *lines]) for i in range(len(head))]
        out = [
            "  ".join(
                h.ljust(w) if i == 0 else h.rjust(w)
                for i, (h, w) in enumerate(zip(head, widths, strict=True))
            )
        ]
        out.append("  ".join("-" * w for w in widths))
        for line in lines:
            out.append(
                "  ".join(
                    c.ljust(w) if i in (0, 2) else c.rjust(w)
                    for i, (c, w) in enumerate(zip(line, widths, strict=True))
                ).rstrip()
            )
        return "\n".join(out + [""] + self.notes if self.notes else out)


def interleaved(
    subject: Callable[[], Any], baseline: Callable[[], Any], repeats: int
) -> tuple[float, float]:
    """Median seconds of each, alternating subject and baseline so that drift (CPU
    frequency, another process) hits both alike. One untimed warm-up each."""
    subject()
    baseline()
    gc.collect()
    ours, theirs = [], []
    for _ in range(repeats):
        started = time.perf_counter()
        subject()
        ours.append(time.perf_counter() - started)
        started = time.perf_counter()
        baseline()
        theirs.append(time.perf_counter() - started)
    return statistics.median(ours), statistics.median(theirs)


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    gc.collect()  # start each measurement from the same collector state
    started = time.perf_counter()
    result = fn()
    return time.perf_counter() - started, result


# 1. parse ----------------------------------------------------------------------------


def bench_parse(report: Report, quick: bool) -> None:
    section = "parse: RSS 2.0, 50 items, ~3 KB content:encoded each"
    body = rss_feed(1, 50, 3000)
    items = len(parse(body, RSS_HEADERS, FEED_URL).entries)
    assert items == 50, items
    ours, bare = interleaved(
        lambda: parse(body, RSS_HEADERS, FEED_URL),
        lambda: feedparser.parse(io.BytesIO(body), response_headers=RSS_HEADERS),
        repeats=4 if quick else 10,
    )
    # Where our overhead goes: the HTML helpers on feedparser's (already sanitised) output.
    raw = feedparser.parse(io.BytesIO(body), response_headers=RSS_HEADERS).entries

    def links() -> None:
        for entry in raw:
            for markup in [c["value"] for c in entry.get("content", [])] + [entry["summary"]]:
                outbound_links(markup, entry["link"])

    def text() -> None:
        for entry in raw:
            plain_summary(entry["summary"])

    links_s = min(timed(links)[0] for _ in range(3))
    text_s = min(timed(text)[0] for _ in range(3))
    found = sum(len(e.links) for e in parse(body, RSS_HEADERS, FEED_URL).entries)
    report.add(section, "feed size", len(body) / 1024, "KiB")
    report.add(
        section, "aggregator.parse.parse", items / ours, "entries/s",
        baseline=items / bare, ratio=ours / bare,
    )  # fmt: skip
    report.add(section, "overhead over feedparser", (ours - bare) / items * 1000, "ms/entry")
    report.add(section, "  of which outbound_links", links_s / items * 1000, "ms/entry")
    report.add(section, "  of which plain_summary", text_s / items * 1000, "ms/entry")
    report.add(section, "outbound links found", found / items, "per entry")
    report.details["parse"] = {
        "feed_bytes": len(body),
        "entries": items,
        "parse_s": ours,
        "feedparser_s": bare,
        "ratio": ours / bare,
        "outbound_links_s": links_s,
        "plain_summary_s": text_s,
        "links_per_entry": found / items,
    }


# 2. store ----------------------------------------------------------------------------

ENTRY_COLUMNS = (
    "feed_id", "guid_key", "guid", "url", "canonical_url", "title", "summary", "author",
    "tags", "published", "updated", "first_seen", "changed_at", "dated",
)  # fmt: skip


def entry_row(feed_id: int, entry: ParsedEntry, now: datetime) -> tuple[Any, ...]:
    """The values Store.apply writes for a new entry, as a plain tuple."""
    link = entry.link
    return (
        feed_id, guid_key(entry), entry.guid, strip_tracking(link) if link else None,
        canonical(link) if link else None, entry.title, entry.summary, entry.author,
        json.dumps(list(entry.tags)), iso(entry.published) if entry.published else None,
        None, iso(now), iso(now), iso(entry.published or now),
    )  # fmt: skip


def open_plain(path: Path) -> sqlite3.Connection:
    """A connection configured as Store configures its own: WAL, synchronous=NORMAL."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    return conn


def db_bytes(conn: sqlite3.Connection, path: Path) -> int:
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return path.stat().st_size


def bench_store(report: Report, quick: bool, tmp: Path) -> None:
    feeds, per_feed = (40, 50) if quick else (100, 50)
    total = feeds * per_feed
    section = f"store: {feeds} feeds x {per_feed} entries, 5 links each"
    now = datetime(2026, 4, 2, tzinfo=UTC)
    specs = [FeedSpec(url=f"https://site{i}.example/feed", name=f"Feed {i}") for i in range(feeds)]
    batches = [parsed_entries(i, per_feed, host=f"site{i}.example") for i in range(feeds)]

    def outcomes(at: datetime) -> list[Outcome]:
        return [
            Outcome(
                state=FeedState(spec=spec),
                fetch=FetchResult(spec.url, spec.url, 200, {}, b"<rss/>", at, 0.01),
                parsed=ParsedFeed(title=spec.name, link=spec.url, version="rss20", entries=batch),
                error=None,
                next_fetch_at=at + timedelta(hours=1),
                body_hash=f"{spec.url}@{at}",  # the body changed, its entries did not
            )
            for spec, batch in zip(specs, batches, strict=True)
        ]

    # Store.apply, fresh entries, then a re-poll of the same entries.
    store_path = tmp / "store.db"
    store = Store.connect(store_path)
    try:
        store.sync_feeds(specs, now)
        first, second = outcomes(now), outcomes(now + timedelta(hours=1))
        new_s, applied = timed(lambda: [store.apply(o) for o in first])
        assert sum(a.new_entries for a in applied) == total
        same_s, applied = timed(lambda: [store.apply(o) for o in second])
        assert sum(a.new_entries + a.updated_entries for a in applied) == 0
        store_size = db_bytes(store.db.conn, store_path)
        links = store.db.execute("SELECT count(*) FROM links").fetchone()[0]
    finally:
        store.close()

    rows = [
        [entry_row(i + 1, e, now) for e in batch] for i, batch in enumerate(batches)
    ]  # feed ids are 1.. in sync order

    # Baseline: the same rows, one executemany per feed (one commit each, as apply does),
    # into a plain table without indexes, constraints or full-text search. It is short,
    # so the median of a few runs, each into a fresh file.
    insert = f"INSERT INTO entries VALUES ({', '.join('?' * len(ENTRY_COLUMNS))})"

    def plain_run(path: Path) -> tuple[float, int]:
        plain = open_plain(path)
        try:
            plain.execute(f"CREATE TABLE entries ({', '.join(ENTRY_COLUMNS)})")
            started = time.perf_counter()
            for batch in rows:
                with plain:
                    plain.execute("BEGIN")
                    plain.executemany(insert, batch)
            return time.perf_counter() - started, db_bytes(plain, path)
        finally:
            plain.close()

    plain_runs = [plain_run(tmp / f"plain-{k}.db") for k in range(5)]
    plain_s = statistics.median(t for t, _ in plain_runs)
    plain_size = plain_runs[0][1]

    # Second reference: the same rows and their links by executemany into the real schema
    # (indexes, foreign keys, full-text triggers): what the schema costs, without our code.
    schema_path = tmp / "schema.db"
    with Store.open(schema_path) as schema_store:
        schema_store.sync_feeds(specs, now)
    schema = open_plain(schema_path)
    schema.execute("PRAGMA foreign_keys = ON")
    ids = iter(range(1, total + 1))
    with_ids = [[(next(ids), *row) for row in batch] for batch in rows]
    link_rows = [
        [
            (row[0], link.url, link.text)
            for row, e in zip(batch, src, strict=True)
            for link in e.links
        ]
        for batch, src in zip(with_ids, batches, strict=True)
    ]
    insert_ids = (
        f"INSERT INTO entries (id, {', '.join(ENTRY_COLUMNS)}) "
        f"VALUES ({', '.join('?' * (len(ENTRY_COLUMNS) + 1))})"
    )

    def schema_run() -> None:
        for batch, batch_links in zip(with_ids, link_rows, strict=True):
            with schema:
                schema.execute("BEGIN")
                schema.executemany(insert_ids, batch)
                schema.executemany(
                    "INSERT INTO links (entry_id, url, text) VALUES (?, ?, ?)", batch_links
                )

    schema_s, _ = timed(schema_run)
    schema.close()

    report.add(
        section, "Store.apply, new entries", total / new_s, "entries/s",
        baseline=total / plain_s, ratio=new_s / plain_s,
    )  # fmt: skip
    report.add(
        section, "Store.apply, unchanged re-poll", total / same_s, "entries/s",
        baseline=total / plain_s, ratio=same_s / plain_s,
    )  # fmt: skip
    report.add(section, "unchanged vs new (time)", same_s / new_s, "x")
    report.add(
        section, "executemany, real schema+links", total / schema_s, "entries/s",
        baseline=total / plain_s, ratio=schema_s / plain_s,
    )  # fmt: skip
    report.add(section, "Store.apply new vs real-schema executemany", new_s / schema_s, "x")
    report.add(
        section, "DB size per 10k entries", store_size / total * 10_000 / 2**20, "MiB",
        baseline=plain_size / total * 10_000 / 2**20, ratio=None,
    )  # fmt: skip
    report.details["store"] = {
        "feeds": feeds,
        "entries": total,
        "links": links,
        "apply_new_s": new_s,
        "apply_unchanged_s": same_s,
        "plain_executemany_s": plain_s,
        "schema_executemany_s": schema_s,
        "store_bytes": store_size,
        "plain_bytes": plain_size,
        "store_mib_per_10k": store_size / total * 10_000 / 2**20,
        "plain_mib_per_10k": plain_size / total * 10_000 / 2**20,
    }


# 3. poll rounds ----------------------------------------------------------------------


@contextmanager
def origin(feeds: int, items: int) -> Iterator[tuple[str, int]]:
    """Start bench/origin.py; yield (base URL, bytes served per full round); stop it."""
    child = subprocess.Popen(
        [sys.executable, str(HERE / "origin.py"), "--feeds", str(feeds), "--items", str(items)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        line = child.stdout.readline()
        if not line:
            raise RuntimeError(f"origin exited early with {child.wait(timeout=10)}")
        info = json.loads(line)
        yield f"http://127.0.0.1:{info['port']}", int(info["bytes"])
    finally:
        if child.stdin:
            child.stdin.close()  # the origin shuts down when its stdin closes
        try:
            child.wait(timeout=10)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait(timeout=10)


def origin_stats(base: str) -> dict[str, int]:
    return dict(requests.get(f"{base}/stats", timeout=10).json())


def settings_for(tmp: Path, db: Path, per_host: int, workers: int) -> Settings:
    raw = {"settings": {"database": str(db), "per_host": per_host, "workers": workers}}
    return parse_config(raw, tmp / "feeds.yaml")


def one_round(
    store: Store, settings: Settings, specs: list[FeedSpec]
) -> tuple[float, RoundSummary]:
    """As the daemon does it: read the feeds' state, then poll and store every feed."""

    def run() -> RoundSummary:
        now = datetime.now(UTC)
        states = store.feed_states(specs)
        return poll_round(store, settings, states, now, HostLimiter(settings.per_host))

    return timed(run)


def bare_http(urls: list[str], workers: int) -> tuple[float, list[bytes]]:
    """Baseline: the same GETs (bodies read, nothing parsed or stored), same thread count,
    one requests.Session per thread."""
    local = threading.local()

    def get(url: str) -> bytes:
        session = getattr(local, "session", None) or requests.Session()
        local.session = session
        return session.get(url, timeout=30).content

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        bodies = list(pool.map(get, urls))
    return time.perf_counter() - started, bodies


def serial_parse(urls: list[str], bodies: list[bytes], every: int) -> float:
    """Seconds to parse every body one after another in one thread, estimated from every
    `every`-th body: the CPU the round cannot avoid, with no concurrency at all."""
    sample = list(zip(urls, bodies, strict=True))[::every]
    elapsed, _ = timed(lambda: [parse(body, RSS_HEADERS, url) for url, body in sample])
    return elapsed * len(urls) / len(sample)


def bench_rounds(report: Report, quick: bool, tmp: Path) -> None:
    feeds, items, workers = (50 if quick else 200), 30, 8
    total = feeds * items
    cheap_repeats = 3  # 304 and same-body rounds are short: median of a few
    with origin(feeds, items) as (base, served):
        specs = [FeedSpec(url=f"{base}/feed/{i}.xml", name=f"Feed {i}") for i in range(feeds)]
        urls = [s.url for s in specs]
        bare_http(urls, workers)  # warm-up: the origin's first responses, our imports
        http_s, bodies = min((bare_http(urls, workers) for _ in range(3)), key=lambda r: r[0])
        # The CPU a round cannot avoid: parsing the same bodies one after another.
        parse_s = serial_parse(urls, bodies, every=2 if quick else 8)
        results: dict[str, Any] = {
            "feeds": feeds,
            "items_per_feed": items,
            "workers": workers,
            "bytes_per_round": served,
            "bare_http_s": http_s,
            "serial_parse_estimate_s": parse_s,
        }
        for per_host in (workers * 8, 2):
            section = (
                f"poll round: {feeds} feeds x {items} items on 127.0.0.1, "
                f"workers={workers}, per_host={per_host}"
            )
            db = tmp / f"round-{per_host}.db"
            settings = settings_for(tmp, db, per_host, workers)
            run: dict[str, Any] = {}
            with Store.open(db) as store:
                store.sync_feeds(specs, datetime.now(UTC))
                first_s, first = one_round(store, settings, specs)
                assert first.ok == feeds and first.new_entries == total, first.line()
                before = origin_stats(base)
                conditional = [one_round(store, settings, specs) for _ in range(cheap_repeats)]
                answered = origin_stats(base)["304"] - before["304"]
                for _, summary in conditional:
                    assert summary.not_modified == feeds, summary.line()
                assert answered == feeds * cheap_repeats, answered
                second_s = statistics.median(t for t, _ in conditional)
                run |= {
                    "round1_s": first_s,
                    "round2_304_s": second_s,
                    "answered_304": answered,
                }
                report.add(
                    section, "round 1: 200, parse, store", feeds / first_s, "feeds/s",
                    baseline=feeds / http_s, ratio=first_s / http_s,
                )  # fmt: skip
                report.add(section, "round 1: entries stored", total / first_s, "entries/s")
                report.add(
                    section, "round 1 vs serial parse of the same bodies", first_s / parse_s, "x"
                )
                report.add(
                    section, "round 2: 304 Not Modified", feeds / second_s, "feeds/s",
                    baseline=feeds / http_s, ratio=second_s / http_s,
                )  # fmt: skip
                report.add(section, "round 2 / round 1 (time)", second_s / first_s, "x")
                if per_host > 2:
                    requests.get(f"{base}/etag/off", timeout=10)
                    try:
                        same = [one_round(store, settings, specs) for _ in range(cheap_repeats)]
                    finally:
                        requests.get(f"{base}/etag/on", timeout=10)
                    for _, summary in same:
                        assert summary.not_modified == feeds, summary.line()
                        assert summary.new_entries == 0, summary.line()
                    third_s = statistics.median(t for t, _ in same)
                    run["round3_same_body_s"] = third_s
                    report.add(
                        section, "round 3: 200, same body (hash skip)", feeds / third_s,
                        "feeds/s", baseline=feeds / http_s, ratio=third_s / http_s,
                    )  # fmt: skip
                    report.add(section, "round 3 / round 1 (time)", third_s / first_s, "x")
            results[f"per_host_{per_host}"] = run
        high, low = results[f"per_host_{workers * 8}"], results["per_host_2"]
        section = "poll round: baselines and per_host"
        report.add(section, f"bare HTTP GETs, {workers} threads", feeds / http_s, "feeds/s")
        report.add(
            section, "serial parse, 1 thread (estimate)",
            feeds / parse_s, "feeds/s",
        )  # fmt: skip
        report.add(section, "bytes per full round", served / 2**20, "MiB")
        report.add(
            section, "per_host=2 / high, round 1 (time)", low["round1_s"] / high["round1_s"], "x"
        )
        report.add(
            section, "per_host=2 / high, round 2 (time)",
            low["round2_304_s"] / high["round2_304_s"], "x",
        )  # fmt: skip
        report.details["rounds"] = results


# 4. digest ---------------------------------------------------------------------------

DAY0 = date(2026, 1, 1)
UTC_ZONE = ZoneInfo("UTC")


def build_digest_db(store: Store, total: int, days: int, feeds: int) -> None:
    """`total` entries over `days` days from `feeds` feeds; one in ten is another feed's
    sighting of an earlier story (same canonical URL), as aggregators and link blogs do."""
    rng = random.Random(4)
    specs = [FeedSpec(url=f"https://site{i}.example/feed", name=f"Feed {i}") for i in range(feeds)]
    store.sync_feeds(specs, datetime(2025, 12, 1, tzinfo=UTC))
    ids = dict(store.db.execute("SELECT url, id FROM feeds").fetchall())
    start = datetime.combine(DAY0, datetime.min.time(), UTC)
    span = days * 86400
    stories: list[tuple[str, datetime]] = []
    rows = []
    for n in range(total):
        feed = rng.randrange(feeds)
        if stories and rng.random() < 0.1:
            link, moment = rng.choice(stories)
            moment = min(
                moment + timedelta(seconds=rng.randrange(6 * 3600)),
                start + timedelta(seconds=span - 1),
            )
        else:
            moment = start + timedelta(seconds=rng.randrange(span))
            link = f"https://site{feed}.example/{moment:%Y/%m/%d}/story-{n}"
            stories.append((link, moment))
        text = " ".join(
            rng.choice(("cloud", "quota", "kernel", "court", "chip")) for _ in range(40)
        )
        seen = iso(moment + timedelta(minutes=rng.randrange(120)))
        rows.append(
            (
                ids[specs[feed].url], f"guid-{n}", f"guid-{n}", link, link,
                f"Story {n} about {text[:40]}", text, "Author", "[]", iso(moment), None,
                seen, seen, iso(moment),
            )
        )  # fmt: skip
    marks = ", ".join("?" * len(ENTRY_COLUMNS))
    with store.db.conn:
        store.db.conn.executemany(
            f"INSERT INTO entries ({', '.join(ENTRY_COLUMNS)}) VALUES ({marks})", rows
        )


def query_plans(store: Store, day: date) -> list[dict[str, Any]]:
    """EXPLAIN QUERY PLAN of every SELECT select_day runs, as it runs them."""
    statements: list[str] = []
    store.db.conn.set_trace_callback(statements.append)
    try:
        digest.select_day(store, day, UTC_ZONE)
    finally:
        store.db.conn.set_trace_callback(None)
    plans = []
    for sql in dict.fromkeys(s for s in statements if s.lstrip().upper().startswith("SELECT")):
        details = [row[3] for row in store.db.execute("EXPLAIN QUERY PLAN " + sql)]
        plans.append({"sql": " ".join(sql.split()), "plan": details})
    return plans


def bench_digest(report: Report, quick: bool, tmp: Path) -> None:
    total, days, feeds = (20_000 if quick else 100_000), 100, 100
    section = f"digest: select_day, {total:,} entries over {days} days, {feeds} feeds"
    path = tmp / "digest.db"
    with Store.open(path) as store:
        build_s, _ = timed(lambda: build_digest_db(store, total, days, feeds))
        day = DAY0 + timedelta(days=days // 2)
        start, end = (iso(m) for m in digest.day_bounds(day, UTC_ZONE))
        count_sql = "SELECT count(*) FROM entries WHERE dated >= ? AND dated < ?"
        in_day = store.db.execute(count_sql, [start, end]).fetchone()[0]
        stories = len(digest.select_day(store, day, UTC_ZONE))
        repeats = 5 if quick else 9
        ours, bare = interleaved(
            lambda: digest.select_day(store, day, UTC_ZONE),
            lambda: store.db.execute(count_sql, [start, end]).fetchone(),
            repeats,
        )
        bounds = digest.day_bounds(day, UTC_ZONE)
        between_s = min(timed(lambda: store.entries_between(*bounds))[0] for _ in range(3))
        candidates = [r["canonical_url"] for r in store.entries_between(*bounds)]
        urls_s = min(timed(lambda: store.entries_for_urls(candidates))[0] for _ in range(3))
        plans = query_plans(store, day)
        count_plan = [
            row[3] for row in store.db.execute("EXPLAIN QUERY PLAN " + count_sql, [start, end])
        ]
        by_dated = [p for p in plans if "entries.dated >=" in p["sql"]]
        uses_index = bool(by_dated) and all(
            any("INDEX" in d and "dated" in d for d in p["plan"]) for p in by_dated
        )
        store.db.execute("ANALYZE")
        analyzed_s = statistics.median(
            timed(lambda: digest.select_day(store, day, UTC_ZONE))[0] for _ in range(repeats)
        )
        analyzed_plans = query_plans(store, day)
    report.add(section, "entries on the day", in_day, "entries")
    report.add(section, "stories selected", stories, "lines")
    report.add(
        section, "digest.select_day", ours * 1000, "ms", baseline=bare * 1000, ratio=ours / bare
    )
    report.add(section, "  of which entries_between", between_s * 1000, "ms")
    report.add(section, "  of which entries_for_urls", urls_s * 1000, "ms")
    report.add(
        section, "  rest: Python (ranking, DigestEntry)", (ours - between_s - urls_s) * 1000, "ms"
    )
    report.add(
        section, "select_day after ANALYZE", analyzed_s * 1000, "ms",
        baseline=bare * 1000, ratio=analyzed_s / bare,
    )  # fmt: skip
    report.add(section, "day query uses the dated index", "yes" if uses_index else "NO")
    report.notes.append(f"{section}: query plans")
    for p in by_dated:
        report.notes.append("  select_day's day query: " + "; ".join(p["plan"]))
    report.notes.append("  bare count:              " + "; ".join(count_plan))
    report.add(section, "database build (not a result)", build_s, "s")
    report.details["digest"] = {
        "entries": total,
        "days": days,
        "entries_on_day": in_day,
        "stories": stories,
        "select_day_s": ours,
        "count_s": bare,
        "ratio": ours / bare,
        "entries_between_s": between_s,
        "entries_for_urls_s": urls_s,
        "select_day_after_analyze_s": analyzed_s,
        "uses_dated_index": uses_index,
        "plans": [p | {"sql": p["sql"][:300]} for p in plans],
        "plans_after_analyze": [p | {"sql": p["sql"][:300]} for p in analyzed_plans],
        "count_plan": count_plan,
        "build_s": build_s,
    }


# 5. peak memory ----------------------------------------------------------------------


def bench_memory(report: Report, tmp: Path) -> None:
    body = rss_of_size(7, 5_000_000)
    path = tmp / "big.rss"
    path.write_bytes(body)
    mib = len(body) / 2**20
    section = f"peak memory: parsing a {len(body) / 1e6:.1f} MB RSS feed (fresh process)"
    # Both children at once: only their memory is reported, which the other cannot change.
    children = {
        mode: subprocess.Popen(
            [sys.executable, str(HERE / "peak_memory.py"), str(path), mode],
            stdout=subprocess.PIPE,
            text=True,
        )
        for mode in ("aggregator", "feedparser")
    }
    found = {}
    for mode, child in children.items():
        out, _ = child.communicate(timeout=300)
        if child.returncode != 0:
            raise RuntimeError(f"peak_memory.py {mode} failed with {child.returncode}")
        found[mode] = json.loads(out)
    ours, bare = found["aggregator"], found["feedparser"]

    def grew(x: dict[str, Any]) -> float:
        return float(x["peak_kib"] - x["rss_before_kib"]) / 1024

    report.add(section, "entries", ours["entries"], "entries")
    report.add(section, "peak RSS growth during parse", grew(ours), "MiB", baseline=grew(bare))
    report.add(section, "our peak growth / feedparser's", grew(ours) / max(grew(bare), 1e-3), "x")
    report.add(section, "peak growth / body size", grew(ours) / mib, "x")
    report.add(section, "peak RSS of the process", ours["peak_kib"] / 1024, "MiB",
               baseline=bare["peak_kib"] / 1024)  # fmt: skip
    if not (ours["peak_reset"] and bare["peak_reset"]):
        report.notes.append(f"{section}: peak not resettable here, growth includes start-up")
    report.details["memory"] = {"body_bytes": len(body), "aggregator": ours, "feedparser": bare}


# main --------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    versions: dict[str, str | None] = {}
    for package in ("feedparser", "beautifulsoup4", "sqlite-utils", "requests", "urllib3"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "sqlite": sqlite3.sqlite_version,
        **versions,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description="aggregator benchmarks (ratios, not seconds)")
    parser.add_argument("--quick", action="store_true", help="smaller corpus, ~40 s")
    parser.add_argument("--output", type=Path, default=HERE / "results.json")
    args = parser.parse_args()
    started = time.perf_counter()
    report = Report()
    timings = {}
    with tempfile.TemporaryDirectory(prefix="aggregator-bench-") as name:
        tmp = Path(name)
        for label, run in (
            ("parse", lambda: bench_parse(report, args.quick)),
            ("store", lambda: bench_store(report, args.quick, tmp)),
            ("rounds", lambda: bench_rounds(report, args.quick, tmp)),
            ("digest", lambda: bench_digest(report, args.quick, tmp)),
            ("memory", lambda: bench_memory(report, tmp)),
        ):
            print(f"running {label} ...", file=sys.stderr, flush=True)
            timings[label] = timed(run)[0]
    runtime = time.perf_counter() - started
    print(report.table())
    print(f"\nmode: {'quick' if args.quick else 'full'}; runtime {runtime:.1f} s "
          f"({', '.join(f'{k} {v:.1f} s' for k, v in timings.items())})")  # fmt: skip
    results = {
        "command": " ".join([".venv/bin/python", "bench/run.py", *sys.argv[1:]]),
        "mode": "quick" if args.quick else "full",
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "runtime_s": runtime,
        "section_runtime_s": timings,
        "rows": [{k: v for k, v in vars(row).items() if v is not None} for row in report.rows],
        "details": report.details,
    }
    args.output.write_text(json.dumps(results, indent=2) + "\n")
    print(f"written: {args.output}")


if __name__ == "__main__":
    main()
