"""The write-behind tally of the data core, on a real SQLite file and a real PostgreSQL server."""

from __future__ import annotations

import asyncio
import logging
from typing import Any, cast

import pytest
from sqlalchemy import Table, event, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from guildkeep.companion.models import BotState, UserRelationship
from guildkeep.db import Database, utcnow
from guildkeep.db.tally import Tally
from guildkeep.identity.service import ensure_user

STATES = cast(Table, BotState.__table__)
RELS = cast(Table, UserRelationship.__table__)
SENT, LEARNED = "total_messages_sent", "total_facts_learned"


async def _rows(db: Database, *guild_ids: int) -> None:
    now = utcnow()
    async with db.session() as s:
        await s.execute(insert(STATES), [
            {"guild_id": g, "mood_valence": 0.0, "mood_arousal": 0.0, "mood_updated_at": now, SENT: 0, LEARNED: 0,
             "total_users_known": 0, "first_activated_at": now, "preferences": {}, "created_at": now,
             "updated_at": now} for g in guild_ids])


async def _stored(db: Database, guild_id: int, column: str = SENT) -> int:
    async with db.session(read_only=True) as s:
        return int(await s.scalar(select(STATES.c[column]).where(STATES.c.guild_id == guild_id)) or 0)


async def _until_stored(db: Database, guild_id: int, n: int) -> None:
    """Poll until the row holds ``n`` (the caller bounds the wait)."""
    while await _stored(db, guild_id) != n:  # noqa: ASYNC110 - another task's flush changes it, no event to wait on
        await asyncio.sleep(0.02)


def _count_transactions(db: Database) -> list[int]:
    """Commits on ``db``'s engine (reads included), counted as they happen."""
    commits: list[int] = []
    event.listen(db.engine.sync_engine, "commit", lambda _conn: commits.append(1))
    return commits


async def test_add_and_flush_store_the_sums_in_one_transaction(db: Database) -> None:
    await _rows(db, 1, 2, 3)
    tally = Tally(db)
    for _ in range(5):
        tally.add(STATES, {"guild_id": 1}, SENT)
    tally.add(STATES, {"guild_id": 2}, SENT, 7)
    tally.add(STATES, {"guild_id": 3}, LEARNED, 2)
    tally.add(STATES, {"guild_id": 1}, LEARNED)
    assert (await _stored(db, 1), tally.pending(STATES, {"guild_id": 1}, SENT)) == (0, 5)  # nothing stored yet
    assert tally.pending_rows == 4
    commits = _count_transactions(db)
    assert await tally.flush() == 4
    assert len(commits) == 1
    assert [await _stored(db, g) for g in (1, 2, 3)] == [5, 7, 0]
    assert [await _stored(db, g, LEARNED) for g in (1, 2, 3)] == [1, 0, 2]
    assert tally.pending(STATES, {"guild_id": 1}, SENT) == 0
    assert tally.pending_rows == 0
    before = len(commits)
    assert await tally.flush() == 0  # nothing pending: no transaction
    assert len(commits) == before


async def test_a_key_of_several_columns(db: Database) -> None:
    now = utcnow()
    async with db.session() as s:
        for user in (10, 11):
            await ensure_user(s, user)
            s.add(UserRelationship(user_id=user, guild_id=5, first_interaction_at=now, last_interaction_at=now,
                                   created_at=now, updated_at=now))
    tally = Tally(db)
    tally.add(RELS, {"user_id": 10, "guild_id": 5}, "total_interactions", 3)
    tally.add(RELS, {"guild_id": 5, "user_id": 11}, "total_interactions")  # key order does not matter
    tally.add(RELS, {"user_id": 11, "guild_id": 5}, "total_interactions")
    assert tally.pending(RELS, {"guild_id": 5, "user_id": 10}, "total_interactions") == 3
    await tally.flush()
    async with db.session(read_only=True) as s:
        rows = {r.user_id: r.total_interactions
                for r in await s.execute(select(RELS.c.user_id, RELS.c.total_interactions))}
    assert rows == {10: 3, 11: 2}


async def test_a_row_that_does_not_exist_drops_its_increment_with_a_warning(
        db: Database, caplog: pytest.LogCaptureFixture) -> None:
    await _rows(db, 1)
    tally = Tally(db)
    tally.add(STATES, {"guild_id": 1}, SENT, 2)
    tally.add(STATES, {"guild_id": 404}, SENT, 3)
    with caplog.at_level(logging.WARNING, logger="guildkeep.db.tally"):
        assert await tally.flush() == 1
    assert await _stored(db, 1) == 2
    assert "404" in caplog.text
    assert "dropped" in caplog.text
    assert tally.pending(STATES, {"guild_id": 404}, SENT) == 0  # not retried forever
    async with db.session(read_only=True) as s:
        assert await s.scalar(select(STATES.c.id).where(STATES.c.guild_id == 404)) is None  # nothing inserted


def test_add_rejects_unknown_columns_and_an_empty_key() -> None:
    tally = Tally(cast(Database, None))
    with pytest.raises(ValueError, match="no column"):
        tally.add(STATES, {"guild_id": 1}, "nope")
    with pytest.raises(ValueError, match="no column"):
        tally.add(STATES, {"server": 1}, SENT)
    with pytest.raises(ValueError, match="at least one"):
        tally.add(STATES, {}, SENT)


async def test_pending_counts_what_is_in_flight(db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    await _rows(db, 1)
    tally = Tally(db)
    tally.add(STATES, {"guild_id": 1}, SENT, 4)
    original = Tally._write
    inside = asyncio.Event()
    release = asyncio.Event()

    async def slow_write(self: Tally, s: AsyncSession, *args: Any) -> int:
        written = await original(self, s, *args)
        inside.set()
        await release.wait()
        return written

    monkeypatch.setattr(Tally, "_write", slow_write)
    flushing = asyncio.create_task(tally.flush())
    await inside.wait()
    tally.add(STATES, {"guild_id": 1}, SENT, 2)  # arrives while the batch is in flight
    assert tally.pending(STATES, {"guild_id": 1}, SENT) == 6
    release.set()
    await flushing
    assert (await _stored(db, 1), tally.pending(STATES, {"guild_id": 1}, SENT)) == (4, 2)
    await tally.flush()
    assert (await _stored(db, 1), tally.pending(STATES, {"guild_id": 1}, SENT)) == (6, 0)


async def test_a_failed_flush_keeps_its_batch_and_the_next_stores_each_count_once(
        db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    await _rows(db, 1, 2)
    tally = Tally(db)
    tally.add(STATES, {"guild_id": 1}, SENT, 3)
    tally.add(STATES, {"guild_id": 2}, LEARNED, 5)
    original = Tally._write
    calls = 0

    async def failing_write(self: Tally, s: AsyncSession, *args: Any) -> int:
        nonlocal calls
        calls += 1
        if calls == 2:  # the first group's update already ran in this transaction
            raise RuntimeError("connection lost")
        return await original(self, s, *args)

    monkeypatch.setattr(Tally, "_write", failing_write)
    with pytest.raises(RuntimeError, match="connection lost"):
        await tally.flush()
    assert (await _stored(db, 1), await _stored(db, 2, LEARNED)) == (0, 0)  # rolled back as a whole
    assert tally.pending(STATES, {"guild_id": 1}, SENT) == 3  # kept, and not doubled
    assert tally.pending(STATES, {"guild_id": 2}, LEARNED) == 5
    tally.add(STATES, {"guild_id": 1}, SENT)  # added after the failure: merged with the kept batch
    assert await tally.flush() == 2
    assert (await _stored(db, 1), await _stored(db, 2, LEARNED)) == (4, 5)
    assert tally.pending_rows == 0
    await tally.flush()
    assert (await _stored(db, 1), await _stored(db, 2, LEARNED)) == (4, 5)


async def test_two_processes_adding_to_the_same_row_lose_nothing(db: Database, database_url: str) -> None:
    """Two tallies on two connection pools (two bot processes) flush into one row at the same time, repeatedly."""
    await _rows(db, 1, 2)
    other_db = Database(database_url, pool_size=5, max_overflow=5)
    try:
        a, b = Tally(db), Tally(other_db)
        for round_ in range(15):
            for tally, n in ((a, 1), (b, 2)):
                tally.add(STATES, {"guild_id": 1}, SENT, n)
                tally.add(STATES, {"guild_id": 2}, SENT, round_)
            await asyncio.gather(a.flush(), b.flush(), a.flush(), b.flush())
    finally:
        await other_db.dispose()
    assert await _stored(db, 1) == 15 * 3
    assert await _stored(db, 2) == 2 * sum(range(15))


async def test_concurrent_flushes_of_one_tally_store_each_count_once(db: Database) -> None:
    await _rows(db, 1)
    tally = Tally(db)

    async def bump_and_flush() -> None:
        tally.add(STATES, {"guild_id": 1}, SENT)
        await tally.flush()

    await asyncio.gather(*(bump_and_flush() for _ in range(40)))
    assert await _stored(db, 1) == 40
    assert tally.pending_rows == 0


async def test_stop_flushes_everything(db: Database) -> None:
    await _rows(db, 1)
    tally = Tally(db)
    tally.start(60.0)  # a window longer than the test: only stop writes
    for _ in range(9):
        tally.add(STATES, {"guild_id": 1}, SENT)
    await asyncio.sleep(0.05)
    assert await _stored(db, 1) == 0
    await tally.stop()
    assert not tally.running
    assert await _stored(db, 1) == 9
    assert tally.pending_rows == 0


async def test_stop_without_start_flushes_too(db: Database) -> None:
    await _rows(db, 1)
    tally = Tally(db)
    tally.add(STATES, {"guild_id": 1}, SENT, 2)
    await tally.stop()
    assert await _stored(db, 1) == 2


async def test_the_background_loop_flushes_within_the_interval(db: Database) -> None:
    await _rows(db, 1)
    tally = Tally(db)
    tally.start(0.1)
    try:
        assert tally.running
        tally.add(STATES, {"guild_id": 1}, SENT, 3)
        async with asyncio.timeout(2.0):  # a window of 0.1 s, with room for a slow shared machine
            await _until_stored(db, 1, 3)
        tally.add(STATES, {"guild_id": 1}, SENT)
        async with asyncio.timeout(2.0):
            await _until_stored(db, 1, 4)
    finally:
        await tally.stop()
    assert await _stored(db, 1) == 4


async def test_the_loop_survives_a_failed_flush(db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    await _rows(db, 1)
    tally = Tally(db)
    original = Tally._write
    failures = 0

    async def flaky_write(self: Tally, s: AsyncSession, *args: Any) -> int:
        nonlocal failures
        if failures < 2:
            failures += 1
            raise RuntimeError("database restarting")
        return await original(self, s, *args)

    monkeypatch.setattr(Tally, "_write", flaky_write)
    tally.add(STATES, {"guild_id": 1}, SENT, 5)
    tally.start(0.05)
    try:
        async with asyncio.timeout(2.0):
            await _until_stored(db, 1, 5)
    finally:
        await tally.stop()
    assert failures == 2
    assert await _stored(db, 1) == 5
