"""/privacy export and /privacy forget end to end: the real bot, through discord.py, on the sandbox."""

from __future__ import annotations

import asyncio
import json

import pytest

from guildkeep.sandbox.state import ChannelType
from guildkeep.testing.harness import SandboxEnv
from tests.privacy.test_service import assert_ledger_reconciles, rows_naming

pytestmark = pytest.mark.e2e


async def play(env: SandboxEnv, who: str) -> None:
    """Rows in identity, gacha (player, starter, ledger) and leveling (XP written through)."""
    d = env.driver
    prompt = await d.slash("start", as_=who)
    await prompt.click("Accept", as_=who)
    await d.send("general", f"hello from {who}", as_=who)
    ingestor = env.bot.get_cog("Leveling").ingestor  # type: ignore[union-attr]
    user_id = d.member(who).user.id

    async def message_counted() -> bool:
        await ingestor.flush()  # write-behind: write what is pending now
        levels = (await rows_naming(env.db, user_id)).get("leveling_levels", [])
        return any(row["total_messages"] for row in levels)

    await d.wait_for(message_counted, f"{who}'s message to be counted")


def dm_messages(env: SandboxEnv, who: str) -> list:
    world = env.driver.world
    user_id = env.driver.member(who).user.id
    channels = [c for c in world.channels.values()
                if c.type == ChannelType.DM and any(r.id == user_id for r in c.recipients)]
    return [m for c in channels for m in world.channel_messages(c.id)]


async def test_export_arrives_as_a_dm_attachment_with_valid_json(discord_env: SandboxEnv) -> None:
    d = discord_env.driver
    group = discord_env.bot.tree.get_command("privacy")
    assert group is not None
    assert not group.guild_only  # offered in DMs with the bot too
    await play(discord_env, "bob")
    reply = await d.slash("privacy export", as_="bob")
    assert reply.ephemeral
    assert "sent you a DM" in reply.text
    [dm] = dm_messages(discord_env, "bob")
    [attachment] = dm.attachments
    assert attachment.filename.endswith(".json")
    document = json.loads(attachment.data)
    bob = d.member("bob").user.id
    assert document["user_id"] == bob
    assert document["data"]["gacha"]["players"][0]["user_id"] == bob
    assert document["data"]["leveling"]["levels"][0]["total_messages"] == 1
    assert document["data"]["identity"]["user"]["id"] == bob


async def test_export_is_attached_to_the_reply_when_dms_are_closed(discord_env: SandboxEnv,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    d = discord_env.driver
    await play(discord_env, "carol")
    monkeypatch.setattr(discord_env.server, "_shares_guild", lambda _user_id: False)  # Discord answers 50007
    reply = await d.slash("privacy export", as_="carol")
    assert reply.ephemeral
    assert "could not DM you" in reply.text
    document = json.loads(reply.attachments[0].data)
    assert document["data"]["gacha"]["players"][0]["user_id"] == d.member("carol").user.id
    assert dm_messages(discord_env, "carol") == []


async def test_forget_asks_first_then_removes_every_row_and_says_what(discord_env: SandboxEnv) -> None:
    d = discord_env.driver
    await play(discord_env, "bob")
    await play(discord_env, "carol")
    bob, carol = d.member("bob").user.id, d.member("carol").user.id
    carol_before = await rows_naming(discord_env.db, carol)

    ask = await d.slash("privacy forget", as_="bob")
    assert ask.ephemeral
    assert "every** server" in ask.text
    cancelled = await ask.click("Cancel", as_="bob")
    assert "nothing was removed" in cancelled.text
    assert (await rows_naming(discord_env.db, bob))["gacha_players"]

    ask = await d.slash("privacy forget", as_="bob")
    confirmed = await ask.click("Confirm", as_="bob")
    done = await confirmed.wait_followup()
    assert done.ephemeral
    assert "gacha: removed" in done.content
    assert "leveling: removed" in done.content
    assert "identity: removed 1 guild_members, 1 users" in done.content
    assert len(done.content) <= 2000

    assert await rows_naming(discord_env.db, bob) == {}
    assert await rows_naming(discord_env.db, carol) == carol_before
    await assert_ledger_reconciles(discord_env.db)


async def test_activity_held_in_memory_does_not_bring_the_rows_back(discord_env: SandboxEnv) -> None:
    d = discord_env.driver
    await play(discord_env, "bob")
    bob = d.member("bob").user.id
    ingestor = discord_env.bot.get_cog("Leveling").ingestor  # type: ignore[union-attr]
    await d.send("general", "one more thing before I go", as_="bob")  # XP waiting in memory
    await d.wait_for(lambda: ingestor.pending_members > 0, "the message to wait in memory")

    bot = discord_env.bot
    completed = asyncio.ensure_future(bot.wait_for(
        "app_command_completion", check=lambda _i, cmd: cmd.qualified_name == "privacy forget", timeout=15))
    ask = await d.slash("privacy forget", as_="bob")  # a command: it earns command XP too, once it completes
    confirmed = await ask.click("Confirm", as_="bob")
    done = await confirmed.wait_followup()
    assert "leveling: removed" in done.content

    await completed
    await d.wait_for(lambda: not any(t.get_name() == "discord.py: on_app_command_completion" and not t.done()
                                     for t in asyncio.all_tasks()), "the completion listeners to finish")
    await ingestor.flush()  # whatever was still pending is written now
    assert await rows_naming(discord_env.db, bob) == {}
