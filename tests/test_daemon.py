"""`aggregator run` as a real subprocess against a loopback origin; every wait is bounded."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import DATA

pytestmark = pytest.mark.timeout(90)

REGISTER = (DATA / "e2e" / "theregister.atom").read_bytes()


@dataclass
class Route:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    etag: str | None = None
    delay: float = 0.0


@dataclass
class Hit:
    path: str
    at: float
    if_none_match: str | None


class Origin:
    """A threaded HTTP server on 127.0.0.1 whose routes tests change while it runs."""

    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self.hits: list[Hit] = []
        self.lock = threading.Lock()
        origin = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                with origin.lock:
                    origin.hits.append(
                        Hit(self.path, time.monotonic(), self.headers.get("If-None-Match"))
                    )
                    route = origin.routes.get(self.path, Route(status=404, body=b"no"))
                if route.delay:
                    time.sleep(route.delay)
                if route.etag and self.headers.get("If-None-Match") == route.etag:
                    self.send_response(304)
                    self.send_header("ETag", route.etag)
                    self.end_headers()
                    return
                self.send_response(route.status)
                for key, value in route.headers.items():
                    self.send_header(key, value)
                if route.etag:
                    self.send_header("ETag", route.etag)
                self.send_header("Content-Length", str(len(route.body)))
                self.end_headers()
                try:
                    self.wfile.write(route.body)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"

    def count(self, path: str) -> int:
        with self.lock:
            return sum(1 for h in self.hits if h.path == path)

    def times(self, path: str) -> list[float]:
        with self.lock:
            return [h.at for h in self.hits if h.path == path]


@pytest.fixture
def origin() -> Iterator[Origin]:
    server = Origin()
    server.thread.start()
    yield server
    server.server.shutdown()
    server.server.server_close()


def wait_for(condition: Callable[[], Any], timeout: float = 15.0, what: str = "") -> Any:
    """Poll `condition` until truthy or `timeout` seconds pass (then fail)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout}s waiting for {what or condition}")


class Daemon:
    def __init__(self, config: Path, log: Path) -> None:
        self.config = config
        self.log_path = log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Daemon:
        self.handle = open(self.log_path, "ab")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "aggregator", "--log-level", "info", "--config",
             str(self.config), "run"],
            stdout=self.handle, stderr=subprocess.STDOUT,
        )  # fmt: skip
        return self

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def signal(self, sig: int) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, sig)

    def stop(self, timeout: float = 10.0) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=timeout)
        self.handle.close()
        return code

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self.handle.close()


@pytest.fixture
def daemons(tmp_path: Path) -> Iterator[Callable[[Path], Daemon]]:
    started: list[Daemon] = []

    def start(config: Path) -> Daemon:
        daemon = Daemon(config, tmp_path / f"daemon{len(started)}.log").start()
        started.append(daemon)
        return daemon

    yield start
    for daemon in started:
        daemon.kill()


def config(tmp_path: Path, feeds: list[dict[str, Any]], **settings: Any) -> Path:
    values = {
        "database": str(tmp_path / "aggregator.db"),
        "digest_dir": str(tmp_path / "digests"),
        "interval": "1s",
        "min_interval": "1s",
        "max_interval": "4s",
        "connect_timeout": "2s",
        "read_timeout": "5s",
        "deadline": "10s",
        **settings,
    }
    path = tmp_path / "feeds.yaml"
    path.write_text(yaml.safe_dump({"settings": values, "feeds": feeds}))
    return path


def query(tmp_path: Path, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    with sqlite3.connect(tmp_path / "aggregator.db", timeout=10) as conn:
        return conn.execute(sql, params).fetchall()


def entry_count(tmp_path: Path) -> int:
    """Entries stored so far; 0 while the daemon has not created the database yet."""
    try:
        return int(query(tmp_path, "SELECT count(*) FROM entries")[0][0])
    except sqlite3.OperationalError:
        return 0


def rss(items: list[tuple[str, datetime]]) -> bytes:
    body = "".join(
        f"<item><title>{title}</title><link>https://news.example/{title.replace(' ', '-')}"
        f"</link><guid>{title}</guid><pubDate>{format_datetime(when)}</pubDate></item>"
        for title, when in items
    )
    return (
        '<?xml version="1.0"?><rss version="2.0"><channel><title>News</title>'
        f"<link>https://news.example/</link>{body}</channel></rss>"
    ).encode()


def test_polls_repeatedly_with_validators_and_stops_cleanly(
    origin: Origin, daemons: Callable[[Path], Daemon], tmp_path: Path
) -> None:
    origin.routes["/reg"] = Route(body=REGISTER, etag='"r1"')
    daemon = daemons(config(tmp_path, [{"url": origin.url("/reg"), "name": "Reg"}]))
    wait_for(lambda: origin.count("/reg") >= 3, what="three polls")
    conditional = [h.if_none_match for h in origin.hits if h.path == "/reg"]
    assert conditional[0] is None and conditional[1:] == ['"r1"'] * (len(conditional) - 1)
    assert daemon.stop() == 0
    assert query(tmp_path, "SELECT count(*) FROM entries") == [(3,)]
    outcomes = dict(query(tmp_path, "SELECT outcome, count(*) FROM fetches GROUP BY outcome"))
    assert outcomes["ok"] == 1 and outcomes["not_modified"] >= 2
    assert "stopped" in daemon.log()
    status = subprocess.run(
        [sys.executable, "-m", "aggregator", "--config", str(daemon.config), "status"],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert status.returncode == 3 and "daemon: not running" in status.stdout


def test_second_instance_is_refused_naming_the_pid(
    origin: Origin, daemons: Callable[[Path], Daemon], tmp_path: Path
) -> None:
    origin.routes["/reg"] = Route(body=REGISTER)
    first = daemons(config(tmp_path, [{"url": origin.url("/reg"), "name": "Reg"}]))
    wait_for(lambda: origin.count("/reg") >= 1)
    second = daemons(first.config)
    assert second.proc is not None
    assert second.proc.wait(timeout=30) == 75
    assert f"PID {first.proc.pid if first.proc else ''}" in second.log()
    status = subprocess.run(
        [sys.executable, "-m", "aggregator", "--config", str(first.config), "status"],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert status.returncode == 0 and "daemon: running" in status.stdout
    assert first.stop() == 0


def test_honours_retry_after_and_stops_polling_a_gone_feed(
    origin: Origin, daemons: Callable[[Path], Daemon], tmp_path: Path
) -> None:
    origin.routes["/busy"] = Route(status=429, headers={"Retry-After": "3"})
    origin.routes["/gone"] = Route(status=410)
    origin.routes["/reg"] = Route(body=REGISTER, etag='"r"')
    daemon = daemons(config(tmp_path, [
        {"url": origin.url("/busy"), "name": "Busy"},
        {"url": origin.url("/gone"), "name": "Gone"},
        {"url": origin.url("/reg"), "name": "Reg"},
    ], max_interval="10s"))  # fmt: skip
    wait_for(lambda: origin.count("/busy") >= 2, timeout=20, what="a retry after 3 s")
    first, second = origin.times("/busy")[:2]
    assert second - first >= 2.9
    wait_for(lambda: origin.count("/reg") >= 4, what="other feeds keep going")
    assert origin.count("/gone") == 1
    assert daemon.stop() == 0
    assert query(tmp_path, "SELECT gone FROM feeds WHERE name = 'Gone'") == [(1,)]
    assert "is gone (HTTP 410)" in daemon.log()


def test_follows_a_permanent_redirect(
    origin: Origin, daemons: Callable[[Path], Daemon], tmp_path: Path
) -> None:
    origin.routes["/old"] = Route(status=301, headers={"Location": "/new"})
    origin.routes["/new"] = Route(body=REGISTER, etag='"n"')
    daemon = daemons(config(tmp_path, [{"url": origin.url("/old"), "name": "Moved"}]))
    wait_for(lambda: origin.count("/new") >= 3)
    assert origin.count("/old") == 1
    assert daemon.stop() == 0
    assert query(tmp_path, "SELECT current_url FROM feeds") == [(origin.url("/new"),)]
    assert "moved permanently to " + origin.url("/new") in daemon.log()


def test_writes_the_digest_on_schedule(
    origin: Origin, daemons: Callable[[Path], Daemon], tmp_path: Path
) -> None:
    now = datetime.now(UTC)
    at = now + timedelta(seconds=4)
    if at.date() != now.date():
        pytest.skip("too close to midnight UTC for a same-day schedule")
    yesterday = now - timedelta(days=1)
    origin.routes["/news"] = Route(body=rss([("Yesterday story", yesterday)]))
    path = config(tmp_path, [{"url": origin.url("/news"), "name": "News"}],
                  interval="1h", digest_time=at.strftime("%H:%M:%S"),
                  digest_formats=["refs", "json"])  # fmt: skip
    # The database has been fetching since the day before yesterday.
    subprocess.run([sys.executable, "-m", "aggregator", "--config", str(path), "fetch"],
                   check=True, capture_output=True, timeout=60)  # fmt: skip
    query(tmp_path, "UPDATE fetches SET fetched_at = ?", ((now - timedelta(days=2)).isoformat(),))
    daemon = daemons(path)
    day = yesterday.date().isoformat()
    refs = tmp_path / "digests" / f"{day}.refs.md"
    time.sleep(1)
    assert not refs.exists(), "written before its time"
    wait_for(refs.exists, timeout=20, what="the digest file")
    assert refs.read_text() == (
        f"- (Yesterday story, {day})[https://news.example/Yesterday-story]\n"
    )
    assert (tmp_path / "digests" / f"{day}.json").exists()
    assert not list((tmp_path / "digests").glob(".*.tmp"))
    assert daemon.stop() == 0


def test_catches_up_digests_missed_while_down(
    origin: Origin, daemons: Callable[[Path], Daemon], tmp_path: Path
) -> None:
    now = datetime.now(UTC)
    origin.routes["/news"] = Route(body=rss([("Old story", now - timedelta(days=2))]))
    path = config(tmp_path, [{"url": origin.url("/news"), "name": "News"}], interval="1h",
                  digest_time="00:00")  # fmt: skip
    subprocess.run([sys.executable, "-m", "aggregator", "--config", str(path), "fetch"],
                   check=True, capture_output=True, timeout=60)  # fmt: skip
    query(tmp_path, "UPDATE fetches SET fetched_at = ?", ((now - timedelta(days=3)).isoformat(),))
    daemon = daemons(path)
    days = [(now - timedelta(days=n)).date().isoformat() for n in (3, 2, 1)]
    files = [tmp_path / "digests" / f"{d}.refs.md" for d in days]
    wait_for(lambda: all(f.exists() for f in files), what="three caught-up digests")
    assert "Old story" in files[1].read_text() and files[0].read_text() == ""
    assert daemon.stop() == 0


def test_reloads_on_sighup_and_refuses_a_bad_config(
    origin: Origin, daemons: Callable[[Path], Daemon], tmp_path: Path
) -> None:
    origin.routes["/a"] = Route(body=REGISTER, etag='"a"')
    origin.routes["/b"] = Route(body=rss([("B story", datetime.now(UTC))]), etag='"b"')
    feed_a = {"url": origin.url("/a"), "name": "A"}
    feed_b = {"url": origin.url("/b"), "name": "B"}
    path = config(tmp_path, [feed_a])
    daemon = daemons(path)
    wait_for(lambda: origin.count("/a") >= 1)
    config(tmp_path, [feed_b])  # A removed, B added
    daemon.signal(signal.SIGHUP)
    wait_for(lambda: origin.count("/b") >= 2, what="the new feed polled")
    polls_of_a = origin.count("/a")
    time.sleep(2.5)
    assert origin.count("/a") == polls_of_a, "a removed feed is still polled"
    assert query(tmp_path, "SELECT active, count(entries.id) FROM feeds JOIN entries"
                 " ON entries.feed_id = feeds.id WHERE feeds.name = 'A'") == [(0, 3)]  # fmt: skip

    path.write_text("settings: {interval: never}\nfeeds: []\n")
    daemon.signal(signal.SIGHUP)
    wait_for(lambda: "config reload refused" in daemon.log(), what="the refusal")
    before = origin.count("/b")
    wait_for(lambda: origin.count("/b") > before, what="the old config still running")
    assert daemon.stop() == 0


def test_sigterm_during_a_slow_fetch_exits_promptly(
    origin: Origin, daemons: Callable[[Path], Daemon], tmp_path: Path
) -> None:
    origin.routes["/slow"] = Route(body=REGISTER, delay=8)
    origin.routes["/fast"] = Route(body=rss([("Fast story", datetime.now(UTC))]))
    daemon = daemons(config(tmp_path, [
        {"url": origin.url("/slow"), "name": "Slow"},
        {"url": origin.url("/fast"), "name": "Fast"},
    ]))  # fmt: skip
    wait_for(lambda: origin.count("/slow") >= 1)
    wait_for(lambda: entry_count(tmp_path) == 1)
    started = time.monotonic()
    assert daemon.stop(timeout=10) == 0
    assert time.monotonic() - started < 5
    assert query(tmp_path, "SELECT title FROM entries") == [("Fast story",)]


def test_kill_9_mid_round_loses_and_duplicates_nothing(
    origin: Origin, daemons: Callable[[Path], Daemon], tmp_path: Path
) -> None:
    now = datetime.now(UTC)
    feeds = []
    for n in range(6):
        items = [(f"Story {n}-{i}", now - timedelta(minutes=i)) for i in range(20)]
        origin.routes[f"/f{n}"] = Route(body=rss(items), delay=0.3 * n)
        feeds.append({"url": origin.url(f"/f{n}"), "name": f"F{n}"})
    path = config(tmp_path, feeds)
    first = daemons(path)
    wait_for(lambda: entry_count(tmp_path) >= 20)
    first.kill()  # SIGKILL while the slower feeds are still in flight
    status = subprocess.run(
        [sys.executable, "-m", "aggregator", "--config", str(path), "status"],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert status.returncode == 3 and "daemon: not running" in status.stdout  # no stop row
    second = daemons(path)
    wait_for(lambda: entry_count(tmp_path) == 120, timeout=30)
    assert second.stop() == 0
    assert query(tmp_path, "PRAGMA integrity_check") == [("ok",)]
    per_feed = query(tmp_path, "SELECT feed_id, count(*), count(DISTINCT title) FROM entries"
                     " GROUP BY feed_id")  # fmt: skip
    assert [(n, titles) for _, n, titles in per_feed] == [(20, 20)] * 6


def test_late_arrivals_are_written_into_their_day_on_the_next_digest_run(
    origin: Origin, daemons: Callable[[Path], Daemon], tmp_path: Path
) -> None:
    now = datetime.now(UTC)
    yesterday = now - timedelta(days=1)
    day = yesterday.date().isoformat()
    origin.routes["/news"] = Route(body=rss([("On time", yesterday.replace(hour=1))]))
    path = config(tmp_path, [{"url": origin.url("/news"), "name": "News"}],
                  digest_time="00:00")  # fmt: skip
    subprocess.run([sys.executable, "-m", "aggregator", "--config", str(path), "fetch"],
                   check=True, capture_output=True, timeout=60)  # fmt: skip
    query(tmp_path, "UPDATE fetches SET fetched_at = ?", ((now - timedelta(days=2)).isoformat(),))
    refs = tmp_path / "digests" / f"{day}.refs.md"
    first = daemons(path)
    wait_for(refs.exists, what="yesterday's digest")
    assert "On time" in refs.read_text() and "Late" not in refs.read_text()
    origin.routes["/news"] = Route(body=rss([
        ("On time", yesterday.replace(hour=1)), ("Late", yesterday.replace(hour=2)),
    ]))  # fmt: skip
    wait_for(lambda: entry_count(tmp_path) == 2, what="the late entry stored")
    assert first.stop() == 0
    second = daemons(path)
    wait_for(lambda: "Late" in refs.read_text(), what="the day rewritten")
    assert [line.split(",")[0] for line in refs.read_text().splitlines()] == [
        "- (On time", "- (Late",
    ]  # fmt: skip
    assert second.stop() == 0
    assert "with late arrivals" in second.log()


def test_two_writers_at_once_wait_for_each_other(
    origin: Origin, daemons: Callable[[Path], Daemon], tmp_path: Path
) -> None:
    """`aggregator fetch` while the daemon polls: both write, neither fails on a lock."""
    now = datetime.now(UTC)
    feeds = []
    for n in range(30):
        origin.routes[f"/w{n}"] = Route(body=rss([(f"W{n}-{i}", now - timedelta(minutes=i))
                                                  for i in range(10)]))  # fmt: skip
        feeds.append({"url": origin.url(f"/w{n}"), "name": f"W{n}"})
    path = config(tmp_path, feeds)
    daemon = daemons(path)
    wait_for(lambda: entry_count(tmp_path) > 0)
    runs = [
        subprocess.Popen(
            [sys.executable, "-m", "aggregator", "--config", str(path), "fetch"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        for _ in range(3)
    ]
    manual = [(run.wait(timeout=60), *run.communicate(timeout=10)) for run in runs]
    assert [code for code, _, _ in manual] == [0, 0, 0], [err for _, _, err in manual]
    assert all("30 feeds: " in out and " 0 failed" in out for _, out, _ in manual)
    assert daemon.stop() == 0
    assert "ERROR" not in daemon.log() and "locked" not in daemon.log()
    assert entry_count(tmp_path) == 300


def test_reloads_when_feeds_yaml_changes_on_disk_and_prunes_old_log_rows(
    origin: Origin, daemons: Callable[[Path], Daemon], tmp_path: Path
) -> None:
    origin.routes["/a"] = Route(body=REGISTER, etag='"a"')
    origin.routes["/b"] = Route(body=REGISTER, etag='"b"')
    path = config(tmp_path, [{"url": origin.url("/a"), "name": "A"}], fetch_log_days=30)
    subprocess.run([sys.executable, "-m", "aggregator", "--config", str(path), "fetch"],
                   check=True, capture_output=True, timeout=60)  # fmt: skip
    old = (datetime.now(UTC) - timedelta(days=31)).isoformat()
    query(tmp_path, "UPDATE fetches SET fetched_at = ?", (old,))
    daemon = daemons(path)
    wait_for(lambda: "maintenance: pruned 1 fetch log rows" in daemon.log(), what="pruning")
    time.sleep(1.1)  # a new mtime, even on file systems with one-second resolution
    config(tmp_path, [{"url": origin.url("/a"), "name": "A"}, {"url": origin.url("/b"),
                                                                "name": "B"}])  # fmt: skip
    wait_for(lambda: origin.count("/b") >= 1, what="the feed added on disk")
    assert "feeds.yaml changed on disk" in daemon.log()
    assert daemon.stop() == 0
