"""Leveling commands given hostile input through the real bot: a clear, short, ephemeral refusal."""

from __future__ import annotations

import pytest

from guildkeep.sandbox.harness import SandboxEnv

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
