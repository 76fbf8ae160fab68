"""The narrator against the local model stand-in: the prompt, the checked reply, what it may change."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from guildkeep.db import Database
from guildkeep.llm import LLMBadReply, LLMClient
from guildkeep.llm.standin import DEFAULT_MODEL, StandinModel
from guildkeep.story import narrator, rules
from guildkeep.story.results import LineInfo, NarrationContext
from guildkeep.story.service import StoryService

G, C, ALICE, BOB = 900_000_000_000_000_001, 800_000_000_000_000_001, 700_000_000_000_000_001, 7_000_000_000_000_002


@pytest.fixture
async def standin() -> AsyncIterator[StandinModel]:
    async with StandinModel() as model:
        yield model


@pytest.fixture
async def llm(standin: StandinModel) -> AsyncIterator[LLMClient]:
    client = LLMClient(standin.base_url, DEFAULT_MODEL, timeout=5.0, backoff_base=0.01)
    try:
        yield client
    finally:
        await client.close()


async def context(db: Database) -> NarrationContext:
    story = StoryService(db)
    world = await story.create_world(G, ALICE, "Middle-earth", "Rings")
    await story.add_location(G, world.id, ALICE, "Rivendell")
    await story.add_location(G, world.id, ALICE, "Moria")
    gandalf = await story.save_character(G, ALICE, name="Gandalf", description="A wizard", public=True)
    started = await story.start_story(G, C, ALICE, world.id, [gandalf.id], outline="Go south")
    await story.record_turn(G, started.id, started.version, [LineInfo("Bob", "Hi"), LineInfo("Gandalf", "Hello")])
    found = await story.narration_context(G, C, BOB)
    assert found is not None
    return found


def reply(**changes: object) -> dict[str, object]:
    base: dict[str, object] = {"speaker": "narrator", "text": "Night falls.", "location": None, "scene": None,
                               "event": None, "relationships": []}
    base.update(changes)
    return base


async def test_an_npc_reply_with_changes(db: Database, standin: StandinModel, llm: LLMClient) -> None:
    ctx = await context(db)
    standin.reply_json(reply(speaker="GANDALF", text="Fly, you fools!", location="moria", scene="On the bridge",
                             relationships=[{"character": "Gandalf", "change": 5, "description": "Worried"},
                                            {"character": "Sauron", "change": -20, "description": None}]))
    narration = await narrator.narrate(llm, ctx, player_id=BOB, player_name="Bob", text="I run")
    assert narration.speaker is not None
    assert (narration.speaker.name, narration.text) == ("Gandalf", "Fly, you fools!")
    assert narration.state == rules.StoryState(location="Moria", scene="On the bridge")
    assert [(r.user_id, r.change, r.description) for r in narration.relationships] == [(BOB, 5, "Worried")]
    [request] = standin.chat_requests()
    body = request.body
    assert body["response_format"]["json_schema"]["schema"] == narrator.NARRATION_SCHEMA
    system = body["messages"][0]["content"]
    for expected in ("Middle-earth", "Rivendell", "Go south", "Gandalf: A wizard"):
        assert expected in system
    assert [m["content"] for m in body["messages"][1:]] == ["Bob: Hi", "Gandalf: Hello", "Bob: I run"]
    assert [m["role"] for m in body["messages"][1:]] == ["user", "assistant", "user"]


async def test_an_unknown_speaker_is_the_narrator_and_an_unknown_place_is_ignored(
        db: Database, standin: StandinModel, llm: LLMClient) -> None:
    ctx = await context(db)
    standin.reply_json(reply(speaker="Saruman", location="Mordor"))
    narration = await narrator.narrate(llm, ctx, player_id=BOB, player_name="Bob", text="Look")
    assert narration.speaker is None
    assert narration.state is None  # nothing changed


@pytest.mark.parametrize("bad", ["invalid", "malformed", "out_of_range"])
async def test_a_reply_that_does_not_parse_raises_and_the_story_is_unchanged(
        db: Database, standin: StandinModel, llm: LLMClient, bad: str) -> None:
    ctx = await context(db)
    if bad == "invalid":
        standin.invalid_for_schema()
    elif bad == "malformed":
        standin.reply("Sure! The narrator says hello.")
    else:
        standin.reply_json(reply(relationships=[{"character": "Gandalf", "change": 90, "description": None}]))
    with pytest.raises(LLMBadReply):
        await narrator.narrate(llm, ctx, player_id=BOB, player_name="Bob", text="Look")
    after = await StoryService(db).narration_context(G, C, BOB)
    assert after == ctx


async def test_summary(db: Database, standin: StandinModel, llm: LLMClient) -> None:
    ctx = await context(db)
    standin.reply("  Bob greeted Gandalf.  ")
    assert await narrator.summarize(llm, ctx, ctx.recent) == "Bob greeted Gandalf."
    [request] = standin.chat_requests()
    assert request.body["messages"][1]["content"] == "Bob: Hi\nGandalf: Hello"
