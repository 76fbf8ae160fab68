"""The one clock the bot reads: real UTC time plus an offset that the playground can move.

Every "now" in guildkeep goes through ``CLOCK`` (``guildkeep.db.utcnow()`` reads it): services, the
leveling ingestor, the sandbox's message timestamps and snowflakes. A bot connected to Discord never
moves it, so there it is plain ``datetime.now(UTC)``. The playground moves it (``:clock +1d``) so daily
claims, streaks, quest resets and cooldowns can be tried without waiting.
"""

from __future__ import annotations

import re
import threading
import time
from datetime import UTC, datetime, timedelta

_UNITS = {"w": timedelta(weeks=1), "d": timedelta(days=1), "h": timedelta(hours=1), "m": timedelta(minutes=1),
          "s": timedelta(seconds=1)}
_PART = re.compile(r"(\d+)\s*([wdhms])")
_SHIFT = re.compile(r"^([+-]?)\s*((?:\d+\s*[wdhms]\s*)+)$")


class Clock:
    """Real time plus a settable offset; thread-safe, so a service on a worker thread reads the same time."""

    def __init__(self, offset: timedelta = timedelta(0)) -> None:
        self._offset = offset
        self._lock = threading.Lock()

    @property
    def offset(self) -> timedelta:
        return self._offset

    @offset.setter
    def offset(self, value: timedelta) -> None:
        with self._lock:
            self._offset = value

    def now(self) -> datetime:
        """The current time, timezone-aware UTC."""
        return datetime.now(UTC) + self._offset

    def timestamp(self) -> float:
        """Seconds since the Unix epoch, as ``time.time()`` but moved by the offset."""
        return time.time() + self._offset.total_seconds()

    def advance(self, delta: timedelta) -> datetime:
        """Move the clock by ``delta`` (negative moves back); returns the new now."""
        with self._lock:
            self._offset += delta
        return self.now()

    def reset(self) -> None:
        """Back to real time."""
        self.offset = timedelta(0)


CLOCK = Clock()


def utcnow() -> datetime:
    """Now, timezone-aware UTC, from the process-wide clock."""
    return CLOCK.now()


def parse_shift(text: str) -> timedelta:
    """``"+1d"``, ``"2h"``, ``"-30m"``, ``"+1d12h"``, ``"1w"`` -> a timedelta (units w, d, h, m, s).

    Raises ValueError with a readable message on anything else.
    """
    match = _SHIFT.match(text.strip().lower())
    if match is None:
        raise ValueError(f"{text!r} is not a time shift; use e.g. +30m, +2h, +1d, +7d or -1h")
    total = sum((int(n) * _UNITS[unit] for n, unit in _PART.findall(match.group(2))), timedelta(0))
    return -total if match.group(1) == "-" else total


def describe(delta: timedelta) -> str:
    """``timedelta(days=1, hours=2)`` -> ``"+1d 2h"``; zero is ``"real time"``."""
    if not delta:
        return "real time"
    sign = "-" if delta < timedelta(0) else "+"
    seconds = int(abs(delta).total_seconds())
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if seconds >= size:
            parts.append(f"{seconds // size}{unit}")
            seconds %= size
    return sign + " ".join(parts) if parts else "+0s"


__all__ = ["CLOCK", "Clock", "describe", "parse_shift", "utcnow"]
