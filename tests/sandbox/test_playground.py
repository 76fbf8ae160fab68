"""The playground's commands against the real bot (tests/e2e/test_playground.py runs the CLI itself)."""

from __future__ import annotations

import asyncio
import io
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

import discord
from guildkeep.clock import CLOCK
from guildkeep.playground.console import Playground, console_writer
from guildkeep.sandbox.driver import DriverError
from guildkeep.sandbox.persist import WorldFile
from guildkeep.scheduler import rules
from guildkeep.testing.harness import SandboxEnv

pytestmark = pytest.mark.e2e


@pytest.fixture(autouse=True)
def real_time() -> Iterator[None]:
    yield
    CLOCK.reset()


class Session:
    def __init__(self, env: SandboxEnv) -> None:
        self.stream = io.StringIO()
        self.playground = Playground(env, console_writer(self.stream, width=100))

    async def run(self, *lines: str) -> str:
        """Run lines; return only what they printed."""
        start = len(self.stream.getvalue())
        await self.playground.run_lines(lines)
        return self.stream.getvalue()[start:]


@pytest.fixture
def session(discord_env: SandboxEnv) -> Session:
    return Session(discord_env)


async def test_clock_moves_the_bot_for_a_second_daily(session: Session) -> None:
    await session.run("/start", ":click Accept")
    first = await session.run("/daily")
    assert "Daily reward" in first
    refused = await session.run("/daily")
    assert "already claimed" in refused
    moved = await session.run(":clock +1d")
    assert "(+1d)" in moved
    second = await session.run("/daily")
    assert "Daily reward" in second
    assert "2 days" in second  # the streak went on
    shown = await session.run(":clock")
    assert "(+1d)" in shown
    back = await session.run(":clock reset")
    assert "(real time)" in back


async def test_clock_refuses_a_bad_shift(session: Session) -> None:
    out = await session.run(":clock tomorrow")
    assert "! 'tomorrow' is not a time shift" in out
    assert CLOCK.offset.total_seconds() == 0


async def test_mentions_and_times_read_as_names(session: Session, discord_env: SandboxEnv) -> None:
    d = discord_env.driver
    bob, member, general = d.member("bob"), d.role("Member"), d.channel("general")
    out = await session.run(f"hi <@{bob.user.id}> and <@&{member.id}>, see <#{general.id}> <t:4102444800:D>")
    assert "[#general] Alice: hi @Bob and @Member, see #general 1 January 2100" in out
    await session.run("/start", ":click Accept", "/daily")
    refused = await session.run("/daily")
    assert "The next one is ready in a day." in refused  # <t:…:R> from the bot, relative to the bot's clock


async def test_members_roles_and_channels_can_be_added_and_the_bot_sees_them(
        session: Session, discord_env: SandboxEnv) -> None:
    bot_guild = discord_env.bot.get_guild(discord_env.driver._guild().id)
    assert bot_guild is not None
    out = await session.run(":add role Artists", ":add member Dave Artists Moderator", ":who")
    assert "role @Artists created" in out
    assert "Dave joined the server with Artists, Moderator; :as dave to speak as them" in out
    assert re.search(r"dave +Moderator, Artists", out)
    dave = discord_env.driver.member("dave")
    seen = bot_guild.get_member(dave.user.id)
    assert seen is not None
    assert sorted(r.name for r in seen.roles) == ["@everyone", "Artists", "Moderator"]

    out = await session.run(":add channel \"Art Corner\"", ":add channel Stage voice", ":channels")
    assert "text channel #art-corner created" in out
    assert "voice channel #Stage created" in out
    assert "#art-corner (text)" in out
    assert {c.name for c in bot_guild.channels} >= {"art-corner", "Stage"}

    out = await session.run(":as DAVE", ":channel art-corner", "hello art")
    assert "now speaking as dave" in out
    assert "[#art-corner] Dave: hello art" in out

    out = await session.run(":join voice Stage mute")
    assert "dave joined voice #Stage (mute)" in out
    await discord_env.driver.wait_for(lambda: seen.voice is not None and seen.voice.channel is not None,
                                      "the bot to see dave in voice")
    assert seen.voice.channel.name == "Stage"
    assert seen.voice.self_mute
    out = await session.run(":leave voice")
    assert "dave left voice" in out
    await discord_env.driver.wait_for(lambda: seen.voice is None, "the bot to see dave leave voice")


async def test_adding_refuses_what_discord_or_the_server_would(session: Session) -> None:
    out = await session.run(":add member bob", ":add member x", ":add member erin Wizards", ":add role Member",
                            ":add channel general", ":add channel pit lava", ":add thing", ":as nobody",
                            ":join voice general", ":leave voice", ":channel Lounge")
    assert "! bob is already a member; :as bob to speak as them" in out
    assert "! a member name is 2-32 letters" in out
    assert "! no role 'Wizards' (roles: Member, Moderator, Admin); add one with :add role NAME" in out
    assert "! there is already a role 'Member'" in out
    assert "! there is already a channel #general" in out
    assert "! :add channel NAME [text|voice]" in out
    assert "! :add member NAME [ROLE ...] | :add role NAME | :add channel NAME [text|voice]" in out
    assert "! no member 'nobody' (members: alice, bob, carol); add one with :add member NAME" in out
    assert "! #general is not a voice channel" in out
    assert "! alice is not in a voice channel" in out
    assert "! #Lounge is not a text channel or thread" in out


async def test_react_targets_a_visible_message_not_an_ephemeral_reply(session: Session,
                                                                       discord_env: SandboxEnv) -> None:
    d = discord_env.driver
    await session.run("first post", "second post", "/help")  # /help answers ephemerally, last in the channel
    general = d.channel("general")
    messages = d.world.channel_messages(general.id)
    first, second, ephemeral = messages[0], messages[1], messages[-1]
    assert ephemeral.ephemeral
    out = await session.run(":react 👍")
    assert list(second.reactions) == ["👍"]
    assert not ephemeral.reactions
    assert "[#general] Alice: second post" in out
    assert "reactions: 👍 1" in out
    await session.run(":react 🎉 2")
    assert list(first.reactions) == ["🎉"]
    read = await session.run(":read 3")
    assert "(2) [#general] Alice: first post" in read
    assert "(1) [#general] Alice: second post" in read
    await session.run(f":react 🔥 {first.id}")
    assert list(first.reactions) == ["🎉", "🔥"]
    out = await session.run(f":react 👀 {ephemeral.id}", ":react 👀 9", ":react")
    assert "! that reply is ephemeral (only you can see it): it takes no reactions" in out
    assert "! #general has 2 message(s) everyone can see" in out
    assert "! :react EMOJI [N|MESSAGE_ID]" in out
    assert not ephemeral.reactions
    with pytest.raises(DriverError, match="ephemeral messages take no reactions"):
        await d.react(ephemeral, "👀", as_="alice")


async def test_complete_takes_subcommands_without_quotes(session: Session) -> None:
    await session.run('/quest create name:Chatter requirement:total_messages amount:3 reward_xp:50 quest_type:daily')
    out = await session.run(":complete quest end quest_id", ":complete /quest end quest_id:Chat",
                            ':complete "/quest end" quest_id chat', ":complete help command pi",
                            ":complete help command:ra")
    lines = [line for line in out.splitlines() if "suggestions:" in line]
    assert len(lines) == 5, out
    assert all("Chatter" in line for line in lines[:3])
    assert lines[3] == "  suggestions: /ping"
    assert "/rank" in lines[4]


async def test_complete_explains_what_it_cannot_do(session: Session) -> None:
    out = await session.run(":complete", ":complete nosuch x", ":complete quest", ":complete quest end",
                            ":complete quest end nosuch", ":complete levels config curve", ":complete ping x")
    assert "! :complete COMMAND [SUBCOMMAND ...] OPTION [TEXT]" in out
    assert "! no slash command /nosuch (try /help)" in out
    assert "! /quest needs a subcommand: one of create, list, end" in out
    assert "! which option? /quest end has quest_id" in out
    assert "! /quest end has no option 'nosuch' (options: quest_id)" in out
    assert "! option 'curve' of /levels config has no suggestions from the bot (choices: " in out
    assert "! /ping has no options" in out


async def test_help_points_to_the_bots_help(session: Session) -> None:
    out = await session.run(":help")
    assert "The bot's own commands: /help lists them" in out
    assert ":as NAME                     speak as another member (alice, bob, carol)" in out


async def test_typed_names_become_mentions(session: Session, discord_env: SandboxEnv) -> None:
    d = discord_env.driver
    out = await session.run("hi @bob and @Carol, see #general; @nobody #nowhere mail a@b.c")
    sent = d.world.channel_messages(d.channel("general").id)[0]
    bob, carol, general = d.member("bob").user.id, d.member("carol").user.id, d.channel("general").id
    assert sent.content == f"hi <@{bob}> and <@{carol}>, see <#{general}>; @nobody #nowhere mail a@b.c"
    assert [u.id for u in sent.mentions] == [bob, carol]
    assert "[#general] Alice: hi @Bob and @Carol, see #general; @nobody #nowhere mail a@b.c" in out


async def test_moving_the_clock_runs_the_bots_periodic_jobs(session: Session, discord_env: SandboxEnv) -> None:
    leveling = discord_env.bot.get_cog("Leveling").service  # type: ignore[union-attr]
    guild_id = discord_env.driver._guild().id

    async def dailies() -> list:  # type: ignore[type-arg]
        return await leveling.get_guild_active_quests(guild_id, "daily")

    first = await discord_env.driver.wait_for(dailies, "the day's generated quests")
    jobs = discord_env.bot.scheduler.service

    async def reset_finished() -> bool:  # the run that made them has also scheduled the next one
        return await jobs.count(status=rules.RUNNING) == 0

    await discord_env.driver.wait_for(reset_finished, "the quest reset job to finish")
    await session.run(":clock +1d")
    assert not [q for q in first if q.expires_at > CLOCK.now()]  # yesterday's are over ...
    fresh = await discord_env.driver.wait_for(dailies, "the new day's quests", timeout=10)  # ... today's are up
    assert {q.id for q in fresh}.isdisjoint(q.id for q in first)


async def test_a_world_that_cannot_be_saved_is_said_once_per_line(discord_env: SandboxEnv, tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("", encoding="utf-8")
    stream = io.StringIO()
    playground = Playground(discord_env, console_writer(stream, width=100),
                            store=WorldFile(blocker / "guildkeep.playground.json"))
    await playground.run_lines(["hello"])
    assert "[#general] Alice: hello" in stream.getvalue()
    assert stream.getvalue().count("! the world could not be saved to") == 1


async def test_a_line_waits_for_a_reply_that_takes_a_while(session: Session, discord_env: SandboxEnv) -> None:
    """A reply that shows nothing for a while (waiting for the model) is still printed by the line that caused it,
    not lost when the next line (or `:quit`) comes."""

    async def slow_echo(message: discord.Message) -> None:
        if message.author.bot or message.content != "ping slowly":
            return
        await asyncio.sleep(1.0)  # quiet longer than the playground's 0.3 s
        await message.channel.send("pong, eventually")

    discord_env.bot.add_listener(slow_echo, "on_message")
    try:
        out = await session.run("ping slowly")
    finally:
        discord_env.bot.remove_listener(slow_echo, "on_message")
    assert "pong, eventually" in out
