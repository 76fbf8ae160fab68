from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import func, select, text, update

from guildkeep.db import Database
from guildkeep.errors import ConflictError, DomainError, DuplicateError, ForeignKeyError, NotFoundError, ValidationError
from guildkeep.identity.models import Guild, GuildMember, User


async def test_unit_of_work_commits_on_success(db: Database) -> None:
    async with db.session() as s:
        s.add(Guild(id=1, name="a"))
    async with db.session(read_only=True) as s:
        assert await s.scalar(select(func.count()).select_from(Guild)) == 1


async def test_unit_of_work_rolls_back_on_error(db: Database) -> None:
    class Boom(Exception):
        pass

    with pytest.raises(Boom):
        async with db.session() as s:
            s.add(Guild(id=1, name="a"))
            await s.flush()
            raise Boom
    async with db.session(read_only=True) as s:
        assert await s.scalar(select(func.count()).select_from(Guild)) == 0


async def test_duplicate_key_is_translated(db: Database) -> None:
    async with db.session() as s:
        s.add(User(id=5, username="x"))
    with pytest.raises(DuplicateError) as info:
        async with db.session() as s:
            s.add(User(id=5, username="again"))
    assert isinstance(info.value, DomainError)
    assert info.value.__cause__ is not None
    async with db.session(read_only=True) as s:
        assert await s.scalar(select(User.username).where(User.id == 5)) == "x"


async def test_foreign_key_violation_is_translated(db: Database) -> None:
    with pytest.raises(ForeignKeyError):
        async with db.session() as s:
            s.add(GuildMember(guild_id=404, user_id=404, roles=[]))
    async with db.session(read_only=True) as s:
        assert await s.scalar(select(func.count()).select_from(GuildMember)) == 0


async def test_not_found_is_translated(db: Database) -> None:
    with pytest.raises(NotFoundError):
        async with db.session(read_only=True) as s:
            (await s.execute(select(Guild).where(Guild.id == 123))).scalar_one()


async def test_lock_conflict_is_translated(db: Database) -> None:
    """A lock that cannot be had becomes ConflictError on both backends."""
    async with db.session() as s:
        s.add(Guild(id=9, name="locked"))
    if db.backend == "postgresql":
        holder = await db.engine.connect()
        try:
            trans = await holder.begin()
            await holder.execute(select(Guild).where(Guild.id == 9).with_for_update())
            with pytest.raises(ConflictError):
                async with db.session() as s:
                    await s.execute(text("SET LOCAL lock_timeout = '50ms'"))
                    await s.execute(update(Guild).where(Guild.id == 9).values(name="other"))
            await trans.rollback()
        finally:
            await holder.close()
    else:
        holder = await db.engine.connect()
        try:
            await holder.execute(update(Guild).where(Guild.id == 9).values(name="holder"))  # BEGIN IMMEDIATE
            impatient = Database(db.url.render_as_string(hide_password=False), sqlite_busy_timeout_ms=50)
            try:
                with pytest.raises(ConflictError):
                    async with impatient.session() as s:
                        await s.execute(update(Guild).where(Guild.id == 9).values(name="other"))
            finally:
                await impatient.dispose()
            await holder.rollback()
        finally:
            await holder.close()


async def test_sqlite_connections_are_tuned(tmp_path: Path) -> None:
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'tuned.db'}")
    async with db.engine.connect() as conn:
        assert (await conn.exec_driver_sql("PRAGMA journal_mode")).scalar() == "wal"
        assert (await conn.exec_driver_sql("PRAGMA foreign_keys")).scalar() == 1
        assert (await conn.exec_driver_sql("PRAGMA busy_timeout")).scalar() >= 5000
        assert (await conn.exec_driver_sql("PRAGMA synchronous")).scalar() == 1  # NORMAL
    await db.dispose()


async def test_concurrent_conditional_updates_never_both_win(db: Database) -> None:
    """Twenty writers race to claim one row with a conditional UPDATE: exactly one wins."""
    async with db.session() as s:
        s.add(Guild(id=77, name="unclaimed"))

    async def claim(i: int) -> bool:
        async with db.session() as s:
            result = await s.execute(
                update(Guild).where(Guild.id == 77, Guild.name == "unclaimed").values(name=f"claimed-{i}")
            )
            return result.rowcount == 1

    results = await asyncio.gather(*(claim(i) for i in range(20)))
    assert sum(results) == 1


async def test_db_run_retries_conflicts(db: Database) -> None:
    calls = 0

    async def flaky(_s: object) -> str:
        nonlocal calls
        calls += 1
        if calls < 3:
            raise ConflictError
        return "done"

    assert await db.run(flaky) == "done"
    assert calls == 3


async def test_in_memory_database_works() -> None:
    from guildkeep.db import migrate

    memory = Database("sqlite+aiosqlite:///:memory:")
    try:
        await migrate.upgrade(memory)
        async with memory.session() as s:
            s.add(Guild(id=3, name="mem"))
        async with memory.session(read_only=True) as s:
            assert await s.scalar(select(Guild.name).where(Guild.id == 3)) == "mem"
        await migrate.check(memory)
    finally:
        await memory.dispose()


async def test_text_postgresql_cannot_store_is_a_validation_error(db: Database) -> None:
    """A NUL that reaches PostgreSQL (services refuse it first) is a player-readable error, not a crash."""
    if db.backend != "postgresql":
        async with db.session() as s:
            s.add(User(id=6, username="nul\x00ok"))  # SQLite stores it; the services' checks keep it out
        return
    with pytest.raises(ValidationError, match="can't be stored"):
        async with db.session() as s:
            s.add(User(id=6, username="nul\x00no"))
