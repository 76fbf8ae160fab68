"""A write-behind tally: counters bumped in memory and stored in batches of additive updates.

A counter that every event of a busy place bumps (the companion's replies per server) makes that row hot when each
event updates it in its own transaction: concurrent events queue on its row lock. `Tally` takes the bumps in memory
instead (`add`, no database access), coalesced per (table, key, column), and `flush` stores them all in ONE
transaction of additive statements, one executemany per (table, key columns, column)::

    UPDATE <table> SET <column> = <column> + :n WHERE <key column> = :key ...

so two processes each with their own `Tally` never lose each other's counts. The rows must exist already (the
caller creates them, e.g. in the transaction that records the event): a tally only increments. The increments of a
key whose row does not exist (any more) when the flush runs are dropped with a warning; nothing is inserted.

A failed flush keeps its batch: it is merged back into what is pending and stored by the next flush, once. Flushes
serialize. `start` flushes every ``interval_seconds`` in the background; `stop` ends that loop (never in the middle
of a flush) and stores what is left, so a clean stop loses nothing and a crash loses at most one window.

Reads that show a counter add `pending` (not stored yet: pending plus the batch being flushed). At the very moment a
flush commits, a read that already sees the commit may still count its batch as in flight once (it is cleared right
after the commit returns); it never counts a bump less.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from typing import Any

from sqlalchemy import Table, and_, bindparam, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession

from guildkeep.db.database import Database

log = logging.getLogger(__name__)

CHUNK = 500  # keys per existence check (well under any backend's limit on bound parameters)

# (table, key column names, counted column) -> {key values: amount}
_Group = tuple[Table, tuple[str, ...], str]
_Batch = dict[_Group, dict[tuple[int, ...], int]]


def _split(key: Mapping[str, int]) -> tuple[tuple[str, ...], tuple[int, ...]]:
    if not key:
        raise ValueError("a tally key names at least one column")
    names = tuple(sorted(key))
    return names, tuple(int(key[n]) for n in names)


def _merge(into: _Batch, batch: _Batch) -> None:
    for group, amounts in batch.items():
        target = into.setdefault(group, {})
        for values, n in amounts.items():
            total = target.get(values, 0) + n
            if total:
                target[values] = total
            else:
                target.pop(values, None)
        if not target:
            del into[group]


class Tally:
    """Counters held in memory and stored by additive updates (see the module's docstring)."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._pending: _Batch = {}
        self._in_flight: _Batch = {}
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self.interval_seconds = 1.0

    # ------------------------------------------------------------------------------ in memory

    def add(self, table: Table, key: Mapping[str, int], column: str, n: int = 1) -> None:
        """Count ``n`` more into ``table.column`` of the row ``key`` (column name -> value). No database access."""
        if column not in table.c:
            raise ValueError(f"{table.name} has no column {column!r}")
        names, values = _split(key)
        for name in names:
            if name not in table.c:
                raise ValueError(f"{table.name} has no column {name!r}")
        _merge(self._pending, {(table, names, column): {values: int(n)}})

    def pending(self, table: Table, key: Mapping[str, int], column: str) -> int:
        """What is counted but not stored yet for this row and column: pending plus the batch being flushed."""
        names, values = _split(key)
        g: _Group = (table, names, column)
        return self._pending.get(g, {}).get(values, 0) + self._in_flight.get(g, {}).get(values, 0)

    @property
    def pending_rows(self) -> int:
        """How many (table, key, column) counters wait to be stored (the batch being flushed included)."""
        return sum(len(a) for a in self._pending.values()) + sum(len(a) for a in self._in_flight.values())

    # ------------------------------------------------------------------------------ flush

    async def flush(self) -> int:
        """Store everything pending in one transaction; return how many counters were written.

        On failure the batch goes back to pending (merged with what was added meanwhile) and the error is raised.
        """
        async with self._lock:
            if not self._pending:
                return 0
            batch, self._pending = self._pending, {}
            self._in_flight = batch
            try:
                async with self.db.session() as s:
                    written = 0
                    for (table, names, column), amounts in batch.items():
                        written += await self._write(s, table, names, column, amounts)
            except BaseException:
                _merge(self._pending, batch)  # nothing of it was stored: the next flush stores it once
                raise
            finally:
                self._in_flight = {}
            return written

    async def _write(self, s: AsyncSession, table: Table, names: tuple[str, ...], column: str,
                     amounts: Mapping[tuple[int, ...], int]) -> int:
        """One group's additive updates (executemany); increments of rows that do not exist are dropped."""
        cols = [table.c[n] for n in names]
        keys = list(amounts)
        existing: set[tuple[int, ...]] = set()
        for start in range(0, len(keys), CHUNK):
            chunk = keys[start:start + CHUNK]
            where = cols[0].in_([k[0] for k in chunk]) if len(cols) == 1 else tuple_(*cols).in_(chunk)
            existing.update(tuple(int(v) for v in row) for row in (await s.execute(select(*cols).where(where))))
        missing = [k for k in keys if k not in existing]
        if missing:
            log.warning("tally: %d increment(s) of %s.%s dropped, their rows do not exist: %s", len(missing),
                        table.name, column, [dict(zip(names, k, strict=True)) for k in missing[:10]])
        params: list[dict[str, Any]] = [
            {**{f"k_{n}": v for n, v in zip(names, k, strict=True)}, "n_": amounts[k]} for k in keys if k in existing]
        if not params:
            return 0
        stmt = (update(table).where(and_(*(c == bindparam(f"k_{c.name}") for c in cols)))
                .values({column: table.c[column] + bindparam("n_")}))
        await s.execute(stmt, params)
        return len(params)

    # ------------------------------------------------------------------------------ background

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        last = loop.time()
        while not self._stopping:
            delay = last + max(self.interval_seconds, 0.05) - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            if self._stopping:
                return
            last = loop.time()
            try:
                await asyncio.shield(self.flush())  # `stop` cancels the loop, never a flush half-way
            except Exception:
                log.exception("tally flush failed (its counts are kept for the next one)")

    def start(self, interval_seconds: float = 1.0) -> None:
        """Flush every ``interval_seconds`` in the background (until `stop`)."""
        self.interval_seconds = interval_seconds
        self._stopping = False
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._loop(), name="tally-write-behind")

    async def stop(self) -> None:
        """Stop the loop and store what is pending (a clean stop loses nothing). A flush the loop had started
        finishes first; if the last flush fails, it is tried once more (and a second failure is raised)."""
        if self._task is not None:
            self._stopping = True
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        try:
            await self.flush()
        except Exception:
            log.exception("tally flush on stop failed; trying once more")
            await self.flush()

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

