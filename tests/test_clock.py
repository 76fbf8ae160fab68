"""The one clock: real time plus an offset, read by every service and by the sandbox."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from guildkeep.clock import CLOCK, Clock, describe, parse_shift
from guildkeep.db import utcnow
from guildkeep.sandbox.state import DISCORD_EPOCH_MS, SnowflakeFactory, now


@pytest.fixture(autouse=True)
def real_time() -> Iterator[None]:
    yield
    CLOCK.reset()


@pytest.mark.parametrize(("text", "expected"), [
    ("+1d", timedelta(days=1)),
    ("2h", timedelta(hours=2)),
    ("+7d", timedelta(days=7)),
    ("+30m", timedelta(minutes=30)),
    ("-1h", timedelta(hours=-1)),
    ("+1d12h", timedelta(days=1, hours=12)),
    ("1w", timedelta(weeks=1)),
    (" +45s ", timedelta(seconds=45)),
])
def test_parse_shift(text: str, expected: timedelta) -> None:
    assert parse_shift(text) == expected


@pytest.mark.parametrize("text", ["", "tomorrow", "+1x", "1.5d", "d", "+-1d"])
def test_parse_shift_refuses_nonsense(text: str) -> None:
    with pytest.raises(ValueError, match="not a time shift"):
        parse_shift(text)


def test_describe() -> None:
    assert describe(timedelta(0)) == "real time"
    assert describe(timedelta(days=1, hours=2)) == "+1d 2h"
    assert describe(timedelta(minutes=-30)) == "-30m"


def test_clock_moves_and_resets() -> None:
    clock = Clock()
    before = datetime.now(UTC)
    moved = clock.advance(timedelta(days=1))
    assert moved - before >= timedelta(days=1)
    assert clock.timestamp() - before.timestamp() >= 86400
    clock.reset()
    assert clock.now() - datetime.now(UTC) < timedelta(seconds=1)


def test_services_and_the_sandbox_read_the_same_clock() -> None:
    CLOCK.advance(timedelta(days=3))
    real = datetime.now(UTC)
    assert timedelta(days=3) <= utcnow() - real < timedelta(days=3, seconds=5)
    assert timedelta(days=3) <= now() - real < timedelta(days=3, seconds=5)
    snowflake = SnowflakeFactory()()
    created = datetime.fromtimestamp(((snowflake >> 22) + DISCORD_EPOCH_MS) / 1000, UTC)
    assert timedelta(days=3) - timedelta(seconds=1) <= created - real < timedelta(days=3, seconds=5)
