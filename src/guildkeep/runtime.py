"""Process-wide settings of a long-running guildkeep process (the ``guildkeep`` command sets them first thing).

**The garbage collector.** CPython's cyclic collector runs a full collection (generation 2) whenever the
objects that survived earlier collections grow by a quarter. A bot at scale holds a million members' state in
memory (`leveling.ingest`, the leaderboards, discord.py's own member cache), so each full collection walks every
one of them: measured in ``guildkeep bench ingest`` (1,000,000 events over 1,000,000 members, SQLite), 18 full
collections took 8.7 s of a 55 s run and stopped the event loop for about half a second each. None of that state
forms reference cycles: it is freed by reference counting alone.

`tune_collector` moves what the process has built so far (modules, configuration, caches loaded at start-up)
out of the collector's reach (`gc.freeze`) and raises the thresholds so the young generations are collected
every ``YOUNG`` allocations and a full collection runs about a hundred times less often. Cycles are still
collected; only the cost of finding them changes. Measured on the same benchmark: 2.1 s of collection instead
of 10.7 s, and no half-second pause.

`collector_paused` goes further for one bulk step: the write-behind flush builds a few hundred thousand objects
(rows, totals, parameters) that live for the flush and form no cycles. With the collector on, each is walked by a
young collection and again by a middle one before reference counting frees it at the flush's end; paused, none is
walked (``guildkeep bench ingest``, PostgreSQL: about 2 s of collection in a 20 s run).
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator

YOUNG = 10_000  # allocations between collections of the youngest generation (CPython's default: 700)
MIDDLE = 50  # young collections between collections of the middle one (default 10)
FULL = 100  # middle collections before a full one is considered (default 10)


def tune_collector() -> tuple[int, int, int]:
    """Collect once, freeze what survives and set the thresholds above; returns the previous thresholds."""
    before = gc.get_threshold()
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG, MIDDLE, FULL)
    return before



class _Pauses:
    count = 0
    resume = False  # whether the collector runs again when the last pause ends (it ran when the first began)


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """The cyclic collector is off inside (reference counting still frees what is dropped). Pauses may overlap, as
    concurrent tasks' do: the collector runs again when the last one ends, and only if it ran when the first
    began. Cycles made meanwhile are collected after."""
    if _Pauses.count == 0:
        _Pauses.resume = gc.isenabled()
        gc.disable()
    _Pauses.count += 1
    try:
        yield
    finally:
        _Pauses.count -= 1
        if _Pauses.count == 0 and _Pauses.resume:
            gc.enable()
