"""When to fetch a feed next: a pure function of its state, the outcome and `now`."""

from __future__ import annotations

import re
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime

MINUTE = timedelta(minutes=1)
DAY = timedelta(days=1)
MAX_HINT_S = 365 * 86400  # a hint past a year is noise; callers cap it lower still
_MAX_AGE = re.compile(r"(?:^|,)\s*(?:s-)?max-age\s*=\s*\"?(\d+)", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Policy:
    min_interval: timedelta = 5 * MINUTE  # politeness floor for every feed
    max_interval: timedelta = DAY
    jitter: float = 0.1  # up to this fraction of the interval is added, fixed per feed

    def floor(self, configured: timedelta) -> timedelta:
        return max(configured, self.min_interval)


def cache_hint(headers: Mapping[str, str], now: datetime) -> timedelta | None:
    """How long the server says the response stays fresh (Cache-Control max-age, Expires)."""
    match = _MAX_AGE.search(headers.get("cache-control", ""))
    if match:
        return timedelta(seconds=min(int(match.group(1)), MAX_HINT_S))
    expires = headers.get("expires")
    if expires:
        try:
            moment = parsedate_to_datetime(expires)
        except (TypeError, ValueError, IndexError):
            return None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        if moment > now:
            return moment - now
    return None


def adaptive_interval(
    configured: timedelta,
    publish_gap: timedelta | None,
    policy: Policy,
    window: timedelta | None = None,
) -> timedelta:
    """How often the feed's own rhythm says to poll it.

    A feed whose document spans less time than one interval (`window`: newest minus oldest
    entry) drops entries off its end before we come back: poll it at half its window, down
    to min_interval, so none is lost. A feed that publishes rarely is polled less often: up
    to half its typical gap between entries, never past max_interval."""
    configured = policy.floor(configured)
    if window is not None and window < configured:
        return max(policy.min_interval, window / 2)
    if publish_gap is None:
        return configured
    return max(configured, min(publish_gap / 2, policy.max_interval))


def jitter(url: str, interval: timedelta, fraction: float) -> timedelta:
    """A fixed, per-feed offset, so feeds with one interval do not all fire at once."""
    spread = (zlib.crc32(url.encode()) % 1000) / 1000
    return interval * fraction * spread


def next_after_success(
    url: str,
    configured: timedelta,
    now: datetime,
    policy: Policy,
    *,
    headers: Mapping[str, str] | None = None,
    ttl: timedelta | None = None,
    publish_gap: timedelta | None = None,
    window: timedelta | None = None,
) -> datetime:
    """The server's hints (RSS ttl, max-age, Expires) may lengthen the interval up to
    max_interval; they are honoured even over a short window."""
    interval = adaptive_interval(configured, publish_gap, policy, window)
    hints = [h for h in (ttl, cache_hint(headers or {}, now)) if h]
    if hints:
        interval = max(interval, min(max(hints), policy.max_interval))
    return now + interval + jitter(url, interval, policy.jitter)


def backoff(configured: timedelta, error_count: int, policy: Policy) -> timedelta:
    """Exponential backoff from the configured interval, capped at max_interval."""
    exponent = min(max(error_count - 1, 0), 20)
    configured = policy.floor(configured)
    delay: timedelta = configured * (2**exponent)
    return min(delay, max(policy.max_interval, configured))


def next_after_error(
    url: str,
    configured: timedelta,
    error_count: int,
    now: datetime,
    policy: Policy,
    *,
    retry_after: datetime | None = None,
) -> datetime:
    """`error_count` counts this failure too. Retry-After is honoured up to max_interval."""
    delay = backoff(configured, error_count, policy)
    if retry_after is not None and retry_after > now:
        delay = max(delay, min(retry_after - now, max(policy.max_interval, configured)))
    return now + delay + jitter(url, delay, policy.jitter)
