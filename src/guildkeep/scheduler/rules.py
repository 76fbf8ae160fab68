"""Pure scheduling rules: the occurrences of a recurring job, retry backoff and which shard owns a guild.

Every function takes the time it reasons about as an argument; nothing here reads a clock.
"""

from __future__ import annotations

import calendar
from datetime import datetime, timedelta

NONE = "none"
DAILY = "daily"
WEEKLY = "weekly"
MONTHLY = "monthly"
YEARLY = "yearly"
INTERVAL = "interval"  # every ``interval_seconds`` (internal periodic jobs such as backups)
RECURRENCES = (NONE, DAILY, WEEKLY, MONTHLY, YEARLY, INTERVAL)

PENDING = "pending"
RUNNING = "running"
DONE = "done"
CANCELLED = "cancelled"
FAILED = "failed"  # parked after its last attempt; `retry` puts it back
STATUSES = (PENDING, RUNNING, DONE, CANCELLED, FAILED)

KIND_MAX = 64
DEDUP_KEY_MAX = 200
ERROR_MAX = 2000
DEFAULT_MAX_ATTEMPTS = 5
MAX_ATTEMPTS_LIMIT = 100
BACKOFF_BASE_SECONDS = 30.0
BACKOFF_CAP_SECONDS = 3600.0
MIN_INTERVAL_SECONDS = 1
# Discord's snowflakes keep their timestamp above bit 22; Discord routes a guild to shard (id >> 22) % count.
SHARD_SHIFT = 22


def add_months(anchor: datetime, months: int) -> datetime:
    """``anchor`` moved by ``months`` calendar months, its day clamped to the month's last day.

    Jan 31 + 1 month is Feb 28 (Feb 29 in a leap year); Feb 29 + 12 months is Feb 28 in a common year.
    """
    total = anchor.year * 12 + (anchor.month - 1) + months
    year, month = divmod(total, 12)
    month += 1
    day = min(anchor.day, calendar.monthrange(year, month)[1])
    return anchor.replace(year=year, month=month, day=day)


def occurrence(anchor: datetime, recurrence: str, n: int, interval_seconds: int | None = None) -> datetime:
    """The ``n``-th occurrence (0 is ``anchor`` itself) of a series that started at ``anchor``.

    Each occurrence is computed from the anchor, never from the previous one, so a monthly job
    anchored on the 31st runs on Feb 28 and then again on Mar 31.
    """
    if n < 0:
        raise ValueError("n must be >= 0")
    if recurrence == DAILY:
        return anchor + timedelta(days=n)
    if recurrence == WEEKLY:
        return anchor + timedelta(weeks=n)
    if recurrence == MONTHLY:
        return add_months(anchor, n)
    if recurrence == YEARLY:
        return add_months(anchor, 12 * n)
    if recurrence == INTERVAL:
        if not interval_seconds or interval_seconds < MIN_INTERVAL_SECONDS:
            raise ValueError("an interval job needs interval_seconds >= 1")
        return anchor + timedelta(seconds=interval_seconds * n)
    raise ValueError(f"{recurrence!r} does not recur")


def _months_between(start: datetime, end: datetime) -> int:
    return (end.year - start.year) * 12 + (end.month - start.month)


def next_occurrence(
    anchor: datetime, recurrence: str, after: datetime, interval_seconds: int | None = None
) -> datetime | None:
    """The first occurrence of the series strictly later than ``after``; None for a one-off job.

    Occurrences missed while nothing ran (the bot was down for three days) are skipped: a daily job
    runs once when it comes back, then on its usual time.
    """
    if recurrence == NONE:
        return None
    if after < anchor:
        return anchor
    if recurrence in (DAILY, WEEKLY, INTERVAL):
        period = {
            DAILY: timedelta(days=1),
            WEEKLY: timedelta(weeks=1),
            INTERVAL: timedelta(seconds=interval_seconds or 0),
        }[recurrence]
        if period <= timedelta(0):
            raise ValueError("an interval job needs interval_seconds >= 1")
        n = (after - anchor) // period
    elif recurrence == MONTHLY:
        n = max(_months_between(anchor, after) - 1, 0)
    elif recurrence == YEARLY:
        n = max(after.year - anchor.year - 1, 0)
    else:
        raise ValueError(f"unknown recurrence {recurrence!r}")
    candidate = occurrence(anchor, recurrence, n, interval_seconds)
    while candidate <= after:
        n += 1
        candidate = occurrence(anchor, recurrence, n, interval_seconds)
    return candidate


def backoff_delay(
    attempts: int, *, base: float = BACKOFF_BASE_SECONDS, cap: float = BACKOFF_CAP_SECONDS
) -> timedelta:
    """How long to wait before the next attempt after ``attempts`` failed ones: base·2^(n-1), at most ``cap``."""
    if attempts < 1:
        return timedelta(0)
    return timedelta(seconds=min(cap, base * 2 ** min(attempts - 1, 32)))


def shard_of(guild_id: int | None, shard_count: int) -> int:
    """The shard that handles a guild's jobs; jobs without a guild run on shard 0."""
    if guild_id is None:
        return 0
    return (guild_id >> SHARD_SHIFT) % shard_count


def validate_recurrence(recurrence: str, interval_seconds: int | None) -> None:
    """Raise ValueError when the recurrence and interval do not fit together."""
    if recurrence not in RECURRENCES:
        raise ValueError(f"unknown recurrence {recurrence!r}; use one of {', '.join(RECURRENCES)}")
    if recurrence == INTERVAL:
        if interval_seconds is None or interval_seconds < MIN_INTERVAL_SECONDS:
            raise ValueError("an interval job needs interval_seconds >= 1")
    elif interval_seconds is not None:
        raise ValueError("interval_seconds only applies to recurrence 'interval'")
