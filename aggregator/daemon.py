"""`aggregator run`: APScheduler jobs, signals, a lock and a heartbeat.

Every job runs on one scheduler thread, so the daemon has exactly one writer. Per-feed
schedule state lives in the database, so a restart resumes where the last run stopped.
"""

from __future__ import annotations

import fcntl
import logging
import os
import signal
import socket
import threading
import traceback
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from types import FrameType
from typing import IO, Any

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler

from aggregator.config import Settings, load
from aggregator.digest import export_digest, late_arrivals
from aggregator.errors import AggregatorError, ConfigError
from aggregator.fetch import HostLimiter
from aggregator.rounds import poll_round
from aggregator.store import Store, iso

log = logging.getLogger("aggregator.daemon")

TICK_S = 1.0  # how often the poll job looks for due feeds (one indexed query)
HEARTBEAT_S = 10.0
MAINTENANCE_EVERY = timedelta(days=1)
CATCH_UP_DAYS = 7  # digests missed while the daemon was down, at most this far back


class LockError(AggregatorError):
    """Another daemon runs on this database."""

    exit_code = 75  # EX_TEMPFAIL: systemd's unit does not restart on it


class DaemonLock:
    """One daemon per database: an flock on `<database>.lock`, released by the kernel even
    when the process is killed, holding the owner's PID for the error message."""

    def __init__(self, database: Path) -> None:
        self.path = database.with_name(database.name + ".lock")
        self._handle: IO[str] | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(self.path, "a+", encoding="utf-8")  # noqa: SIM115 (held for the run)
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            owner = handle.read().strip() or "unknown"
            handle.close()
            database = self.path.with_suffix("")
            raise LockError(
                f"another `aggregator run` (PID {owner}) is already using {database}"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        self._handle = handle

    def held(self) -> bool:
        """Whether some process holds the lock now (without taking it for long)."""
        try:
            handle = open(self.path, encoding="utf-8")  # noqa: SIM115
        except FileNotFoundError:
            return False
        with handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return True
            fcntl.flock(handle, fcntl.LOCK_UN)
            return False

    def release(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None


def latest_due_digest_day(now: datetime, settings: Settings) -> date:
    """Yesterday once today's digest time has passed, else the day before."""
    local = now.astimezone(settings.tz)
    today = local.date()
    passed = local.time() >= settings.digest_time
    return today - timedelta(days=1 if passed else 2)


def days_to_export(
    last_exported: date | None, first_fetch: date | None, latest_due: date
) -> list[date]:
    """Days whose digest is due and not yet written, oldest first, at most CATCH_UP_DAYS."""
    if first_fetch is None:
        return []
    start = max(
        first_fetch, latest_due - timedelta(days=CATCH_UP_DAYS - 1),
        (last_exported + timedelta(days=1)) if last_exported else first_fetch,
    )  # fmt: skip
    return [start + timedelta(days=n) for n in range((latest_due - start).days + 1)]


class Daemon:
    def __init__(self, config_path: Path, database: str | None = None) -> None:
        self.config_path = config_path
        self.database = database
        self.settings = self._load()
        self.stop = threading.Event()
        self.reload_requested = threading.Event()
        self.limiter = HostLimiter(self.settings.per_host)
        self.lock = DaemonLock(self.settings.database)
        self.store: Store | None = None
        self.scheduler: BackgroundScheduler | None = None
        self._config_mtime = self._mtime()

    def _load(self) -> Settings:
        return load(self.config_path).with_database(self.database)

    def _mtime(self) -> float | None:
        try:
            return self.config_path.stat().st_mtime
        except OSError:
            return None

    # lifecycle -----------------------------------------------------------------------

    def run(self) -> int:
        self.lock.acquire()
        try:
            self.store = Store.connect(self.settings.database)
            now = datetime.now(UTC)
            self.store.sync_feeds(self.settings.feeds, now)
            self.store.daemon_started(os.getpid(), socket.gethostname(), str(self.config_path), now)
            log.info(
                "started: PID %d, %d feeds, database %s",
                os.getpid(),
                len(self.settings.feeds),
                self.settings.database,
            )
            self._start_scheduler()
            self._install_signals()
            while not self.stop.wait(1.0):
                if self._mtime() != self._config_mtime:
                    log.info("feeds.yaml changed on disk")
                    self.reload_requested.set()
                if self.reload_requested.is_set():
                    self.reload_requested.clear()
                    self._config_mtime = self._mtime()
                    self._submit(self.reload)
            self._shutdown()
        finally:
            self.lock.release()
        return 0

    def _install_signals(self) -> None:
        def stop(signum: int, frame: FrameType | None) -> None:
            log.info("received %s: stopping", signal.Signals(signum).name)
            self.stop.set()

        def reload(signum: int, frame: FrameType | None) -> None:
            log.info("received SIGHUP: reloading feeds.yaml")
            self.reload_requested.set()

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGHUP, reload)

    def _start_scheduler(self) -> None:
        scheduler = BackgroundScheduler(
            executors={"default": ThreadPoolExecutor(max_workers=1)},
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
            timezone=self.settings.tz,
        )
        logging.getLogger("apscheduler").setLevel(logging.ERROR)  # its skips are routine
        now = datetime.now(UTC)
        scheduler.add_job(self._guard(self.export_due_digests), "date", run_date=now,
                          id="digest-catch-up")  # fmt: skip
        scheduler.add_job(self._guard(self.maintenance_if_due), "date", run_date=now,
                          id="maintenance-catch-up")  # fmt: skip
        scheduler.add_job(self._guard(self.poll_due), "interval", seconds=TICK_S, id="poll",
                          next_run_time=now)  # fmt: skip
        scheduler.add_job(self._guard(self.beat), "interval", seconds=HEARTBEAT_S, id="beat")
        self._schedule_digest(scheduler)
        scheduler.add_job(self._guard(self.maintenance_if_due), "interval", hours=1,
                          id="maintenance")  # fmt: skip
        scheduler.start()
        self.scheduler = scheduler

    def _schedule_digest(self, scheduler: BackgroundScheduler) -> None:
        at = self.settings.digest_time
        scheduler.add_job(
            self._guard(self.export_due_digests),
            "cron",
            hour=at.hour,
            minute=at.minute,
            second=at.second,
            timezone=self.settings.tz,
            id="digest",
            replace_existing=True,
        )

    def _submit(self, job: Callable[[], None]) -> None:
        if self.scheduler is not None:
            self.scheduler.add_job(self._guard(job), "date", run_date=datetime.now(UTC))

    def _shutdown(self) -> None:
        if self.scheduler is not None:
            self.scheduler.shutdown(wait=True)
        if self.store is not None:
            try:
                self.store.daemon_update(stopped_at=iso(datetime.now(UTC)))
            except AggregatorError as e:
                log.error("could not record the stop: %s", e)
            self.store.close()
        log.info("stopped")

    def _guard(self, job: Callable[[], None]) -> Callable[[], None]:
        """The daemon's one broad except: log, record, and let the scheduler keep running."""

        def guarded() -> None:
            if self.stop.is_set():
                return
            try:
                job()
            except Exception as e:  # noqa: BLE001
                log.error("job %s failed: %s: %s", job.__name__, type(e).__name__, e)
                log.debug("%s", traceback.format_exc())

        guarded.__name__ = job.__name__
        return guarded

    # jobs ----------------------------------------------------------------------------

    def poll_due(self) -> None:
        assert self.store is not None
        now = datetime.now(UTC)
        due_at = self.store.next_due()
        if due_at is None or due_at > now:
            return
        states = self.store.feed_states(self.settings.feeds, now=now)
        if not states:
            return
        summary = poll_round(self.store, self.settings, states, now, self.limiter, stop=self.stop)
        if self.stop.is_set():
            log.info("round interrupted by stop; unfinished feeds stay due")
            return
        following = self.store.next_due()
        wait = f", next poll {iso(following)}" if following else ""
        log.info("round: %s%s", summary.line(), wait)
        done = datetime.now(UTC)
        self.store.daemon_update(
            beat_at=iso(done), last_round_at=iso(done), last_round=summary.line()
        )

    def beat(self) -> None:
        assert self.store is not None
        self.store.daemon_update(beat_at=iso(datetime.now(UTC)))

    def export_due_digests(self) -> None:
        """Write each due day's digest, then rewrite recent days that gained late arrivals
        (entries dated on a day whose file was already written), so none is left out."""
        assert self.store is not None
        settings = self.settings
        now = datetime.now(UTC)
        row = self.store.daemon_row() or {}
        last = date.fromisoformat(row["last_digest_day"]) if row.get("last_digest_day") else None
        first = self.store.first_fetch_day()
        first_day = None
        if first:
            first_day = datetime.fromisoformat(first).astimezone(settings.tz).date()
        latest = latest_due_digest_day(now, settings)
        for day in days_to_export(last, first_day, latest):
            self._export(day, now)
            self.store.daemon_update(last_digest_day=day.isoformat())
        since = latest - timedelta(days=CATCH_UP_DAYS - 1)
        for day in sorted(
            {late.entry.day for late in late_arrivals(self.store, settings.tz, since)}
        ):
            self._export(day, now, reason=" again, with late arrivals")

    def _export(self, day: date, now: datetime, reason: str = "") -> None:
        assert self.store is not None
        settings = self.settings
        paths = export_digest(
            self.store, day, settings.tz, settings.digest_dir, settings.digest_formats, now
        )
        log.info("digest %s written%s: %s", day, reason, ", ".join(str(p) for p in paths))

    def maintenance_if_due(self) -> None:
        assert self.store is not None
        now = datetime.now(UTC)
        row = self.store.daemon_row() or {}
        last = row.get("last_maintenance_at")
        if last and datetime.fromisoformat(last) > now - MAINTENANCE_EVERY:
            return
        removed = self.store.prune(now, self.settings.fetch_log_days, self.settings.entry_days)
        self.store.optimize()
        self.store.daemon_update(last_maintenance_at=iso(now))
        log.info(
            "maintenance: pruned %d fetch log rows, %d entries; optimized",
            removed["fetches"],
            removed["entries"],
        )

    def reload(self) -> None:
        """Re-read feeds.yaml; a bad new config is refused and the old one keeps running."""
        assert self.store is not None
        try:
            settings = self._load()
        except ConfigError as e:
            log.error("config reload refused, keeping the running config: %s", e)
            return
        if settings.database != self.settings.database:
            log.error("config reload: database cannot change while running; restart instead")
            return
        old = {f.url for f in self.settings.feeds}
        new = {f.url for f in settings.feeds}
        self.store.sync_feeds(settings.feeds, datetime.now(UTC))
        if settings.per_host != self.settings.per_host:
            self.limiter = HostLimiter(settings.per_host)
        self.settings = settings
        if self.scheduler is not None:
            self._schedule_digest(self.scheduler)
        log.info(
            "config reloaded: %d feeds (%d added, %d removed; removed feeds keep their entries)",
            len(new),
            len(new - old),
            len(old - new),
        )


def daemon_alive(row: Mapping[str, Any], database: Path, now: datetime | None = None) -> bool:
    """Alive: not stopped, and (on this host) its lock is held, which a PID reused by
    another process after a crash cannot fake; on another host, a fresh heartbeat."""
    if row.get("stopped_at") or not row.get("pid"):
        return False
    if row.get("host") == socket.gethostname():
        return DaemonLock(database).held()
    beat = row.get("beat_at")
    if not beat:
        return False
    now = now or datetime.now(UTC)
    return datetime.fromisoformat(str(beat)) > now - timedelta(seconds=3 * HEARTBEAT_S)


def run_daemon(config_path: Path, database: str | None) -> int:
    """Poll workers still waiting on a slow server are daemon threads holding no database
    state: the process exits without waiting for their timeouts."""
    return Daemon(config_path, database).run()
