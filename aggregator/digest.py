"""A day's stories, one line each, and the formats they are written in."""

from __future__ import annotations

import csv
import html
import io
import json
import logging
import os
import re
import tempfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from aggregator.errors import ExportError
from aggregator.models import DigestEntry
from aggregator.store import Store, iso
from aggregator.urls import host_of

log = logging.getLogger(__name__)

UNTITLED = "Untitled"
# When a digest is exported, other days exported this recently are checked for late arrivals.
LATE_LOOKBACK = timedelta(days=7)
EXTENSIONS = {"refs": "refs.md", "markdown": "md", "json": "json", "csv": "csv", "html": "html"}
REF_LINE = re.compile(
    r"^\s*[-*] \((?P<title>.*), (?P<day>\d{4}-\d{2}-\d{2})\)\[(?P<url>[^\[\]\s]*)\]\s*$"
)


@dataclass(frozen=True, slots=True)
class RefLine:
    title: str
    day: date
    url: str
    line_number: int = 0


@dataclass(frozen=True, slots=True)
class LateArrival:
    """A story dated on an exported day that the day's last export did not hold: it
    usually arrived after that export."""

    entry: DigestEntry
    first_seen: datetime
    exported_at: datetime  # the day's last export


@dataclass(frozen=True, slots=True)
class DayDigest:
    """A day's lines as they are rendered now, and how they differ from its last export."""

    day: date
    entries: tuple[DigestEntry, ...]
    late: tuple[LateArrival, ...] = ()  # the lines appended since the last export
    exported_at: datetime | None = None


def day_bounds(day: date, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """The calendar day in `tz` as a half-open UTC interval."""
    start = datetime.combine(day, time(0), tz)
    end = datetime.combine(day + timedelta(days=1), time(0), tz)
    return start.astimezone(UTC), end.astimezone(UTC)


def yesterday(tz: ZoneInfo, now: datetime | None = None) -> date:
    return ((now or datetime.now(UTC)).astimezone(tz) - timedelta(days=1)).date()


def publisher_rank(row: dict[str, Any]) -> tuple[int, int, int, str, int]:
    """Which sighting of a story titles it: the feed served from the link's host, then a
    feed whose declared site is that host, then any; ties go by feeds.yaml order, so a
    feed claiming another site (and backdating a copy) cannot take over its stories."""
    link_host = host_of(row["canonical_url"])
    if link_host == host_of(row["feed_current_url"] or row["feed_url"]):
        level = 0
    elif link_host == host_of(row["site_url"]):
        level = 1
    else:
        level = 2
    active = 0 if row["feed_active"] else 1
    return (level, active, row["feed_position"] or 0, row["dated"], row["id"])


def _order(row: dict[str, Any]) -> tuple[int, int, str, int]:
    return (0 if row["feed_active"] else 1, row["feed_position"] or 0, row["dated"], row["id"])


def select_day(store: Store, day: date, tz: ZoneInfo) -> tuple[DigestEntry, ...]:
    """One entry per story dated on `day`: the same canonical URL from several feeds is one
    story, placed on the day of (and titled by) the sighting from the feed that published it.
    Entries without a web link cannot be cited and are left out."""
    return tuple(_digest_entry(row, others, tz) for row, others in _stories(store, day, tz))


def _stories(store: Store, day: date, tz: ZoneInfo) -> list[tuple[dict[str, Any], tuple[str, ...]]]:
    """select_day's rows, each with the names of the other feeds that carried its story."""
    start, end = day_bounds(day, tz)
    candidates = [r for r in store.entries_between(start, end) if r["canonical_url"]]
    sightings: dict[str, list[dict[str, Any]]] = {}
    for row in store.entries_for_urls(r["canonical_url"] for r in candidates):
        sightings.setdefault(row["canonical_url"], []).append(row)
    chosen = []
    first, last = iso(start), iso(end)
    for group in sightings.values():
        best = min(group, key=publisher_rank)
        if first <= best["dated"] < last:
            others = sorted({r["feed_name"] for r in group} - {best["feed_name"]})
            chosen.append((best, tuple(others)))
    chosen.sort(key=lambda pair: _order(pair[0]))
    return chosen


def _digest_entry(row: dict[str, Any], also_in: tuple[str, ...], tz: ZoneInfo) -> DigestEntry:
    dated = datetime.fromisoformat(row["dated"])
    published = datetime.fromisoformat(row["published"]) if row["published"] else None
    return DigestEntry(
        entry_id=row["id"],
        title=row["title"] or UNTITLED,  # stored as one clean line by parse
        url=row["url"],
        day=dated.astimezone(tz).date(),
        published=published,
        feed_name=row["feed_name"],
        feed_url=row["feed_url"],
        author=row["author"],
        summary=row["summary"],
        tags=tuple(json.loads(row["tags"] or "[]")),
        also_in=also_in,
    )


def compose_day(store: Store, day: date, tz: ZoneInfo) -> DayDigest:
    """The day's lines as they are rendered now. A day never exported is select_day. A day
    exported before keeps the lines of its last export in their order, so re-rendering it is
    stable and a line once published stays (unless its entry is gone or now dated on another
    day); stories that export did not hold follow, in select_day order: late arrivals."""
    fresh = _stories(store, day, tz)
    last = store.last_digest(day, tz.key)
    if last is None:
        return DayDigest(day, tuple(_digest_entry(row, others, tz) for row, others in fresh))
    exported_at = datetime.fromisoformat(last["generated_at"])
    start, end = (iso(moment) for moment in day_bounds(day, tz))
    kept = [
        row
        for row in store.digest_rows(last["id"])
        if row["canonical_url"] and start <= row["dated"] < end
    ]
    feeds: dict[str, set[str]] = {}
    for row in store.entries_for_urls(row["canonical_url"] for row in kept):
        feeds.setdefault(row["canonical_url"], set()).add(row["feed_name"])
    entries = [
        _digest_entry(row, tuple(sorted(feeds[row["canonical_url"]] - {row["feed_name"]})), tz)
        for row in kept
    ]
    held = {row["canonical_url"] for row in kept}
    late = []
    for row, others in fresh:
        if row["canonical_url"] not in held:
            entry = _digest_entry(row, others, tz)
            entries.append(entry)
            late.append(LateArrival(entry, datetime.fromisoformat(row["first_seen"]), exported_at))
    return DayDigest(day, tuple(entries), tuple(late), exported_at)


def late_arrivals(store: Store, tz: ZoneInfo, since: date | None = None) -> list[LateArrival]:
    """Every story dated on a day exported (since `since`) that the day's last export did not
    hold, oldest day first."""
    found: list[LateArrival] = []
    for day in store.exported_days(tz.key, since):
        found += compose_day(store, day, tz).late
    return found


# rendering ---------------------------------------------------------------------------


def ref_line(title: str, day: date, url: str) -> str:
    return f"- ({title}, {day.isoformat()})[{url}]"


def render_refs(entries: Sequence[DigestEntry], day: date) -> str:
    return "".join(ref_line(e.title, e.day, e.url) + "\n" for e in entries)


def _markdown_text(text: str) -> str:
    return re.sub(r"([\\\[\]*_`<>])", r"\\\1", text)


def render_markdown(entries: Sequence[DigestEntry], day: date) -> str:
    lines = [f"# {day.isoformat()}", ""]
    for e in entries:
        lines.append(f"- [{_markdown_text(e.title)}]({e.url}) — {_markdown_text(e.feed_name)}")
    return "\n".join(lines) + "\n"


def _as_dict(e: DigestEntry) -> dict[str, Any]:
    return {
        "title": e.title,
        "url": e.url,
        "date": e.day.isoformat(),
        "published": e.published.isoformat() if e.published else None,
        "feed": e.feed_name,
        "feed_url": e.feed_url,
        "author": e.author,
        "tags": list(e.tags),
        "also_in": list(e.also_in),
        "summary": e.summary,
    }


def render_json(entries: Sequence[DigestEntry], day: date) -> str:
    document = {"date": day.isoformat(), "entries": [_as_dict(e) for e in entries]}
    return json.dumps(document, ensure_ascii=False, indent=2) + "\n"


CSV_COLUMNS = ("title", "url", "date", "published", "feed", "author", "tags", "also_in")


def _csv_cell(value: Any) -> Any:
    """A feed's text starting with = + - @ would run as a formula in a spreadsheet: quote it
    as text the way spreadsheets understand (a leading apostrophe)."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def render_csv(entries: Sequence[DigestEntry], day: date) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for e in entries:
        row = _as_dict(e)
        row["tags"] = ", ".join(e.tags)
        row["also_in"] = ", ".join(e.also_in)
        writer.writerow([_csv_cell(row[c]) for c in CSV_COLUMNS])
    return out.getvalue()


def render_html(entries: Sequence[DigestEntry], day: date) -> str:
    items = "\n".join(
        f'<li><a href="{html.escape(e.url)}">{html.escape(e.title)}</a>'
        f" <small>{html.escape(e.feed_name)}, {e.day.isoformat()}</small></li>"
        for e in entries
    )
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>Digest {day.isoformat()}</title></head>\n<body>\n"
        f"<h1>{day.isoformat()}</h1>\n<ul>\n{items}\n</ul>\n</body></html>\n"
    )


RENDERERS: dict[str, Callable[[Sequence[DigestEntry], date], str]] = {
    "refs": render_refs,
    "markdown": render_markdown,
    "json": render_json,
    "csv": render_csv,
    "html": render_html,
}


def render(entries: Sequence[DigestEntry], day: date, fmt: str = "refs") -> str:
    return RENDERERS[fmt](entries, day)


def parse_refs(text: str) -> list[RefLine]:
    """Read reference lines back: `- (TITLE, YYYY-MM-DD)[URL]`, parsed from the right so
    titles may hold commas, parentheses and brackets."""
    found = []
    for number, line in enumerate(text.splitlines(), start=1):
        match = REF_LINE.match(line)
        if match is None:
            continue
        try:
            day = date.fromisoformat(match["day"])
        except ValueError:
            continue
        found.append(RefLine(match["title"], day, match["url"], number))
    return found


# files -------------------------------------------------------------------------------


def digest_path(directory: Path, day: date, fmt: str) -> Path:
    return directory / f"{day.isoformat()}.{EXTENSIONS[fmt]}"


def _umask() -> int:
    """The process's umask (read by setting it, so done once, at import, before threads)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


UMASK = _umask()


def write_atomic(path: Path, text: str) -> Path:
    """Write to a temporary file beside `path`, then rename: readers never see half a file."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
                handle.write(text)
            os.chmod(tmp, 0o666 & ~UMASK)  # mkstemp makes it 0600; be an ordinary file
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError as e:
        raise ExportError(str(path), "cannot write digest") from e
    return path


def write_digest(
    store: Store,
    composed: DayDigest,
    fmt: str,
    path: Path,
    tz: ZoneInfo,
    now: datetime | None = None,
) -> Path:
    """Render and write one digest file atomically, then record what it held (its export)."""
    written = write_atomic(path, render(composed.entries, composed.day, fmt))
    store.record_digest(
        composed.day,
        fmt,
        tz.key,
        now or datetime.now(UTC),
        str(written.resolve()),
        [entry.entry_id for entry in composed.entries],
    )
    return written


def export_digest(
    store: Store,
    day: date,
    tz: ZoneInfo,
    directory: Path,
    formats: Iterable[str],
    now: datetime | None = None,
) -> list[Path]:
    """Write the day's digest in each format and record the export. Logs the late arrivals it
    now includes, and those of the week's other exported days that their files still lack."""
    now = now or datetime.now(UTC)
    composed = compose_day(store, day, tz)
    for late in composed.late:
        log.warning("digest %s: includes a late arrival: %s", day, describe_late(late))
    paths = [
        write_digest(store, composed, fmt, digest_path(directory, day, fmt), tz, now)
        for fmt in formats
    ]
    for late in late_arrivals(store, tz, since=day - LATE_LOOKBACK):
        if late.entry.day != day:
            log.warning(
                "digest %s: late arrival missing from its exported file, re-export the day to"
                " include it: %s",
                late.entry.day,
                describe_late(late),
            )
    return paths


def describe_late(late: LateArrival) -> str:
    entry = late.entry
    return (
        f"{entry.feed_name}: {entry.title} <{entry.url}> first seen {iso(late.first_seen)},"
        f" after the export at {iso(late.exported_at)}"
    )
