"""The one step FeedState -> Outcome: fetch, parse, schedule. Never touches the database,
so it can run in threads, processes or on remote workers."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass, replace
from datetime import datetime

from aggregator.config import Settings
from aggregator.errors import FeedError, FetchError
from aggregator.fetch import FetchOptions, HostLimiter, fetch, retry_after
from aggregator.models import ErrorInfo, FeedState, FetchResult, Outcome, ParsedFeed
from aggregator.parse import parse
from aggregator.schedule import Policy, next_after_error, next_after_success


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


def poll(
    state: FeedState,
    options: PollOptions,
    now: datetime,
    limiter: HostLimiter | None = None,
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
        error = ErrorInfo.from_exception(e)
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
            ttl=parsed.ttl if parsed else None,
            publish_gap=state.publish_gap,
        ),
        body_hash=body_hash,
    )


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

    Once `stop` is set, nothing new starts and outcomes still in flight are dropped whole.
    """
    states = list(states)
    if not states:
        return
    pool = ThreadPoolExecutor(max_workers=min(workers, len(states)), thread_name_prefix="poll")
    pending = {pool.submit(poll, state, options, now, limiter) for state in states}
    try:
        while pending and not (stop and stop.is_set()):
            done, pending = wait(pending, timeout=0.25, return_when=FIRST_COMPLETED)
            for future in done:
                yield future.result()
    finally:
        pool.shutdown(wait=not (stop and stop.is_set()), cancel_futures=True)
