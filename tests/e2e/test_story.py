"""Stories end to end: the real bot on the sandbox, the narrator on the local model stand-in."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from guildkeep.config import Settings, load_settings
from guildkeep.llm.standin import DEFAULT_MODEL, StandinModel
from guildkeep.story.service import StoryService
from guildkeep.testing.harness import SandboxEnv

pytestmark = pytest.mark.e2e

AVATAR = "https://example.org/gandalf.png"


@pytest.fixture
async def standin() -> AsyncIterator[StandinModel]:
    async with StandinModel() as model:
        yield model


@pytest.fixture
def use_model() -> bool:
    """Whether the sandbox bot gets a model (a test parametrizes this to False for none)."""
    return True


@pytest.fixture
def discord_settings(database_url: str, use_model: bool, request: pytest.FixtureRequest) -> Settings:
    """The sandbox bot's settings, pointed at the stand-in model when ``use_model``."""
    options: dict[str, Any] = {"database_url": database_url, "discord_token": None, "auto_migrate": False,
                               "backup_interval_hours": 0, "llm_base_url": None, "llm_model": None}
    if use_model:
        model: StandinModel = request.getfixturevalue("standin")
        options.update(llm_base_url=model.base_url, llm_model=DEFAULT_MODEL, llm_timeout_seconds=10)
    return load_settings(**options)


async def build_world_and_start(env: SandboxEnv) -> int:
    """A world with locations and an event, Gandalf (bob's public character), and a story in #general
    that writes a summary every 2 messages. Returns Gandalf's id."""
    d = env.driver
    made = await d.slash("world create", as_="alice", name="Middle-earth", description="Hobbits and rings")
    assert made.ephemeral
    assert made.content.startswith("Created the world **Middle-earth**"), made.text
    [world] = await d.autocomplete("world show", "world", "middle", as_="alice")
    for name, description in (("Rivendell", "An elven refuge"), ("Moria", "Dark mines")):
        added = await d.slash("world location add", as_="alice", world=world["value"], name=name,
                              description=description)
        assert added.content.startswith("Added a location"), added.text
    locations = await d.autocomplete("world event add", "location", "mor", as_="alice",
                                     options={"world": world["value"]})
    assert [c["name"] for c in locations] == ["Moria"]
    event = await d.slash("world event add", as_="alice", world=world["value"], location="Moria",
                          name="Drums in the deep", description="Something stirs below")
    assert event.content.startswith("Added an event"), event.text
    shown = await d.slash("world show", as_="bob", world="Middle-earth")
    assert "Drums in the deep" in shown.text
    assert "Rivendell" in shown.text

    created = await d.slash("story character create", as_="bob", name="Gandalf", description="A grey wizard",
                            avatar_url=AVATAR, public=True)
    assert created.content.startswith("Created **Gandalf**"), created.text
    [choice] = await d.autocomplete("story start", "characters", "gand", as_="alice")
    started = await d.slash("story start", as_="alice", channel="general", world=world["value"],
                            characters=choice["value"], summary_every=2, outline="The fellowship reaches Moria")
    assert started.ephemeral is False
    assert "begins in this channel" in started.content, started.text
    story = await StoryService(env.db).get_story_instance(d.guild.id, d.channel("general").id)
    [gandalf] = story.cast
    assert (gandalf.name, story.summary_every, story.state.location) == ("Gandalf", 2, "Rivendell")
    return gandalf.character_id


async def gandalf_answers(env: SandboxEnv, standin: StandinModel, channel: str, said: str, *, text: str,
                          event: str | None, change: int, description: str, summary: str) -> Any:
    """Carol says ``said`` in ``channel``; the model has Gandalf answer ``text`` (changing his relationship
    with her) and then writes ``summary``. Returns Gandalf's message, as bob sees it."""
    d = env.driver
    standin.reply_json({"speaker": "Gandalf", "text": text, "location": None, "scene": None, "event": event,
                        "relationships": [{"character": "Gandalf", "change": change, "description": description}]})
    standin.reply(summary)
    sent = await d.send(channel, said, as_="carol")

    def npc_posts() -> list[Any]:
        return [m for m in d.read(channel, as_="bob") if m.is_webhook and m.id > sent.id]

    [npc] = await d.wait_for(npc_posts, f"Gandalf speaking in #{channel}")
    return npc


async def test_the_narrator_answers_an_npc_speaks_a_summary_is_written_and_a_relationship_changes(
        discord_env: SandboxEnv, standin: StandinModel) -> None:
    d = discord_env.driver
    gandalf_id = await build_world_and_start(discord_env)
    service = StoryService(discord_env.db)
    guild_id, channel_id = d.guild.id, d.channel("general").id
    carol = d.member("carol").user.id

    standin.reply_json({"speaker": "narrator", "text": "The doors of Durin loom before you.",
                        "location": "Moria", "scene": "At the west gate", "event": None, "relationships": []})
    first = await d.send("general", "I walk to the gate of Moria", as_="carol")
    said = await d.wait_for_bot_message("general", after=first)
    assert said.content == "**Narrator:** The doors of Durin loom before you."

    npc = await gandalf_answers(
        discord_env, standin, "general", "Mellon!", text="Speak, friend, and enter.", event="Gandalf read the door",
        change=15, description="Impressed by Carol's courage",
        summary="Carol reached the gate of Moria, where Gandalf read the inscription.")
    assert (npc.author, npc.avatar_url, npc.content) == ("Gandalf", AVATAR, "Speak, friend, and enter.")
    [hook] = [w for w in d.world.webhooks.values() if w.channel_id == channel_id]
    assert npc.message.webhook_id == hook.id
    assert hook.creator.id == d.bot_user.id

    async def summarised() -> Any:
        story = await service.get_story_instance(guild_id, channel_id)
        return story if story.summaries else None

    story = await d.wait_for(summarised, "the summary after 2 messages")
    assert story.summaries == ("Carol reached the gate of Moria, where Gandalf read the inscription.",)
    assert (story.message_count, story.since_summary, story.state.location) == (2, 0, "Moria")
    [rel] = await service.get_relationships(guild_id, channel_id, carol)
    assert (rel.character_id, rel.score, rel.description) == (gandalf_id, 15, "Impressed by Carol's courage")

    # what the model was given: the world, the outline and the recent lines
    structured = [r for r in standin.chat_requests() if "response_format" in r.body]
    prompt = structured[1].body["messages"]
    assert "Middle-earth" in prompt[0]["content"]
    assert "The fellowship reaches Moria" in prompt[0]["content"]
    assert "Drums in the deep" in prompt[0]["content"]
    assert any("I walk to the gate of Moria" in m["content"] for m in prompt[1:])

    shown = await d.slash("relationship show", as_="carol", channel="general")
    assert "15 (neutral)" in shown.text
    assert "Impressed" in shown.text
    summary = await d.slash("story summary", as_="carol", channel="general")
    assert "Gandalf read the inscription" in summary.text

    # a reply that does not parse changes nothing
    before = await service.get_story_instance(guild_id, channel_id)
    standin.invalid_for_schema()
    third = await d.send("general", "I light a torch", as_="carol")
    refusal = await d.wait_for_bot_message("general", after=third)
    assert "not in the expected form" in refusal.content
    after = await service.get_story_instance(guild_id, channel_id)
    assert (after.version, after.message_count) == (before.version, before.message_count)

    # paused: the narrator is silent; the character cannot be deleted while the story runs
    paused = await d.slash("story pause", as_="alice", channel="general")
    assert "paused" in paused.content
    requests = len(standin.chat_requests())
    await d.send("general", "Hello?", as_="carol")
    refused = await d.slash("story character delete", as_="bob", character=str(gandalf_id))
    assert refused.ephemeral
    assert "running story" in refused.content
    assert len(standin.chat_requests()) == requests
    ended = await d.slash("story end", as_="alice", channel="general")
    assert "has ended" in ended.content


@pytest.mark.parametrize("use_model", [False])
async def test_without_a_model_the_narrator_says_so_once_and_commands_work(discord_env: SandboxEnv) -> None:
    d = discord_env.driver
    await build_world_and_start(discord_env)
    first = await d.send("general", "I walk to the gate", as_="carol")
    notice = await d.wait_for_bot_message("general", after=first)
    assert "No language model is set up" in notice.content
    await d.send("general", "Anyone there?", as_="bob")
    last = await d.send("general", "Hello?", as_="carol")
    status = await d.slash("story status", as_="carol", channel="general")
    assert status.ephemeral
    assert "Middle-earth" in status.text
    notices = [m for m in d.read("general", as_="carol") if "No language model" in m.content]
    assert len(notices) == 1
    assert not [m for m in d.read("general", as_="carol") if m.id > last.id and not m.ephemeral]
    outline = await d.slash("story outline", as_="alice", channel="general", add="Then Lothlorien")
    assert "Then Lothlorien" in outline.text
    gandalf = (await StoryService(discord_env.db).get_story_instance(d.guild.id, d.channel("general").id)).cast[0]
    rel = await d.slash("relationship set", as_="alice", channel="general", member="carol",
                        character=str(gandalf.character_id), score=-30, description="Distrusts her")
    assert rel.ephemeral
    assert "-30 (wary)" in rel.content
    refused = await d.slash("relationship set", as_="carol", channel="general", member="carol",
                            character=str(gandalf.character_id), score=100)
    assert refused.ephemeral
    assert refused.content.startswith("Only the person who started this story")


@pytest.mark.parametrize("use_model", [False])
async def test_world_and_character_commands_refuse_clearly_and_autocomplete_at_most_25(
        discord_env: SandboxEnv) -> None:
    d = discord_env.driver
    service = StoryService(discord_env.db)
    alice = d.member("alice").user.id
    for n in range(30):
        await service.create_world(d.guild.id, alice, f"Realm {n:02d}")
    choices = await d.autocomplete("world show", "world", "realm", as_="bob")
    assert len(choices) == 25
    assert choices[0]["name"] == "Realm 00"
    listed = await d.slash("world list", as_="bob")
    assert listed.ephemeral
    assert "Realm 19" in listed.text
    page2 = await listed.click("Next")
    assert "Realm 29" in page2.text

    missing = await d.slash("world show", as_="bob", world="Atlantis")
    assert missing.ephemeral
    assert missing.content.startswith("There is no such world on this server")
    twice = await d.slash("world create", as_="bob", name="realm 01")
    assert twice.ephemeral
    assert twice.content == "This server already has a world called **realm 01**."
    not_yours = await d.slash("world edit", as_="bob", world="Realm 01", name="Bob's")
    assert not_yours.ephemeral
    assert not_yours.content.startswith("Only the world's creator")
    admin = await d.slash("world edit", as_="alice", world="Realm 01", name="Alice's Realm")
    assert admin.content.startswith("Saved **Alice's Realm**")
    await d.slash("world location add", as_="alice", world="Alice's Realm", name="Keep")
    await d.slash("world event add", as_="alice", world="Alice's Realm", location="Keep", name="Siege")
    events = await d.autocomplete("world event remove", "event", "", as_="alice",
                                  options={"world": "Alice's Realm", "location": "Keep"})
    assert [c["name"] for c in events] == ["Siege"]
    nowhere = await d.slash("world event add", as_="alice", world="Alice's Realm", location="Gate", name="Siege")
    assert nowhere.content.startswith("That world has no such location")
    removed = await d.slash("world event remove", as_="alice", world="Alice's Realm", location="Keep", event="Siege")
    assert removed.content.startswith("Removed an event")
    removed = await d.slash("world location remove", as_="alice", world="Alice's Realm", location="keep")
    assert removed.content.startswith("Removed a location")

    no_story = await d.slash("story status", as_="bob", channel="bot-commands")
    assert no_story.ephemeral
    assert no_story.content == "There is no story in this channel. Start one with /story start."
    unknown_cast = await d.slash("story start", as_="bob", channel="bot-commands", world="Realm 02",
                                 characters="Nobody")
    assert unknown_cast.ephemeral
    assert "can't find a character called **Nobody**" in unknown_cast.content
    started = await d.slash("story start", as_="bob", channel="bot-commands", world="Realm 02")
    assert "begins" in started.content
    again = await d.slash("story start", as_="carol", channel="bot-commands", world="Realm 03")
    assert again.ephemeral
    assert again.content.startswith("A story is already running in this channel")
    in_use = await d.slash("world delete", as_="alice", world="Realm 02")
    assert in_use.ephemeral
    assert "is still using **Realm 02**" in in_use.content
    assert (await d.slash("story pause", as_="bob", channel="bot-commands")).content.startswith("The story is paused")
    assert (await d.slash("story resume", as_="bob", channel="bot-commands")).content == "The story goes on."
    every = await d.slash("story summary", as_="bob", channel="bot-commands", every=5)
    assert every.content == "A summary will be written every 5 messages."
    await d.slash("story end", as_="bob", channel="bot-commands")
    deleted = await d.slash("world delete", as_="alice", world="Realm 02")
    assert deleted.content == "Deleted the world **Realm 02**."

    made = await d.slash("story character create", as_="carol", name="Secret", description="Hidden")
    assert made.ephemeral
    edited = await d.slash("story character edit", as_="carol", character="Secret", description="Still hidden")
    assert "Still hidden" in edited.text
    mine = await d.slash("story character list", as_="carol")
    assert "Secret" in mine.text
    others = await d.slash("story character list", as_="bob")
    assert "Secret" not in others.text
    hidden = await d.slash("story character show", as_="bob", character="Secret")
    assert hidden.ephemeral
    assert "no character called **Secret**" in hidden.content
    bad = await d.slash("story character create", as_="carol", name="Clyde")
    assert '"clyde"' in bad.content
    gone = await d.slash("story character delete", as_="carol", character="Secret")
    assert gone.content == "Deleted **Secret**."


async def test_a_thread_of_the_story_channel_plays_that_story(discord_env: SandboxEnv, standin: StandinModel) -> None:
    d = discord_env.driver
    gandalf_id = await build_world_and_start(discord_env)
    service = StoryService(discord_env.db)
    guild_id, channel_id = d.guild.id, d.channel("general").id
    thread = await d.create_thread("general", "the mines")
    story = await service.get_story_instance(guild_id, channel_id)

    # a message in the thread is a turn of the channel's story: answered in the thread, written to the story
    standin.reply_json({"speaker": "narrator", "text": "The dark swallows the torchlight.", "location": "Moria",
                        "scene": "In the mines", "event": None, "relationships": []})
    first = await d.send("the mines", "I go down the stairs", as_="carol")
    said = await d.wait_for_bot_message("the mines", after=first)
    assert said.content == "**Narrator:** The dark swallows the torchlight."
    assert said.channel_id == thread.id
    assert not [m for m in d.read("general", as_="carol") if m.id > first.id]

    npc = await gandalf_answers(discord_env, standin, "the mines", "I follow Gandalf", text="Fly, you fools!",
                                event=None, change=5, description="Kept up in the dark",
                                summary="Carol went down into Moria with Gandalf.")
    assert (npc.author, npc.content, npc.message.channel_id) == ("Gandalf", "Fly, you fools!", thread.id)
    [hook] = d.world.webhooks.values()
    assert (hook.channel_id, npc.message.webhook_id) == (channel_id, hook.id)

    async def summarised() -> Any:
        found = await service.get_story_instance(guild_id, channel_id)
        return found if found.summaries else None

    after = await d.wait_for(summarised, "the summary of the thread's two messages")
    assert after.id == story.id
    assert (after.message_count, after.state.location, after.state.scene) == (2, "Moria", "In the mines")
    assert after.summaries == ("Carol went down into Moria with Gandalf.",)
    [rel] = await service.get_relationships(guild_id, channel_id, d.member("carol").user.id)
    assert (rel.character_id, rel.score) == (gandalf_id, 5)

    # the story commands work in the thread, and no second story starts there
    status = await d.slash("story status", as_="carol", channel="the mines")
    assert "Middle-earth" in status.text
    outline = await d.slash("story outline", as_="alice", channel="the mines", add="Then the bridge")
    assert "Then the bridge" in outline.text
    assert (await service.get_story_instance(guild_id, channel_id)).outlines[-1] == "Then the bridge"
    [cast] = await d.autocomplete("relationship set", "character", "gan", as_="alice", channel="the mines")
    rel_set = await d.slash("relationship set", as_="alice", channel="the mines", member="carol",
                            character=cast["value"], score=40)
    assert "40 (friendly)" in rel_set.content, rel_set.text
    [world] = await d.autocomplete("story start", "world", "middle", as_="alice")
    refused = await d.slash("story start", as_="alice", channel="the mines", world=world["value"])
    assert refused.content == ("A story is already running in this thread's channel, and its threads belong "
                               "to it. End it first with /story end.")
    assert await service.current_story(guild_id, thread.id) is None
    ended = await d.slash("story end", as_="alice", channel="the mines")
    assert "has ended" in ended.content
    assert await service.current_story(guild_id, channel_id) is None
