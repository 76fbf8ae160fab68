from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from guildkeep.db import Database
from guildkeep.errors import ValidationError
from guildkeep.identity.models import Guild, GuildMember, User
from guildkeep.identity.service import IdentityService, display_name


def test_display_name_rule() -> None:
    assert display_name("Captain", "John", "john_doe") == "Captain"
    assert display_name(None, "John", "john_doe") == "John"
    assert display_name(None, None, "john_doe") == "john_doe"


async def test_get_or_create_user_creates_once_and_refreshes(db: Database) -> None:
    svc = IdentityService(db)
    first = await svc.get_or_create_user(123456789, username="john_doe", display_name="John")
    again = await svc.get_or_create_user(123456789, username="john_doe", display_name="Johnny")
    assert first.display_name == "John"
    assert again.display_name == "Johnny"
    assert again.first_seen_at == first.first_seen_at
    assert again.last_seen_at >= first.last_seen_at
    renamed = await svc.set_custom_name(123456789, "Captain")
    assert renamed.display_name == "Captain"


async def test_get_or_create_user_race_makes_one_row(db: Database) -> None:
    svc = IdentityService(db)
    await asyncio.gather(*(svc.get_or_create_user(42, username=f"u{i}") for i in range(20)))
    async with db.session(read_only=True) as s:
        assert await s.scalar(select(func.count()).select_from(User)) == 1


async def test_custom_name_is_validated(db: Database) -> None:
    svc = IdentityService(db)
    await svc.get_or_create_user(1, username="a")
    with pytest.raises(ValidationError, match="32 characters"):
        await svc.set_custom_name(1, "x" * 40)
    assert (await svc.get_user(1)).custom_name is None


async def test_members_are_unique_per_guild_and_user(db: Database) -> None:
    svc = IdentityService(db)
    await svc.get_or_create_guild(10, "Guild A")
    await svc.get_or_create_guild(20, "Guild B")
    await svc.upsert_member(10, 1, nickname="one", roles=[5, 3, 5])
    member = await svc.upsert_member(10, 1, nickname="uno", roles=[7])
    await svc.upsert_member(20, 1, nickname="other guild")
    assert member.nickname == "uno"
    assert member.roles == [7]
    async with db.session(read_only=True) as s:
        rows = (await s.execute(select(GuildMember.guild_id, GuildMember.nickname))).all()
    assert sorted(rows) == [(10, "uno"), (20, "other guild")]
    assert (await svc.get_member(20, 1)).nickname == "other guild"
    assert await svc.remove_member(10, 1) is True
    assert await svc.get_member(10, 1) is None
    assert await svc.get_member(20, 1) is not None


async def test_guild_settings_merge(db: Database) -> None:
    svc = IdentityService(db)
    await svc.update_guild_settings(7, prefix="!", nested={"a": 1})
    merged = await svc.update_guild_settings(7, tz="UTC")
    assert merged == {"prefix": "!", "nested": {"a": 1}, "tz": "UTC"}
    assert await svc.get_guild_settings(7) == merged
    assert await svc.get_guild_settings(8) == {}


async def test_sync_guilds_records_renames_and_rejoins_without_duplicates(db: Database) -> None:
    svc = IdentityService(db)
    t0 = datetime(2026, 12, 1, tzinfo=UTC)

    async def rows() -> dict[int, tuple[str, bool, datetime]]:
        async with db.session(read_only=True) as s:
            found = (await s.execute(select(Guild.id, Guild.name, Guild.is_active, Guild.joined_at))).all()
        return {gid: (name, active, joined) for gid, name, active, joined in found}

    await svc.update_guild_settings(3, tz="UTC")  # a row some module created first, without a name
    assert await svc.sync_guilds([(1, "One"), (2, "Two\x00"), (3, "Three")], now=t0) == 3
    assert await rows() == {1: ("One", True, t0), 2: ("Two", True, t0), 3: ("Three", True, (await rows())[3][2])}
    assert await svc.get_guild_settings(3) == {"tz": "UTC"}  # settings are left alone
    await svc.mark_guild_left(2)
    t1 = t0 + timedelta(days=1)
    # Two processes at once (shards sharing the database): no conflict, one row each.
    await asyncio.gather(svc.sync_guilds([(1, "One renamed"), (2, "Two")], now=t1),
                         svc.sync_guilds([(1, "One renamed"), (2, "Two")], now=t1))
    after = await rows()
    assert after[1] == ("One renamed", True, t0)  # still there since t0
    assert after[2] == ("Two", True, t1)  # had left: joined again now
    assert len(after) == 3
    assert await svc.sync_guilds(((n, f"G{n}") for n in range(100, 1300)), now=t1) == 1200  # several batches
    assert len(await rows()) == 1203
