"""Reference tracking: which URLs the feeds cite, which digests held a story, and checking
an article's references against the stored entries.

Store queries go through `Store`; everything else here is a pure function of their rows."""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from aggregator.config import parse_duration
from aggregator.digest import UNTITLED, LateArrival, day_bounds, parse_refs, publisher_rank
from aggregator.html import one_line
from aggregator.models import Citation
from aggregator.store import Store
from aggregator.urls import canonical, web_url

VERIFIED = "verified"  # a stored entry has this URL, and the title and date cited
MISMATCHED = "mismatched"  # a stored entry has this URL, with another title or date
UNKNOWN = "unknown"  # the URL was never seen
LINKED = "linked"  # no entry has this URL, but entries link to it: seen, not verifiable
STATUSES = (VERIFIED, MISMATCHED, UNKNOWN, LINKED)
FAILING = frozenset({MISMATCHED, UNKNOWN})


def since_moment(text: str, now: datetime, tz: ZoneInfo) -> datetime | None:
    """`7d`, `12h` (that long before now), `2026-04-01` (the start of that day in `tz`) or
    `all` (None). Raises ValueError for anything else."""
    if text.strip().lower() == "all":
        return None
    try:
        return day_bounds(date.fromisoformat(text.strip()), tz)[0]
    except ValueError:
        pass
    try:
        return now - parse_duration(text)
    except ValueError:
        raise ValueError(
            f"expected a duration like 7d, a date like 2026-04-01 or all, got {text!r}"
        ) from None


def _local(moment: datetime, tz: ZoneInfo) -> str:
    return moment.astimezone(tz).strftime("%Y-%m-%d %H:%M")


# who cites what ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Citer:
    """One entry citing a URL."""

    entry_id: int
    feed_name: str
    title: str | None
    url: str | None  # the citing entry's own link
    dated: datetime
    how: str  # "link": its HTML links to the URL; "story": its own link is the URL
    text: str | None = None  # the link's anchor text


@dataclass(frozen=True, slots=True)
class Cited:
    """A URL and the entries that cite it."""

    url: str  # canonical
    title: str | None  # the story's title, when a stored entry is that story
    feeds: int  # distinct feeds citing it
    citers: tuple[Citer, ...]


def _citer(row: dict[str, Any]) -> Citer:
    return Citer(
        entry_id=row["entry_id"],
        feed_name=row["feed_name"],
        title=one_line(row["title"]),
        url=row["entry_url"],
        dated=datetime.fromisoformat(row["dated"]),
        how=row["how"],
        text=row["text"],
    )


def _story_titles(store: Store, urls: Iterable[str]) -> dict[str, str]:
    """The title of each URL's story as a digest would give it (its publisher's sighting)."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for row in store.entries_for_urls(urls):
        groups.setdefault(row["canonical_url"], []).append(row)
    return {
        url: one_line(min(rows, key=publisher_rank)["title"]) or UNTITLED
        for url, rows in groups.items()
    }


def most_cited(
    store: Store, since: datetime | None, min_feeds: int = 2, limit: int = 20
) -> list[Cited]:
    """The URLs cited by the most distinct feeds in entries dated since `since`, with who
    cited them and when. An entry that links out to another site's story (an aggregator)
    cites it; duplicate links in one entry count once."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for row in store.most_cited(since, min_feeds, limit):
        groups.setdefault(row["url"], []).append(row)
    titles = _story_titles(store, groups)
    return [
        Cited(url, titles.get(url), rows[0]["feeds"], tuple(_citer(r) for r in rows))
        for url, rows in groups.items()
    ]


def who_cites(store: Store, url: str) -> Cited:
    """The entries citing `url`, matched by canonical URL (tracking parameters ignored)."""
    key = canonical(url)
    citers = tuple(_citer(row) for row in store.citing(key))
    feeds = len({c.feed_name for c in citers})
    return Cited(key, _story_titles(store, [key]).get(key), feeds, citers)


def _citer_line(citer: Citer, tz: ZoneInfo) -> str:
    line = f"    {_local(citer.dated, tz)}  {citer.feed_name}: {citer.title or UNTITLED}"
    if citer.how == "link" and citer.text:
        line += f" (link text: {citer.text})"
    return line


def cited_report(cited: Cited, tz: ZoneInfo) -> list[str]:
    """`N feeds  URL`, the story's title when known, then one line per citing entry."""
    plural = "s" if cited.feeds != 1 else ""
    lines = [f"{cited.feeds} feed{plural}  {cited.url}"]
    if cited.title:
        lines.append(f"    = {cited.title}")
    lines += [_citer_line(c, tz) for c in cited.citers]
    return lines


# digest history ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Appearance:
    """One exported digest that held a story."""

    day: date
    format: str
    timezone: str
    generated_at: datetime
    path: str | None
    position: int  # its line in the digest, from 1
    title: str
    feed_name: str


def appearances(store: Store, url: str) -> list[Appearance]:
    """Every exported digest that held this story (any sighting of its canonical URL)."""
    return [
        Appearance(
            day=date.fromisoformat(row["day"]),
            format=row["format"],
            timezone=row["timezone"],
            generated_at=datetime.fromisoformat(row["generated_at"]),
            path=row["path"],
            position=row["position"],
            title=one_line(row["title"]) or UNTITLED,
            feed_name=row["feed_name"],
        )
        for row in store.digests_with(canonical(url))
    ]


def appearance_line(a: Appearance, tz: ZoneInfo) -> str:
    return (
        f"{a.day.isoformat()}  line {a.position} of {a.format} ({a.timezone}), exported"
        f" {_local(a.generated_at, tz)}  {a.path or '-'}\n    {a.feed_name}: {a.title}"
    )


def late_report(late: LateArrival, tz: ZoneInfo) -> list[str]:
    e = late.entry
    return [
        f"{e.day.isoformat()}  {e.feed_name}: {e.title}",
        f"    {e.url}",
        f"    first seen {_local(late.first_seen, tz)}, after the export at"
        f" {_local(late.exported_at, tz)}",
    ]


# checking an article -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Reference:
    """A reference as an article writes it."""

    line: int
    url: str
    title: str | None = None
    day: date | None = None
    kind: str = "ref"  # "ref": a `- (TITLE, YYYY-MM-DD)[URL]` line; "link": [text](url)


@dataclass(frozen=True, slots=True)
class Stored:
    """The stored sighting of a story that a reference was matched to."""

    entry_id: int
    title: str
    day: date
    url: str
    feed_name: str


@dataclass(frozen=True, slots=True)
class Checked:
    reference: Reference
    canonical_url: str | None  # None when the URL is not an absolute http(s) URL
    status: str
    stored: Stored | None = None
    differs: tuple[str, ...] = ()  # "title", "date"
    linked_from: int = 0  # entries whose HTML links to the URL

    @property
    def failed(self) -> bool:
        return self.status in FAILING

    @property
    def citation(self) -> Citation:
        r = self.reference
        return Citation(
            line=r.line,
            url=r.url,
            canonical_url=self.canonical_url,
            status=self.status,
            title=r.title,
            day=r.day,
            entry_id=self.stored.entry_id if self.stored else None,
        )


_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_CODE_SPAN = re.compile(r"(`+).*?\1")
# [text](url) or [text](<url> "title"), not ![image](src); one level of brackets in the
# text and of parentheses in the URL (Wikipedia's).
_MARKDOWN_LINK = re.compile(
    r"(?<!!)\[(?P<text>[^\[\]]*(?:\[[^\[\]]*\][^\[\]]*)*)\]"
    r"\(\s*(?P<url><[^<>\n]*>|[^\s()<>]*(?:\([^\s()]*\)[^\s()<>]*)*)"
    r"(?:\s+(?:\"[^\"]*\"|'[^']*'|\([^()]*\)))?\s*\)"
)
_QUOTES = str.maketrans({"‘": "'", "’": "'", "‚": "'", "“": '"', "”": '"', "„": '"',
                         "–": "-", "—": "-"})  # fmt: skip


def _prose(text: str) -> list[str]:
    """The article's lines with fenced code blocks blanked out (line numbers hold)."""
    lines: list[str] = []
    fence: str | None = None
    for line in text.splitlines():
        match = _FENCE.match(line)
        if fence is None and match:
            fence = match.group(1)
        elif fence is not None and match and match.group(1)[0] == fence[0]:
            fence = None if len(match.group(1)) >= len(fence) else fence
        elif fence is None:
            lines.append(line)
            continue
        lines.append("")
    return lines


def find_references(text: str) -> list[Reference]:
    """Every `- (TITLE, YYYY-MM-DD)[URL]` line and every Markdown link to an absolute http(s)
    URL, in the order they appear; code blocks and code spans are not references."""
    lines = _prose(text)
    found = [
        Reference(r.line_number, r.url, r.title, r.day, "ref") for r in parse_refs("\n".join(lines))
    ]
    ref_lines = {r.line for r in found}
    for number, line in enumerate(lines, start=1):
        if number in ref_lines or "](" not in line:
            continue
        line = _CODE_SPAN.sub(lambda m: " " * len(m.group()), line)
        for match in _MARKDOWN_LINK.finditer(line):
            url = match["url"].strip("<>").strip()
            if web_url(url) == url:
                found.append(Reference(number, url, one_line(match["text"]), None, "link"))
    return sorted(found, key=lambda r: r.line)


def same_title(a: str, b: str) -> bool:
    """Titles compared ignoring case, spacing, and the style of quotes and dashes."""

    def key(text: str) -> str:
        return " ".join(unicodedata.normalize("NFKC", text).translate(_QUOTES).casefold().split())

    return key(a) == key(b)


def _stored(row: dict[str, Any], tz: ZoneInfo) -> Stored:
    return Stored(
        entry_id=row["id"],
        title=one_line(row["title"]) or UNTITLED,
        day=datetime.fromisoformat(row["dated"]).astimezone(tz).date(),
        url=row["url"],
        feed_name=row["feed_name"],
    )


def _differences(reference: Reference, stored: Stored) -> tuple[str, ...]:
    found = []
    if reference.kind == "ref" and not same_title(reference.title or "", stored.title):
        found.append("title")
    if reference.day is not None and reference.day != stored.day:
        found.append("date")
    return tuple(found)


def match(
    reference: Reference,
    canonical_url: str | None,
    sightings: Sequence[dict[str, Any]],
    linked_from: int,
    tz: ZoneInfo,
) -> Checked:
    """Check one reference against the stored sightings of its URL: verified when one of
    them has the title and date cited; else mismatched, against the closest sighting."""
    if canonical_url is None or not sightings:
        status = LINKED if canonical_url and linked_from else UNKNOWN
        return Checked(reference, canonical_url, status, linked_from=linked_from)

    def closeness(row: dict[str, Any]) -> tuple[int, bool, tuple[int, int, int, str, int]]:
        differs = _differences(reference, _stored(row, tz))
        return (len(differs), "title" in differs, publisher_rank(row))

    stored = _stored(min(sightings, key=closeness), tz)
    differs = _differences(reference, stored)
    status = MISMATCHED if differs else VERIFIED
    return Checked(reference, canonical_url, status, stored, differs, linked_from)


def check_references(store: Store, references: Sequence[Reference], tz: ZoneInfo) -> list[Checked]:
    keys = [canonical(r.url) if web_url(r.url) else None for r in references]
    wanted = [key for key in keys if key]
    sightings: dict[str, list[dict[str, Any]]] = {}
    for row in store.entries_for_urls(wanted):
        sightings.setdefault(row["canonical_url"], []).append(row)
    links = store.link_counts(wanted)
    return [
        match(r, key, sightings.get(key or "", []), links.get(key or "", 0), tz)
        for r, key in zip(references, keys, strict=True)
    ]


def check_article(store: Store, text: str, tz: ZoneInfo) -> list[Checked]:
    return check_references(store, find_references(text), tz)


def import_article(
    store: Store, name: str, path: str | None, text: str, tz: ZoneInfo, now: datetime
) -> list[Checked]:
    """Check an article and record its citations under `name`, replacing an earlier import."""
    checked = check_article(store, text, tz)
    store.import_article(name, path, now, [c.citation for c in checked])
    return checked


def counts(checked: Iterable[Checked]) -> dict[str, int]:
    found = dict.fromkeys(STATUSES, 0)
    for c in checked:
        found[c.status] += 1
    return found


def summary_line(checked: Sequence[Checked]) -> str:
    n = counts(checked)
    parts = ", ".join(f"{n[s]} {s}" for s in STATUSES if n[s] or s != LINKED)
    plural = "s" if len(checked) != 1 else ""
    return f"{len(checked)} reference{plural}: {parts}"


def _as_written(r: Reference) -> str:
    if r.kind == "link":
        return f"[{r.title or ''}]({r.url})"
    return f"({r.title}, {r.day.isoformat() if r.day else '?'})"


def _differ(differs: Sequence[str]) -> str:
    return " and ".join(differs) + (" differ" if len(differs) > 1 else " differs")


def check_report(checked: Sequence[Checked]) -> list[str]:
    """One line per reference (three for a mismatch: what the article says, what is stored),
    then the counts."""
    lines = []
    for c in checked:
        r, s = c.reference, c.stored
        where = f"line {r.line}"
        if c.status == VERIFIED and s is not None:
            lines.append(f"{where}: verified: ({s.title}, {s.day.isoformat()}) {s.feed_name}")
        elif c.status == MISMATCHED and s is not None:
            lines += [
                f"{where}: MISMATCHED ({_differ(c.differs)}): {r.url}",
                f"    article: {_as_written(r)}",
                f"    stored:  ({s.title}, {s.day.isoformat()}) {s.feed_name} <{s.url}>",
            ]
        elif c.status == LINKED:
            plural = "entry links" if c.linked_from == 1 else "entries link"
            lines.append(
                f"{where}: linked: {r.url}: no stored entry is this story, but"
                f" {c.linked_from} {plural} to it"
            )
        else:
            lines.append(f"{where}: UNKNOWN: {r.url}: never seen")
    lines.append(summary_line(checked))
    return lines


def check_json(article: str, checked: Sequence[Checked]) -> str:
    """The check as JSON, for machines: `ok` is false when any reference failed."""
    references = []
    for c in checked:
        r, s = c.reference, c.stored
        references.append(
            {
                "line": r.line,
                "kind": r.kind,
                "title": r.title,
                "date": r.day.isoformat() if r.day else None,
                "url": r.url,
                "canonical_url": c.canonical_url,
                "status": c.status,
                "differs": list(c.differs),
                "stored": None
                if s is None
                else {
                    "entry_id": s.entry_id,
                    "title": s.title,
                    "date": s.day.isoformat(),
                    "url": s.url,
                    "feed": s.feed_name,
                },
                "linked_from": c.linked_from,
            }
        )
    document = {
        "article": article,
        "ok": not any(c.failed for c in checked),
        "counts": counts(checked),
        "references": references,
    }
    return json.dumps(document, ensure_ascii=False, indent=2)
