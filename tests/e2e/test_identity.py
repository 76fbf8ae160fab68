"""The servers the bot is in are recorded in the identity tables: on connect, on joining, renamed, left."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from guildkeep.identity.models import Guild
from guildkeep.testing.harness import SandboxEnv

pytestmark = pytest.mark.e2e


async def guild_row(env: SandboxEnv, guild_id: int) -> Guild | None:
    async with env.db.session(read_only=True) as s:
        return (await s.execute(select(Guild).where(Guild.id == guild_id))).scalar_one_or_none()


async def test_the_bot_records_its_servers_on_connect_join_rename_and_leave(discord_env: SandboxEnv) -> None:
    d = discord_env.driver
    demo = d.guild
    assert demo is not None
    row = await d.wait_for(lambda: guild_row(discord_env, demo.id), "the demo server's row (written on connect)")
    assert (row.name, row.is_active) == (demo.name, True)

    invited = d.create_guild("Second Home", owner="dora")
    assert await guild_row(discord_env, invited.id) is None
    await d.announce_guild(invited)  # GUILD_CREATE for a server the bot was just added to: on_guild_join
    row = await d.wait_for(lambda: guild_row(discord_env, invited.id), "the new server's row")
    assert (row.name, row.is_active) == ("Second Home", True)
    joined_at = row.joined_at

    invited.name = "Renamed Home"
    await discord_env.server.dispatch("GUILD_UPDATE", invited.payload(), invited.id)

    async def renamed() -> bool:
        found = await guild_row(discord_env, invited.id)
        return found is not None and found.name == "Renamed Home"

    await d.wait_for(renamed, "the new name to be recorded")

    await discord_env.server.dispatch("GUILD_DELETE", {"id": str(invited.id)}, invited.id)  # removed from it

    async def left() -> bool:
        found = await guild_row(discord_env, invited.id)
        return found is not None and not found.is_active

    await d.wait_for(left, "the server to be marked as left")

    await d.announce_guild(invited)  # invited back

    async def back() -> Guild | None:
        found = await guild_row(discord_env, invited.id)
        return found if found is not None and found.is_active else None

    row = await d.wait_for(back, "the server to be active again")
    assert row.joined_at >= joined_at
    async with discord_env.db.session(read_only=True) as s:
        assert len((await s.execute(select(Guild.id))).all()) == 2  # never a duplicate row
