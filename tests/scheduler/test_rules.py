from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from guildkeep.scheduler import rules

NAIVE_MIN = datetime(2000, 1, 1)  # noqa: DTZ001 - hypothesis bounds are naive; it adds the UTC zone
NAIVE_MAX = datetime(2090, 1, 1)  # noqa: DTZ001


def at(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def test_monthly_from_the_31st_clamps_and_comes_back() -> None:
    anchor = at(2027, 1, 31, 9, 0)
    assert rules.next_occurrence(anchor, rules.MONTHLY, anchor) == at(2027, 2, 28, 9, 0)
    assert rules.next_occurrence(anchor, rules.MONTHLY, at(2027, 2, 28, 9, 0)) == at(2027, 3, 31, 9, 0)
    assert rules.next_occurrence(anchor, rules.MONTHLY, at(2027, 3, 31, 9, 0)) == at(2027, 4, 30, 9, 0)
    leap = at(2028, 1, 31, 9, 0)
    assert rules.next_occurrence(leap, rules.MONTHLY, leap) == at(2028, 2, 29, 9, 0)
    assert rules.occurrence(at(2027, 12, 31), rules.MONTHLY, 2) == at(2028, 2, 29)


def test_yearly_on_february_29() -> None:
    anchor = at(2028, 2, 29, 12, 0)
    assert rules.next_occurrence(anchor, rules.YEARLY, anchor) == at(2029, 2, 28, 12, 0)
    assert rules.next_occurrence(anchor, rules.YEARLY, at(2029, 2, 28, 12, 0)) == at(2030, 2, 28, 12, 0)
    assert rules.next_occurrence(anchor, rules.YEARLY, at(2031, 3, 1)) == at(2032, 2, 29, 12, 0)


def test_daily_weekly_interval_and_missed_occurrences_are_skipped() -> None:
    anchor = at(2027, 5, 1, 0, 0)
    assert rules.next_occurrence(anchor, rules.DAILY, anchor + timedelta(seconds=3)) == at(2027, 5, 2)
    # the bot was down for three days and a half: the next run is the next one due, not three catch-ups
    assert rules.next_occurrence(anchor, rules.DAILY, at(2027, 5, 4, 12)) == at(2027, 5, 5)
    assert rules.next_occurrence(anchor, rules.WEEKLY, anchor) == at(2027, 5, 8)
    assert rules.next_occurrence(anchor, rules.WEEKLY, at(2027, 5, 8)) == at(2027, 5, 15)
    assert rules.next_occurrence(anchor, rules.INTERVAL, anchor, 3600) == at(2027, 5, 1, 1)
    assert rules.next_occurrence(anchor, rules.INTERVAL, at(2027, 5, 1, 5, 30), 3600) == at(2027, 5, 1, 6)
    assert rules.next_occurrence(anchor, rules.NONE, anchor) is None
    assert rules.next_occurrence(anchor, rules.DAILY, anchor - timedelta(days=3)) == anchor


@given(
    anchor=st.datetimes(min_value=NAIVE_MIN, max_value=NAIVE_MAX, timezones=st.just(UTC)),
    offset=st.integers(min_value=0, max_value=20 * 366 * 86400),
    recurrence=st.sampled_from([rules.DAILY, rules.WEEKLY, rules.MONTHLY, rules.YEARLY]),
)
def test_next_occurrence_is_the_first_of_the_series_after(anchor: datetime, offset: int, recurrence: str) -> None:
    after = anchor + timedelta(seconds=offset)
    nxt = rules.next_occurrence(anchor, recurrence, after)
    assert nxt is not None
    assert nxt > after
    series = [rules.occurrence(anchor, recurrence, n) for n in range(20 * 366 + 2)]
    assert nxt in series
    earlier = [o for o in series if after < o < nxt]
    assert earlier == []


def test_backoff_doubles_then_caps() -> None:
    assert rules.backoff_delay(1) == timedelta(seconds=30)
    assert rules.backoff_delay(2) == timedelta(seconds=60)
    assert rules.backoff_delay(3) == timedelta(seconds=120)
    assert rules.backoff_delay(50) == timedelta(seconds=rules.BACKOFF_CAP_SECONDS)
    assert rules.backoff_delay(3, base=1, cap=10) == timedelta(seconds=4)


def test_shard_of_follows_discords_formula() -> None:
    assert rules.shard_of(41771983423143937, 2) == 0  # (id >> 22) = 9959216934
    assert rules.shard_of(41771983423143937, 5) == 4
    assert rules.shard_of(None, 4) == 0
    assert rules.shard_of((5 << 22) | 12345, 3) == 2


def test_recurrence_validation() -> None:
    rules.validate_recurrence(rules.DAILY, None)
    rules.validate_recurrence(rules.INTERVAL, 60)
    with pytest.raises(ValueError, match="unknown recurrence"):
        rules.validate_recurrence("hourly", None)
    with pytest.raises(ValueError, match="interval_seconds"):
        rules.validate_recurrence(rules.INTERVAL, 0)
    with pytest.raises(ValueError, match="only applies"):
        rules.validate_recurrence(rules.DAILY, 60)
