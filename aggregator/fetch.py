"""HTTP only: conditional GET, timeouts, a size cap, redirects, politeness -> FetchResult."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit

import requests
import urllib3

from aggregator.errors import FetchError
from aggregator.models import FetchResult
from aggregator.urls import web_url

ACCEPT = (
    "application/atom+xml, application/rss+xml, application/rdf+xml, application/feed+json,"
    " application/xml;q=0.9, text/xml;q=0.9, application/json;q=0.8, */*;q=0.5"
)
REDIRECTS = (301, 302, 303, 307, 308)
PERMANENT_REDIRECTS = (301, 308)
CHUNK = 64 * 1024


@dataclass(frozen=True, slots=True)
class FetchOptions:
    user_agent: str
    connect_timeout: float = 10.0
    read_timeout: float = 30.0
    deadline: float = 60.0
    max_bytes: int = 10_000_000
    max_redirects: int = 5


class HostLimiter:
    """At most `per_host` requests to one host at once, across all threads."""

    def __init__(self, per_host: int) -> None:
        self.per_host = per_host
        self._lock = threading.Lock()
        self._slots: dict[str, threading.BoundedSemaphore] = {}

    @contextmanager
    def slot(self, url: str, wait: float | None = None) -> Iterator[None]:
        """Hold one of the host's slots; waiting longer than `wait` seconds (when the host's
        requests are stuck on a server that never finishes) is a FetchError."""
        host = (urlsplit(url).hostname or "").lower()
        with self._lock:
            semaphore = self._slots.setdefault(host, threading.BoundedSemaphore(self.per_host))
        if not semaphore.acquire(timeout=wait):
            raise FetchError(url, f"{host} still busy with {self.per_host} requests after "
                                  f"{wait:g}s; will try later")  # fmt: skip
        try:
            yield
        finally:
            semaphore.release()


_idle_sessions: queue.SimpleQueue[requests.Session] = queue.SimpleQueue()


@contextmanager
def pooled_session() -> Iterator[requests.Session]:
    """A keep-alive session for one fetch at a time (requests.Session is not thread-safe).
    Sessions outlive the worker threads of a round, so connections are reused across rounds;
    there are never more of them than fetches that ran at once."""
    try:
        session = _idle_sessions.get_nowait()
    except queue.Empty:
        session = requests.Session()
    try:
        yield session
    finally:
        _idle_sessions.put(session)


def _is_digits(text: str) -> bool:
    """ASCII 0-9 only: str.isdigit() also accepts "²", which int() rejects."""
    return text.isascii() and text.isdigit()


def retry_after(value: str | None, now: datetime) -> datetime | None:
    """Retry-After as a moment: delta-seconds or an HTTP date; None when absent or garbled."""
    if not value:
        return None
    value = value.strip()
    if _is_digits(value):
        try:
            return now + timedelta(seconds=int(value))
        except (ValueError, OverflowError):  # past what a datetime can hold
            return None
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def _read_body(
    response: requests.Response, url: str, options: FetchOptions, deadline_at: float
) -> bytes:
    max_bytes = options.max_bytes
    declared = response.headers.get("Content-Length", "").strip()
    if _is_digits(declared) and int(declared) > max_bytes:
        raise FetchError(url, f"response of {int(declared):,} bytes exceeds the cap of "
                              f"{max_bytes:,} bytes")  # fmt: skip
    chunks: list[bytes] = []
    size = 0
    while True:
        # read1 returns after a single read from the socket, so a server trickling a byte
        # at a time cannot hold us past the deadline (read(n) and iter_content(n) wait for
        # n bytes); each read still waits at most read_timeout. It decompresses, so the
        # cap holds for the body as parsed, not as sent, and urllib3 decompresses at most
        # CHUNK bytes at a time, so a gzip bomb stops at the cap.
        chunk = response.raw.read1(CHUNK, decode_content=True)
        if not chunk:
            break
        size += len(chunk)
        if size > max_bytes:
            raise FetchError(url, f"response exceeds the cap of {max_bytes:,} bytes")
        if time.monotonic() > deadline_at:
            raise FetchError(url, f"response took longer than the deadline of "
                                  f"{options.deadline:g}s")  # fmt: skip
        chunks.append(chunk)
    return b"".join(chunks)


def slot_wait(options: FetchOptions) -> float:
    """How long a request may queue for its host: long enough for a few slow requests
    ahead of it, bounded so that requests stuck on a hostile server cannot stall the rest."""
    return 3 * (options.deadline + options.read_timeout)


def fetch(
    url: str,
    options: FetchOptions,
    now: datetime,
    *,
    etag: str | None = None,
    last_modified: str | None = None,
    limiter: HostLimiter | None = None,
    session: requests.Session | None = None,
    on_start: Callable[[], None] | None = None,
) -> FetchResult:
    """GET `url` conditionally, following at most `max_redirects` http(s) redirects.

    Any HTTP status is returned; network failures, timeouts, oversized bodies and bad
    redirects raise FetchError. The deadline runs from when the host's slot is granted
    (then `on_start` is called), so waiting behind other requests to one host costs none
    of it.
    """
    if session is None:
        with pooled_session() as pooled:
            return fetch(url, options, now, etag=etag, last_modified=last_modified,
                         limiter=limiter, session=pooled, on_start=on_start)  # fmt: skip
    limiter = limiter or HostLimiter(2)
    headers = {"User-Agent": options.user_agent, "Accept": ACCEPT}
    if etag:
        headers["If-None-Match"] = etag
    if last_modified:
        headers["If-Modified-Since"] = last_modified
    started = deadline_at = 0.0
    current = url
    permanent = True
    for _ in range(options.max_redirects + 1):
        try:
            with limiter.slot(current, wait=slot_wait(options)):
                if not started:
                    started = time.monotonic()
                    deadline_at = started + options.deadline
                    if on_start is not None:
                        on_start()
                remaining = max(deadline_at - time.monotonic(), 0.1)
                timeout = (
                    min(options.connect_timeout, remaining),
                    min(options.read_timeout, remaining),
                )
                with session.get(
                    current, headers=headers, timeout=timeout, stream=True, allow_redirects=False
                ) as response:
                    status = response.status_code
                    location = response.headers.get("Location")
                    if status in REDIRECTS and location:
                        target = web_url(location, current)
                        if target is None:
                            raise FetchError(
                                url, f"redirect to a non-http(s) location {location!r}"
                            )
                        permanent = permanent and status in PERMANENT_REDIRECTS
                        current = target
                        continue
                    body = None
                    if 200 <= status < 300:
                        body = _read_body(response, url, options, deadline_at)
                    return FetchResult(
                        url=url,
                        final_url=current,
                        status=status,
                        headers={k.lower(): v for k, v in response.headers.items()},
                        body=body,
                        fetched_at=now,
                        elapsed_s=time.monotonic() - started,
                        permanent_url=current if permanent and current != url else None,
                    )
        # Connecting and reading the headers raise requests' exceptions; reading the body
        # from response.raw raises urllib3's.
        except (requests.Timeout, urllib3.exceptions.TimeoutError) as e:
            raise FetchError(url, f"timed out (connect {options.connect_timeout:g}s, "
                                  f"read {options.read_timeout:g}s)") from e  # fmt: skip
        except requests.ConnectionError as e:
            raise FetchError(url, "cannot connect") from e
        except urllib3.exceptions.DecodeError as e:
            raise FetchError(url, "cannot decompress the response") from e
        except urllib3.exceptions.ProtocolError as e:
            raise FetchError(url, "connection broken while reading the response") from e
        except (requests.RequestException, urllib3.exceptions.HTTPError) as e:
            raise FetchError(url, "request failed") from e
    raise FetchError(url, f"more than {options.max_redirects} redirects")
