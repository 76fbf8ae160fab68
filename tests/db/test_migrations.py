from __future__ import annotations

from datetime import UTC, datetime

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import func, insert, inspect, select, text

from guildkeep.db import Database, migrate
from guildkeep.db.registry import load_models
from guildkeep.identity.models import Guild, GuildMember, User


async def _tables(db: Database) -> set[str]:
    async with db.engine.connect() as conn:
        return set(await conn.run_sync(lambda c: inspect(c).get_table_names()))


def _revisions_in_order() -> list[str]:
    script = ScriptDirectory.from_config(migrate.alembic_config())
    return [rev.revision for rev in reversed(list(script.walk_revisions()))]


async def test_upgrade_check_downgrade_upgrade(empty_database_url: str) -> None:
    db = Database(empty_database_url)
    try:
        assert await migrate.current(db) == []
        heads = await migrate.upgrade(db)
        assert sorted(heads) == sorted(migrate.heads())
        model_tables = {t.name for t in load_models().sorted_tables}
        assert model_tables <= await _tables(db)
        await migrate.check(db)
        await migrate.downgrade(db, "base")
        assert await _tables(db) & model_tables == set()
        await migrate.upgrade(db)
        await migrate.check(db)
    finally:
        await db.dispose()


async def test_check_fails_when_database_lags(empty_database_url: str) -> None:
    db = Database(empty_database_url)
    try:
        with pytest.raises(migrate.MigrationError, match="run `guildkeep db upgrade`"):
            await migrate.check(db)
    finally:
        await db.dispose()


async def test_check_fails_when_models_and_schema_disagree(empty_database_url: str) -> None:
    db = Database(empty_database_url)
    try:
        await migrate.upgrade(db)
        async with db.engine.begin() as conn:
            await conn.execute(text("CREATE INDEX ix_extra_guild_name ON guilds (name)"))
        with pytest.raises(migrate.MigrationError):
            await migrate.check(db)
    finally:
        await db.dispose()


async def test_each_step_keeps_existing_rows(empty_database_url: str) -> None:
    """Upgrade one revision at a time; rows written after the first step survive every later step."""
    db = Database(empty_database_url)
    revisions = _revisions_in_order()
    assert revisions[0] == "0001_identity"
    now = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    try:
        await migrate.upgrade(db, revisions[0])
        async with db.session() as s:
            await s.execute(insert(Guild).values(id=2**62 + 1, name="Old Guild", joined_at=now, settings={"a": 1},
                                                 created_at=now, updated_at=now))
            await s.execute(insert(User).values(id=2**60 + 3, username="old", first_seen_at=now,
                                                last_seen_at=now, created_at=now, updated_at=now))
            await s.execute(insert(GuildMember).values(guild_id=2**62 + 1, user_id=2**60 + 3, roles=[1],
                                                       created_at=now, updated_at=now))
        for rev in revisions[1:]:
            await migrate.upgrade(db, rev)
        await migrate.upgrade(db)
        async with db.session(read_only=True) as s:
            guild = (await s.execute(select(Guild))).scalar_one()
            assert (guild.id, guild.name, guild.settings, guild.joined_at) == (2**62 + 1, "Old Guild", {"a": 1}, now)
            assert await s.scalar(select(func.count()).select_from(User)) == 1
            assert await s.scalar(select(GuildMember.roles)) == [1]
        await migrate.check(db)
    finally:
        await db.dispose()


def test_history_is_one_tree_rooted_at_identity() -> None:
    history = migrate.history()
    bases = [r for r in history if r.down_revision is None]
    assert [b.revision for b in bases] == ["0001_identity"]
    assert set(migrate.heads()) <= {r.revision for r in history}
