"""Our metadata.yml on a real database built by the real pipeline, in real Datasette.

One database per module: the e2e feeds (plus one that fails) served on loopback and
fetched with `aggregator fetch`. Datasette runs in-process with the packaged metadata
file as it is, through `datasette serve --get`, and as `aggregator serve` in a
subprocess that headless Chromium looks at.
"""

from __future__ import annotations

import asyncio
import html
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from datasette.app import Datasette
from datasette.cli import cli as datasette_cli
from pytest_httpserver import HTTPServer

from aggregator import browse
from aggregator.cli import cli
from aggregator.digest import publisher_rank
from aggregator.store import Store
from aggregator.urls import host_of
from aggregator.views import VIEWS, host_sql
from tests.conftest import DATA
from tests.test_refs import CITING_FEEDS, fetch_feeds

E2E = DATA / "e2e"
DAY = "2026-04-20"
FEEDS = (
    ("TechCrunch", "/feed/techcrunch", "techcrunch.rss", "application/rss+xml; charset=UTF-8"),
    ("The Register", "/headlines.atom", "theregister.atom", "application/atom+xml"),
    ("Hacker News", "/rss", "hackernews.rss", "application/rss+xml"),
)
REGISTER_STORY = "https://www.theregister.com/2026/04/20/inflation_ai_quota/"
SEED_STORY = (
    "https://techcrunch.com/2026/04/19/investors-say-seed-rounds-are-getting-bigger-and-weirder/"
)
CHROMIUM = "/usr/bin/chromium"


@dataclass(frozen=True)
class Built:
    config: Path
    db: Path
    work: Path


def run_cli(config: Path, *args: str) -> str:
    """`aggregator ARGS` in-process; its stdout (stderr carries notes such as late arrivals)."""
    result = CliRunner().invoke(cli, ["--config", str(config), *args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.stdout


def build(work: Path, extra: tuple[tuple[str, str, bytes, str], ...] = ()) -> Built:
    """feeds.yaml -> loopback server -> `aggregator fetch` -> work/aggregator.db: the e2e
    feeds, then `extra` ones (name, path, body, content type), then one that fails."""
    server = HTTPServer(host="127.0.0.1", port=0)
    server.start()
    try:
        feeds = []
        served = [(n, p, (E2E / f).read_bytes(), t) for n, p, f, t in FEEDS]
        for name, path, body, content_type in [*served, *extra]:
            server.expect_request(path).respond_with_data(body, content_type=content_type)
            feeds.append({"url": server.url_for(path), "name": name, "tags": ["tech"]})
        server.expect_request("/missing").respond_with_data("gone fishing", status=404)
        feeds.append({"url": server.url_for("/missing"), "name": "Missing", "tags": ["misc"]})
        config = work / "feeds.yaml"
        settings = {"database": str(work / "aggregator.db"), "digest_dir": str(work / "d")}
        config.write_text(yaml.safe_dump({"settings": settings, "feeds": feeds}))
        result = CliRunner().invoke(cli, ["--config", str(config), "fetch"])
        assert f"{len(feeds)} feeds: {len(feeds) - 1} ok, 0 not modified, 1 failed" in (
            result.output
        ), result.output
    finally:
        server.stop()
    return Built(config, work / "aggregator.db", work)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    built = build(tmp_path_factory.mktemp("datasette"))
    with sqlite3.connect(built.db) as conn:
        assert conn.execute("SELECT count(*) FROM entries").fetchone() == (15,)
    return built


def packaged_metadata() -> dict[str, Any]:
    """The file `datasette -m` reads, as it is (no renaming)."""
    loaded: dict[str, Any] = yaml.safe_load(browse.metadata_path().read_text(encoding="utf-8"))
    return loaded


@pytest.fixture(scope="module")
def ds(built: Built) -> Iterator[Any]:
    instance = Datasette([str(built.db)], metadata=packaged_metadata())
    yield instance
    for database in instance.databases.values():
        database.close()


@contextmanager
def datasette_on(path: Path) -> Iterator[Any]:
    """In-process Datasette on another database file, with the packaged metadata."""
    instance = Datasette([str(path)], metadata=packaged_metadata())
    try:
        yield instance
    finally:
        for database in instance.databases.values():
            database.close()


def get(ds: Any, path: str) -> Any:
    response = asyncio.run(ds.client.get(path))
    assert response.status_code == 200, (path, response.text[:500])
    return response


def rows(ds: Any, path: str) -> list[dict[str, Any]]:
    sep = "&" if "?" in path else "?"
    found: list[dict[str, Any]] = get(ds, f"{path}{sep}_shape=array").json()
    return found


def db_rows(db: Path, sql: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(db) as conn:
        return conn.execute(sql).fetchall()


def user_tables(db: Path) -> dict[str, list[str]]:
    """Every table and view a user sees in Datasette, with its columns."""
    names = db_rows(
        db,
        "SELECT name FROM sqlite_master WHERE type IN ('table', 'view')"
        " AND name NOT LIKE 'sqlite_%' AND name NOT LIKE 'entries_fts%'"
        " AND name != '_sqlite_migrations' ORDER BY name",
    )
    return {n: [c[1] for c in db_rows(db, f"PRAGMA table_info([{n}])")] for (n,) in names}


@pytest.mark.parametrize(
    "url",
    ["https://www.theregister.com/2026/04/20/x/", "HTTPS://WWW.Example.COM:8443/a?b#c",
     "http://user:secret@www.example.org/", "https://example.net?q=1", "https://example.net#top",
     "http://[2001:db8::1]:8080/feed", "https://news.ycombinator.com", "https://wwwexample.com/",
     "mailto:someone@example.com", None],
)  # fmt: skip
def test_host_sql_is_host_of(url: str | None) -> None:
    """The digest query's publisher rule needs urls.host_of in SQL."""
    with sqlite3.connect(":memory:") as conn:
        (got,) = conn.execute(f"SELECT {host_sql('?')}", [url, url]).fetchone()
    assert got == host_of(url)


# metadata ----------------------------------------------------------------------------


def test_metadata_describes_every_table_view_and_column(built: Built) -> None:
    meta = packaged_metadata()
    database = meta["databases"]["aggregator"]
    assert meta["title"] and meta["description"]
    assert database["title"] and database["description"]
    tables = user_tables(built.db)
    assert set(VIEWS) <= set(tables)
    for name, columns in tables.items():
        described = database["tables"].get(name)
        assert described, f"{name} has no metadata"
        assert described["title"] and described["description"], name
        assert set(described["columns"]) == set(columns), name
        assert all(described["columns"].values()), name


def test_database_page_lists_tables_views_and_queries(ds: Any) -> None:
    data = get(ds, "/aggregator.json").json()
    visible = {t["name"] for t in data["tables"] if not t["hidden"]}
    assert {"feeds", "entries", "links", "fetches"} <= visible
    assert "entries_fts" not in visible and "_sqlite_migrations" not in visible
    assert set(VIEWS) <= {v["name"] for v in data["views"]}
    assert {q["name"] for q in data["queries"]} == {
        "digest", "most_cited_today", "most_cited_week", "feed_health", "entries_per_day",
        "search",
    }  # fmt: skip
    page = get(ds, "/aggregator").text
    assert "Feeds and entries" in page and "Digest for a day" in page


@pytest.mark.parametrize(
    "table",
    ["feeds", "entries", "links", "fetches", "sightings", "mentions", "digests",
     "digest_entries", "articles", "citations", "daemon"],
)  # fmt: skip
def test_table_json_has_every_row(ds: Any, built: Built, table: str) -> None:
    data = get(ds, f"/aggregator/{table}.json?_size=max").json()
    (count,) = db_rows(built.db, f"SELECT count(*) FROM [{table}]")[0]
    assert len(data["rows"]) == data["filtered_table_rows_count"] == count
    html_page = get(ds, f"/aggregator/{table}").text
    title = packaged_metadata()["databases"]["aggregator"]["tables"][table]["title"]
    assert html.escape(title) in html_page


def test_entries_newest_first_labelled_with_their_feed(ds: Any) -> None:
    found = rows(ds, "/aggregator/entries.json?_labels=on&_size=max")
    assert len(found) == 15
    dated = [r["dated"] for r in found]
    assert dated == sorted(dated, reverse=True)
    assert found[0]["feed_id"] == {"value": 2, "label": "The Register"}
    page = get(ds, "/aggregator/entries").text
    assert 'name="_search"' in page and "sorted by dated descending" in page
    assert "The moment that puts the entry on a digest day" in page  # column descriptions


def test_fetches_newest_first(ds: Any) -> None:
    fetched = [r["fetched_at"] for r in rows(ds, "/aggregator/fetches.json")]
    assert len(fetched) == 4 and fetched == sorted(fetched, reverse=True)


def test_search_box_searches_titles_and_summaries(ds: Any) -> None:
    found = rows(ds, "/aggregator/entries.json?_search=quota&_labels=on")
    assert sorted(r["feed_id"]["label"] for r in found) == ["Hacker News", "The Register"]
    assert all("quota inflation" in r["title"] for r in found)
    assert [r["title"] for r in rows(ds, "/aggregator/entries.json?_search=boot+loops")] == [
        "Vendor patches the patch that patched last week’s patch"  # a word of the summary
    ]
    assert rows(ds, "/aggregator/entries.json?_search=nosuchwordanywhere") == []


def facet(data: dict[str, Any], name: str) -> dict[Any, int]:
    return {r["label"]: r["count"] for r in data["facet_results"][name]["results"]}


def test_facets(ds: Any) -> None:
    entries = get(ds, "/aggregator/entries.json?_size=0").json()
    assert facet(entries, "feed_id") == {"Hacker News": 7, "TechCrunch": 5, "The Register": 3}
    assert facet(entries, "tags")["AI"] == 3
    assert facet(entries, "dated") == {"2026-04-21": 3, "2026-04-20": 9, "2026-04-19": 3}
    fetches = get(ds, "/aggregator/fetches.json?_size=0").json()
    assert facet(fetches, "outcome") == {"ok": 3, "error": 1}
    assert facet(fetches, "feed_id")["Missing"] == 1
    feeds = get(ds, "/aggregator/feeds.json?_size=0").json()
    assert facet(feeds, "tags") == {"tech": 3, "misc": 1}
    selected = rows(ds, "/aggregator/entries.json?_facet_array=tags&tags__arraycontains=Google")
    assert [r["title"] for r in selected] == [
        "Google rolls out Gemini in Chrome in 7 new countries"
    ]


# canned queries ----------------------------------------------------------------------


@pytest.mark.parametrize("day", ["2026-04-19", DAY, "2026-04-21", "2026-05-01"])
def test_digest_query_is_the_cli_digest(ds: Any, built: Built, day: str) -> None:
    cli_lines = run_cli(built.config, "digest", "--date", day).splitlines()
    found = rows(ds, f"/aggregator/digest.json?day={day}")
    assert [r["line"] for r in found] == cli_lines
    if day == DAY:
        expected = (E2E / "expected-2026-04-20.refs").read_text(encoding="utf-8")
        assert "".join(r["line"] + "\n" for r in found) == expected
        register = next(r for r in found if r["url"] == REGISTER_STORY)
        assert register["feed"] == "The Register" and register["also_in"] == "Hacker News"
        assert {r["date"] for r in found} == {DAY}


def copy_of(built: Built, tmp_path: Path) -> tuple[Path, Path]:
    """A copy of the shared database, with a feeds.yaml that points at it."""
    path = tmp_path / "aggregator.db"
    with sqlite3.connect(built.db) as source, sqlite3.connect(path) as target:
        source.backup(target)
    config = tmp_path / "feeds.yaml"
    settings = {"database": str(path), "digest_dir": str(tmp_path / "d")}
    config.write_text(yaml.safe_dump({"settings": settings, "feeds": []}))
    return path, config


def test_digest_query_keeps_an_exported_day_and_appends_late_arrivals(
    built: Built, tmp_path: Path
) -> None:
    """Once exported, a day keeps its lines and order; a later story follows (issue 4)."""
    path, config = copy_of(built, tmp_path)
    run_cli(config, "digest", "--date", DAY, "--output", str(tmp_path / "day.refs"))
    with Store.open(path) as store, store.db.conn:
        # fresh order would now put TechCrunch last and the new story first
        store.db.execute("UPDATE feeds SET active = 0 WHERE name = 'TechCrunch'")
        store.db.execute(
            "INSERT INTO entries (feed_id, guid_key, url, canonical_url, title, first_seen,"
            " dated, tags) VALUES (2, 'late', ?, ?, 'A late one', ?, ?, '[]')",
            [*["https://www.theregister.com/2026/04/20/late/"] * 2,
             "2026-04-22T08:00:00+00:00", "2026-04-20T00:30:00+00:00"],
        )  # fmt: skip
    cli_lines = run_cli(config, "digest", "--date", DAY).splitlines()
    expected = (E2E / "expected-2026-04-20.refs").read_text(encoding="utf-8").splitlines()
    assert cli_lines == [
        *expected,
        "- (A late one, 2026-04-20)[https://www.theregister.com/2026/04/20/late/]",
    ]
    instance = Datasette([str(path)], metadata=packaged_metadata())
    try:
        found = rows(instance, f"/aggregator/digest.json?day={DAY}")
        assert [r["line"] for r in found] == cli_lines
        assert [r["late"] for r in found] == [0] * 8 + [1]
        # a day never exported is still select_day's order, with TechCrunch now last
        assert [r["line"] for r in rows(instance, "/aggregator/digest.json?day=2026-04-21")] == (
            run_cli(config, "digest", "--date", "2026-04-21").splitlines()
        )
    finally:
        for database in instance.databases.values():
            database.close()


IMPOSTOR_TITLE = "Register admits AI quotas are a scam"
# Served on 127.0.0.1 like the others and listed after the Register, it declares the
# Register's site as its own and carries the Register's story, retitled and backdated.
IMPOSTOR = f"""<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0"><channel><title>The Register (really)</title>
<link>https://www.theregister.com/</link><description>Totally the Register</description>
<item><title>{IMPOSTOR_TITLE}</title><link>{REGISTER_STORY}?utm_source=copy</link>
<guid isPermaLink="false">copy-1</guid><pubDate>Sun, 19 Apr 2026 06:00:00 GMT</pubDate></item>
</channel></rss>
""".encode()


def test_a_feed_claiming_another_site_cannot_title_its_stories(tmp_path: Path) -> None:
    """Both feeds declare the Register's site: feeds.yaml order decides, not the date."""
    impostor = build(tmp_path, (("Impostor", "/copy.rss", IMPOSTOR, "application/rss+xml"),))
    expected = (E2E / "expected-2026-04-20.refs").read_text(encoding="utf-8")
    assert run_cli(impostor.config, "digest", "--date", DAY) == expected
    with datasette_on(impostor.db) as instance:
        for day in ("2026-04-19", DAY):
            found = rows(instance, f"/aggregator/digest.json?day={day}")
            assert [r["line"] for r in found] == (
                run_cli(impostor.config, "digest", "--date", day).splitlines()
            )
            assert not any(IMPOSTOR_TITLE in r["line"] for r in found)
        register = next(r for r in found if r["url"] == REGISTER_STORY)
        assert register["title"] == "AI quota inflation is no token effort. It’s baked in"
        assert register["feed"] == "The Register"
        assert register["also_in"] == "Hacker News, Impostor"
        sightings = rows(
            instance,
            "/aggregator/sightings.json?_sort=feed_position&canonical_url="
            + urllib.parse.quote(REGISTER_STORY),
        )
        assert [(r["feed_name"], r["publisher_rank"], r["publisher"]) for r in sightings] == [
            ("The Register", 1, 1),
            ("Hacker News", 2, 0),
            ("Impostor", 1, 1),
        ]
        # the impostor's copy is on its declared site: no mention, as `refs` has it
        cited = rows(instance, "/aggregator/most_cited_week.json?until=2026-04-22")
        assert next(r for r in cited if r["url"] == REGISTER_STORY)["cited_by"] == "Hacker News"


def test_sightings_rank_is_publisher_rank(built: Built, tmp_path: Path) -> None:
    """Each match level and tie-break of digest.publisher_rank, in the view and the query."""
    path, config = copy_of(built, tmp_path)
    lines = (E2E / "expected-2026-04-20.refs").read_text(encoding="utf-8").splitlines()
    anthropic, checklist = (line[line.rindex("[") + 1 : -1] for line in (lines[0], lines[5]))
    with Store.open(path) as store, store.db.conn:

        def add(name: str, position: int, active: int, urls: tuple[str, str | None, str]) -> None:
            url, current_url, site_url = urls
            feed_id = store.db.execute(
                "INSERT INTO feeds (url, name, position, active, current_url, site_url)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                [url, name, position, active, current_url, site_url],
            ).lastrowid
            story = {"Mirror": REGISTER_STORY, "Claimant": anthropic}.get(name, checklist)
            dated = f"2026-04-20T{'00:01' if name == 'Claimant' else '23:00'}:00+00:00"
            store.db.execute(
                "INSERT INTO entries (feed_id, guid_key, url, canonical_url, title, first_seen,"
                " dated, tags) VALUES (?, 'x', ?, ?, ?, ?, ?, '[]')",
                [feed_id, story, story, f"{name} title", dated, dated],
            )

        # moved to the Register's host (level 0) beats the Register's own site link (1)
        add("Mirror", 10, 1, ("http://127.0.0.1:9/a", "https://WWW.TheRegister.com:8443/f", ""))
        # removed from feeds.yaml: after every listed feed, though first in position
        add("Claimant", -1, 0, ("http://127.0.0.1:9/b", None, "https://techcrunch.com/"))
        # served from the story's host (an empty current_url is no move) beats a link-out
        add("Checklist", 30, 1, ("https://www.cyberchecklist.app/feed", "", "https://x.example/"))
        every = store.entries_for_urls(
            url for (url,) in store.db.execute("SELECT DISTINCT canonical_url FROM entries")
        )
    with datasette_on(path) as instance:
        view = {r["id"]: r for r in rows(instance, "/aggregator/sightings.json?_size=max")}
        assert {r["id"]: view[r["id"]]["publisher_rank"] for r in every} == {
            r["id"]: publisher_rank(r)[0] for r in every
        }
        assert {r["publisher"] for r in view.values()} == {0, 1}
        assert all(r["publisher"] == (r["publisher_rank"] < 2) for r in view.values())
        for day in ("2026-04-19", DAY, "2026-04-21"):
            found = rows(instance, f"/aggregator/digest.json?day={day}")
            assert [r["line"] for r in found] == (
                run_cli(config, "digest", "--date", day).splitlines()
            )
        found = rows(instance, f"/aggregator/digest.json?day={DAY}")
    titles = {r["url"]: (r["title"], r["feed"]) for r in found}
    assert titles[REGISTER_STORY] == ("Mirror title", "Mirror")
    assert titles[anthropic] == (lines[0][3 : lines[0].rindex(", 20")], "TechCrunch")
    assert titles[checklist] == ("Checklist title", "Checklist")


def test_digest_query_defaults_to_yesterday_and_ignores_bad_days(ds: Any) -> None:
    assert get(ds, "/aggregator/digest.json").json()["rows"] == []
    assert rows(ds, "/aggregator/digest.json?day=not-a-day") == []


def test_most_cited_today(ds: Any) -> None:
    found = rows(ds, "/aggregator/most_cited_today.json?until=2026-04-21")
    by_url = {r["url"]: r for r in found}
    # Hacker News links out to the Register's story; the Register's own entry is the story
    assert by_url[REGISTER_STORY] == {
        "url": REGISTER_STORY,
        "feeds": 1,
        "cited_by": "Hacker News",
        "mentions": 1,
        "last_cited": "2026-04-20T15:40:22+00:00",
    }
    assert all(r["feeds"] == 1 for r in found)
    # a publisher's own entries mention nothing of theirs: no story of the day by itself
    assert not any(u.startswith("https://techcrunch.com/2026/04/20/") for u in by_url)
    # entries of the 21st and the 19th are outside the 24 hours, a link to the 19th is not
    assert "https://pitchbook.com/" not in by_url and not any("/04/21/" in u for u in by_url)
    assert by_url[SEED_STORY] == {**by_url[SEED_STORY], "cited_by": "TechCrunch", "mentions": 1}
    assert get(ds, "/aggregator/most_cited_today.json").json()["ok"]  # blank: until now


def test_most_cited_week(ds: Any) -> None:
    found = rows(ds, "/aggregator/most_cited_week.json?until=2026-04-22")
    by_url = {r["url"]: r for r in found}
    assert all(r["feeds"] == 1 for r in found)
    assert by_url[REGISTER_STORY]["cited_by"] == "Hacker News"
    # linked from one TechCrunch story and published by TechCrunch: the link is the mention
    assert by_url[SEED_STORY] == {**by_url[SEED_STORY], "feeds": 1, "mentions": 1}
    assert found[0]["url"] == "https://pitchbook.com/"  # an outbound link of a 21 April entry
    assert rows(ds, "/aggregator/most_cited_week.json?until=2026-04-01") == []


def refs_top(config: Path, since: str) -> list[tuple[str, int, list[str], int]]:
    """`aggregator refs top --since SINCE` for every URL cited at all: (url, feeds, the
    citing feeds' names, citing entries), in its order."""
    out = run_cli(config, "refs", "top", "--since", since, "--min-feeds", "1", "--limit", "99")
    found: list[tuple[str, int, list[str], int]] = []
    names: set[str] = set()
    for line in out.splitlines():
        if not line.startswith(" "):
            count, url = line.split(" feed", 1)[0], line.split("  ", 1)[1]
            names = set()
            found.append((url, int(count), [], 0))
        elif not line.startswith("    = "):
            names.add(line.strip().split("  ", 1)[1].split(": ", 1)[0])
            url, count, _, entries = found[-1]
            found[-1] = (url, count, sorted(names), entries + 1)
    return found


def most_cited_week(ds: Any, until: str) -> list[tuple[str, int, list[str], int]]:
    return [
        (r["url"], r["feeds"], sorted(r["cited_by"].split(", ")), r["mentions"])
        for r in rows(ds, f"/aggregator/most_cited_week.json?until={until}")
    ]


def test_most_cited_week_is_refs_top(ds: Any, built: Built) -> None:
    """The canned query counts what `refs top` counts: same URLs, feeds, citers, order."""
    cli_found = refs_top(built.config, "2026-04-15")  # 7 days before the 22nd, UTC
    assert 20 < len(cli_found) < 99
    assert most_cited_week(ds, "2026-04-22") == cli_found
    assert (REGISTER_STORY, 1, ["Hacker News"], 1) in cli_found


def test_most_cited_week_is_refs_top_when_feeds_cite_each_other(
    httpserver: Any, write_config: Any, db_path: Path
) -> None:
    """test_refs's feeds: stories cited by two and three feeds, by link and by link-out."""
    config = fetch_feeds(httpserver, write_config, CITING_FEEDS)
    cli_found = refs_top(config, "2026-04-15")
    with datasette_on(db_path) as instance:
        assert most_cited_week(instance, "2026-04-22") == cli_found
    assert cli_found[:3] == [
        ("https://openai.com/pricing", 3, ["Daily Links", "Lobsters", "The Register"], 3),
        (REGISTER_STORY, 3, ["Daily Links", "Hacker News", "Lobsters"], 3),
        ("https://blog.example/post", 2, ["Hacker News", "Lobsters"], 2),
    ]


def test_feed_health_lists_failing_feeds_first(ds: Any) -> None:
    found = rows(ds, "/aggregator/feed_health.json")
    assert [r["name"] for r in found] == ["Missing", "TechCrunch", "The Register", "Hacker News"]
    missing = found[0]
    assert missing["state"] == "failing" and missing["error_count"] == 1
    assert "HTTP 404" in missing["error"] and missing["last_success_at"] is None
    assert missing["last_fetch_at"] and missing["next_fetch_at"]
    assert all(r["state"] == "ok" and r["error"] is None for r in found[1:])
    assert [r["entries"] for r in found] == [0, 5, 3, 7]


def test_entries_per_day(ds: Any) -> None:
    found = rows(ds, "/aggregator/entries_per_day.json")
    assert [(r["day"], r["feed"], r["entries"]) for r in found] == [
        ("2026-04-21", "TechCrunch", 2),
        ("2026-04-21", "The Register", 1),
        ("2026-04-20", "TechCrunch", 2),
        ("2026-04-20", "The Register", 1),
        ("2026-04-20", "Hacker News", 6),
        ("2026-04-19", "TechCrunch", 1),
        ("2026-04-19", "The Register", 1),
        ("2026-04-19", "Hacker News", 1),
    ]


def test_search_query_highlights_snippets(ds: Any) -> None:
    found = rows(ds, "/aggregator/search.json?q=quota+inflation")
    assert sorted(r["feed"] for r in found) == ["Hacker News", "The Register"]
    assert all("[quota] [inflation]" in r["snippet"] for r in found)
    summary_hit = rows(ds, "/aggregator/search.json?q=boot+loops")
    assert [r["title"] for r in summary_hit] == [
        "Vendor patches the patch that patched last week’s patch"
    ]
    assert "[boot] [loops]" in summary_hit[0]["snippet"]
    # words are matched literally: FTS syntax and stray quotes are not errors
    assert rows(ds, "/aggregator/search.json?q=") == []
    assert rows(ds, "/aggregator/search.json?q=%22quota+AND+NEAR(") == []


@pytest.mark.parametrize(
    "path",
    ["digest?day=2026-04-20", "most_cited_today?until=2026-04-21", "most_cited_week",
     "feed_health", "entries_per_day", "search?q=quota"],
)  # fmt: skip
def test_canned_query_pages_render(ds: Any, path: str) -> None:
    name = path.split("?")[0]
    page = get(ds, f"/aggregator/{path}").text
    title = packaged_metadata()["databases"]["aggregator"]["queries"][name]["title"]
    assert html.escape(title) in page


def test_metadata_follows_a_database_with_another_name(built: Built, tmp_path: Path) -> None:
    other = tmp_path / "news.db"
    with sqlite3.connect(built.db) as source, sqlite3.connect(other) as target:
        source.backup(target)
    instance = browse.datasette(other)
    try:
        found = rows(instance, f"/news/digest.json?day={DAY}")
        assert len(found) == 8
        assert "Feeds and entries" in get(instance, "/news").text
    finally:
        for database in instance.databases.values():
            database.close()


# plain datasette, and WAL ------------------------------------------------------------


def test_plain_datasette_serve_get(built: Built) -> None:
    result = CliRunner().invoke(
        datasette_cli,
        ["serve", str(built.db), "-m", str(browse.metadata_path()),
         "--get", f"/aggregator/digest.json?day={DAY}&_shape=array"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    lines = [r["line"] for r in json.loads(result.output)]
    assert "".join(line + "\n" for line in lines) == (E2E / "expected-2026-04-20.refs").read_text(
        encoding="utf-8"
    )


def test_readers_are_never_locked_out_by_a_writer(built: Built, tmp_path: Path) -> None:
    path = tmp_path / "aggregator.db"
    with sqlite3.connect(built.db) as source, sqlite3.connect(path) as target:
        source.backup(target)
    writer = Store.connect(path, timeout=5)
    instance = Datasette([str(path)], metadata=packaged_metadata())
    insert = "INSERT INTO fetches (feed_id, fetched_at, outcome) VALUES (1, ?, 'ok')"
    try:
        # 1. a write transaction held open: readers go on, and see the last commit
        writer.db.execute("BEGIN IMMEDIATE")
        writer.db.execute(insert, ["2030-01-01T00:00:00+00:00"])
        assert len(rows(instance, f"/aggregator/digest.json?day={DAY}")) == 8
        assert len(rows(instance, "/aggregator/fetches.json")) == 4
        writer.db.conn.commit()
        assert len(rows(instance, "/aggregator/fetches.json")) == 5

        # 2. a writer committing in a loop (with checkpoints) while readers query
        stop = threading.Event()
        written = [0]

        def write_loop() -> None:
            while not stop.is_set():
                with writer.db.conn:
                    writer.db.execute(insert, ["2030-01-02T00:00:00+00:00"])
                    writer.db.execute("UPDATE feeds SET last_fetch_at = ? WHERE id = 1", ["x"])
                written[0] += 1
                if written[0] % 50 == 0:
                    writer.db.execute("PRAGMA wal_checkpoint(PASSIVE)")

        thread = threading.Thread(target=write_loop, daemon=True)
        thread.start()
        try:
            deadline = time.monotonic() + 2.0
            reads = 0
            while time.monotonic() < deadline:
                assert len(rows(instance, f"/aggregator/digest.json?day={DAY}")) == 8
                data = get(instance, "/aggregator/fetches.json?_size=1").json()
                assert data["filtered_table_rows_count"] >= 5
                reads += 1
        finally:
            stop.set()
            thread.join(timeout=10)
        assert not thread.is_alive()
        assert reads >= 5 and written[0] >= 5, (reads, written[0])
        final = get(instance, "/aggregator/fetches.json?_size=1").json()
        assert final["filtered_table_rows_count"] == 5 + written[0]
    finally:
        writer.close()
        for database in instance.databases.values():
            database.close()


# `aggregator serve` and a browser ----------------------------------------------------


def test_the_cli_loads_datasette_only_to_serve() -> None:
    code = "import sys, aggregator.cli; print(' '.join(sorted(sys.modules)))"
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=30
    ).stdout.split()
    assert "datasette" not in loaded and "uvicorn" not in loaded


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def http_get(url: str, timeout: float = 5.0) -> tuple[int, str]:
    with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 (loopback)
        return response.status, response.read().decode("utf-8")


def wait_until_responds(
    url: str, process: subprocess.Popen[bytes], log: Path, within: float = 20
) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = log.read_text(errors="replace")[-2000:]
            raise AssertionError(f"server exited with {process.returncode}:\n{tail}")
        try:
            http_get(url, timeout=1)
            return
        except (OSError, urllib.error.URLError):
            time.sleep(0.1)
    raise AssertionError(f"{url} did not respond within {within}s")


@pytest.fixture(scope="module")
def served(built: Built) -> Iterator[str]:
    """`aggregator serve` in a subprocess on 127.0.0.1; killed by its PID afterwards."""
    port = free_port()
    log_path = built.work / "serve.log"
    log = log_path.open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "aggregator", "--config", str(built.config),
         "serve", "--host", "127.0.0.1", "--port", str(port)],
        stdout=log, stderr=subprocess.STDOUT, cwd=built.work,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_responds(f"{base}/-/versions.json", process, log_path)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        log.close()


def test_aggregator_serve_over_http(served: str) -> None:
    status, body = http_get(f"{served}/aggregator/digest.json?day={DAY}&_shape=array")
    assert status == 200
    expected = (E2E / "expected-2026-04-20.refs").read_text(encoding="utf-8").splitlines()
    assert [r["line"] for r in json.loads(body)] == expected
    status, page = http_get(f"{served}/aggregator/entries?_search=quota")
    assert status == 200 and "AI quota inflation is no token effort" in page
    status, meta = http_get(f"{served}/-/metadata.json")
    assert json.loads(meta)["title"] == "Feed aggregator"


def chromium(profile: Path, *args: str, timeout: float = 25) -> tuple[int, str, str]:
    """Headless Chromium with a throwaway profile and no network of its own. It runs in a
    process group of its own, killed by that group's id if it outlives `timeout`."""
    process = subprocess.Popen(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
         "--no-first-run", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", f"--user-data-dir={profile}", *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )  # fmt: skip
    try:
        out, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate(timeout=10)
        raise AssertionError(f"chromium {args[0]} took over {timeout}s") from None
    return process.returncode, out, err


def test_digest_page_in_headless_chromium(served: str, built: Built) -> None:
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is missing; .ci/run installs Debian's chromium package")
        pytest.skip(f"{CHROMIUM} is not installed (CI installs it)")
    url = f"{served}/aggregator/digest?day={DAY}"
    profile = built.work / "chromium-profile"
    png = built.work / "digest.png"
    code, _, err = chromium(profile, f"--screenshot={png}", "--window-size=1280,2000", url)
    assert code == 0 and png.exists(), err[-2000:]
    data = png.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 20_000
    code, dom, err = chromium(profile, "--dump-dom", url)
    assert code == 0, err[-2000:]
    titles = [
        line[3 : line.rindex(", 20")]
        for line in (E2E / "expected-2026-04-20.refs").read_text(encoding="utf-8").splitlines()
    ]
    assert len(titles) == 8
    for title in titles:
        assert html.escape(title, quote=False) in dom, title
    assert "Digest for a day" in dom
