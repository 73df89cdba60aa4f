"""The one step FeedState -> Outcome: fetch, parse, schedule. Never touches the database,
so it can run in threads, processes or on remote workers."""

from __future__ import annotations

import hashlib
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from datetime import datetime
from traceback import format_exception

from aggregator.config import Settings
from aggregator.errors import FeedError, FetchError
from aggregator.fetch import FetchOptions, HostLimiter, fetch, retry_after
from aggregator.models import ErrorInfo, FeedState, FetchResult, Outcome, ParsedFeed
from aggregator.parse import parse
from aggregator.schedule import Policy, next_after_error, next_after_success

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class PollOptions:
    fetch: FetchOptions
    policy: Policy

    @classmethod
    def from_settings(cls, settings: Settings) -> PollOptions:
        return cls(
            fetch=FetchOptions(
                user_agent=settings.user_agent,
                connect_timeout=settings.connect_timeout.total_seconds(),
                read_timeout=settings.read_timeout.total_seconds(),
                deadline=settings.deadline.total_seconds(),
                max_bytes=settings.max_bytes,
                max_redirects=settings.max_redirects,
            ),
            policy=Policy(min_interval=settings.min_interval, max_interval=settings.max_interval),
        )

    def for_feed(self, state: FeedState) -> FetchOptions:
        spec = state.spec
        options = self.fetch
        if spec.timeout is not None:
            options = replace(options, deadline=spec.timeout)
        if spec.max_bytes is not None:
            options = replace(options, max_bytes=spec.max_bytes)
        return options


def _http_error(result: FetchResult, now: datetime) -> FetchError:
    reason = {404: "Not Found", 410: "Gone", 429: "Too Many Requests", 503: "Unavailable"}
    text = reason.get(result.status, "")
    return FetchError(
        result.url,
        f"HTTP {result.status} {text}".rstrip(),
        status=result.status,
        retry_after=retry_after(result.headers.get("retry-after"), now),
    )


def failed(
    state: FeedState,
    exc: BaseException,
    options: PollOptions,
    now: datetime,
    result: FetchResult | None = None,
) -> Outcome:
    """The outcome of a failed poll: the error recorded, the next try backed off."""
    error = ErrorInfo.from_exception(exc)
    spec = state.spec
    return Outcome(
        state=state,
        fetch=result,
        parsed=None,
        error=error,
        next_fetch_at=next_after_error(
            spec.url,
            spec.interval,
            state.error_count + 1,
            now,
            options.policy,
            retry_after=error.retry_after,
        ),
        body_hash=state.body_hash,
    )


def poll(
    state: FeedState,
    options: PollOptions,
    now: datetime,
    limiter: HostLimiter | None = None,
    on_start: Callable[[], None] | None = None,
) -> Outcome:
    """Fetch and parse one feed. Feed problems come back as Outcome.error, not exceptions."""
    spec = state.spec
    result: FetchResult | None = None
    try:
        result = fetch(
            state.fetch_url,
            options.for_feed(state),
            now,
            etag=state.etag,
            last_modified=state.last_modified,
            limiter=limiter,
            on_start=on_start,
        )
        if result.status >= 300 and not result.not_modified:
            raise _http_error(result, now)
        parsed: ParsedFeed | None = None
        body_hash = state.body_hash
        if result.body is not None:
            body_hash = hashlib.sha256(result.body).hexdigest()
            if body_hash != state.body_hash:
                parsed = parse(result.body, result.headers, result.final_url)
    except FeedError as e:
        return failed(state, e, options, now, result)
    return Outcome(
        state=state,
        fetch=result,
        parsed=parsed,
        error=None,
        next_fetch_at=next_after_success(
            spec.url,
            spec.interval,
            now,
            options.policy,
            headers=result.headers,
            ttl=parsed.ttl if parsed else state.ttl,
            publish_gap=state.publish_gap,
            window=parsed.window if parsed else state.window,
        ),
        body_hash=body_hash,
    )


def watchdog_limit(options: FetchOptions) -> float:
    """How long one poll may take before it is abandoned: the request's deadline, one more
    read, and as long again (at least 5 s) for parsing. urllib3's timeouts are per read, so
    a server that trickles its headers could otherwise hold a worker for ever."""
    return options.deadline + options.read_timeout + max(options.deadline, 5.0)


def _guarded_poll(
    state: FeedState,
    options: PollOptions,
    now: datetime,
    limiter: HostLimiter,
    on_start: Callable[[], None],
) -> Outcome:
    """poll(), with a bug in our code for one feed recorded as that feed's error (and backed
    off), instead of ending the round and retrying the feed at once, for ever."""
    try:
        return poll(state, options, now, limiter, on_start)
    except Exception as e:  # noqa: BLE001
        log.error("%s: poll failed: %s", state.spec.url, "".join(format_exception(e)))
        return failed(state, e, options, now)


def poll_many(
    states: Iterable[FeedState],
    options: PollOptions,
    now: datetime,
    *,
    workers: int,
    limiter: HostLimiter,
    stop: threading.Event | None = None,
) -> Iterator[Outcome]:
    """Poll feeds concurrently; yield each outcome as it completes, for the single writer.

    A poll that outlives its watchdog limit is given up: its feed gets a FetchError outcome
    and a fresh worker takes its place. Once `stop` is set, nothing new starts and outcomes
    still in flight are dropped whole. Workers are daemon threads: one stuck on a server
    never keeps the process alive.
    """
    todo: queue.SimpleQueue[FeedState] = queue.SimpleQueue()
    done: queue.SimpleQueue[Outcome] = queue.SimpleQueue()
    pending: dict[str, FeedState] = {}
    for state in states:
        pending[state.spec.url] = state
        todo.put(state)
    started: dict[str, float] = {}
    lock = threading.Lock()

    def stopping() -> bool:
        return stop is not None and stop.is_set()

    def work() -> None:
        while not stopping():
            try:
                state = todo.get_nowait()
            except queue.Empty:
                return
            url = state.spec.url

            def start(url: str = url) -> None:  # the host's slot is ours: the clock runs
                with lock:
                    started[url] = time.monotonic()

            done.put(_guarded_poll(state, options, now, limiter, start))

    def spawn() -> None:
        threading.Thread(target=work, name="poll", daemon=True).start()

    for _ in range(min(workers, len(pending))):
        spawn()
    while pending and not stopping():
        try:
            outcome = done.get(timeout=0.25)
        except queue.Empty:
            with lock:
                overdue = [
                    url
                    for url, began in started.items()
                    if url in pending
                    and time.monotonic() - began > watchdog_limit(options.for_feed(pending[url]))
                ]
            for url in overdue:
                state = pending.pop(url)
                limit = watchdog_limit(options.for_feed(state))
                error = FetchError(url, f"no complete response within {limit:g}s; given up")
                spawn()  # the stuck worker is lost to this round; replace it
                yield failed(state, error, options, now)
            continue
        if pending.pop(outcome.spec.url, None) is not None:  # not given up meanwhile
            yield outcome
