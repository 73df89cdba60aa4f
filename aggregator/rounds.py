"""One poll round: the due feeds fetched concurrently, each outcome stored as it arrives.

Shared by `aggregator fetch` and the daemon, so both record and count alike.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from aggregator.config import Settings
from aggregator.errors import StoreError
from aggregator.fetch import HostLimiter
from aggregator.models import ApplyResult, FeedState, Outcome
from aggregator.poll import PollOptions, poll_many
from aggregator.store import Store

log = logging.getLogger("aggregator.round")


@dataclass
class RoundSummary:
    feeds: int = 0
    ok: int = 0
    not_modified: int = 0
    failed: int = 0
    new_entries: int = 0
    failures: list[str] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)

    def line(self) -> str:
        return (
            f"{self.feeds} feeds: {self.ok} ok, {self.not_modified} not modified, "
            f"{self.failed} failed; {self.new_entries} new entries"
        )


def describe(outcome: Outcome, applied: ApplyResult) -> str:
    """One log line per feed event: which feed, what happened, why."""
    spec, fetch = outcome.spec, outcome.fetch
    status = f" status={fetch.status}" if fetch else ""
    if outcome.error:
        return f"feed={spec.name!r} failed{status}: {outcome.error.message}"
    if outcome.unchanged:
        return f"feed={spec.name!r} not modified{status}"
    return (
        f"feed={spec.name!r} ok{status} new={applied.new_entries} updated={applied.updated_entries}"
    )


def notices(outcome: Outcome) -> list[str]:
    """What the user should act on: a feed that moved for good, or one that is gone."""
    fetch, error, name = outcome.fetch, outcome.error, outcome.spec.name
    found = []
    if fetch is not None and fetch.permanent_url and fetch.permanent_url != outcome.state.url:
        found.append(
            f"feed={name!r} moved permanently to {fetch.permanent_url}; now polling the new"
            " URL, update feeds.yaml"
        )
    if error is not None and error.status == 410:
        found.append(f"feed={name!r} is gone (HTTP 410): no longer polled; remove it from"
                     " feeds.yaml")  # fmt: skip
    return found


def poll_round(
    store: Store,
    settings: Settings,
    states: list[FeedState],
    now: datetime,
    limiter: HostLimiter,
    *,
    stop: threading.Event | None = None,
    on_outcome: Callable[[Outcome, ApplyResult], None] | None = None,
    log_problems: bool = True,
) -> RoundSummary:
    """Poll `states` and store each outcome as it arrives. Failures and notices are logged
    as warnings, or (log_problems=False, for a command that prints the summary itself)
    only at info level, so they are not shown twice."""
    warn = logging.WARNING if log_problems else logging.INFO
    summary = RoundSummary(feeds=len(states))
    outcomes = poll_many(
        states,
        PollOptions.from_settings(settings),
        now,
        workers=settings.workers,
        limiter=limiter,
        stop=stop,
    )
    for outcome in outcomes:
        try:
            applied = store.apply(outcome)
        except StoreError as e:
            # Nothing of this feed was written: it stays due and is polled again.
            summary.failed += 1
            summary.failures.append(f"{outcome.spec.name}: not stored: {e}")
            log.log(warn, "feed=%r not stored, will be polled again: %s", outcome.spec.name, e)
            continue
        summary.new_entries += applied.new_entries
        if outcome.error:
            summary.failed += 1
            summary.failures.append(f"{outcome.spec.name}: {outcome.error.message}")
            log.log(warn, describe(outcome, applied))
        elif outcome.unchanged:
            summary.not_modified += 1
            log.info(describe(outcome, applied))
        else:
            summary.ok += 1
            log.info(describe(outcome, applied))
        for notice in notices(outcome):
            summary.notices.append(notice)
            log.log(warn, notice)
        if on_outcome is not None:
            on_outcome(outcome, applied)
    return summary
