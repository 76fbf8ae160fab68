"""Announcements of what a slash command earned, in "same channel" mode, for a member who never chatted."""

from __future__ import annotations

import pytest
from sqlalchemy import update

from guildkeep.leveling.models import ServerConfig
from guildkeep.testing.harness import SandboxEnv
from tests.e2e.test_leveling import cog

pytestmark = pytest.mark.e2e


async def test_a_level_up_and_quest_earned_by_a_command_are_announced_where_it_was_used(
        discord_env: SandboxEnv) -> None:
    d = discord_env.driver
    config = await d.slash("levels config", as_="alice", command_xp=100, command_cooldown=0, level_up_mode="same")
    assert config.content.startswith("Saved.")
    quest = await d.slash("quest create", as_="alice", name="First command", requirement="commands_used", amount=1,
                          reward_xp=5)
    assert quest.content.startswith("Created quest")
    carol = d.member("carol").user.id
    before = list(d.world.channel_messages(d.channel("bot-commands").id))
    ping = await d.slash("ping", as_="carol", channel="bot-commands")  # carol has never sent a message
    assert ping.content.startswith("Pong!")

    def announced() -> list[str]:
        return [m.content for m in d.world.channel_messages(d.channel("bot-commands").id)
                if m not in before and m.author.id == d.bot_user.id and not m.ephemeral]

    async def both() -> bool:
        await cog(discord_env).ingestor.flush()
        mine = [t for t in announced() if f"<@{carol}>" in t]
        return any("level 1" in t for t in mine) and any("First command" in t for t in mine)

    await d.wait_for(both, "carol's level-up and quest to be announced in #bot-commands")
    texts = announced()
    assert f"GG <@{carol}>, you just reached level 1!" in texts
    assert f"🎯 <@{carol}> completed the quest **First command** (+5 XP)!" in texts


async def test_admin_xp_is_announced_where_the_command_was_used(discord_env: SandboxEnv) -> None:
    d = discord_env.driver
    bob = d.member("bob").user.id
    before = list(d.world.channel_messages(d.channel("bot-commands").id))
    await d.slash("xp add", as_="alice", member="bob", amount=100, channel="bot-commands")
    sent = await d.wait_for_bot_message("bot-commands", after=before[-1] if before else None)
    assert sent.content == f"GG <@{bob}>, you just reached level 1!"


async def test_a_template_that_could_overflow_is_refused_and_an_old_one_still_announces(
        discord_env: SandboxEnv) -> None:
    d = discord_env.driver
    refused = await d.slash("levels config", as_="alice", level_up_message="{server}" * 125)
    assert refused.ephemeral
    assert "could be 12,500 characters" in refused.content
    # a template saved before the check existed: the announcement is cut to fit rather than lost
    await d.slash("levels config", as_="alice", level_up_message="GG {mention}")
    async with discord_env.db.session() as s:
        await s.execute(update(ServerConfig).values(level_up_message="{server}" * 125))
    cog(discord_env).service.cache.invalidate_guild(d.channel("general").guild_id)
    before = list(d.world.channel_messages(d.channel("bot-commands").id))
    await d.slash("xp add", as_="alice", member="bob", amount=100, channel="bot-commands")
    sent = await d.wait_for_bot_message("bot-commands", after=before[-1] if before else None)
    assert len(sent.content) == 2000
    assert sent.content.startswith("Guildkeep Sandbox" * 3)
