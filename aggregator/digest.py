"""A day's stories, one line each, and the formats they are written in."""

from __future__ import annotations

import csv
import html
import io
import json
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
from aggregator.html import one_line
from aggregator.models import DigestEntry
from aggregator.store import Store, iso
from aggregator.urls import host_of, strip_tracking

UNTITLED = "Untitled"
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


def day_bounds(day: date, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """The calendar day in `tz` as a half-open UTC interval."""
    start = datetime.combine(day, time(0), tz)
    end = datetime.combine(day + timedelta(days=1), time(0), tz)
    return start.astimezone(UTC), end.astimezone(UTC)


def yesterday(tz: ZoneInfo, now: datetime | None = None) -> date:
    return ((now or datetime.now(UTC)).astimezone(tz) - timedelta(days=1)).date()


def _publisher_rank(row: dict[str, Any]) -> tuple[int, str, int]:
    """Prefer the sighting from the feed whose site hosts the link, then the earliest."""
    link_host = host_of(row["canonical_url"])
    feed_hosts = {host_of(row["site_url"]), host_of(row["feed_url"])}
    return (0 if link_host in feed_hosts else 1, row["dated"], row["feed_position"] or 0)


def _order(row: dict[str, Any]) -> tuple[int, int, str, int]:
    return (0 if row["feed_active"] else 1, row["feed_position"] or 0, row["dated"], row["id"])


def select_day(store: Store, day: date, tz: ZoneInfo) -> tuple[DigestEntry, ...]:
    """One entry per story dated on `day`: the same canonical URL from several feeds is one
    story, placed on the day of (and titled by) the sighting from the feed that published it.
    Entries without a web link cannot be cited and are left out."""
    start, end = day_bounds(day, tz)
    candidates = [r for r in store.entries_between(start, end) if r["canonical_url"]]
    sightings: dict[str, list[dict[str, Any]]] = {}
    for row in store.entries_for_urls(r["canonical_url"] for r in candidates):
        sightings.setdefault(row["canonical_url"], []).append(row)
    chosen = []
    for group in sightings.values():
        best = min(group, key=_publisher_rank)
        if iso(start) <= best["dated"] < iso(end):
            others = sorted({r["feed_name"] for r in group} - {best["feed_name"]})
            chosen.append((best, tuple(others)))
    chosen.sort(key=lambda pair: _order(pair[0]))
    return tuple(_digest_entry(row, others, tz) for row, others in chosen)


def _digest_entry(row: dict[str, Any], also_in: tuple[str, ...], tz: ZoneInfo) -> DigestEntry:
    dated = datetime.fromisoformat(row["dated"])
    published = datetime.fromisoformat(row["published"]) if row["published"] else None
    return DigestEntry(
        entry_id=row["id"],
        title=one_line(row["title"]) or UNTITLED,
        url=strip_tracking(row["url"]),
        day=dated.astimezone(tz).date(),
        published=published,
        feed_name=row["feed_name"],
        feed_url=row["feed_url"],
        author=row["author"],
        summary=row["summary"],
        tags=tuple(json.loads(row["tags"] or "[]")),
        also_in=also_in,
    )


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


def render_csv(entries: Sequence[DigestEntry], day: date) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for e in entries:
        row = _as_dict(e)
        row["tags"] = ", ".join(e.tags)
        row["also_in"] = ", ".join(e.also_in)
        writer.writerow([row[c] for c in CSV_COLUMNS])
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


def write_atomic(path: Path, text: str) -> Path:
    """Write to a temporary file beside `path`, then rename: readers never see half a file."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
                handle.write(text)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError as e:
        raise ExportError(str(path), "cannot write digest") from e
    return path


def export_digest(
    store: Store, day: date, tz: ZoneInfo, directory: Path, formats: Iterable[str]
) -> list[Path]:
    entries = select_day(store, day, tz)
    return [
        write_atomic(digest_path(directory, day, fmt), render(entries, day, fmt)) for fmt in formats
    ]
