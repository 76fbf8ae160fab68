"""The real bot, through discord.py, on the sandbox: core commands and events."""

from __future__ import annotations

import pytest

import discord
from guildkeep.config import Settings
from guildkeep.db import Database
from guildkeep.discord.cogs.core import leaf_commands
from guildkeep.discord.limits import embed_problems
from guildkeep.sandbox.gateway import shard_for
from guildkeep.sandbox.state import Webhook
from guildkeep.testing.harness import SandboxEnv

pytestmark = pytest.mark.e2e


async def test_ping_answers(discord_env: SandboxEnv) -> None:
    reply = await discord_env.driver.slash("ping", as_="bob")
    assert reply.content.startswith("Pong!")
    assert not reply.ephemeral


async def test_help_with_an_option_explains_one_command(discord_env: SandboxEnv) -> None:
    reply = await discord_env.driver.slash("help", as_="carol", command="ping")
    assert reply.ephemeral
    assert reply.embed["title"] == "/ping"
    assert "alive" in reply.embed["description"]


async def test_help_suggests_commands_while_typing(discord_env: SandboxEnv) -> None:
    choices = await discord_env.driver.autocomplete("help", "command", "pi", as_="bob")
    assert choices == [{"name": "/ping", "value": "ping"}]


async def test_mentioning_the_bot_gets_a_reply(discord_env: SandboxEnv) -> None:
    driver = discord_env.driver
    sent = await driver.send("general", f"hello {driver.bot_mention}", as_="bob")
    reply = await driver.wait_for_bot_message("general", after=sent)
    assert reply.reference_id == sent.id
    assert "Hi Bob!" in reply.content
    seen = driver.read("general", as_="carol")
    assert [m.author for m in seen] == ["Bob", "guildkeep"]


async def test_a_mention_is_answered_where_the_bot_cannot_read_the_history(discord_env: SandboxEnv) -> None:
    driver = discord_env.driver
    await driver.set_permissions("general", "guildkeep", deny=["read_message_history"])
    sent = await driver.send("general", f"hello {driver.bot_mention}", as_="bob")
    reply = await driver.wait_for_bot_message("general", after=sent)
    assert reply.reference_id is None  # Discord refuses a reply here (50013): a plain message instead
    bob = driver.member("bob").user.id
    assert reply.content.startswith(f"<@{bob}>")
    assert "Type `/help`" in reply.content


async def test_help_pages_turn_with_the_buttons(discord_env: SandboxEnv) -> None:
    reply = await discord_env.driver.slash("help", as_="alice")
    assert reply.embed["title"] == "guildkeep help"
    pages = len(discord_env.bot.get_cog("Core").help_pages())  # the overview, then each module's (Core first)
    assert [b["label"] for b in reply.buttons] == ["Previous", f"1/{pages}", "Next"]
    turned = await reply.click("Next")
    assert turned.embed["title"] == "Core commands"
    assert "/ping" in turned.text
    assert [b.get("disabled", False) for b in turned.buttons] == [False, True, pages == 2]
    back = await turned.click("Previous")
    assert back.embed["title"] == "guildkeep help"


async def test_help_for_every_command_fits_discord_limits(discord_env: SandboxEnv) -> None:
    """Every command of the bot's tree explained by /help arrives (no 50035) within every embed limit."""
    driver, bot = discord_env.driver, discord_env.bot
    names = sorted(leaf.qualified_name for command in bot.tree.get_commands(type=discord.AppCommandType.chat_input)
                   for leaf in leaf_commands(command))  # type: ignore[arg-type]
    assert "levels config" in names
    for name in names:
        reply = await driver.slash("help", as_="carol", command=name)
        assert reply.ephemeral, name
        assert reply.embed["title"] == f"/{name}"
        assert embed_problems(reply.embed) == [], name
    pages = await driver.slash("help", as_="alice")
    total = int(pages.buttons[1]["label"].split("/")[1])
    for _ in range(total - 1):
        assert embed_problems(pages.embed) == []
        pages = await pages.click("Next")
    assert embed_problems(pages.embed) == []
    assert not [r for r in driver.server.requests if r.status == 400]


# -- through the test-only probe extension ----------------------------------------------------

probe = pytest.mark.discord_extensions("tests.e2e.probe")


@probe
async def test_webhook_post_shows_the_character_name_and_avatar(discord_env: SandboxEnv) -> None:
    driver = discord_env.driver
    avatar = "https://example.org/gandalf.png"
    reply = await driver.slash("probe-say", as_="alice", channel="general", text="You shall not pass!",
                               name="Gandalf", avatar=avatar)
    assert reply.ephemeral
    assert reply.content.startswith("Sent as Gandalf")
    seen = driver.read("general", as_="carol")[-1]
    assert (seen.author, seen.avatar_url, seen.content, seen.is_webhook) == ("Gandalf", avatar, "You shall not pass!",
                                                                             True)
    await driver.slash("probe-say", as_="alice", channel="general", text="Fly, you fools!", name="Gandalf")
    hooks = [w for w in driver.world.webhooks.values() if w.channel_id == driver.channel("general").id]
    assert len(hooks) == 1, "the webhook is reused"


@probe
async def test_webhook_in_a_thread_uses_the_parent_channel_webhook(discord_env: SandboxEnv) -> None:
    driver = discord_env.driver
    await driver.slash("probe-say", as_="bob", channel="welcome-thread", text="Hi from the thread",
                       name="Frodo")
    [seen] = [m for m in driver.read("welcome-thread", as_="bob") if m.is_webhook]
    assert (seen.author, seen.content) == ("Frodo", "Hi from the thread")
    [hook] = driver.world.webhooks.values()
    assert hook.channel_id == driver.channel("general").id


@probe
async def test_a_deleted_webhook_is_recreated(discord_env: SandboxEnv) -> None:
    driver = discord_env.driver
    await driver.slash("probe-say", as_="alice", channel="general", text="one", name="Sam")
    driver.world.webhooks.clear()  # someone deleted it in the channel settings
    reply = await driver.slash("probe-say", as_="alice", channel="general", text="two", name="Sam")
    assert reply.content.startswith("Sent as Sam")
    assert [m.content for m in driver.read("general", as_="bob") if m.is_webhook] == ["one", "two"]
    assert len(driver.world.webhooks) == 1


@probe
async def test_missing_manage_webhooks_is_explained_to_the_player(discord_env: SandboxEnv) -> None:
    driver = discord_env.driver
    await driver.set_permissions("general", "guildkeep", deny=["manage_webhooks"])
    reply = await driver.slash("probe-say", as_="alice", channel="general", text="hello", name="Pippin")
    assert reply.ephemeral
    assert reply.content == "I need the Manage Webhooks permission in #general to speak as characters there."


@probe
async def test_full_webhook_slots_are_explained(discord_env: SandboxEnv) -> None:
    driver = discord_env.driver
    general = driver.channel("general")
    alice = driver.member("alice").user
    for n in range(1, 16):  # fifteen webhooks made by other integrations
        driver.world.webhooks[n] = Webhook(n, f"token{n}", driver.guild.id, general.id, f"other {n}", alice)
    reply = await driver.slash("probe-say", as_="alice", channel=general, text="hello", name="Merry")
    assert "already has 15 webhooks" in reply.content


@probe
async def test_member_without_permission_is_refused_clearly(discord_env: SandboxEnv) -> None:
    driver = discord_env.driver
    with pytest.raises(AssertionError, match="cannot see /probe-admin"):
        await driver.slash("probe-admin", as_="bob")
    reply = await driver.slash("probe-admin", as_="bob", as_admin_override=True)
    assert reply.ephemeral
    assert reply.content == "You need the Manage Server permission to use this command."
    ok = await driver.slash("probe-admin", as_="alice")
    assert ok.content == "Admin thing done."


@probe
async def test_role_hierarchy_refusal_is_a_clear_message(discord_env: SandboxEnv) -> None:
    driver = discord_env.driver
    given = await driver.slash("probe-role", as_="alice", member="carol", role="Moderator")
    assert given.content == "Carol now has Moderator."
    assert driver.role("Moderator").id in driver.member("carol").roles
    refused = await driver.slash("probe-role", as_="alice", member="carol", role="Admin")
    assert refused.ephemeral
    assert refused.content.startswith("I'm missing a permission to do that here.")
    assert driver.role("Admin").id not in driver.member("carol").roles


@probe
async def test_domain_errors_are_shown_and_unexpected_ones_get_an_id(discord_env: SandboxEnv,
                                                                     caplog: pytest.LogCaptureFixture) -> None:
    driver = discord_env.driver
    taken = await driver.slash("probe-domain", as_="bob", name="Aragorn")
    assert (taken.ephemeral, taken.content) == (True, "The name 'Aragorn' is already taken.")
    boom = await driver.slash("probe-fail", as_="bob")
    assert boom.ephemeral
    assert boom.content.startswith("Sorry, something went wrong on my side.")
    error_id = boom.content.split("`")[1]
    assert any(error_id in r.getMessage() and r.exc_info for r in caplog.records)


@probe
async def test_an_error_that_echoes_a_long_input_still_reaches_the_player(discord_env: SandboxEnv) -> None:
    taken = await discord_env.driver.slash("probe-domain", as_="bob", name="N" * 2500)
    assert taken.ephemeral
    assert taken.content.startswith("The name 'NNN")
    assert len(taken.content) == 2000
    assert taken.content.endswith("…")


@probe
async def test_discord_limits_reach_the_bot_as_errors(discord_env: SandboxEnv) -> None:
    driver = discord_env.driver
    reply = await driver.slash("probe-long", as_="bob")
    assert reply.content.startswith("Sorry, something went wrong")
    rejected = [r for r in driver.server.requests if r.status == 400]
    assert rejected, "the 2001-character message was refused with 400"


@probe
async def test_oversize_messages_and_embeds_are_fitted_before_they_are_sent(discord_env: SandboxEnv) -> None:
    driver = discord_env.driver
    reply = await driver.slash("probe-oversize", as_="bob", channel="general")
    assert reply.content == "x" * 1999 + "…"
    assert embed_problems(reply.embed) == []
    assert reply.embed["title"].endswith("…")
    sent = await driver.wait_for_bot_message("general", after=reply.message)
    assert sent.content == "y" * 1999 + "…"
    assert all(embed_problems(e) == [] for e in sent.embeds)
    paged = await driver.slash("probe-oversize", as_="bob", paged=True)
    assert len(paged.content) == 2000
    assert embed_problems(paged.embed) == []
    turned = await paged.click("Next")
    assert embed_problems(turned.embed) == []
    assert not [r for r in driver.server.requests if r.status == 400]


@probe
async def test_files_modals_selects_and_confirmations(discord_env: SandboxEnv) -> None:
    driver = discord_env.driver
    pic = await driver.slash("probe-file", as_="bob")
    [attachment] = pic.attachments
    assert attachment.filename == "card.png"
    assert attachment.data.startswith(b"\x89PNG")
    assert attachment.payload()["width"] == 2

    modal = await driver.slash("probe-modal", as_="bob")
    assert modal.modal is not None
    assert modal.modal["title"] == "Name your character"
    done = await modal.submit({"Name": "Bilbo", "Story": "There and back again"})
    assert done.content == "Created Bilbo (20 chars of story)"

    menu = await driver.slash("probe-select", as_="carol")
    picked = await menu.select("Pick flavours", ["Vanilla", "m"])
    assert picked.content == "You picked v, m"
    assert picked.components == []

    ask = await driver.slash("probe-confirm", as_="alice")
    not_yours = await ask.click("Confirm", as_="bob")
    assert not_yours.ephemeral
    assert "someone else" in not_yours.content
    confirmed = await ask.click("Confirm")
    assert confirmed.content == "Deleted."
    assert all(b.get("disabled") for b in confirmed.buttons)
    await driver.wait_for_message("bot-commands", lambda m: m.content == "Done for real.", "the followup")


@probe
async def test_reactions_and_dms(discord_env: SandboxEnv) -> None:
    driver = discord_env.driver
    sent = await driver.send("general", "star me", as_="bob")
    await driver.react(sent, "⭐", as_="carol")
    await driver.wait_for(lambda: sent.reactions.get("✅") == [driver.bot_user.id], "the bot's ✅ reaction")
    reply = await driver.slash("probe-dm", as_="carol")
    assert reply.content == "Check your DMs."
    dm = next(c for c in driver.world.channels.values() if c.type == 1)
    assert [m.content for m in driver.world.channel_messages(dm.id)] == ["A private hello"]


async def test_bot_sees_voice_and_member_events(discord_env: SandboxEnv) -> None:
    driver, bot = discord_env.driver, discord_env.bot
    guild = bot.get_guild(driver.guild.id)
    bob_id = driver.member("bob").user.id
    await driver.join_voice("bob", "Lounge", mute=True)
    await driver.wait_for(lambda: (m := guild.get_member(bob_id)) and m.voice and m.voice.channel
                          and m.voice.channel.name == "Lounge" and m.voice.self_mute, "bob in Lounge, muted")
    await driver.leave_voice("bob")
    await driver.wait_for(lambda: guild.get_member(bob_id).voice is None, "bob out of voice")
    dave = await driver.add_member("dave", roles=["Member"])
    await driver.wait_for(lambda: guild.get_member(dave.user.id), "dave in the bot's member cache")
    await driver.give_role("dave", "Moderator")
    await driver.wait_for(lambda: any(r.name == "Moderator" for r in guild.get_member(dave.user.id).roles),
                          "dave's new role")
    await driver.remove_member("dave")
    await driver.wait_for(lambda: guild.get_member(dave.user.id) is None, "dave gone")


async def test_bot_resumes_after_the_connection_drops(discord_env: SandboxEnv) -> None:
    driver = discord_env.driver
    gateway = driver.server.gateway
    assert await driver.drop_connection() == 1
    await driver.wait_for(lambda: any(s.resumed_count for s in gateway.sessions.values()), "a RESUME")
    reply = await driver.slash("ping", as_="bob")
    assert reply.content.startswith("Pong!")
    assert len(gateway.sessions) == 1, "resumed, not re-identified"


async def test_bot_identifies_again_when_its_session_is_gone(discord_env: SandboxEnv) -> None:
    driver = discord_env.driver
    gateway = driver.server.gateway
    await driver.drop_connection(resumable=False)
    await driver.wait_for(lambda: gateway.sessions, "a new IDENTIFY")
    await discord_env.wait_ready()
    sent = await driver.send("general", f"{driver.bot_mention} still there?", as_="carol")
    reply = await driver.wait_for_bot_message("general", after=sent)
    assert "Hi Carol!" in reply.content


async def test_closing_while_the_guilds_are_awaited_after_a_new_session_leaves_no_ready_dispatch(
    discord_env: SandboxEnv,
) -> None:
    """discord.py waits for the guilds after a READY before it dispatches ``ready``; a close in that wait must
    end the wait, or the dispatch comes after the close, when the bot has no event loop any more."""
    driver, bot = discord_env.driver, discord_env.bot
    state = bot._connection
    state.guild_ready_timeout = 30  # keep the wait open while the bot closes
    await driver.drop_connection(resumable=False)
    await driver.wait_for(lambda: state._ready_task is not None, "the wait for the guilds after the new READY")
    waiting = state._ready_task
    await bot.close()
    assert waiting.done()


async def test_two_shards_split_the_guilds(db: Database, discord_settings: Settings) -> None:
    env = await SandboxEnv.start(db, discord_settings, shards=2)
    try:
        driver = env.driver
        demo = driver.guild
        assert demo is not None
        home = shard_for(demo.id, 2)
        # A second guild whose id routes to the other shard: only that shard's bot is told about it.
        other = driver.create_guild("Other Place", owner="olga", guild_id=demo.id + (1 << 22))
        assert shard_for(other.id, 2) != home
        await driver.announce_guild(other)
        await driver.wait_for(lambda: env.bots[1 - home].get_guild(other.id), "the other shard to see the guild")
        assert [g.id for g in env.bots[home].guilds] == [demo.id]
        assert [g.id for g in env.bots[1 - home].guilds] == [other.id]
        driver.guild = other
        await driver.create_channel("bot-commands")
        reply = await driver.slash("about", as_="olga")
        assert "Servers" in reply.text
        assert {f["name"]: f["value"] for f in reply.embed["fields"]}["Servers"] == "1"
    finally:
        await env.stop()


async def test_the_driver_sees_when_the_bot_listens_to_a_button(discord_env: SandboxEnv) -> None:
    d = discord_env.driver
    reply = await d.slash("help", as_="alice")
    following = next(b for b in reply.buttons if b["label"] == "Next")

    async def listened() -> bool:
        return discord_env._listens(reply.message.id, 2, following["custom_id"])

    await d.wait_for(listened, "the help view to be registered")  # discord.py registers it after the answer
    assert not discord_env._listens(reply.message.id, 2, "no-such-button")
    assert not discord_env._listens(reply.message.id + 1, 2, following["custom_id"])
    turned = await reply.click("Next")
    assert turned.embed["title"] == "Core commands"
