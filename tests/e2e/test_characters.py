"""Personas and speech end to end: the real bot through discord.py on the sandbox."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

import discord
from guildkeep.characters.models import Character
from guildkeep.characters.service import CharacterService
from guildkeep.errors import ConflictError
from guildkeep.identity.service import ensure_user
from guildkeep.sandbox.driver import SeenMessage
from guildkeep.testing.harness import SandboxEnv
from tests.e2e.probe import tiny_png

pytestmark = pytest.mark.e2e

AVATAR = "https://example.org/gandalf.png"


async def make_persona(env: SandboxEnv, owner: str = "bob", name: str = "Gandalf", **options: Any) -> int:
    reply = await env.driver.slash("persona create", as_=owner, name=name, **options)
    assert reply.ephemeral
    assert reply.content.startswith(f"Created **{name}**"), reply.text
    [choice] = [c for c in await env.driver.autocomplete("speak", "as", name, as_=owner)
                if c["name"] == name]
    return int(choice["value"])


async def speak(env: SandboxEnv, persona: int | str, text: str, *, as_: str = "bob",
                channel: str = "general") -> SeenMessage:
    d = env.driver
    before = {m.id for m in d.read(channel, as_="carol")}
    reply = await d.slash("speak", as_=as_, channel=channel, options={"as": str(persona), "text": text})
    assert reply.ephemeral
    assert reply.content.startswith("Posted as"), reply.text
    [posted] = [m for m in d.read(channel, as_="carol") if m.is_webhook and m.id not in before]
    return posted


def webhook_posts(env: SandboxEnv) -> list[Any]:
    """Messages executed through a channel webhook (not the interaction followups on the same route)."""
    followups = f"/webhooks/{env.server.application_id}/"
    return [r for r in env.server.requests if r.method == "POST" and r.route == "/webhooks/{webhook_id}/{token}"
            and not r.path.startswith(followups)]


async def test_speak_posts_through_the_channel_webhook_with_name_and_avatar(discord_env: SandboxEnv) -> None:
    d = discord_env.driver
    persona = await make_persona(discord_env, avatar_url=AVATAR, description="A wizard")
    seen = await speak(discord_env, persona, "You shall not pass!")
    assert (seen.author, seen.avatar_url, seen.content, seen.is_webhook) == (
        "Gandalf", AVATAR, "You shall not pass!", True)
    [hook] = [w for w in d.world.webhooks.values() if w.channel_id == d.channel("general").id]
    assert seen.message.webhook_id == hook.id
    assert hook.creator.id == d.bot_user.id  # the bot's own webhook, never one a user pasted
    logged = await CharacterService(discord_env.db).speech(d.guild.id, seen.id)
    assert (logged.speaker_id, logged.character_id, logged.character_name) == (
        d.member("bob").user.id, persona, "Gandalf")
    await speak(discord_env, persona, "Fly, you fools!")
    assert len([w for w in d.world.webhooks.values() if w.channel_id == d.channel("general").id]) == 1


async def test_an_uploaded_avatar_is_stored_by_its_cdn_url_and_shown(discord_env: SandboxEnv) -> None:
    persona = await make_persona(discord_env, name="Arwen", avatar=("arwen.png", tiny_png()))
    info = await CharacterService(discord_env.db).get(discord_env.driver.member("bob").user.id, persona)
    assert info.avatar_url is not None
    assert info.avatar_url.startswith(discord_env.server.base_url)
    assert "arwen.png" in info.avatar_url
    seen = await speak(discord_env, persona, "Hello")
    assert seen.avatar_url == info.avatar_url


async def test_bad_names_and_files_are_refused_clearly(discord_env: SandboxEnv) -> None:
    d = discord_env.driver
    reply = await d.slash("persona create", as_="bob", name="Clyde the Bot")
    assert reply.ephemeral
    assert '"clyde"' in reply.content
    reply = await d.slash("persona create", as_="bob", name="Notes", avatar=("notes.txt", b"hello"))
    assert reply.ephemeral
    assert "must be an image" in reply.content
    reply = await d.slash("persona create", as_="bob", name="Linky", avatar_url="ftp://example.org/a.png")
    assert "https://" in reply.content
    await make_persona(discord_env, name="Twice")
    reply = await d.slash("persona create", as_="bob", name="TWICE")
    assert "already have a character called **TWICE**" in reply.content
    assert await CharacterService(discord_env.db).suggest(d.member("bob").user.id, "") != []
    assert [c.name for c in await CharacterService(discord_env.db).suggest(d.member("bob").user.id, "")] == ["Twice"]


async def test_a_member_cannot_speak_as_someone_elses_character(discord_env: SandboxEnv) -> None:
    d = discord_env.driver
    persona = await make_persona(discord_env, public=True)
    reply = await d.slash("speak", as_="carol", channel="general", options={"as": str(persona), "text": "Mine now"})
    assert reply.ephemeral
    assert reply.content == "Only the character's creator can do that."
    assert not [m for m in d.read("general", as_="carol") if m.is_webhook]
    # carol's autocomplete never offers it for /speak, but /persona show finds the public one
    assert await d.autocomplete("speak", "as", "gan", as_="carol") == []
    shown = await d.slash("persona show", as_="carol", persona=str(persona))
    assert shown.embed["title"] == "Gandalf"


async def test_autocomplete_offers_at_most_25(discord_env: SandboxEnv) -> None:
    service = CharacterService(discord_env.db)
    bob = discord_env.driver.member("bob").user.id
    for n in range(30):
        await service.create(bob, f"Soldier {n:02d}")
    choices = await discord_env.driver.autocomplete("speak", "as", "sol", as_="bob")
    assert len(choices) == 25
    assert choices[0]["name"] == "Soldier 00"


async def test_the_author_edits_and_deletes_and_nobody_else_can(discord_env: SandboxEnv) -> None:
    d = discord_env.driver
    persona = await make_persona(discord_env, avatar_url=AVATAR)
    seen = await speak(discord_env, persona, "First words")

    refused = await d.slash("speech edit", as_="carol", channel="general", message_id=str(seen.id), text="Hacked")
    assert refused.ephemeral
    assert refused.content == "Only the person who posted that message can change or delete it."
    refused = await d.slash("speech delete", as_="carol", channel="general", message_id=str(seen.id))
    assert refused.content == "Only the person who posted that message can change or delete it."
    assert seen.message.content == "First words"

    edited = await d.slash("speech edit", as_="bob", channel="general", message_id=str(seen.id), text="Better words")
    assert edited.content.startswith("Edited your message as **Gandalf**")
    [now] = [m for m in d.read("general", as_="carol") if m.id == seen.id]
    assert (now.author, now.avatar_url, now.content) == ("Gandalf", AVATAR, "Better words")

    # without a message id: the author's latest message in this channel
    await d.slash("speech edit", as_="bob", channel="general", text="Best words")
    assert seen.message.content == "Best words"

    link = f"https://discord.com/channels/{d.guild.id}/{d.channel('general').id}/{seen.id}"
    deleted = await d.slash("speech delete", as_="bob", channel="general", message_id=link)
    assert deleted.content.startswith("Deleted your message")
    assert seen.id not in [m.id for m in d.read("general", as_="carol")]
    assert await CharacterService(discord_env.db).speaker_of(d.guild.id, seen.id) is None
    gone = await d.slash("speech who", as_="carol", channel="general", message_id=str(seen.id))
    assert gone.ephemeral
    assert gone.content.startswith("That message was not posted as a character here")


async def test_a_webhook_deleted_behind_the_bots_back_is_recreated(discord_env: SandboxEnv) -> None:
    d = discord_env.driver
    persona = await make_persona(discord_env)
    first = await speak(discord_env, persona, "one")
    [old_hook] = d.world.webhooks.values()
    d.world.webhooks.clear()  # someone deleted it in the channel settings
    second = await speak(discord_env, persona, "two")
    [new_hook] = d.world.webhooks.values()
    assert new_hook.id != old_hook.id
    assert second.message.webhook_id == new_hook.id
    assert [m.content for m in d.read("general", as_="carol") if m.is_webhook] == ["one", "two"]
    # the old message can't be edited through another webhook, and the player is told why
    refused = await d.slash("speech edit", as_="bob", channel="general", message_id=str(first.id), text="changed")
    assert "webhook that has since been deleted" in refused.content
    assert first.message.content == "one"
    # but it can still be deleted (the bot deletes it with Manage Messages)
    await d.slash("speech delete", as_="bob", channel="general", message_id=str(first.id))
    assert [m.content for m in d.read("general", as_="carol") if m.is_webhook] == ["two"]
    edited = await d.slash("speech edit", as_="bob", channel="general", message_id=str(second.id), text="deux")
    assert edited.content.startswith("Edited")
    assert second.message.content == "deux"


async def test_who_wrote_it_by_command_and_by_message_menu(discord_env: SandboxEnv) -> None:
    d = discord_env.driver
    persona = await make_persona(discord_env)
    seen = await speak(discord_env, persona, "Guess who")
    bob = d.member("bob").user.id
    by_command = await d.slash("speech who", as_="carol", channel="general", message_id=str(seen.id))
    assert by_command.ephemeral
    assert by_command.content.startswith(f"**Gandalf**'s message was written by <@{bob}> (bob) on <t:")
    by_menu = await d.message_command("Who wrote this?", seen.message, as_="carol")
    assert by_menu.ephemeral
    assert by_menu.content == by_command.content
    plain = await d.send("general", "just me", as_="alice")
    refused = await d.message_command("Who wrote this?", plain, as_="carol")
    assert refused.ephemeral
    assert refused.content == "That message was not posted as a character."
    bad = await d.slash("speech who", as_="carol", channel="general", message_id="hello")
    assert "not a message id" in bad.content


async def test_question_mark_reaction_dms_who_wrote_it(discord_env: SandboxEnv) -> None:
    d = discord_env.driver
    persona = await make_persona(discord_env)
    seen = await speak(discord_env, persona, "React to me")
    carol = d.member("carol").user
    await d.react(seen.message, "❓", as_="carol")

    def dm_texts() -> list[str]:
        return [m.content for c in d.world.channels.values() if c.type == 1 and carol in c.recipients
                for m in d.world.channel_messages(c.id)]

    [text] = await d.wait_for(dm_texts, "a DM to carol")
    assert text.startswith(f"**Gandalf**'s message was written by <@{d.member('bob').user.id}> (bob)")
    await d.wait_for(lambda: not seen.message.reactions.get("❓"), "the ❓ reaction to be removed")


async def test_cross_reaction_deletes_only_for_the_author(discord_env: SandboxEnv) -> None:
    d = discord_env.driver
    persona = await make_persona(discord_env)
    seen = await speak(discord_env, persona, "Delete me")
    await d.react(seen.message, "❌", as_="carol")
    await d.react(seen.message, "❓", as_="alice")  # processed after carol's ❌, in order
    await d.wait_for(lambda: not seen.message.reactions.get("❓"), "alice's ❓ to be handled")
    assert seen.id in [m.id for m in d.read("general", as_="carol")]
    await d.react(seen.message, "❌", as_="bob")
    await d.wait_for(lambda: seen.id not in [m.id for m in d.read("general", as_="carol")], "the message deleted")


async def test_everyone_does_not_ping_from_a_member_without_the_permission(discord_env: SandboxEnv) -> None:
    d = discord_env.driver
    persona = await make_persona(discord_env)
    await speak(discord_env, persona, f"@everyone @here look <@{d.member('carol').user.id}>")
    body = webhook_posts(discord_env)[-1].body
    assert "everyone" not in body["allowed_mentions"]["parse"]
    assert "users" in body["allowed_mentions"]["parse"]
    assert body["allowed_mentions"]["roles"] == []

    role = await d.create_role("Pingable")
    role.mentionable = True
    await discord_env.server.dispatch("GUILD_ROLE_UPDATE", {"guild_id": str(d.guild.id), "role": role.payload()},
                                      d.guild.id)
    guild = discord_env.bot.get_guild(d.guild.id)
    await d.wait_for(lambda: (seen := guild.get_role(role.id)) is not None and seen.mentionable,
                     "the bot to see the role as mentionable")
    await speak(discord_env, persona, "now with a mentionable role")
    allowed = webhook_posts(discord_env)[-1].body["allowed_mentions"]
    assert "everyone" not in allowed["parse"]
    assert [str(r) for r in allowed["roles"]] == [str(d.role("Pingable").id)]

    admin_persona = await make_persona(discord_env, owner="alice", name="Herald")
    await speak(discord_env, admin_persona, "@everyone hear ye", as_="alice")
    allowed = webhook_posts(discord_env)[-1].body["allowed_mentions"]
    assert "everyone" in allowed["parse"]
    assert "roles" in allowed["parse"]


async def test_speaking_in_a_thread_uses_the_parent_webhook(discord_env: SandboxEnv) -> None:
    d = discord_env.driver
    persona = await make_persona(discord_env)
    seen = await speak(discord_env, persona, "In the thread", channel="welcome-thread")
    [hook] = d.world.webhooks.values()
    assert hook.channel_id == d.channel("general").id
    assert seen.message.channel_id == d.channel("welcome-thread").id
    edited = await d.slash("speech edit", as_="bob", channel="welcome-thread", text="Still in the thread")
    assert edited.content.startswith("Edited")
    assert seen.message.content == "Still in the thread"
    await d.slash("speech delete", as_="bob", channel="welcome-thread")
    assert not [m for m in d.read("welcome-thread", as_="bob") if m.is_webhook]


async def test_speech_is_reported_for_the_real_speaker(discord_env: SandboxEnv) -> None:
    d, bot = discord_env.driver, discord_env.bot
    heard: list[tuple[int, int, discord.Member, discord.Message]] = []

    async def on_character_speech(guild_id: int, channel_id: int, member: discord.Member,
                                  message: discord.Message) -> None:
        heard.append((guild_id, channel_id, member, message))

    bot.add_listener(on_character_speech)
    persona = await make_persona(discord_env)
    seen = await speak(discord_env, persona, "Credit me")
    await d.wait_for(lambda: heard, "the character_speech event")
    [(guild_id, channel_id, member, message)] = heard
    assert (guild_id, channel_id, member.id, message.id) == (
        d.guild.id, d.channel("general").id, d.member("bob").user.id, seen.id)
    assert message.webhook_id is not None


async def test_persona_edit_server_override_list_and_delete(discord_env: SandboxEnv) -> None:
    d = discord_env.driver
    persona = await make_persona(discord_env, avatar_url=AVATAR)
    edited = await d.slash("persona edit", as_="bob", persona=str(persona), description="The Grey", public=True)
    assert edited.embed["description"] == "The Grey"
    here = await d.slash("persona server", as_="bob", persona="gandalf", nickname="Mithrandir",
                         avatar_url="https://example.org/m.png")
    assert here.embed["title"] == "Mithrandir"
    seen = await speak(discord_env, persona, "Elvish name here")
    assert (seen.author, seen.avatar_url) == ("Mithrandir", "https://example.org/m.png")
    listed = await d.slash("persona list", as_="bob")
    assert "**Gandalf** (as Mithrandir)" in listed.embed["description"]
    theirs = await d.slash("persona list", as_="carol", user="bob")
    assert "Gandalf" in theirs.embed["description"]
    hidden = await d.slash("persona server", as_="bob", persona=str(persona), hidden=True)
    assert "is hidden" in hidden.text
    refused = await d.slash("speak", as_="bob", channel="general", options={"as": str(persona), "text": "hi"})
    assert "hidden on this server" in refused.content
    nobody = await d.slash("persona list", as_="carol", user="bob")
    assert nobody.content == "Bob has no public characters."
    await d.slash("persona server", as_="bob", persona=str(persona), reset=True)
    assert (await speak(discord_env, persona, "Back")).author == "Gandalf"
    deleted = await d.slash("persona delete", as_="bob", persona=str(persona))
    assert deleted.content == "Deleted **Gandalf**."
    empty = await d.slash("persona list", as_="bob")
    assert empty.content.startswith("You have no characters yet")
    # messages already posted keep their author
    who = await d.slash("speech who", as_="carol", channel="general", message_id=str(seen.id))
    assert "**Mithrandir**'s message was written by" in who.content


async def test_names_are_shown_literally_in_replies(discord_env: SandboxEnv) -> None:
    d = discord_env.driver
    reply = await d.slash("persona create", as_="bob", name="*Star*_dust_")
    assert reply.content.startswith("Created **\\*Star\\*\\_dust\\_**.")
    seen = await speak(discord_env, "*Star*_dust_", "Twinkle")
    assert seen.author == "*Star*_dust_"  # the webhook name itself is not markdown


async def test_a_name_discord_refuses_when_posting_is_explained(discord_env: SandboxEnv) -> None:
    d = discord_env.driver
    # a character stored before a name rule existed: Discord itself refuses the name when posting
    async with discord_env.db.session() as s:
        await ensure_user(s, d.member("bob").user.id)
        s.add(Character(owner_id=d.member("bob").user.id, name="Old Clyde", name_key="old clyde", description=""))
    reply = await d.slash("speak", as_="bob", channel="general", options={"as": "Old Clyde", "text": "hi"})
    assert reply.ephemeral
    assert reply.content.startswith("Discord refused to post as **Old Clyde**")
    assert "/persona edit" in reply.content
    assert not [m for m in d.read("general", as_="carol") if m.is_webhook]


async def test_a_message_deleted_by_a_moderator_leaves_the_log(discord_env: SandboxEnv) -> None:
    d = discord_env.driver
    persona = await make_persona(discord_env)
    seen = await speak(discord_env, persona, "Moderate me")
    own = await d.send("general", "a member's own message", as_="carol")
    service = CharacterService(discord_env.db)
    await d.delete(own)
    await d.delete(seen.message)  # a moderator deletes it in Discord's client

    async def forgotten() -> bool:
        return await service.speaker_of(d.guild.id, seen.id) is None

    await d.wait_for(forgotten, "the speech log row to be dropped")


async def test_another_server_sees_neither_the_log_nor_the_overrides(discord_env: SandboxEnv) -> None:
    d = discord_env.driver
    persona = await make_persona(discord_env, public=True)
    await d.slash("persona server", as_="bob", persona=str(persona), nickname="Local Name")
    seen = await speak(discord_env, persona, "Only here")
    assert seen.author == "Local Name"
    demo, bob = d.guild, d.member("bob").user
    other = d.create_guild("Other Place", owner="olga")
    await d.announce_guild(other)
    await d.wait_for(lambda: discord_env.bot.get_guild(other.id), "the bot to see the other server")
    d.guild = other
    try:
        await d.create_channel("town")
        await d.add_member(bob)  # bob is in both servers; his character is global
        who = await d.slash("speech who", as_="olga", channel="town", message_id=str(seen.id))
        assert who.content.startswith("That message was not posted as a character here")
        shown = await d.slash("persona show", as_="olga", channel="town", persona=str(persona))
        assert shown.embed["title"] == "Gandalf"  # not the other server's nickname
        assert "On this server" not in shown.text
        said = await d.slash("speak", as_="bob", channel="town", options={"as": str(persona), "text": "Hi there"})
        assert said.content.startswith("Posted as **Gandalf**")
        [there] = [m for m in d.read("town", as_="olga") if m.is_webhook]
        assert there.author == "Gandalf"
        refused = await d.slash("speech delete", as_="bob", channel="town", message_id=str(seen.id))
        assert refused.content.startswith("That message was not posted as a character here")
    finally:
        d.guild = demo
    assert seen.id in [m.id for m in d.read("general", as_="carol")]


async def test_edit_speech_message_menu_opens_a_prefilled_form(discord_env: SandboxEnv) -> None:
    d = discord_env.driver
    persona = await make_persona(discord_env)
    seen = await speak(discord_env, persona, "Typo hree")
    refused = await d.message_command("Edit speech", seen.message, as_="carol")
    assert refused.ephemeral
    assert refused.content == "Only the person who posted that message can change or delete it."
    form = await d.message_command("Edit speech", seen.message, as_="bob")
    assert form.modal is not None
    [field] = [c for row in form.modal["components"] for c in row.get("components", [row.get("component")])
               if c and c.get("type") == 4]
    assert field["value"] == "Typo hree"
    done = await form.submit({"Text": "Typo here"})
    assert done.ephemeral
    assert done.content.startswith("Edited your message as **Gandalf**")
    assert seen.message.content == "Typo here"
    again = await d.message_command("Edit speech", seen.message, as_="bob")
    await d.slash("speech delete", as_="bob", channel="general", message_id=str(seen.id))
    late = await again.submit({"Text": "Too late"})
    assert late.ephemeral
    assert late.content.startswith("That message was not posted as a character here")


async def test_a_message_that_could_not_be_logged_is_taken_back(discord_env: SandboxEnv,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    d = discord_env.driver
    persona = await make_persona(discord_env)
    cog = discord_env.bot.get_cog("Personas")

    async def busy(**_: object) -> None:
        raise ConflictError

    monkeypatch.setattr(cog.service, "record_speech", busy)
    reply = await d.slash("speak", as_="bob", channel="general", options={"as": str(persona), "text": "Lost?"})
    assert reply.ephemeral
    assert reply.content == ConflictError.default_message
    assert not [m for m in d.read("general", as_="carol") if m.is_webhook]


async def test_speech_earns_the_real_speaker_message_xp(discord_env: SandboxEnv) -> None:
    d, bot = discord_env.driver, discord_env.bot
    leveling = bot.get_cog("Leveling")
    assert leveling is not None
    bob = d.member("bob").user.id
    before = (await leveling.service.get_user_level(d.guild.id, bob)).total_messages
    persona = await make_persona(discord_env)
    await speak(discord_env, persona, "Credit me with XP")

    async def counted() -> bool:
        await leveling.ingestor.flush()
        return (await leveling.service.get_user_level(d.guild.id, bob)).total_messages > before

    for _ in range(50):
        if await counted():
            break
        await asyncio.sleep(0.1)
    assert await counted(), "the speaker's message was not credited"
