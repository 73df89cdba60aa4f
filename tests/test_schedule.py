"""The polling policy as tables of (state, result, now) -> next fetch time."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import pytest

from aggregator.daemon import days_to_export, latest_due_digest_day
from aggregator.schedule import (
    Policy,
    adaptive_interval,
    backoff,
    cache_hint,
    jitter,
    next_after_error,
    next_after_success,
)

NOW = datetime(2026, 4, 20, 12, 0, tzinfo=UTC)
URL = "https://example.com/feed"
POLICY = Policy(min_interval=timedelta(minutes=5), max_interval=timedelta(days=1), jitter=0)
H = timedelta(hours=1)
M = timedelta(minutes=1)


@pytest.mark.parametrize(
    ("configured", "headers", "ttl", "gap", "expected"),
    [
        (H, {}, None, None, H),  # plain interval
        (H, {"cache-control": "public, max-age=7200"}, None, None, 2 * H),  # lengthens
        (H, {"cache-control": "max-age=60"}, None, None, H),  # never shortens
        (H, {"cache-control": "max-age=999999"}, None, None, 24 * H),  # capped
        (H, {"expires": "Mon, 20 Apr 2026 15:00:00 GMT"}, None, None, 3 * H),
        (H, {"expires": "Mon, 20 Apr 2026 11:00:00 GMT"}, None, None, H),  # past: ignored
        (H, {"expires": "garbage"}, None, None, H),
        (H, {}, 3 * H, None, 3 * H),  # RSS <ttl>
        (H, {}, 30 * M, None, H),
        (H, {}, None, 10 * H, 5 * H),  # rarely publishing: half its typical gap
        (H, {}, None, 10 * M, H),  # frequent publishing never goes below configured
        (H, {}, None, 30 * 24 * H, 24 * H),  # capped at max_interval
        (H, {"cache-control": "max-age=14400"}, 2 * H, 2 * H, 4 * H),  # largest hint wins
        (M, {}, None, None, 5 * M),  # min_interval is a floor, even for configured intervals
    ],
)
def test_next_fetch_after_success(
    configured: timedelta,
    headers: dict[str, str],
    ttl: timedelta | None,
    gap: timedelta | None,
    expected: timedelta,
) -> None:
    got = next_after_success(URL, configured, NOW, POLICY, headers=headers, ttl=ttl,
                             publish_gap=gap)  # fmt: skip
    assert got - NOW == expected


@pytest.mark.parametrize(
    ("errors", "retry_after", "expected"),
    [
        (1, None, H),
        (2, None, 2 * H),
        (3, None, 4 * H),
        (6, None, 24 * H),  # capped at a day
        (60, None, 24 * H),  # never overflows, never gives up
        (1, NOW + 3 * H, 3 * H),  # Retry-After beyond backoff
        (3, NOW + 30 * M, 4 * H),  # backoff beyond Retry-After
        (1, NOW + 30 * 24 * H, 24 * H),  # absurd Retry-After capped
        (1, NOW - H, H),  # Retry-After in the past: ignored
    ],
)
def test_next_fetch_after_error(
    errors: int, retry_after: datetime | None, expected: timedelta
) -> None:
    got = next_after_error(URL, H, errors, NOW, POLICY, retry_after=retry_after)
    assert got - NOW == expected


def test_jitter_spreads_feeds_and_is_bounded() -> None:
    offsets = {jitter(f"https://example.com/{n}", H, 0.1) for n in range(50)}
    assert len(offsets) > 40
    assert all(timedelta(0) <= o <= 6 * M for o in offsets)
    policy = Policy(jitter=0.1)
    assert next_after_success(URL, H, NOW, policy) == next_after_success(URL, H, NOW, policy)


@pytest.mark.parametrize(
    ("configured", "window", "gap", "expected"),
    [
        (H, 30 * M, None, 15 * M),  # ten entries in half an hour: poll at half the window
        (H, 6 * M, None, 5 * M),  # never below min_interval
        (H, 2 * H, None, H),  # the document covers more than an interval: no change
        (H, 30 * M, 10 * H, 15 * M),  # a short window beats a long typical gap
    ],
)
def test_a_feed_whose_document_is_shorter_than_an_interval_is_polled_faster(
    configured: timedelta, window: timedelta, gap: timedelta | None, expected: timedelta
) -> None:
    got = next_after_success(URL, configured, NOW, POLICY, window=window, publish_gap=gap)
    assert got - NOW == expected


def test_server_hints_still_win_over_a_short_window() -> None:
    got = next_after_success(URL, H, NOW, POLICY, window=10 * M, ttl=2 * H)
    assert got - NOW == 2 * H


def test_backoff_starts_from_the_floor() -> None:
    assert backoff(M, 1, POLICY) == 5 * M and backoff(M, 2, POLICY) == 10 * M


def test_backoff_from_a_long_configured_interval_is_not_capped_below_it() -> None:
    assert backoff(48 * H, 3, POLICY) == 48 * H


def test_helpers_on_their_own() -> None:
    assert cache_hint({"cache-control": "no-cache"}, NOW) is None
    assert cache_hint({"cache-control": 's-maxage=10, max-age="120"'}, NOW) == 2 * M
    assert adaptive_interval(H, None, POLICY) == H


class FakeSettings:
    def __init__(self, at: time, tz: str = "UTC") -> None:
        from zoneinfo import ZoneInfo

        self.digest_time = at
        self.tz = ZoneInfo(tz)


@pytest.mark.parametrize(
    ("now", "at", "tz", "expected"),
    [
        (datetime(2026, 4, 21, 0, 20, tzinfo=UTC), time(0, 15), "UTC", date(2026, 4, 20)),
        (datetime(2026, 4, 21, 0, 10, tzinfo=UTC), time(0, 15), "UTC", date(2026, 4, 19)),
        # 23:30 UTC on the 20th is 01:30 on the 21st in Berlin
        (datetime(2026, 4, 20, 23, 30, tzinfo=UTC), time(0, 15), "Europe/Berlin",
         date(2026, 4, 20)),
    ],
)  # fmt: skip
def test_latest_due_digest_day(now: datetime, at: time, tz: str, expected: date) -> None:
    assert latest_due_digest_day(now, FakeSettings(at, tz)) == expected  # type: ignore[arg-type]


D = date(2026, 4, 20)


@pytest.mark.parametrize(
    ("last", "first", "latest", "expected"),
    [
        (None, None, D, []),  # never fetched: nothing to write
        (None, D, D, [D]),
        (None, D + timedelta(days=1), D, []),  # first fetch after the day: not due yet
        (D - timedelta(days=3), D - timedelta(days=10), D,
         [D - timedelta(days=2), D - timedelta(days=1), D]),  # caught up after downtime
        (D, D - timedelta(days=10), D, []),  # already written
        (None, D - timedelta(days=30), D, [D - timedelta(days=n) for n in range(6, -1, -1)]),
    ],
)  # fmt: skip
def test_days_to_export(
    last: date | None, first: date | None, latest: date, expected: list[date]
) -> None:
    assert days_to_export(last, first, latest) == expected
