"""End to end: loopback server -> fetch -> parse -> SQLite -> digest, through the CLI."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from werkzeug import Request, Response

from aggregator.cli import cli
from tests.conftest import DATA, serve_file

E2E = DATA / "e2e"
FEEDS = (
    ("TechCrunch", "/feed/techcrunch", "techcrunch.rss", "application/rss+xml; charset=UTF-8"),
    ("The Register", "/headlines.atom", "theregister.atom", "application/atom+xml"),
    ("Hacker News", "/rss", "hackernews.rss", "application/rss+xml"),
)


class ConditionalFeed:
    """Serves a body with an ETag and Last-Modified; answers 304 to a matching request."""

    def __init__(self, body: bytes, content_type: str, etag: str) -> None:
        self.body = body
        self.content_type = content_type
        self.etag = etag
        self.conditional_hits = 0

    def __call__(self, request: Request) -> Response:
        if request.headers.get("If-None-Match") == self.etag:
            self.conditional_hits += 1
            return Response(status=304, headers={"ETag": self.etag})
        return Response(
            self.body,
            headers={
                "Content-Type": self.content_type,
                "ETag": self.etag,
                "Last-Modified": "Mon, 20 Apr 2026 20:00:00 GMT",
            },
        )


@pytest.fixture
def three_feeds(httpserver: Any, write_config: Callable[..., Path]) -> tuple[Path, list[Any]]:
    handlers = []
    feeds = []
    for i, (name, path, file, content_type) in enumerate(FEEDS):
        handler = ConditionalFeed((E2E / file).read_bytes(), content_type, f'"v{i}"')
        httpserver.expect_request(path).respond_with_handler(handler)
        handlers.append(handler)
        feeds.append({"url": httpserver.url_for(path), "name": name, "tags": ["tech"]})
    return write_config(feeds=feeds), handlers


def run(config: Path, *args: str) -> Any:
    result = CliRunner().invoke(cli, ["--config", str(config), *args], catch_exceptions=False)
    return result


def test_digest_is_the_reference_list(three_feeds: tuple[Path, list[Any]]) -> None:
    config, _ = three_feeds
    fetched = run(config, "fetch")
    assert fetched.exit_code == 0, fetched.output
    assert "3 feeds: 3 ok, 0 not modified, 0 failed; 15 new entries" in fetched.output

    digest = run(config, "digest", "--date", "2026-04-20")
    assert digest.exit_code == 0
    assert digest.output == (E2E / "expected-2026-04-20.refs").read_text(encoding="utf-8")


def test_neighbouring_days_hold_only_their_own_stories(
    three_feeds: tuple[Path, list[Any]],
) -> None:
    config, _ = three_feeds
    run(config, "fetch")
    day20 = set(run(config, "digest", "--date", "2026-04-20").output.splitlines())
    day19 = run(config, "digest", "--date", "2026-04-19").output.splitlines()
    day21 = run(config, "digest", "--date", "2026-04-21").output.splitlines()
    assert day19 and day21
    assert not day20 & set(day19) and not day20 & set(day21)
    assert all(line.endswith("]") and ", 2026-04-19)[" in line for line in day19)
    # 23:30 on the 20th at UTC-7 is the 21st in UTC
    assert any("Tessellate raises $40M" in line for line in day21)


def test_second_fetch_sends_validators_and_stores_nothing_twice(
    three_feeds: tuple[Path, list[Any]], db_path: Path
) -> None:
    config, handlers = three_feeds
    run(config, "fetch")
    second = run(config, "fetch")
    assert "3 feeds: 0 ok, 3 not modified, 0 failed; 0 new entries" in second.output
    assert [h.conditional_hits for h in handlers] == [1, 1, 1]
    with sqlite3.connect(db_path) as conn:
        assert conn.execute("SELECT count(*) FROM entries").fetchone() == (15,)
        outcomes = conn.execute(
            "SELECT outcome, count(*) FROM fetches GROUP BY outcome ORDER BY outcome"
        ).fetchall()
    assert outcomes == [("not_modified", 3), ("ok", 3)]


def test_one_story_in_two_feeds_is_one_line_titled_by_its_publisher(
    three_feeds: tuple[Path, list[Any]], db_path: Path
) -> None:
    config, _ = three_feeds
    run(config, "fetch")
    lines = run(config, "digest", "--date", "2026-04-20").output.splitlines()
    register = [line for line in lines if "inflation_ai_quota" in line]
    assert register == [
        "- (AI quota inflation is no token effort. It’s baked in, 2026-04-20)"
        "[https://www.theregister.com/2026/04/20/inflation_ai_quota/]"
    ]
    with sqlite3.connect(db_path) as conn:  # both sightings are kept
        sightings = conn.execute(
            "SELECT feeds.name FROM entries JOIN feeds ON feeds.id = entries.feed_id"
            " WHERE canonical_url LIKE '%inflation_ai_quota/' ORDER BY feeds.position"
        ).fetchall()
    assert sightings == [("The Register",), ("Hacker News",)]


def test_a_bad_feed_is_recorded_and_the_others_carry_on(
    httpserver: Any, write_config: Callable[..., Path], db_path: Path
) -> None:
    httpserver.expect_request("/good").respond_with_data(
        (E2E / "theregister.atom").read_bytes(), content_type="application/atom+xml"
    )
    httpserver.expect_request("/html").respond_with_data(
        "<html><body><p>Nothing to see</p></body></html>", content_type="text/html"
    )
    httpserver.expect_request("/missing").respond_with_data("no", status=404)
    config = write_config(
        feeds=[
            {"url": httpserver.url_for("/html"), "name": "Not a feed"},
            {"url": httpserver.url_for("/missing"), "name": "Missing"},
            {"url": httpserver.url_for("/good"), "name": "The Register"},
        ]
    )
    result = run(config, "fetch")
    assert result.exit_code == 0
    assert "3 feeds: 1 ok, 0 not modified, 2 failed; 3 new entries" in result.output
    assert "failed: Not a feed: " in result.output and "not a feed" in result.output
    assert "failed: Missing: " in result.output and "HTTP 404" in result.output

    feeds = run(config, "feeds").output
    assert "FAILING x1" in feeds and "HTTP 404" in feeds
    with sqlite3.connect(db_path) as conn:
        errors = dict(conn.execute(
            "SELECT feeds.name, fetches.error FROM fetches JOIN feeds ON feeds.id = feed_id"
            " WHERE outcome = 'error'"
        ).fetchall())  # fmt: skip
    assert set(errors) == {"Not a feed", "Missing"}
    assert httpserver.url_for("/missing") in errors["Missing"]


def test_earlier_entries_survive_a_feed_going_bad(
    httpserver: Any, write_config: Callable[..., Path], db_path: Path
) -> None:
    bodies = [(E2E / "theregister.atom").read_bytes(), b"<html>oops</html>"]
    httpserver.expect_ordered_request("/feed").respond_with_data(bodies[0])
    httpserver.expect_ordered_request("/feed").respond_with_data(bodies[1])
    config = write_config(feeds=[{"url": httpserver.url_for("/feed"), "name": "Reg"}])
    run(config, "fetch")
    run(config, "fetch")
    with sqlite3.connect(db_path) as conn:
        assert conn.execute("SELECT count(*) FROM entries").fetchone() == (3,)
        assert conn.execute("SELECT error_count FROM feeds").fetchone() == (1,)


CORPUS = sorted(
    p
    for p in (DATA / "feeds").rglob("*")
    if p.is_file() and not p.name.endswith((".expected.json", ".headers", ".md"))
)


def test_the_whole_hostile_corpus_over_http_leaves_a_clean_database(
    httpserver: Any, write_config: Callable[..., Path], db_path: Path
) -> None:
    """Every corpus file served as a feed in one fetch: nothing hostile reaches the database,
    files that are not feeds are failures naming the feed, and the rest are stored."""
    feeds = []
    for n, path in enumerate(CORPUS):
        url = serve_file(httpserver, f"/c{n}", path)
        feeds.append({"url": url, "name": str(path.relative_to(DATA / "feeds"))})
    result = run(write_config(feeds=feeds), "fetch")
    assert result.exit_code == 0
    with sqlite3.connect(db_path) as conn:
        failed = {
            name: error
            for name, error in conn.execute(
                "SELECT feeds.name, fetches.error FROM fetches JOIN feeds ON feeds.id = feed_id"
                " WHERE outcome = 'error'"
            )
        }
        texts = [
            value
            for table in ("entries", "links", "feeds")
            for row in conn.execute(f"SELECT * FROM {table}")
            for value in row
            if isinstance(value, str)
        ]
        urls = [u for (u,) in conn.execute("SELECT url FROM entries UNION SELECT url FROM links")]
        entries = conn.execute("SELECT count(*) FROM entries").fetchone()[0]
    assert set(failed) == {str(p.relative_to(DATA / "feeds")) for p in CORPUS
                           if p.parent.name == "notfeed"}  # fmt: skip
    assert all("not a feed" in error for error in failed.values())
    assert entries > 100
    for text in texts:
        assert "<script" not in text.lower()
        assert "root:x:0" not in text  # no local file (XXE) content
        assert not any(ord(c) < 32 and c not in "\n\t" for c in text), repr(text)
    assert all(u is None or u.startswith(("http://", "https://")) for u in urls)
