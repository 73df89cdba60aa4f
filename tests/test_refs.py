"""Reference tracking end to end: feeds with HTML served on loopback, the real CLI and store.

Who cites what (`refs top`, `refs who`), digest history and late arrivals (`digest --output`,
`refs late`, `refs digests`), and checking an article (`refs check`, `refs import`)."""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from email.utils import format_datetime
from html import escape
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner
from werkzeug import Request, Response

from aggregator.cli import cli
from aggregator.digest import export_digest
from aggregator.refs import (
    LINKED,
    MISMATCHED,
    UNKNOWN,
    VERIFIED,
    find_references,
    same_title,
    since_moment,
)
from aggregator.store import Store

DAY = date(2026, 4, 20)
REG_STORY = "https://www.theregister.com/2026/04/20/inflation_ai_quota/"
REG_TITLE = "AI quota inflation is no token effort. It’s baked in"
BLOG = "https://blog.example/post"
PRICING = "https://openai.com/pricing"
TRACKED = REG_STORY + "?utm_source=x&fbclid=y"


def at(hour: int, minute: int = 0, day: int = 20) -> datetime:
    return datetime(2026, 4, day, hour, minute, tzinfo=UTC)


@dataclass
class Item:
    title: str
    link: str
    published: datetime
    html: str = ""
    guid: str | None = None


def rss(title: str, site: str, items: list[Item]) -> bytes:
    body = "".join(
        f"<item><title>{escape(i.title)}</title><link>{escape(i.link)}</link>"
        f"<guid isPermaLink='false'>{escape(i.guid or i.link)}</guid>"
        f"<pubDate>{format_datetime(i.published, usegmt=True)}</pubDate>"
        f"<description><![CDATA[{i.html}]]></description></item>"
        for i in items
    )
    return (
        f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
        f"<title>{escape(title)}</title><link>{escape(site)}</link>"
        f"<description>{escape(title)}</description>{body}</channel></rss>"
    ).encode()


def atom(title: str, site: str, items: list[Item]) -> bytes:
    body = "".join(
        f"<entry><title>{escape(i.title)}</title><link href='{escape(i.link)}'/>"
        f"<id>{escape(i.guid or i.link)}</id><updated>{i.published.isoformat()}</updated>"
        f"<published>{i.published.isoformat()}</published>"
        f"<content type='html'>{escape(i.html)}</content></entry>"
        for i in items
    )
    return (
        f'<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom">'
        f"<title>{escape(title)}</title><link href='{escape(site)}'/><id>{escape(site)}</id>"
        f"<updated>2026-04-20T20:00:00Z</updated>{body}</feed>"
    ).encode()


@dataclass
class Served:
    """A feed whose document a test can change between fetches."""

    body: bytes
    content_type: str = "application/rss+xml"
    hits: list[str] = field(default_factory=list)

    def __call__(self, request: Request) -> Response:
        self.hits.append(request.path)
        return Response(self.body, headers={"Content-Type": self.content_type})


def run(config: Path, *args: str, code: int = 0) -> Any:
    result = CliRunner().invoke(cli, ["--config", str(config), *args], catch_exceptions=False)
    assert result.exit_code == code, result.output
    return result


def serve(httpserver: Any, path: str, body: bytes, content_type: str) -> tuple[str, Served]:
    handler = Served(body, content_type)
    httpserver.expect_request(path).respond_with_handler(handler)
    return str(httpserver.url_for(path)), handler


REGISTER = atom(
    "The Register",
    "https://www.theregister.com/",
    [
        Item(
            REG_TITLE,
            REG_STORY,
            at(9),
            # a tracked link twice, a relative link, and links that must never be stored
            f'<p>Prices: <a href="{PRICING}?utm_source=reg">pricing</a>, again'
            f' <a href="{PRICING}">here</a>. Earlier: <a href="../../19/earlier_story/">story</a>.'
            ' <a href="javascript:alert(1)">click</a>'
            ' <a href="&#106;avascript:alert(2)">sneaky</a>'
            ' <a href="data:text/html;base64,PHNjcmlwdD4=">data</a>'
            f' <a href="{REG_STORY}#comments">comments</a></p>',
        )
    ],
)
HACKER_NEWS = rss(
    "Hacker News",
    "https://news.ycombinator.com/",
    [
        Item(
            "AI quota inflation is baked in (theregister.com)",
            REG_STORY + "?utm_source=hackernews",
            at(15, 40),
            '<a href="https://news.ycombinator.com/item?id=1">Comments</a>',
        ),
        Item(
            "Blog post title",
            BLOG,
            at(11),
            '<a href="https://news.ycombinator.com/item?id=2">Comments</a>',
        ),
    ],
)
LOBSTERS = rss(
    "Lobsters",
    "https://lobste.rs/",
    [
        Item("Blog post title", BLOG + "?utm_medium=lobsters", at(12), ""),
        Item(
            "Quota talk",
            "https://lobste.rs/s/abc/quota_talk",
            at(13),
            f'<p>See <a href="{REG_STORY}?fbclid=1">the Register</a> and'
            f' <a href="{PRICING}">pricing</a>.</p>',
        ),
    ],
)
DAILY = rss(
    "Daily Links",
    "https://daily.example/",
    [
        Item(
            "Links for Monday",
            "https://daily.example/2026/04/20",
            at(18),
            f'<ul><li><a href="{REG_STORY}">quota</a></li>'
            f'<li><a href="{PRICING}#plans">plans</a></li>'
            f'<li><a href="{PRICING}#plans">plans again</a></li></ul>',
        )
    ],
)


CITING_FEEDS = (
    ("The Register", "/reg.atom", REGISTER, "application/atom+xml"),
    ("Hacker News", "/hn.rss", HACKER_NEWS, "application/rss+xml"),
    ("Lobsters", "/lobsters.rss", LOBSTERS, "application/rss+xml"),
    ("Daily Links", "/daily.rss", DAILY, "application/rss+xml"),
)
# Served on loopback like the others, but claiming to be the Register (its channel link)
# and carrying the Register's story with a made-up title, backdated to the day before.
FAKE_TITLE = "Register admits AI quotas are a scam"
IMPOSTOR = rss(
    "The Register (really)",
    "https://www.theregister.com/",
    [Item(FAKE_TITLE, REG_STORY + "?utm_source=impostor", at(6, day=19), guid="copy-1")],
)


def fetch_feeds(
    httpserver: Any, write_config: Callable[..., Path], feeds: Sequence[tuple[str, str, bytes, str]]
) -> Path:
    """Serve `feeds` (name, path, body, content type), list them in that order in
    feeds.yaml, and fetch them once."""
    listed = []
    for name, path, body, kind in feeds:
        url, _ = serve(httpserver, path, body, kind)
        listed.append({"url": url, "name": name})
    config = write_config(feeds=listed)
    assert f"{len(feeds)} ok" in run(config, "fetch").output
    return config


@pytest.fixture
def cited(httpserver: Any, write_config: Callable[..., Path]) -> Path:
    """Four feeds citing each other and outside stories; fetched once."""
    return fetch_feeds(httpserver, write_config, CITING_FEEDS)


def top(config: Path, *args: str) -> dict[str, list[str]]:
    """`refs top` output as {url: [its lines]}, in order."""
    found: dict[str, list[str]] = {}
    current: list[str] = []
    for line in run(config, "refs", "top", "--since", "2026-04-01", *args).stdout.splitlines():
        if not line.startswith(" "):
            current = found.setdefault(line.split("  ", 1)[1], [line])
        else:
            current.append(line)
    return found


# who cites what ------------------------------------------------------------------------


def test_top_counts_distinct_citing_feeds(cited: Path) -> None:
    found = top(cited)
    assert {url: lines[0].split("  ")[0] for url, lines in found.items()} == {
        PRICING: "3 feeds",  # the Register (twice, once counted), Lobsters, Daily Links
        REG_STORY: "3 feeds",  # Hacker News links out to it; Lobsters, Daily Links link to it
        BLOG: "2 feeds",  # a story no feed of ours published: two aggregators point at it
    }
    assert list(found)[-1] == BLOG
    story = found[REG_STORY]
    assert story[1] == f"    = {REG_TITLE}"  # titled by its publisher
    assert story[2:] == [
        "    2026-04-20 13:00  Lobsters: Quota talk (link text: the Register)",
        "    2026-04-20 15:40  Hacker News: AI quota inflation is baked in (theregister.com)",
        "    2026-04-20 18:00  Daily Links: Links for Monday (link text: quota)",
    ]
    # the publisher's own entry is the story, not a citation of it
    assert not any("The Register:" in line for line in story)
    assert sum("Daily Links" in line for line in found[PRICING]) == 1


def test_min_feeds_limit_and_since(cited: Path) -> None:
    everything = top(cited, "--min-feeds", "1", "--limit", "100")
    earlier = "https://www.theregister.com/2026/04/19/earlier_story/"  # a relative link
    assert everything[earlier][0] == f"1 feed  {earlier}"
    assert "https://news.ycombinator.com/item?id=1" in everything
    assert list(top(cited, "--limit", "1")) == [list(everything)[0]]
    # the stories are from April 2026; the default window is the last 7 days
    recent = run(cited, "refs", "top")
    assert recent.stdout == "" and "no URL cited by 2 or more feeds" in recent.output
    bad = run(cited, "refs", "top", "--since", "last tuesday", code=2)
    assert "expected a duration like 7d" in bad.output


def test_links_are_resolved_deduplicated_and_never_executable(cited: Path, db_path: Path) -> None:
    with sqlite3.connect(db_path) as conn:
        links = conn.execute(
            "SELECT links.url, links.text FROM links JOIN entries ON entries.id = entry_id"
            " JOIN feeds ON feeds.id = feed_id"
            " WHERE feeds.name = 'The Register' ORDER BY links.id",
        ).fetchall()
        schemes = conn.execute(
            "SELECT count(*) FROM links WHERE url NOT LIKE 'http://%' AND url NOT LIKE 'https://%'"
        ).fetchone()
    assert links == [
        (PRICING, "pricing"),
        ("https://www.theregister.com/2026/04/19/earlier_story/", "story"),
        (REG_STORY, "comments"),  # a link to itself is stored, but is no citation
    ]
    assert schemes == (0,)


def test_who_matches_by_canonical_url(cited: Path) -> None:
    asked = REG_STORY + "?utm_source=twitter&utm_medium=social#top"
    lines = run(cited, "refs", "who", asked).stdout.splitlines()
    assert lines[0] == f"3 feeds  {REG_STORY}"
    assert [line.split("  ")[-1].split(":")[0] for line in lines[2:]] == [
        "Lobsters",
        "Hacker News",
        "Daily Links",
    ]
    nobody = run(cited, "refs", "who", "https://nobody.example/")
    assert nobody.stdout == "" and "no entry cites https://nobody.example/" in nobody.output


def test_a_feed_claiming_another_site_cannot_title_its_stories(
    httpserver: Any, write_config: Callable[..., Path], tmp_path: Path
) -> None:
    """The impostor, listed after the Register, declares the Register's site and backdates
    a copy of its story: the Register still titles it (digest.publisher_rank), in the
    digest and in `refs`, and the impostor's copy is no citation (its link is on its site)."""
    feeds = [CITING_FEEDS[0], ("Impostor", "/copy.rss", IMPOSTOR, "application/rss+xml")]
    config = fetch_feeds(httpserver, write_config, [*feeds, *CITING_FEEDS[1:]])
    digest = run(config, "digest", "--date", "2026-04-20").stdout
    assert f"- ({REG_TITLE}, 2026-04-20)[{REG_STORY}]" in digest.splitlines()
    assert FAKE_TITLE not in run(config, "digest", "--date", "2026-04-19").stdout
    story = top(config)[REG_STORY]
    assert story[:2] == [f"3 feeds  {REG_STORY}", f"    = {REG_TITLE}"]
    assert not any("Impostor" in line for line in story)
    assert run(config, "refs", "who", REG_STORY).stdout.splitlines()[1] == f"    = {REG_TITLE}"
    # a reference matching no sighting is compared with the one the digest shows
    article = tmp_path / "article.md"
    article.write_text(f"- (Quotas, 2026-04-01)[{REG_STORY}]\n", encoding="utf-8")
    assert run(config, "refs", "check", str(article), code=1).stdout.splitlines()[2] == (
        f"    stored:  ({REG_TITLE}, 2026-04-20) The Register <{REG_STORY}>"
    )


# digest history ------------------------------------------------------------------------


@pytest.fixture
def one_day(httpserver: Any, write_config: Callable[..., Path]) -> tuple[Path, Served, Any]:
    """Site A with two stories on DAY, fetched; returns (config, A's handler, feeds.yaml maker)."""
    a_url, a = serve(
        httpserver,
        "/a.rss",
        rss(
            "Site A",
            "https://a.example/",
            [
                Item("A nine", "https://a.example/9", at(9)),
                Item("A ten", "https://a.example/10", at(10)),
            ],
        ),
        "application/rss+xml",
    )
    config = write_config(feeds=[{"url": a_url, "name": "Site A"}])
    run(config, "fetch")
    return config, a, write_config


def lines_of(text: str) -> list[str]:
    return [line.split(", 2026")[0].removeprefix("- (") for line in text.splitlines()]


def test_a_late_arrival_is_reported_and_included_in_order(
    one_day: tuple[Path, Served, Any], httpserver: Any, tmp_path: Path, db_path: Path
) -> None:
    config, a, write_config = one_day
    out = tmp_path / "2026-04-20.refs.md"
    assert run(config, "digest", "--date", "2026-04-20", "-o", str(out)).stdout.strip() == str(out)
    assert lines_of(out.read_text()) == ["A nine", "A ten"]
    assert "no late arrivals" in run(config, "refs", "late", "--since", "all").output

    # After the export: a new feed, listed first, and an early story in A arrive for DAY.
    b_url, _ = serve(
        httpserver,
        "/b.rss",
        rss("Site B", "https://b.example/", [Item("B eight", "https://b.example/8", at(8))]),
        "application/rss+xml",
    )
    a.body = rss(
        "Site A",
        "https://a.example/",
        [
            Item("A seven", "https://a.example/7", at(7)),
            Item("A nine", "https://a.example/9", at(9)),
            Item("A ten", "https://a.example/10", at(10)),
        ],
    )
    a_url = str(httpserver.url_for("/a.rss"))
    config = write_config(
        feeds=[{"url": b_url, "name": "Site B"}, {"url": a_url, "name": "Site A"}]
    )
    run(config, "fetch")

    late = run(config, "refs", "late", "--since", "2026-04-01")
    assert late.stdout.splitlines()[0::3] == [
        "2026-04-20  Site B: B eight",
        "2026-04-20  Site A: A seven",
    ]
    assert "first seen" in late.stdout and "after the export at" in late.stdout
    assert "2 late arrival(s) on 2026-04-20" in late.output

    # Re-rendered: the exported lines keep their order; the late ones follow, never lost.
    again = run(config, "digest", "--date", "2026-04-20")
    assert lines_of(again.stdout) == ["A nine", "A ten", "B eight", "A seven"]
    assert again.output.count("late arrival appended: ") == 2
    seven = "https://a.example/7"
    assert "was in no exported digest" in run(config, "refs", "digests", seven).output

    markdown = tmp_path / "2026-04-20.md"
    run(config, "digest", "--date", "2026-04-20", "--format", "markdown", "-o", str(markdown))
    assert "no late arrivals" in run(config, "refs", "late", "--since", "all").output
    assert lines_of(run(config, "digest", "--date", "2026-04-20").stdout) == [
        "A nine", "A ten", "B eight", "A seven",
    ]  # fmt: skip
    with sqlite3.connect(db_path) as conn:
        history = conn.execute(
            "SELECT digests.format, count(*) FROM digests JOIN digest_entries ON digest_id = id"
            " WHERE day = '2026-04-20' AND timezone = 'UTC' GROUP BY id ORDER BY id"
        ).fetchall()
    assert history == [("refs", 2), ("markdown", 4)]

    # Which digests held a story: matched by canonical URL.
    held = run(config, "refs", "digests", "https://a.example/10?utm_campaign=x").stdout
    assert held.count("2026-04-20  line 2 of ") == 2 and "line 2 of refs (UTC)" in held
    assert str(out) in held and str(markdown) in held and "Site A: A ten" in held
    held = run(config, "refs", "digests", seven + "#x").stdout
    assert held.startswith("2026-04-20  line 4 of markdown (UTC)") and "A seven" in held


def test_export_digest_logs_late_arrivals(
    one_day: tuple[Path, Served, Any],
    db_path: Path,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    config, a, _ = one_day
    utc = ZoneInfo("UTC")
    with Store.open(db_path) as store:
        export_digest(store, DAY, utc, tmp_path / "out", ["refs"])
        export_digest(store, DAY + timedelta(days=1), utc, tmp_path / "out", ["refs"])
    a.body = rss("Site A", "https://a.example/", [Item("A eleven", "https://a.example/11", at(11))])
    run(config, "fetch")
    with caplog.at_level(logging.WARNING, logger="aggregator.digest"):
        with Store.open(db_path) as store:  # the daemon exports the next day
            export_digest(store, DAY + timedelta(days=2), utc, tmp_path / "out", ["refs"])
    missing = [r.getMessage() for r in caplog.records if r.name == "aggregator.digest"]
    assert len(missing) == 1 and missing[0].startswith(
        "digest 2026-04-20: late arrival missing from its exported file"
    )
    assert "Site A: A eleven <https://a.example/11>" in missing[0]
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="aggregator.digest"):
        with Store.open(db_path) as store:  # exporting the day again includes it
            paths = export_digest(store, DAY, utc, tmp_path / "out", ["refs"])
    assert lines_of(paths[0].read_text()) == ["A nine", "A ten", "A eleven"]
    assert [r.getMessage()[:47] for r in caplog.records if r.name == "aggregator.digest"] == [
        "digest 2026-04-20: includes a late arrival: Sit"
    ]


def test_a_new_feeds_backlog_lands_on_its_own_days(
    httpserver: Any, write_config: Callable[..., Path], db_path: Path
) -> None:
    now = datetime.now(UTC)
    today = now.date()
    noon = datetime.combine(today, time(12), UTC)
    items = [
        Item(f"{n} days old", f"https://old.example/{n}", noon - timedelta(days=n))
        for n in (30, 3, 2, 1)
    ]
    midnight = datetime.combine(today, time(0), UTC)
    items.append(Item("Today", "https://old.example/0", max(now - timedelta(minutes=1), midnight)))
    url, _ = serve(
        httpserver, "/backlog.rss", rss("Old", "https://old.example/", items), "text/xml"
    )
    config = write_config(feeds=[{"url": url, "name": "Backlog"}])
    assert "5 new entries" in run(config, "fetch").output
    assert lines_of(run(config, "digest", "--date", today.isoformat()).stdout) == ["Today"]
    for n in (30, 3, 2, 1):
        day = (today - timedelta(days=n)).isoformat()
        assert run(config, "digest", "--date", day).stdout == (
            f"- ({n} days old, {day})[https://old.example/{n}]\n"
        )
    with sqlite3.connect(db_path) as conn:
        assert conn.execute("SELECT count(*) FROM entries WHERE dated != published").fetchone() == (
            0,
        )


# checking an article -------------------------------------------------------------------

ARTICLE = f"""# What quotas cost

The [Register's piece]({REG_STORY}?utm_source=newsletter) and [a pricing page]({PRICING})
are discussed below; see also [our about page](/about) and ![a chart](https://img.example/c.png).

```
- (Example in a code block, 2026-04-20)[https://invented.example/code]
```

## References

- ({REG_TITLE}, 2026-04-20)[{REG_STORY}]
- (AI quota inflation is a myth, 2026-04-20)[{REG_STORY}]
- (Blog post title, 2026-04-18)[{BLOG}]
- (AI quota inflation is no token effort. It's baked in, 2026-04-20)[{TRACKED}]
- (A story nobody wrote, 2026-04-20)[https://invented.example/story]
"""


def test_find_references_reads_ref_lines_and_markdown_links() -> None:
    found = [(r.line, r.kind, r.title, r.url) for r in find_references(ARTICLE)]
    assert found[:2] == [
        (3, "link", "Register's piece", f"{REG_STORY}?utm_source=newsletter"),
        (3, "link", "a pricing page", PRICING),
    ]
    assert [(line, kind) for line, kind, _, _ in found[2:]] == [(n, "ref") for n in range(12, 17)]
    assert not any("invented.example/code" in url or "img.example" in url for *_, url in found)


def test_titles_compare_ignoring_quote_style_case_and_spacing() -> None:
    assert same_title("It’s “fine” – really", 'it\'s  "fine" - Really')
    assert not same_title("It’s fine", "It is fine")


def test_since_accepts_durations_dates_and_all() -> None:
    now = at(12)
    assert since_moment("7d", now, ZoneInfo("UTC")) == now - timedelta(days=7)
    berlin_midnight = datetime(2026, 3, 31, 22, tzinfo=UTC)
    assert since_moment("2026-04-01", now, ZoneInfo("Europe/Berlin")) == berlin_midnight
    assert since_moment("all", now, ZoneInfo("UTC")) is None
    with pytest.raises(ValueError, match="duration like 7d"):
        since_moment("soon", now, ZoneInfo("UTC"))


def test_check_reports_each_reference_and_fails(cited: Path, tmp_path: Path) -> None:
    article = tmp_path / "article.md"
    article.write_text(ARTICLE, encoding="utf-8")
    result = run(cited, "refs", "check", str(article), code=1)
    assert result.stdout.splitlines() == [
        f"line 3: verified: ({REG_TITLE}, 2026-04-20) The Register",
        f"line 3: linked: {PRICING}: no stored entry is this story, but 3 entries link to it",
        f"line 12: verified: ({REG_TITLE}, 2026-04-20) The Register",
        f"line 13: MISMATCHED (title differs): {REG_STORY}",
        "    article: (AI quota inflation is a myth, 2026-04-20)",
        f"    stored:  ({REG_TITLE}, 2026-04-20) The Register <{REG_STORY}>",
        f"line 14: MISMATCHED (date differs): {BLOG}",
        "    article: (Blog post title, 2026-04-18)",
        f"    stored:  (Blog post title, 2026-04-20) Hacker News <{BLOG}>",
        f"line 15: verified: ({REG_TITLE}, 2026-04-20) The Register",
        "line 16: UNKNOWN: https://invented.example/story: never seen",
        "7 references: 3 verified, 2 mismatched, 1 unknown, 1 linked",
    ]

    document = json.loads(run(cited, "refs", "check", "--json", str(article), code=1).stdout)
    assert document["ok"] is False
    assert document["counts"] == {VERIFIED: 3, MISMATCHED: 2, UNKNOWN: 1, LINKED: 1}
    by_line = {(r["line"], r["kind"]): r for r in document["references"]}
    tracked = by_line[(15, "ref")]
    assert tracked["canonical_url"] == REG_STORY and tracked["status"] == VERIFIED
    assert tracked["url"].endswith("?utm_source=x&fbclid=y")
    wrong_date = by_line[(14, "ref")]
    assert wrong_date["differs"] == ["date"] and wrong_date["date"] == "2026-04-18"
    assert wrong_date["stored"]["date"] == "2026-04-20"
    assert by_line[(16, "ref")]["stored"] is None and by_line[(16, "ref")]["status"] == UNKNOWN

    clean = tmp_path / "clean.md"
    clean.write_text("\n".join(ARTICLE.splitlines()[11:12]) + "\n", encoding="utf-8")
    ok = run(cited, "refs", "check", str(clean))
    assert ok.stdout.splitlines()[-1] == "1 reference: 1 verified, 0 mismatched, 0 unknown"


def test_import_records_citations_and_replaces_them(
    cited: Path, tmp_path: Path, db_path: Path
) -> None:
    article = tmp_path / "article.md"
    article.write_text(ARTICLE, encoding="utf-8")
    result = run(cited, "refs", "import", str(article), "--name", "quotas")
    assert result.stdout.strip() == (
        "quotas: recorded 7 references: 3 verified, 2 mismatched, 1 unknown, 1 linked"
    )
    query = """
        SELECT citations.line, citations.title, citations.day, citations.url,
               citations.canonical_url, citations.status, feeds.name
        FROM citations JOIN articles ON articles.id = article_id
        LEFT JOIN entries ON entries.id = citations.entry_id
        LEFT JOIN feeds ON feeds.id = entries.feed_id
        WHERE articles.name = 'quotas' ORDER BY citations.id
    """
    with sqlite3.connect(db_path) as conn:
        rows = conn.execute(query).fetchall()
        article_row = conn.execute("SELECT id, name, path FROM articles").fetchall()
    assert article_row == [(1, "quotas", str(article.resolve()))]
    assert [(r[0], r[5], r[6]) for r in rows] == [
        (3, VERIFIED, "The Register"),
        (3, LINKED, None),
        (12, VERIFIED, "The Register"),
        (13, MISMATCHED, "The Register"),
        (14, MISMATCHED, "Hacker News"),
        (15, VERIFIED, "The Register"),
        (16, UNKNOWN, None),
    ]
    assert rows[4][1:5] == ("Blog post title", "2026-04-18", BLOG, BLOG)
    assert rows[5][3].endswith("fbclid=y") and rows[5][4] == REG_STORY
    assert rows[0][1:3] == ("Register's piece", None)

    article.write_text(ARTICLE.split("## References")[0], encoding="utf-8")
    run(cited, "refs", "import", str(article), "--name", "quotas")
    with sqlite3.connect(db_path) as conn:
        assert conn.execute(query).fetchall()[0][5] == VERIFIED
        assert conn.execute("SELECT count(*), min(article_id) FROM citations").fetchone() == (2, 1)


def test_retention_may_delete_cited_and_digested_entries(
    cited: Path, tmp_path: Path, db_path: Path
) -> None:
    article = tmp_path / "a.md"
    article.write_text(ARTICLE, encoding="utf-8")
    run(cited, "refs", "import", str(article))
    run(cited, "digest", "--date", "2026-04-20", "-o", str(tmp_path / "d.refs.md"))
    with Store.open(db_path) as store:
        removed = store.prune(datetime.now(UTC), 90, entry_days=1)
        assert removed["entries"] == 6
        assert store.rows("SELECT count(*) AS n FROM digest_entries") == [{"n": 0}]
        statuses = store.rows("SELECT status, entry_id FROM citations WHERE line = 12")
    assert statuses == [{"status": VERIFIED, "entry_id": None}]
