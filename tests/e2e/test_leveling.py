"""Leveling through the real bot on the sandbox: XP from chat, announcements, level roles, rank cards, quests,
leaderboards, admin commands and their refusals."""

from __future__ import annotations

import io
from datetime import timedelta
from typing import TYPE_CHECKING, cast

import pytest
from PIL import Image

from guildkeep.clock import CLOCK
from guildkeep.db import utcnow
from guildkeep.leveling import ingest, rules
from guildkeep.leveling.ingest import VoiceTracker
from guildkeep.leveling.service import QUEST_RESET_JOB, quest_reset_key
from guildkeep.sandbox.driver import Reply
from guildkeep.testing.harness import SandboxEnv

if TYPE_CHECKING:
    from guildkeep.discord.cogs.leveling import Leveling

pytestmark = pytest.mark.e2e

PNG = b"\x89PNG\r\n\x1a\n"


def cog(env: SandboxEnv) -> Leveling:
    found = env.bot.get_cog("Leveling")  # each bot re-imports its extensions: compare by name, not class
    assert type(found).__name__ == "Leveling"
    return cast("Leveling", found)


def guild_id(env: SandboxEnv) -> int:
    assert env.demo is not None
    return env.demo.guild.id


async def slash_with_buttons(env: SandboxEnv, command: str, **options: object) -> Reply:
    """Run a command whose answer has buttons; return once the bot listens to them.

    discord.py registers a view after Discord answered its response; the bot then fetches the original
    message (``GET …/messages/@original``), so that request marks the buttons as live.
    """

    def originals() -> int:
        return sum(r.method == "GET" and r.path.endswith("/messages/@original") for r in env.server.requests)

    seen = originals()
    reply = await env.driver.slash(command, **options)  # type: ignore[arg-type]
    await env.driver.wait_for(lambda: originals() > seen, f"the bot to listen to /{command}'s buttons")
    return reply


async def fast_xp(env: SandboxEnv, xp: int = 50, **more: object) -> None:
    """Every message earns ``xp``: cooldown 0 and a fixed amount."""
    reply = await env.driver.slash("levels config", as_="alice", message_cooldown=0, message_xp_min=xp,
                                   message_xp_max=xp, **more)
    assert reply.ephemeral
    assert reply.content.startswith("Saved.")


async def chat(env: SandboxEnv, who: str, count: int, channel: str = "general") -> None:
    """``who`` sends ``count`` messages; returns once the bot has scored and stored every one."""
    leveling, user = cog(env), env.driver.member(who).user.id
    before = (await leveling.service.get_user_level(guild_id(env), user)).total_messages
    for i in range(count):
        await env.driver.send(channel, f"message {i}", as_=who)

    async def stored() -> bool:
        await leveling.ingestor.flush()
        return (await leveling.service.get_user_level(guild_id(env), user)).total_messages >= before + count

    await env.driver.wait_for(stored, f"{who}'s {count} message(s) to be stored")


async def test_chatting_past_a_level_announces_it_and_grants_the_level_role(discord_env: SandboxEnv) -> None:
    d = discord_env.driver
    await fast_xp(discord_env, level_up_message="{mention} reached level {level} in {server}!")
    role = await d.create_role("Chatter", position=1)
    added = await d.slash("levels roles add", as_="alice", role="Chatter", level=1)
    assert "level 1" in added.content
    before = list(d.world.channel_messages(d.channel("general").id))
    await chat(discord_env, "bob", 2)
    announcement = await d.wait_for_bot_message("general", after=before[-1] if before else None)
    assert announcement.content == f"<@{d.member('bob').user.id}> reached level 1 in Guildkeep Sandbox!"
    await d.wait_for(lambda: role.id in d.member("bob").roles, "bob to get the Chatter role")
    # removed by hand: the bot puts it back, because bob's level still earns it
    await d.take_role("bob", "Chatter")
    await d.wait_for(lambda: role.id in d.member("bob").roles, "the Chatter role to come back")
    # carol has no XP: a sync gives her nothing, and bob keeps his role
    synced = await d.slash("levels roles sync", as_="alice")
    assert "0 given, 0 taken" in synced.text
    listed = await d.slash("levels roles list", as_="alice")
    assert f"Level 1: <@&{role.id}>" in listed.content
    await d.slash("level set", as_="alice", member="bob", level=0)
    await d.wait_for(lambda: role.id not in d.member("bob").roles, "the role to go when bob is set to level 0")
    removed = await d.slash("levels roles remove", as_="alice", role="Chatter")
    assert "no longer a level role" in removed.content


async def test_rank_returns_a_png_card(discord_env: SandboxEnv) -> None:
    d = discord_env.driver
    await chat(discord_env, "bob", 1)
    reply = await d.slash("rank", as_="carol", member="bob")
    assert not reply.ephemeral
    assert "Bob" in reply.text
    assert "rank #1" in reply.text
    [attachment] = reply.attachments
    assert attachment.filename == "rank.png"
    assert attachment.data.startswith(PNG)
    assert Image.open(io.BytesIO(attachment.data)).size == (934, 282)
    styled = await d.slash("rankcard", as_="bob", primary_color="#ff0000", style="rounded")
    assert styled.ephemeral
    assert "#ff0000" in styled.content
    bad = await d.slash("rankcard", as_="bob", text_color="blue")
    assert bad.ephemeral
    assert "is not a colour" in bad.content
    bad_url = await d.slash("rankcard", as_="bob", background_url="javascript:alert(1)")
    assert "http:// or https://" in bad_url.content
    mine = await d.slash("rank", as_="bob")
    assert mine.attachments[0].data.startswith(PNG)


async def test_quests_reset_on_the_scheduler_and_follow_the_moved_clock(discord_env: SandboxEnv) -> None:
    """Each server's quest reset is a scheduler job created at READY; moving the clock a day (the playground's
    ``:clock +1d``) runs it again at once: new daily quests, announced once in the quest channel."""
    d, leveling, gid = discord_env.driver, cog(discord_env), guild_id(discord_env)
    jobs = discord_env.bot.scheduler.service

    async def scheduled() -> bool:
        return await jobs.find(QUEST_RESET_JOB, quest_reset_key(gid)) is not None

    await d.wait_for(scheduled, "the server's quest reset job")

    async def generated() -> bool:
        await discord_env.run_periodic_jobs()  # or the bot's own scheduler loop runs it
        keys = {q.template_key for q in await leveling.service.get_guild_active_quests(gid)}
        return keys == {t.key for t in rules.QUEST_TEMPLATES}

    await d.wait_for(generated, "this period's quests")
    await d.slash("levels config", as_="alice", options={"quest_channel": "bot-commands"})
    before = d.world.channel_messages(d.channel("bot-commands").id)[-1]

    async def finished() -> bool:  # a run still in progress would schedule its next one after the moved clock
        return await jobs.count(status="running") == 0

    await d.wait_for(finished, "the quest reset run to finish")
    CLOCK.advance(timedelta(days=1))
    try:
        assert await discord_env.run_periodic_jobs() >= 1
        notice = await d.wait_for_message("bot-commands", lambda m: "New quests are up!" in m.content,
                                          "the new quests notice", after=before)
        daily = [t for t in rules.QUEST_TEMPLATES if t.quest_type == "daily"]
        assert all(t.name in notice.content for t in daily)
        await discord_env.run_periodic_jobs()  # nothing more is due: no second notice
        notices = [m for m in d.world.channel_messages(d.channel("bot-commands").id)
                   if "New quests are up!" in m.content]
        assert len(notices) == 1
        job = await jobs.find(QUEST_RESET_JOB, quest_reset_key(gid))
        assert job is not None
        assert job.run_at > utcnow()
    finally:
        CLOCK.reset()


async def test_daily_quest_completes_from_messages_and_pays_once(discord_env: SandboxEnv) -> None:
    d = discord_env.driver
    await fast_xp(discord_env, xp=1, options={"quest_channel": "bot-commands"})
    created = await d.slash("quest create", as_="alice", name="Chatter", requirement="total_messages", amount=3,
                            reward_xp=500, quest_type="daily", description="Say three things")
    assert "Created quest" in created.content
    before = d.world.channel_messages(d.channel("bot-commands").id)[-1]
    await chat(discord_env, "bob", 5)
    await chat(discord_env, "bob", 4)
    notice = await d.wait_for_message("bot-commands", lambda m: "completed the quest" in m.content,
                                      "the quest notification", after=before)
    assert notice.content == f"🎯 <@{d.member('bob').user.id}> completed the quest **Chatter** (+500 XP)!"
    level = await cog(discord_env).service.get_user_level(guild_id(discord_env), d.member("bob").user.id)
    assert level.xp == 9 + 500  # nine messages at 1 XP and the reward once
    notices = [m for m in d.world.channel_messages(d.channel("bot-commands").id)
               if "completed the quest" in m.content]
    assert len(notices) == 1
    mine = await d.slash("quests", as_="bob")
    assert mine.ephemeral
    assert "✅ **Chatter**" in mine.text
    listed = await d.slash("quest list", as_="alice")
    assert "Chatter" in listed.content
    [line] = [x for x in listed.content.splitlines() if "**Chatter**" in x]
    quest_id = int(line.split("`#")[1].split("`")[0])
    suggested = await d.autocomplete("quest end", "quest_id", "chatter", as_="alice")
    assert {"name": f"#{quest_id} Chatter (daily)", "value": quest_id} in suggested
    ended = await d.slash("quest end", as_="alice", quest_id=quest_id)
    assert "Ended quest **Chatter**" in ended.content
    after = await d.slash("quests", as_="bob")
    assert "**Chatter**" not in after.text


async def test_leaderboard_pages_with_buttons(discord_env: SandboxEnv) -> None:
    d = discord_env.driver
    service = cog(discord_env).service
    for i in range(25):
        await service.award_xp(guild_id(discord_env), 900_000 + i, 100 * (i + 1), username=f"member{i}")
    reply = await slash_with_buttons(discord_env, "leaderboard", as_="bob")
    assert [b["label"] for b in reply.buttons] == ["Previous", "1/3", "Next"]
    assert "**#1** <@900024>" in reply.text
    page2 = await reply.click("Next")
    assert "Page 2/3" in page2.text
    assert "**#11**" in page2.text
    back = await page2.click("Previous")
    assert "Page 1/3" in back.text
    last = await d.slash("leaderboard", as_="bob", page=3)
    assert "Page 3/3" in last.text
    assert [b.get("disabled", False) for b in last.buttons] == [False, True, True]


async def test_non_admins_are_refused_admin_commands(discord_env: SandboxEnv) -> None:
    d = discord_env.driver
    refused = [("xp add", {"member": "carol", "amount": 5}), ("levels config", {}), ("quest list", {}),
               ("achievement list", {}), ("level set", {"member": "bob", "level": 3}), ("levels reset", {})]
    for command, options in refused:
        reply = await d.slash(command, as_="bob", as_admin_override=True, **options)
        assert reply.ephemeral
        assert reply.content == "You need the Manage Server permission to use this command.", command
    level = await cog(discord_env).service.get_user_level(guild_id(discord_env), d.member("carol").user.id)
    assert level.xp == 0


async def test_admin_xp_commands_and_reset_with_confirmation(discord_env: SandboxEnv) -> None:
    d = discord_env.driver
    added = await d.slash("xp add", as_="alice", member="bob", amount=4675)
    assert "now level 10 (4675 XP)" in added.content
    removed = await d.slash("xp remove", as_="alice", member="bob", amount=675)
    assert "(4000 XP)" in removed.content
    set_xp = await d.slash("xp set", as_="alice", member="bob", amount=100)
    assert "now level 1 (100 XP)" in set_xp.content
    set_level = await d.slash("level set", as_="alice", member="bob", level=50)
    assert "now level 50 (268375 XP)" in set_level.content
    ask = await slash_with_buttons(discord_env, "levels reset", as_="alice", member="bob")
    assert ask.ephemeral
    assert "cannot be undone" in ask.content
    cancelled = await ask.click("Cancel")
    assert cancelled.content == "Nothing was reset."
    service = cog(discord_env).service
    bob = d.member("bob").user.id
    assert (await service.get_user_level(guild_id(discord_env), bob)).xp == 268375
    ask = await slash_with_buttons(discord_env, "levels reset", as_="alice", member="bob")
    await ask.click("Confirm")
    await d.wait_for(lambda: ask.followups, "the reset to be reported")
    assert "Reset Bob." in ask.followups[-1].content
    assert (await service.get_user_level(guild_id(discord_env), bob)).xp == 0


async def test_config_view_noxp_multiplier_and_other_sources(discord_env: SandboxEnv) -> None:
    d = discord_env.driver
    view = await d.slash("levels config", as_="alice")
    assert "MEE6 (5L²+50L+100)" in view.text
    assert "rate ×1" in view.text
    await fast_xp(discord_env, xp=10, reaction_xp=7, command_xp=3, reaction_cooldown=0, command_cooldown=30,
                  options={"level_up_mode": "off"})
    shown = await d.slash("levels config", as_="alice")
    assert "reaction 7 (0 s) · command 3 (30 s)" in shown.text
    noxp = await d.slash("levels noxp", as_="alice", options={"channel": "general"})
    assert f"<#{d.channel('general').id}>" in noxp.text
    boosted = await d.slash("levels multiplier", as_="alice", value=2, role="Member")
    assert "×2" in boosted.text
    bad = await d.slash("levels config", as_="alice", level_up_message="{player} levelled")
    assert "Unknown placeholder {player}" in bad.content
    await d.slash("levels config", as_="alice", options={"quest_channel": "general"})
    cleared = await d.slash("levels config", as_="alice", clear="quest_channel")
    assert "Quests" in cleared.text
    assert f"<#{d.channel('general').id}>" not in cleared.embed["fields"][3]["value"]
    await d.send("general", "no xp here", as_="carol")
    message = await d.send("bot-commands", "double xp here", as_="carol")
    await d.react(message, "👍", as_="carol")
    await d.slash("ping", as_="carol")  # any command counts towards commands_used
    carol = d.member("carol").user.id
    await d.wait_for(lambda: cog(discord_env).ingestor.pending_members > 0, "carol's activity to be scored")

    async def stored() -> bool:
        await cog(discord_env).ingestor.flush()
        view = await cog(discord_env).service.get_user_level(guild_id(discord_env), carol)
        return view.total_reactions == 1 and view.commands_used >= 1

    await d.wait_for(stored, "the reaction and the command to be stored")
    level = await cog(discord_env).service.get_user_level(guild_id(discord_env), carol)
    assert level.total_messages == 1  # the no-XP channel's message is not counted
    assert level.xp == 2 * (10 + 7) + 2 * 3 * level.commands_used


async def test_voice_time_earns_xp_only_when_not_alone(discord_env: SandboxEnv,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    d = discord_env.driver
    leveling = cog(discord_env)
    bob, carol = d.member("bob").user.id, d.member("carol").user.id
    await d.join_voice("bob", "Lounge")
    await d.wait_for(lambda: leveling.voice.channel_of(guild_id(discord_env), bob), "bob's voice session")
    await d.join_voice("carol", "Lounge", mute=True)
    await d.wait_for(lambda: leveling.voice.channel_of(guild_id(discord_env), carol), "carol's voice session")
    later = utcnow() + timedelta(seconds=120)
    monkeypatch.setattr(ingest, "utcnow", lambda: later)  # two minutes pass
    await d.leave_voice("bob")
    await d.wait_for(lambda: leveling.voice.channel_of(guild_id(discord_env), bob) is None, "bob's session to end")
    await leveling.ingestor.flush()
    service = leveling.service
    view = await service.get_user_level(guild_id(discord_env), bob)
    assert 119 <= view.voice_time_seconds <= 121  # with carol there, bob was not alone
    assert view.xp == view.voice_time_seconds * 10 // 60
    assert (await service.get_user_level(guild_id(discord_env), carol)).voice_time_seconds == 0  # muted


async def test_members_already_in_voice_are_tracked_after_a_reconnect(discord_env: SandboxEnv) -> None:
    d = discord_env.driver
    leveling = cog(discord_env)
    bob = d.member("bob").user.id
    await d.join_voice("bob", "Lounge")
    await d.join_voice("carol", "Lounge")
    await d.wait_for(lambda: len(leveling.voice) == 2, "both voice sessions")
    leveling.voice = VoiceTracker()  # as after a restart: nothing tracked
    await leveling.on_ready()
    assert leveling.voice.channel_of(guild_id(discord_env), bob) == d.channel("Lounge").id
    assert len(leveling.voice) == 2


async def test_achievements_are_created_listed_and_earned(discord_env: SandboxEnv) -> None:
    d = discord_env.driver
    created = await d.slash("achievement create", as_="alice", name="First words", requirement="messages", value=1,
                            reward_xp=25, description="Say something")
    assert "Created achievement **First words**" in created.content
    listed = await d.slash("achievement list", as_="alice")
    assert "First words" in listed.content
    await chat(discord_env, "bob", 1)
    mine = await d.slash("achievements", as_="bob")
    assert "🏆 **First words**" in mine.text
    theirs = await d.slash("achievements", as_="bob", member="carol")
    assert "🔒 **First words**" in theirs.text


async def test_level_up_announced_in_the_set_channel_or_by_dm(discord_env: SandboxEnv) -> None:
    d = discord_env.driver
    await fast_xp(discord_env, xp=100, level_up_mode="channel", options={"level_up_channel": "bot-commands"})
    await chat(discord_env, "bob", 1)
    announced = await d.wait_for_message("bot-commands", lambda m: "you just reached level 1" in m.content,
                                         "the level-up in the set channel")
    assert announced.content == f"GG <@{d.member('bob').user.id}>, you just reached level 1!"
    assert not [m for m in d.world.channel_messages(d.channel("general").id) if m.author.id == d.bot_user.id]
    await d.slash("levels config", as_="alice", level_up_mode="dm", level_up_message="Level {level} in {server}!")
    await chat(discord_env, "carol", 1)

    def dm_text() -> list[str]:
        return [m.content for c in d.world.channels.values() if c.type == 1
                for m in d.world.channel_messages(c.id)]

    await d.wait_for(lambda: "Level 1 in Guildkeep Sandbox!" in dm_text(), "carol's level-up DM")
    await d.slash("levels config", as_="alice", level_up_mode="off")
    await chat(discord_env, "carol", 2)
    assert (await cog(discord_env).service.get_user_level(guild_id(discord_env),
                                                           d.member("carol").user.id)).level == 2
    assert dm_text().count("Level 2 in Guildkeep Sandbox!") == 0


async def test_a_member_who_rejoins_gets_their_level_roles_back(discord_env: SandboxEnv) -> None:
    d = discord_env.driver
    role = await d.create_role("Veteran", position=1)
    await d.slash("levels roles add", as_="alice", role="Veteran", level=5)
    dave = await d.add_member("dave", roles=["Member"])
    await d.wait_for(lambda: discord_env.bot.get_guild(guild_id(discord_env)).get_member(dave.user.id),
                     "dave in the bot's cache")
    await d.slash("level set", as_="alice", member="dave", level=6)
    await d.wait_for(lambda: role.id in d.member("dave").roles, "dave to get Veteran")
    await d.remove_member("dave")
    returning = await d.add_member(dave.user, roles=["Member"])
    await d.wait_for(lambda: role.id in returning.roles, "Veteran back when dave rejoins")


async def test_server_reset_takes_level_roles_back(discord_env: SandboxEnv) -> None:
    d = discord_env.driver
    role = await d.create_role("Regular", position=1)
    await d.slash("levels roles add", as_="alice", role="Regular", level=2)
    await d.slash("level set", as_="alice", member="bob", level=3)
    await d.wait_for(lambda: role.id in d.member("bob").roles, "bob to get Regular")
    ask = await slash_with_buttons(discord_env, "levels reset", as_="alice")
    assert "**everyone's** XP" in ask.content
    await ask.click("Confirm")
    await d.wait_for(lambda: ask.followups, "the reset to be reported")
    assert ask.followups[-1].content == "Reset 2 members."  # bob, and alice (XP from her commands)
    await d.wait_for(lambda: role.id not in d.member("bob").roles, "Regular to be taken back")
