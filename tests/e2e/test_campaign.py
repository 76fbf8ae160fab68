"""Campaigns end to end: the real bot through discord.py on the sandbox."""

from __future__ import annotations

from datetime import timedelta

import pytest

from guildkeep.campaign.service import CampaignService
from guildkeep.characters.service import CharacterService
from guildkeep.db import utcnow
from guildkeep.sandbox.driver import SeenMessage
from guildkeep.testing.harness import SandboxEnv
from tests.e2e.probe import tiny_png

pytestmark = pytest.mark.e2e

THORIN = "https://example.org/thorin.png"
GIMLI = "https://example.org/gimli.png"
SILDAR = "https://example.org/sildar.png"


def role_named(env: SandboxEnv, name: str) -> int:
    [role] = [r.id for r in env.driver.guild.roles.values() if r.name == name]
    return role


def has_role(env: SandboxEnv, who: str, role_id: int) -> bool:
    return role_id in env.driver.member(who).roles


def posts(env: SandboxEnv, channel: str = "general") -> list[SeenMessage]:
    return [m for m in env.driver.read(channel, as_="alice") if m.is_webhook]


async def say(env: SandboxEnv, who: str, text: str, *, as_: str | None = None,
              channel: str = "general") -> SeenMessage:
    before = {m.id for m in posts(env, channel)}
    options = {"text": text} | ({"as": as_} if as_ is not None else {})
    reply = await env.driver.slash("say", as_=who, channel=channel, options=options)
    assert reply.ephemeral
    assert reply.content.startswith("Posted as"), reply.text
    [posted] = [m for m in posts(env, channel) if m.id not in before]
    return posted


async def start(env: SandboxEnv, *players: str, channel: str = "general", name: str = "Lost Mine") -> None:
    d = env.driver
    reply = await d.slash("campaign create", as_="alice", channel=channel, name=name)
    assert reply.content.startswith(f"Started **{name}**"), reply.text
    for player in players:
        joined = await d.slash("campaign join", as_=player, channel=channel)
        assert joined.content.startswith(f"You joined **{name}**"), joined.text


async def test_a_campaign_from_creation_to_speech(discord_env: SandboxEnv) -> None:
    d = discord_env.driver
    service = CampaignService(discord_env.db)
    # a GM creates a campaign: both roles exist and the GM has theirs
    await start(discord_env)
    player_role, gm_role = role_named(discord_env, "Lost Mine Player"), role_named(discord_env, "Lost Mine GM")
    assert has_role(discord_env, "alice", gm_role)
    assert not has_role(discord_env, "alice", player_role)
    info = await service.get(d.guild.id, d.channel("general").id)
    assert (info.gm_id, info.player_role_id, info.gm_role_id) == (d.member("alice").user.id, player_role, gm_role)

    # two players join (and get the player role) and create characters
    for player in ("bob", "carol"):
        reply = await d.slash("campaign join", as_=player, channel="general")
        assert reply.content.startswith("You joined"), reply.text
        assert has_role(discord_env, player, player_role)
        assert not has_role(discord_env, player, gm_role)
    made = await d.slash("character create", as_="bob", channel="general", name="Thorin", avatar_url=THORIN,
                         description="A dwarf king")
    assert made.content.startswith("You play **Thorin** here"), made.text
    made = await d.slash("character create", as_="carol", channel="general", name="Gimli", avatar_url=GIMLI)
    assert made.content.startswith("You play **Gimli** here"), made.text
    twice = await d.slash("character create", as_="carol", channel="general", name="Legolas")
    assert twice.content == "You already have a character in this campaign. Change it with /character edit."
    listed = await d.slash("character list", as_="bob", channel="general")
    assert "**Gimli**" in listed.embed["description"]
    assert "**Thorin**" in listed.embed["description"]

    # /say posts through the channel's webhook; the channel shows the character's name and avatar
    thorin = await say(discord_env, "bob", "To the mountain!")
    [hook] = [w for w in d.world.webhooks.values() if w.channel_id == d.channel("general").id]
    assert (thorin.author, thorin.avatar_url, thorin.content) == ("Thorin", THORIN, "To the mountain!")
    assert thorin.message.webhook_id == hook.id
    assert hook.creator.id == d.bot_user.id
    assert (await service.get(d.guild.id, d.channel("general").id)).webhook_id == hook.id
    [choice] = await d.autocomplete("say", "as", "", as_="carol", channel="general")
    assert choice["name"] == "Gimli"
    gimli = await say(discord_env, "carol", "And my axe!", as_=choice["value"])
    assert (gimli.author, gimli.avatar_url) == ("Gimli", GIMLI)
    who = await d.slash("speech who", as_="bob", channel="general", message_id=str(gimli.id))
    assert who.content.startswith(f"**Gimli**'s message was written by <@{d.member('carol').user.id}>"), who.text

    # the author edits theirs (the characters' /speech commands cover campaign speech)
    edited = await d.slash("speech edit", as_="bob", channel="general", message_id=str(thorin.id),
                           text="To the Lonely Mountain!")
    assert edited.content.startswith("Edited your message as **Thorin**"), edited.text
    [now] = [m for m in posts(discord_env) if m.id == thorin.id]
    assert (now.author, now.avatar_url, now.content) == ("Thorin", THORIN, "To the Lonely Mountain!")

    # a player can't delete someone else's message; the GM deletes any message of their campaign
    refused = await d.slash("campaign unsay", as_="bob", channel="general", message_id=str(gimli.id))
    assert refused.content == "Only the GM of the campaign that message belongs to can delete it."
    deleted = await d.slash("campaign unsay", as_="alice", channel="general", message_id=str(gimli.id))
    assert deleted.content.startswith("Deleted the message posted as **Gimli**"), deleted.text
    assert [m.id for m in posts(discord_env)] == [thorin.id]

    # the GM's NPC speaks through the same webhook
    npc = await d.slash("npc create", as_="alice", channel="general", name="Sildar", avatar_url=SILDAR)
    assert npc.content.startswith("Added **Sildar**"), npc.text
    [npc_choice] = await d.autocomplete("say", "as", "sil", as_="alice", channel="general")
    assert npc_choice["name"] == "Sildar (NPC)"
    sildar = await say(discord_env, "alice", "Welcome to Phandalin.", as_=npc_choice["value"])
    assert (sildar.author, sildar.avatar_url, sildar.message.webhook_id) == ("Sildar", SILDAR, hook.id)
    assert await d.autocomplete("say", "as", "sil", as_="bob", channel="general") == []
    refused = await d.slash("say", as_="bob", channel="general", options={"text": "Hi", "as": npc_choice["value"]})
    assert refused.content == "Only this campaign's GM speaks as its NPCs."

    # the webhook is deleted behind the bot's back: the next /say still works (through a new one)
    d.world.webhooks.clear()
    again = await say(discord_env, "bob", "Still here.")
    [new_hook] = [w for w in d.world.webhooks.values() if w.channel_id == d.channel("general").id]
    assert new_hook.id != hook.id
    assert (again.author, again.message.webhook_id) == ("Thorin", new_hook.id)
    assert (await service.get(d.guild.id, d.channel("general").id)).webhook_id == new_hook.id

    # a player of another campaign cannot speak as this campaign's NPC, here or in their own channel
    await d.add_member("dave", roles=["Member"])
    await start(discord_env, "dave", channel="bot-commands", name="Other Game")
    made = await d.slash("character create", as_="dave", channel="bot-commands", name="Drizzt")
    assert made.content.startswith("You play **Drizzt**"), made.text
    before = len(posts(discord_env)) + len(posts(discord_env, "bot-commands"))
    here = await d.slash("say", as_="dave", channel="general", options={"text": "Hi", "as": npc_choice["value"]})
    assert here.content == "Only this campaign's players and GM speak here. Join with /campaign join."
    there = await d.slash("say", as_="dave", channel="bot-commands",
                          options={"text": "Hi", "as": npc_choice["value"]})
    assert there.content == "Only this campaign's GM speaks as its NPCs."
    gm_there = await d.slash("say", as_="alice", channel="bot-commands",
                             options={"text": "Hi", "as": npc_choice["value"]})
    assert gm_there.content.startswith("This campaign has no such NPC"), gm_there.text
    assert len(posts(discord_env)) + len(posts(discord_env, "bot-commands")) == before
    assert await d.autocomplete("say", "as", "", as_="dave", channel="general") == []


async def test_leave_kick_transfer_and_delete_move_the_roles(discord_env: SandboxEnv) -> None:
    d = discord_env.driver
    await start(discord_env, "bob", "carol")
    player_role, gm_role = role_named(discord_env, "Lost Mine Player"), role_named(discord_env, "Lost Mine GM")
    left = await d.slash("campaign leave", as_="bob", channel="general")
    assert left.content.startswith("You left **Lost Mine**"), left.text
    assert not has_role(discord_env, "bob", player_role)
    refused = await d.slash("campaign kick", as_="bob", channel="general", player="carol")
    assert refused.content == "Only this campaign's GM can do that."
    kicked = await d.slash("campaign kick", as_="alice", channel="general", player="carol")
    assert kicked.content.startswith("Removed"), kicked.text
    assert not has_role(discord_env, "carol", player_role)

    await d.slash("campaign join", as_="bob", channel="general")
    moved = await d.slash("campaign transfer", as_="alice", channel="general", new_gm="bob")
    assert "is now the GM of **Lost Mine**" in moved.content, moved.text
    assert has_role(discord_env, "bob", gm_role)
    assert not has_role(discord_env, "bob", player_role)
    assert not has_role(discord_env, "alice", gm_role)

    refused = await d.slash("npc create", as_="carol", channel="general", name="Mine")
    assert refused.content == "Only this campaign's GM can do that."
    prompt = await d.slash("campaign delete", as_="bob", channel="general")
    assert "Delete **Lost Mine**" in prompt.content
    await prompt.click("Cancel", as_="bob")
    assert await CampaignService(discord_env.db).find(d.guild.id, d.channel("general").id) is not None
    prompt = await d.slash("campaign delete", as_="bob", channel="general")
    await prompt.click("Confirm", as_="bob")
    done = await prompt.wait_followup()
    assert done.content.startswith("Deleted **Lost Mine**"), done.content
    assert await CampaignService(discord_env.db).find(d.guild.id, d.channel("general").id) is None
    assert not [r for r in d.guild.roles.values() if r.name.startswith("Lost Mine")]


async def test_archived_campaigns_are_read_only_and_members_need_a_campaign(discord_env: SandboxEnv) -> None:
    d = discord_env.driver
    nothing = await d.slash("say", as_="bob", channel="general", options={"text": "Hello"})
    assert nothing.content == "There is no campaign in this channel. A GM starts one with /campaign create."
    refused = await d.slash("campaign create", as_="bob", channel="general")
    assert "Manage Channels" in refused.content
    await start(discord_env, "bob")
    await d.slash("character create", as_="bob", channel="general", name="Thorin")
    # carol does not play here: not even /speak with her own persona
    await d.slash("persona create", as_="carol", name="Lurker")
    [lurker] = await d.autocomplete("speak", "as", "Lurker", as_="carol", channel="general")
    refused = await d.slash("speak", as_="carol", channel="general", options={"as": lurker["value"], "text": "Hi"})
    assert "only its players and GM speak here" in refused.content
    not_gm = await d.slash("campaign archive", as_="bob", channel="general")
    assert not_gm.content == "Only this campaign's GM can do that."
    archived = await d.slash("campaign archive", as_="alice", channel="general")
    assert archived.content == "**Lost Mine** is archived: read-only."
    refused = await d.slash("say", as_="bob", channel="general", options={"text": "Hello"})
    assert refused.content.startswith("This campaign is archived")
    assert posts(discord_env) == []
    await d.slash("campaign archive", as_="alice", channel="general", archived=False)
    await say(discord_env, "bob", "Hello again")


async def test_the_gms_cross_reaction_deletes_a_players_message(discord_env: SandboxEnv) -> None:
    d = discord_env.driver
    await start(discord_env, "bob", "carol")
    await d.slash("character create", as_="bob", channel="general", name="Thorin")
    posted = await say(discord_env, "bob", "Rude words")
    await d.react(posted.message, "❌", as_="carol")  # not the author, not the GM: nothing happens
    await d.react(posted.message, "❌", as_="alice")

    speech = CharacterService(discord_env.db)

    async def gone() -> bool:
        return posts(discord_env) == [] and await speech.speaker_of(d.guild.id, posted.id) is None

    await d.wait_for(gone, "the GM's ❌ to delete the message and its log row")


async def test_a_scheduled_session_reminds_the_players(discord_env: SandboxEnv) -> None:
    d = discord_env.driver
    await start(discord_env, "bob")
    player_role = role_named(discord_env, "Lost Mine Player")
    refused = await d.slash("campaign schedule", as_="bob", channel="general", when="in 30 minutes")
    assert refused.content == "Only this campaign's GM can do that."
    bad = await d.slash("campaign schedule", as_="alice", channel="general", when="whenever")
    assert bad.content.startswith("I can't read `whenever` as a time.")
    done = await d.slash("campaign schedule", as_="alice", channel="general", when="in 30 minutes",
                         note="Bring dice")
    assert done.content.startswith("Next session: <t:"), done.text
    info = await d.slash("campaign info", as_="bob", channel="general")
    assert any(f["name"] == "Next session" for f in info.embed["fields"])
    scheduler = discord_env.bot.scheduler
    await scheduler.run_until_idle()  # what was due already (the server's quest reset) runs first
    assert await scheduler.run_until_idle(utcnow() + timedelta(minutes=20)) == 0
    assert await scheduler.run_until_idle(utcnow() + timedelta(minutes=31)) == 1
    reminder = await d.wait_for_message("general", lambda m: "starts now" in m.content)
    assert reminder.content == f"<@&{player_role}> The session of **Lost Mine** starts now!\nBring dice"
    assert (await d.slash("campaign unschedule", as_="alice", channel="general")).content == (
        "No session was scheduled.")


async def test_uploaded_pictures_are_what_the_channel_shows(discord_env: SandboxEnv) -> None:
    d = discord_env.driver
    await start(discord_env, "bob")
    made = await d.slash("character create", as_="bob", channel="general", name="Arwen",
                         avatar=("arwen.png", tiny_png()))
    assert made.content.startswith("You play **Arwen**"), made.text
    npc = await d.slash("npc create", as_="alice", channel="general", name="Goblin", avatar=("goblin.png", tiny_png()))
    assert npc.content.startswith("Added **Goblin**"), npc.text
    refused = await d.slash("npc create", as_="alice", channel="general", name="Notes", avatar=("notes.txt", b"hi"))
    assert refused.content == "An avatar must be an image: PNG, JPEG, GIF or WebP."
    arwen = await say(discord_env, "bob", "Hello")
    assert arwen.avatar_url is not None
    assert arwen.avatar_url.startswith(discord_env.server.base_url)
    assert "arwen.png" in arwen.avatar_url
    [goblin_choice] = await d.autocomplete("say", "as", "gob", as_="alice", channel="general")
    goblin = await say(discord_env, "alice", "Grr", as_=goblin_choice["value"])
    assert goblin.author == "Goblin"
    assert goblin.avatar_url is not None
    assert "goblin.png" in goblin.avatar_url


async def test_without_manage_roles_no_campaign_is_started(discord_env: SandboxEnv) -> None:
    d = discord_env.driver
    await d.set_bot_permissions(["view_channel", "send_messages", "read_message_history", "embed_links",
                                 "manage_webhooks"])
    refused = await d.slash("campaign create", as_="alice", channel="general", name="Lost Mine")
    assert refused.content == ("I need the Manage Roles permission to make the campaign's player and GM roles; "
                               "the campaign was not started.")
    assert await CampaignService(discord_env.db).find(d.guild.id, d.channel("general").id) is None
    assert not [r for r in d.guild.roles.values() if r.name.startswith("Lost Mine")]


async def test_a_thread_of_the_campaign_channel_is_the_campaign(discord_env: SandboxEnv) -> None:
    d = discord_env.driver
    service = CampaignService(discord_env.db)
    await start(discord_env, "bob")
    made = await d.slash("character create", as_="bob", channel="general", name="Thorin", avatar_url=THORIN)
    assert made.content.startswith("You play **Thorin**"), made.text
    thread = await d.create_thread("general", "side quest")
    campaign = await service.get(d.guild.id, d.channel("general").id)

    # /say in the thread: the campaign is found, the message appears in the thread (not in the channel),
    # posted by the channel's webhook with the thread's id, and both logs have it
    info = await d.slash("campaign info", as_="bob", channel="side quest")
    assert info.embed["title"].startswith("Lost Mine"), info.text
    [choice] = await d.autocomplete("say", "as", "", as_="bob", channel="side quest")
    assert choice["name"] == "Thorin"
    posted = await say(discord_env, "bob", "Into the cave!", channel="side quest")
    assert (posted.author, posted.avatar_url, posted.content) == ("Thorin", THORIN, "Into the cave!")
    assert posted.message.channel_id == thread.id
    assert posts(discord_env, "general") == []
    [hook] = d.world.webhooks.values()
    assert (hook.channel_id, posted.message.webhook_id) == (d.channel("general").id, hook.id)
    speech = await CharacterService(discord_env.db).speech(d.guild.id, posted.id)
    assert (speech.channel_id, speech.speaker_id) == (thread.id, d.member("bob").user.id)
    assert await service.speech_count(campaign.id) == 1
    assert await service.find(d.guild.id, thread.id) is None  # the campaign is the channel's, found through it
    assert (await service.get(d.guild.id, (thread.id, d.channel("general").id))).id == campaign.id

    # the GM's NPC is made and speaks in the thread; the author edits theirs there; the GM deletes it there
    npc = await d.slash("npc create", as_="alice", channel="side quest", name="Sildar", avatar_url=SILDAR)
    assert npc.content.startswith("Added **Sildar**"), npc.text
    [npc_choice] = await d.autocomplete("say", "as", "sil", as_="alice", channel="side quest")
    sildar = await say(discord_env, "alice", "Careful.", as_=npc_choice["value"], channel="side quest")
    assert (sildar.author, sildar.message.channel_id) == ("Sildar", thread.id)
    assert [n.name for n in await service.list_npcs(d.guild.id, d.channel("general").id)] == ["Sildar"]
    edited = await d.slash("speech edit", as_="bob", channel="side quest", text="Into the dark cave!")
    assert edited.content.startswith("Edited your message as **Thorin**"), edited.text
    assert [m.content for m in posts(discord_env, "side quest") if m.id == posted.id] == ["Into the dark cave!"]
    deleted = await d.slash("campaign unsay", as_="alice", channel="side quest", message_id=str(posted.id))
    assert deleted.content.startswith("Deleted the message posted as **Thorin**"), deleted.text
    assert [m.id for m in posts(discord_env, "side quest")] == [sildar.id]
    assert await service.speech_count(campaign.id) == 1

    # the campaign's rules hold in the thread: a non-player can't /speak there, and no second campaign
    # is started in it
    await d.slash("persona create", as_="carol", name="Lurker")
    [lurker] = await d.autocomplete("speak", "as", "Lurker", as_="carol", channel="side quest")
    refused = await d.slash("speak", as_="carol", channel="side quest",
                            options={"as": lurker["value"], "text": "Hi"})
    assert "only its players and GM speak here" in refused.content
    roles = len(d.guild.roles)
    again = await d.slash("campaign create", as_="alice", channel="side quest", name="Side Game")
    assert again.content == ("This thread's channel already has a campaign, and its threads belong to it. "
                             "See /campaign info.")
    assert (len(d.guild.roles), await service.find(d.guild.id, thread.id)) == (roles, None)
    assert [m.id for m in posts(discord_env, "side quest")] == [sildar.id]
