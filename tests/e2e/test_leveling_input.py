"""Leveling commands given hostile input through the real bot: a clear, short, ephemeral refusal."""

from __future__ import annotations

import pytest

from guildkeep.testing.harness import SandboxEnv

pytestmark = pytest.mark.e2e


async def test_a_2500_character_colour_is_refused_in_a_short_message(discord_env: SandboxEnv) -> None:
    reply = await discord_env.driver.slash("rankcard", as_="bob", text_color="b" * 2500)
    assert reply.ephemeral
    assert "is not a colour" in reply.content
    assert len(reply.content) < 200


async def test_a_quest_name_with_nul_is_refused(discord_env: SandboxEnv) -> None:
    reply = await discord_env.driver.slash("quest create", as_="alice", name="Bad\x00name",
                                           requirement="total_messages", amount=5, reward_xp=10)
    assert reply.ephemeral
    assert reply.content == "The quest name can't contain control characters (it has NUL)."


@pytest.mark.parametrize("channel", ["welcome-thread", "Lounge", "Text Channels"])
async def test_a_multiplier_on_a_thread_voice_channel_or_category_is_saved(discord_env: SandboxEnv,
                                                                           channel: str) -> None:
    d = discord_env.driver
    reply = await d.slash("levels multiplier", as_="alice", value=2, options={"channel": channel})
    assert reply.ephemeral
    assert reply.content == "Saved."
    assert f"<#{d.channel(channel).id}> ×2" in reply.text
    stopped = await d.slash("levels noxp", as_="alice", options={"channel": channel})
    assert stopped.content == "Saved."
    assert f"<#{d.channel(channel).id}>" in stopped.embed["fields"][5]["value"]


async def test_autocompletes_offer_at_most_25_choices(discord_env: SandboxEnv) -> None:
    d = discord_env.driver
    leveling = discord_env.bot.get_cog("Leveling")
    assert leveling is not None
    for number in range(30):
        await leveling.service.create_quest(  # type: ignore[attr-defined]
            d.channel("general").guild_id, f"Quest {number}", "", "special", "total_messages", 5, 10)
    quests = await d.autocomplete("quest end", "quest_id", "", as_="alice")
    assert len(quests) == 25
    commands = await d.autocomplete("help", "command", "", as_="bob")
    assert len(commands) == 25
    assert await d.autocomplete("help", "command", "\x00" * 100, as_="bob") == []
