"""The command line: parse arguments, call the modules, print."""

from __future__ import annotations

import functools
import logging
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, Concatenate, ParamSpec, TypeVar

import click

from aggregator import __version__
from aggregator import refs as references
from aggregator.config import DIGEST_FORMATS, Settings, config_path, load
from aggregator.daemon import LockError, daemon_alive, run_daemon
from aggregator.digest import (
    compose_day,
    describe_late,
    late_arrivals,
    render,
    write_digest,
    yesterday,
)
from aggregator.errors import AggregatorError
from aggregator.fetch import HostLimiter
from aggregator.rounds import poll_round
from aggregator.store import Store

P = ParamSpec("P")
R = TypeVar("R")


@dataclass
class Context:
    config: str | None
    database: str | None

    def settings(self) -> Settings:
        return load(config_path(self.config)).with_database(self.database)


def with_settings(
    command: Callable[Concatenate[Settings, P], R],
) -> Callable[P, R]:
    """Load and validate feeds.yaml before the command runs; AggregatorError -> exit 1."""

    @functools.wraps(command)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        context = click.get_current_context().find_object(Context)
        assert context is not None
        try:
            return command(context.settings(), *args, **kwargs)
        except AggregatorError as e:
            raise click.ClickException(str(e)) from e

    return wrapper


@click.group()
@click.version_option(__version__, prog_name="aggregator")
@click.option(
    "--config",
    "config",
    envvar="AGGREGATOR_CONFIG",
    type=click.Path(dir_okay=False),
    help="feeds.yaml to use. Default: ./feeds.yaml (env AGGREGATOR_CONFIG).",
)
@click.option(
    "--db",
    "database",
    envvar="AGGREGATOR_DB",
    type=click.Path(dir_okay=False),
    help="SQLite database. Default: settings.database (env AGGREGATOR_DB).",
)
@click.option(
    "--log-level",
    type=click.Choice(["debug", "info", "warning", "error"], case_sensitive=False),
    default="warning",
    show_default=True,
)
@click.pass_context
def cli(ctx: click.Context, config: str | None, database: str | None, log_level: str) -> None:
    """Aggregate RSS, Atom and JSON feeds into one SQLite file and daily reference lists."""
    logging.basicConfig(
        level=log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    ctx.obj = Context(config=config, database=database)


@contextmanager
def _progress(total: int) -> Iterator[Callable[[], None]]:
    if sys.stderr.isatty() and total > 1:
        with click.progressbar(length=total, label="Fetching", file=sys.stderr) as bar:
            yield lambda: bar.update(1)
    else:
        yield lambda: None


@cli.command()
@with_settings
def fetch(settings: Settings) -> None:
    """Poll every feed in feeds.yaml once, concurrently, and store new entries."""
    now = datetime.now(UTC)
    with Store.open(settings.database) as store:
        store.sync_feeds(settings.feeds, now)
        states = [s for s in store.feed_states(settings.feeds) if not s.gone]
        gone = len(settings.feeds) - len(states)
        with _progress(len(states)) as advance:
            summary = poll_round(
                store,
                settings,
                states,
                now,
                HostLimiter(settings.per_host),
                on_outcome=lambda outcome, applied: advance(),
                log_problems=False,
            )
    for line in summary.failures:
        click.echo(f"failed: {line}", err=True)
    for line in summary.notices:
        click.echo(line, err=True)
    note = f" ({gone} gone, not polled)" if gone else ""
    click.echo(summary.line() + note)


@cli.command()
@click.option(
    "--date", "day", type=click.DateTime(["%Y-%m-%d"]), help="Day to list. Default: yesterday."
)
@click.option(
    "--format", "fmt", type=click.Choice(DIGEST_FORMATS), default="refs", show_default=True
)
@click.option(
    "--output", "-o", type=click.Path(dir_okay=False, path_type=Path), help="Write to a file."
)
@with_settings
def digest(settings: Settings, day: datetime | None, fmt: str, output: Path | None) -> None:
    """Print (or write) one day's reference list: one line per story. Writing a file records
    the export; a day exported before keeps its order, late arrivals are appended."""
    chosen: date = day.date() if day else yesterday(settings.tz)
    with Store.open(settings.database) as store:
        composed = compose_day(store, chosen, settings.tz)
        if output is not None:
            output = write_digest(store, composed, fmt, output, settings.tz)
    for late in composed.late:
        click.echo(f"late arrival appended: {describe_late(late)}", err=True)
    if output is None:
        click.echo(render(composed.entries, chosen, fmt), nl=False)
    else:
        click.echo(output)


@cli.command()
@click.argument("query")
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1, 1000))
@with_settings
def search(settings: Settings, query: str, limit: int) -> None:
    """Full-text search over titles and summaries, best matches first."""
    if not query.strip():
        raise click.UsageError("QUERY is empty: give one or more words to look for")
    with Store.open(settings.database) as store:
        rows = store.search(query, limit)
    for row in rows:
        day = (row["dated"] or "")[:10]
        click.echo(f"{day}  {row['feed']}: {row['title'] or '(untitled)'}\n    {row['url'] or ''}")
    if not rows:
        click.echo(f"no entries match {query!r}", err=True)


def _when(value: str | None) -> str:
    return value[:16].replace("T", " ") if value else "never"


@cli.command()
@with_settings
def feeds(settings: Settings) -> None:
    """Each feed's health: last fetch, status, error, entry count, next fetch."""
    with Store.open(settings.database) as store:
        store.sync_feeds(settings.feeds, datetime.now(UTC))
        rows = store.feed_health()
    for row in rows:
        if not row["active"]:
            state = "removed from feeds.yaml"
        elif row["gone"]:
            state = "GONE (410): no longer polled"
        elif row["last_error"]:
            state = f"FAILING x{row['error_count']}: {row['last_error']}"
        elif row["last_fetch_at"]:
            state = f"ok (HTTP {row['last_status']})"
        else:
            state = "not fetched yet"
        click.echo(f"{row['name']}  <{row['url']}>")
        moved = f"  moved to {row['current_url']}" if row["current_url"] else ""
        click.echo(
            f"    {state}; last fetch {_when(row['last_fetch_at'])}, "
            f"{row['entries']} entries, next {_when(row['next_fetch_at'])}{moved}"
        )


@cli.command()
@click.pass_obj
def run(context: Context) -> None:
    """Run as a daemon: poll each feed on its schedule and write each day's digest.

    SIGHUP (or a change to feeds.yaml) reloads the feeds; SIGTERM and SIGINT stop cleanly.
    """
    try:
        code = run_daemon(config_path(context.config), context.database)
    except LockError as e:
        click.echo(f"Error: {e}", err=True)
        sys.exit(LockError.exit_code)
    except AggregatorError as e:
        raise click.ClickException(str(e)) from e
    sys.exit(code)


@cli.command()
@with_settings
def status(settings: Settings) -> None:
    """Is the daemon alive, when did it last poll, which feeds fail, what is due next.

    Exits 3 when no daemon is running.
    """
    with Store.open(settings.database) as store:
        daemon = store.daemon_row()
        feeds = store.feed_health()
    alive = daemon is not None and daemon_alive(daemon, settings.database)
    if daemon is None:
        click.echo("daemon: never started on this database")
    elif alive:
        click.echo(
            f"daemon: running (PID {daemon['pid']} on {daemon['host']}), "
            f"since {_when(daemon['started_at'])}, last heartbeat {_when(daemon['beat_at'])}"
        )
    else:
        click.echo(f"daemon: not running (last stopped {_when(daemon['stopped_at'])})")
    if daemon is not None:
        click.echo(f"last round: {_when(daemon['last_round_at'])}: {daemon['last_round'] or '-'}")
        click.echo(f"last digest written: {daemon['last_digest_day'] or 'none yet'}")
    active = [f for f in feeds if f["active"]]
    failing = [f for f in active if f["last_error"]]
    click.echo(f"feeds: {len(active)} active, {len(failing)} failing")
    for feed in failing:
        click.echo(f"  FAILING x{feed['error_count']} {feed['name']}: {feed['last_error']}")
    for feed in active:
        due = "never (gone)" if feed["gone"] else _when(feed["next_fetch_at"])
        click.echo(f"  next {due}  {feed['name']}")
    if not alive:
        sys.exit(3)


@cli.command()
@with_settings
def stats(settings: Settings) -> None:
    """Counts of feeds, entries, stories, links and fetches."""
    with Store.open(settings.database) as store:
        numbers: dict[str, Any] = store.stats()
    for key, value in numbers.items():
        click.echo(f"{key}: {value if value is not None else '-'}")


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8001, show_default=True, type=click.IntRange(1, 65535))
@with_settings
def serve(settings: Settings, host: str, port: int) -> None:
    """Browse, search and query the database in Datasette, with the packaged metadata."""
    from aggregator.browse import serve as serve_datasette  # Datasette loads only here

    click.echo(f"Serving {settings.database} at http://{host}:{port}/", err=True)
    serve_datasette(settings.database, host, port)


# references ----------------------------------------------------------------------------


@cli.group()
def refs() -> None:
    """Reference tracking: who cites what, digest history, checking an article."""


SINCE_HELP = "A duration before now (7d, 12h), a date (2026-04-01) or all."


def _since(text: str, settings: Settings) -> datetime | None:
    try:
        return references.since_moment(text, datetime.now(UTC), settings.tz)
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint="'--since'") from e


def _read_article(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as e:
        raise click.ClickException(f"{path}: cannot read the article: {e}") from e


ARTICLE = click.Path(exists=True, dir_okay=False, path_type=Path)


@refs.command("top")
@click.option("--since", default="7d", show_default=True, help=SINCE_HELP)
@click.option("--min-feeds", default=2, show_default=True, type=click.IntRange(1))
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1, 1000))
@with_settings
def refs_top(settings: Settings, since: str, min_feeds: int, limit: int) -> None:
    """URLs cited by the most distinct feeds, with who cited them and when."""
    moment = _since(since, settings)
    with Store.open(settings.database) as store:
        found = references.most_cited(store, moment, min_feeds, limit)
    for cited in found:
        click.echo("\n".join(references.cited_report(cited, settings.tz)))
    if not found:
        click.echo(f"no URL cited by {min_feeds} or more feeds (since: {since})", err=True)


@refs.command("who")
@click.argument("url")
@with_settings
def refs_who(settings: Settings, url: str) -> None:
    """Entries that cite URL, matched by canonical URL (tracking parameters don't matter)."""
    with Store.open(settings.database) as store:
        cited = references.who_cites(store, url)
    if cited.citers:
        click.echo("\n".join(references.cited_report(cited, settings.tz)))
    else:
        click.echo(f"no entry cites {cited.url}", err=True)


@refs.command("digests")
@click.argument("url")
@with_settings
def refs_digests(settings: Settings, url: str) -> None:
    """Exported digests that held the story at URL, with its line in each."""
    with Store.open(settings.database) as store:
        found = references.appearances(store, url)
    for appearance in found:
        click.echo(references.appearance_line(appearance, settings.tz))
    if not found:
        click.echo(f"{url} was in no exported digest", err=True)


@refs.command("late")
@click.option("--since", default="30d", show_default=True, help=SINCE_HELP)
@with_settings
def refs_late(settings: Settings, since: str) -> None:
    """Stories dated on an exported day that its last export did not hold."""
    moment = _since(since, settings)
    first_day = moment.astimezone(settings.tz).date() if moment else None
    with Store.open(settings.database) as store:
        found = late_arrivals(store, settings.tz, first_day)
    for late in found:
        click.echo("\n".join(references.late_report(late, settings.tz)))
    if found:
        days = sorted({late.entry.day.isoformat() for late in found})
        click.echo(
            f"{len(found)} late arrival(s) on {', '.join(days)}; export a day again to include"
            f" them: aggregator digest --date {days[0]} --output FILE",
            err=True,
        )
    else:
        click.echo("no late arrivals", err=True)


@refs.command("check")
@click.argument("article", type=ARTICLE)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@with_settings
def refs_check(settings: Settings, article: Path, as_json: bool) -> None:
    """Check an article's references against the stored entries. Exits 1 when any is
    unknown or mismatched."""
    text = _read_article(article)
    with Store.open(settings.database) as store:
        checked = references.check_article(store, text, settings.tz)
    if as_json:
        click.echo(references.check_json(str(article), checked))
    else:
        click.echo("\n".join(references.check_report(checked)))
    if any(c.failed for c in checked):
        click.get_current_context().exit(1)


@refs.command("import")
@click.argument("article", type=ARTICLE)
@click.option("--name", help="Name to record it under (default: the file name); again replaces.")
@with_settings
def refs_import(settings: Settings, article: Path, name: str | None) -> None:
    """Record an article's citations (tables articles, citations) for Datasette."""
    text = _read_article(article)
    name = name or article.stem
    with Store.open(settings.database) as store:
        checked = references.import_article(
            store, name, str(article.resolve()), text, settings.tz, datetime.now(UTC)
        )
    click.echo(f"{name}: recorded {references.summary_line(checked)}")
