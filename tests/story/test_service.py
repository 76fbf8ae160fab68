"""The story service on both databases: worlds, stories, relationships, the character API, isolation, races."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import func, select

from guildkeep.characters.errors import CharacterInUseError, CharacterNotFoundError, NotCharacterOwnerError
from guildkeep.characters.service import CharacterService
from guildkeep.db import Database
from guildkeep.errors import DomainError
from guildkeep.story import rules
from guildkeep.story.errors import (
    DuplicateWorldError,
    EventNotFoundError,
    LocationNotFoundError,
    NoStoryError,
    NotStoryManagerError,
    NotWorldManagerError,
    StoryCharacterError,
    StoryInputError,
    StoryRunningError,
    StoryStateError,
    WorldInUseError,
    WorldNotFoundError,
)
from guildkeep.story.models import StoryInstance, StoryRelationship, StoryWorld
from guildkeep.story.results import LineInfo
from guildkeep.story.service import RelationshipChange, StoryService

G1, G2 = 900_000_000_000_000_001, 900_000_000_000_000_002
C1, C2, C3 = 800_000_000_000_000_001, 800_000_000_000_000_002, 800_000_000_000_000_003
ALICE, BOB, CAROL = 700_000_000_000_000_001, 700_000_000_000_000_002, 700_000_000_000_000_003


@pytest.fixture
def story(db: Database) -> StoryService:
    return StoryService(db)


async def world_with_places(story: StoryService, guild: int = G1, name: str = "Middle-earth") -> int:
    world = await story.create_world(guild, ALICE, name, "A land of hobbits")
    await story.add_location(guild, world.id, ALICE, "Rivendell", "An elven refuge")
    await story.add_location(guild, world.id, ALICE, "Moria", "Dark mines")
    await story.add_event(guild, world.id, ALICE, "Moria", "Drums in the deep", description="They are coming")
    return world.id


async def npc(story: StoryService, owner: int = ALICE, name: str = "Gandalf", *, public: bool = True,
              guild: int = G1) -> int:
    info = await story.save_character(guild, owner, name=name, description="A wizard", public=public)
    return info.id


# -- worlds ------------------------------------------------------------------------------------------


async def test_world_create_edit_show_list_delete(story: StoryService) -> None:
    world_id = await world_with_places(story)
    world = await story.get_world(G1, world_id)
    assert (world.name, world.description) == ("Middle-earth", "A land of hobbits")
    assert [loc.name for loc in world.locations] == ["Rivendell", "Moria"]
    assert [(e.name, e.description) for e in world.locations[1].events] == [("Drums in the deep", "They are coming")]
    assert (await story.find_world(G1, "middle-EARTH")).id == world_id
    assert (await story.find_world(G1, str(world_id))).id == world_id

    edited = await story.edit_world(G1, world_id, ALICE, name="Arda", description="Older")
    assert (edited.name, edited.description, len(edited.locations)) == ("Arda", "Older", 2)
    await story.create_world(G1, BOB, "Narnia")
    assert [w.name for w in await story.get_all_worlds(G1)] == ["Arda", "Narnia"]
    assert [w.name for w in await story.suggest_worlds(G1, "nar")] == ["Narnia"]

    with pytest.raises(DuplicateWorldError):
        await story.create_world(G1, BOB, "ARDA")
    with pytest.raises(NotWorldManagerError):
        await story.edit_world(G1, world_id, BOB, name="Mine")
    assert (await story.edit_world(G1, world_id, BOB, can_manage=True, description="Admin")).description == "Admin"

    gone = await story.delete_world(G1, world_id, ALICE)
    assert gone.name == "Arda"
    with pytest.raises(WorldNotFoundError):
        await story.get_world(G1, world_id)


async def test_locations_and_events_are_validated(story: StoryService, db: Database) -> None:
    world_id = await world_with_places(story)
    with pytest.raises(StoryInputError, match="already has a location"):
        await story.add_location(G1, world_id, ALICE, "rivendell")
    with pytest.raises(StoryInputError, match="already has an event"):
        await story.add_event(G1, world_id, ALICE, "Moria", "DRUMS in the deep")
    with pytest.raises(LocationNotFoundError):
        await story.add_event(G1, world_id, ALICE, "Mordor", "Eye")
    with pytest.raises(EventNotFoundError):
        await story.remove_event(G1, world_id, ALICE, "Moria", "Balrog")
    with pytest.raises(DomainError, match="control characters"):
        await story.add_location(G1, world_id, ALICE, "Nul\x00Place")
    with pytest.raises(DomainError, match="1 to 100"):
        await story.add_location(G1, world_id, ALICE, "x" * 101)
    for n in range(rules.LOCATIONS_MAX - 2):
        await story.add_location(G1, world_id, ALICE, f"Place {n}")
    with pytest.raises(StoryInputError, match="at most 25 locations"):
        await story.add_location(G1, world_id, ALICE, "One too many")
    world = await story.remove_event(G1, world_id, ALICE, "moria", "drums in the deep")
    assert world.locations[1].events == ()
    world = await story.remove_location(G1, world_id, ALICE, "RIVENDELL")
    assert world.locations[0].name == "Moria"
    with pytest.raises(LocationNotFoundError):
        await story.remove_location(G1, world_id, ALICE, "Rivendell")
    # stored as plain JSON of the validated shape
    async with db.session(read_only=True) as s:
        stored = await s.scalar(select(StoryWorld.locations).where(StoryWorld.id == world_id))
    assert stored[0] == {"name": "Moria", "description": "Dark mines", "events": []}


# -- stories -----------------------------------------------------------------------------------------


async def test_story_lifecycle(story: StoryService) -> None:
    world_id = await world_with_places(story)
    gandalf = await npc(story)
    started = await story.start_story(G1, C1, ALICE, world_id, [gandalf], outline="The ring goes south",
                                      summary_every=2)
    assert (started.status, started.world_name, started.state.location) == ("active", "Middle-earth", "Rivendell")
    assert [c.name for c in started.cast] == ["Gandalf"]
    assert started.outlines == ("The ring goes south",)
    assert (await story.get_story_instance(G1, C1)).id == started.id

    with pytest.raises(StoryRunningError):
        await story.start_story(G1, C1, BOB, world_id)
    with pytest.raises(NotStoryManagerError):
        await story.pause_story(G1, C1, BOB)
    assert (await story.pause_story(G1, C1, ALICE)).status == "paused"
    with pytest.raises(StoryStateError, match="already paused"):
        await story.pause_story(G1, C1, ALICE)
    with pytest.raises(StoryRunningError):  # a paused story still holds its channel
        await story.start_story(G1, C1, BOB, world_id)
    assert (await story.resume_story(G1, C1, BOB, can_manage=True)).status == "active"
    outlined = await story.add_outline(G1, C1, ALICE, "Then Moria")
    assert outlined.outlines == ("The ring goes south", "Then Moria")
    assert (await story.set_summary_every(G1, C1, ALICE, 5)).summary_every == 5
    with pytest.raises(StoryInputError):
        await story.set_summary_every(G1, C1, ALICE, 1)
    with pytest.raises(WorldInUseError):
        await story.delete_world(G1, world_id, ALICE)

    ended = await story.end_story(G1, C1, ALICE)
    assert ended.status == "ended"
    assert [e["what"] for e in ended.event_log] == ["started", "paused", "active", "ended"]
    with pytest.raises(NoStoryError):
        await story.get_story_instance(G1, C1)
    assert await story.current_story(G1, C1) is None
    again = await story.start_story(G1, C1, BOB, world_id)  # the channel is free again
    assert again.id != started.id
    assert (await story.get_story(G1, started.id)).status == "ended"


async def test_start_refuses_characters_the_starter_cannot_use(story: StoryService) -> None:
    world_id = await world_with_places(story)
    private = await npc(story, BOB, "Secret", public=False)
    with pytest.raises(StoryCharacterError):
        await story.start_story(G1, C1, ALICE, world_id, [private])
    with pytest.raises(StoryCharacterError):
        await story.start_story(G1, C1, ALICE, world_id, [123456])
    with pytest.raises(StoryInputError):
        await story.start_story(G1, C1, ALICE, world_id, summary_every=1)
    with pytest.raises(WorldNotFoundError):
        await story.start_story(G1, C1, ALICE, 99999)
    assert await story.current_story(G1, C1) is None
    own = await story.start_story(G1, C1, BOB, world_id, [private])  # the owner may use their private one
    assert [c.name for c in own.cast] == ["Secret"]


async def test_two_starts_in_one_channel_at_once_one_wins(story: StoryService, db: Database) -> None:
    world_id = await world_with_places(story)
    for _round in range(3):
        results = await asyncio.gather(
            *(story.start_story(G1, C2, user, world_id) for user in (ALICE, BOB, CAROL, ALICE)),
            return_exceptions=True)
        won = [r for r in results if not isinstance(r, BaseException)]
        lost = [r for r in results if isinstance(r, BaseException)]
        assert len(won) == 1, results
        assert all(isinstance(r, StoryRunningError) for r in lost), lost
        async with db.session(read_only=True) as s:
            running = await s.scalar(select(func.count()).select_from(StoryInstance).where(
                StoryInstance.live_channel_id == C2))
        assert running == 1
        await story.end_story(G1, C2, won[0].started_by)


# -- relationships and the narrator's writes ------------------------------------------------------------


async def test_relationships_set_show_and_bounded(story: StoryService) -> None:
    world_id = await world_with_places(story)
    gandalf = await npc(story)
    other = await npc(story, name="Saruman")
    await story.start_story(G1, C1, ALICE, world_id, [gandalf])
    rel = await story.set_relationship(G1, C1, ALICE, BOB, gandalf, score=30, description="Trusts Bob")
    assert (rel.character_name, rel.score, rel.description) == ("Gandalf", 30, "Trusts Bob")
    with pytest.raises(StoryInputError, match="-100 to 100"):
        await story.set_relationship(G1, C1, ALICE, BOB, gandalf, score=101)
    with pytest.raises(StoryCharacterError):
        await story.set_relationship(G1, C1, ALICE, BOB, other, score=1)
    with pytest.raises(NotStoryManagerError):
        await story.set_relationship(G1, C1, BOB, BOB, gandalf, score=100)
    with pytest.raises(StoryInputError):
        await story.set_relationship(G1, C1, ALICE, BOB, gandalf)
    assert [(r.user_id, r.score) for r in await story.get_relationships(G1, C1)] == [(BOB, 30)]
    assert await story.get_relationships(G1, C1, CAROL) == []


async def test_a_turn_writes_state_lines_relationships_and_counts_towards_a_summary(story: StoryService) -> None:
    world_id = await world_with_places(story)
    gandalf = await npc(story)
    started = await story.start_story(G1, C1, ALICE, world_id, [gandalf], summary_every=2)
    context = await story.narration_context(G1, C1, BOB)
    assert context is not None
    assert context.world.name == "Middle-earth"
    turn = await story.record_turn(
        G1, started.id, context.story.version, [LineInfo("Bob", "I knock"), LineInfo("Gandalf", "Enter!")],
        state=rules.StoryState(location="Moria", scene="At the gate"),
        relationships=[RelationshipChange(BOB, gandalf, 95, "Liked the knock"), RelationshipChange(BOB, 4242, 5)],
        event="Bob knocked")
    assert turn.story.state.location == "Moria"
    assert [(r.score, r.description) for r in turn.relationships_changed] == [(rules.SCORE_STEP_MAX,
                                                                              "Liked the knock")]
    assert turn.summary_due is False
    # a turn read before another one was written changes nothing
    with pytest.raises(StoryStateError):
        await story.record_turn(G1, started.id, context.story.version, [LineInfo("Bob", "stale")],
                                state=rules.StoryState(location="Rivendell"))
    context = await story.narration_context(G1, C1, BOB)
    assert context is not None
    assert context.story.state.location == "Moria"
    assert [x.text for x in context.recent] == ["I knock", "Enter!"]
    assert [r.score for r in context.relationships] == [20]
    turn = await story.record_turn(G1, started.id, context.story.version, [LineInfo("Bob", "Hello")])
    assert turn.summary_due is True
    summed = await story.record_summary(G1, started.id, "Bob knocked and was let in.", 2)
    assert (summed.summaries, summed.since_summary, summed.message_count) == (("Bob knocked and was let in.",), 0, 2)
    # paused: the narrator's write is refused
    await story.pause_story(G1, C1, ALICE)
    with pytest.raises(StoryStateError):
        await story.record_turn(G1, started.id, summed.version, [LineInfo("Bob", "Hi")])
    # the score never leaves its bounds
    current = await story.resume_story(G1, C1, ALICE)
    for _ in range(10):
        turn = await story.record_turn(G1, started.id, current.version, [],
                                       relationships=[RelationshipChange(BOB, gandalf, -50)])
        current = turn.story
    assert [r.score for r in await story.get_relationships(G1, C1, BOB)] == [rules.SCORE_MIN]


async def test_no_model_notice_is_claimed_once(story: StoryService) -> None:
    world_id = await world_with_places(story)
    started = await story.start_story(G1, C1, ALICE, world_id)
    claims = await asyncio.gather(*(story.claim_no_model_notice(G1, started.id) for _ in range(4)))
    assert sorted(claims) == [False, False, False, True]
    assert await story.claim_no_model_notice(G2, started.id) is False


# -- the character API ---------------------------------------------------------------------------------


async def test_selectable_characters_public_private_and_others(story: StoryService, db: Database) -> None:
    mine_private = await npc(story, ALICE, "Alice Private", public=False)
    mine_public = await npc(story, ALICE, "Alice Public", public=True)
    bobs_public = await npc(story, BOB, "Bob Public", public=True)
    await npc(story, BOB, "Bob Private", public=False)
    elsewhere_public = await npc(story, CAROL, "Carol Elsewhere", public=True, guild=G2)
    hidden_here = await npc(story, CAROL, "Carol Hidden", public=True, guild=G2)
    await CharacterService(db).set_override(CAROL, hidden_here, G1, hidden=True)

    selectable = await story.get_selectable_characters(G1, ALICE)
    assert sorted(c.id for c in selectable.items) == sorted([mine_private, mine_public, bobs_public, elsewhere_public])
    assert {c.name for c in (await story.get_selectable_characters(G1, BOB)).items} == {
        "Alice Public", "Bob Public", "Bob Private", "Carol Elsewhere"}
    on_g2 = {c.name for c in (await story.get_selectable_characters(G2, ALICE)).items}
    assert on_g2 == {"Alice Private", "Alice Public", "Bob Public", "Carol Elsewhere", "Carol Hidden"}

    by_guild = await story.get_characters_by_guild(G1, ALICE)
    assert {c.name for c in by_guild.items} == {"Alice Private", "Alice Public", "Bob Public"}
    assert {c.name for c in (await story.get_characters_by_guild(G2, ALICE)).items} == {
        "Carol Elsewhere", "Carol Hidden"}

    got = await story.get_character(G1, BOB, mine_public)
    assert got.name == "Alice Public"
    with pytest.raises(CharacterNotFoundError):
        await story.get_character(G1, BOB, mine_private)
    edited = await story.save_character(G1, ALICE, character_id=mine_private, description="Changed")
    assert edited.description == "Changed"
    with pytest.raises(NotCharacterOwnerError):
        await story.save_character(G1, BOB, character_id=mine_public, name="Stolen")


async def test_delete_character_refused_while_a_running_story_uses_it(story: StoryService, db: Database) -> None:
    world_id = await world_with_places(story)
    gandalf = await npc(story, BOB)
    await story.start_story(G1, C1, ALICE, world_id, [gandalf])  # a public character of someone else
    with pytest.raises(CharacterInUseError, match="running story"):
        await story.delete_character(G1, BOB, gandalf)
    with pytest.raises(CharacterInUseError):  # the platform's own delete asks too
        await CharacterService(db).delete(BOB, gandalf)
    with pytest.raises(NotCharacterOwnerError):
        await story.delete_character(G1, ALICE, gandalf)
    assert (await story.get_character(G1, BOB, gandalf)).name == "Gandalf"
    await story.set_relationship(G1, C1, ALICE, CAROL, gandalf, score=10)
    ended = await story.end_story(G1, C1, ALICE)
    assert (await story.delete_character(G1, BOB, gandalf)).name == "Gandalf"
    # the ended story no longer lists it
    assert (await story.get_story(G1, ended.id)).cast == ()
    assert await story.get_relationships_for_story(G1, ended.id) == []


# -- isolation -------------------------------------------------------------------------------------


async def test_no_operation_given_one_servers_id_touches_another_servers_data(story: StoryService,
                                                                             db: Database) -> None:
    world_id = await world_with_places(story, G1)
    gandalf = await npc(story)
    started = await story.start_story(G1, C1, ALICE, world_id, [gandalf])
    await story.set_relationship(G1, C1, ALICE, BOB, gandalf, score=40, description="friends")
    g2_world = await story.create_world(G2, ALICE, "Middle-earth")  # same name on another server is fine

    async def snapshot() -> tuple[object, ...]:
        async with db.session(read_only=True) as s:
            worlds = (await s.execute(select(StoryWorld.id, StoryWorld.name, StoryWorld.locations,
                                             StoryWorld.version).where(StoryWorld.guild_id == G1))).all()
            stories = (await s.execute(select(StoryInstance.id, StoryInstance.status, StoryInstance.version,
                                              StoryInstance.outlines, StoryInstance.summaries)
                                       .where(StoryInstance.guild_id == G1))).all()
            rels = (await s.execute(select(StoryRelationship.score, StoryRelationship.description)
                                    .where(StoryRelationship.guild_id == G1))).all()
        return tuple(worlds), tuple(stories), tuple(rels)

    before = await snapshot()
    # reads from G2 see nothing of G1
    assert [w.id for w in await story.get_all_worlds(G2)] == [g2_world.id]
    assert [w.id for w in await story.suggest_worlds(G2, "")] == [g2_world.id]
    assert (await story.find_world(G2, "Middle-earth")).id == g2_world.id
    assert await story.current_story(G2, C1) is None
    assert await story.narration_context(G2, C1) is None
    refused = [
        story.get_world(G2, world_id),
        story.find_world(G2, str(world_id)),
        story.edit_world(G2, world_id, ALICE, can_manage=True, name="Taken"),
        story.add_location(G2, world_id, ALICE, "Shire", can_manage=True),
        story.remove_location(G2, world_id, ALICE, "Moria", can_manage=True),
        story.add_event(G2, world_id, ALICE, "Moria", "Flood", can_manage=True),
        story.remove_event(G2, world_id, ALICE, "Moria", "Drums in the deep", can_manage=True),
        story.delete_world(G2, world_id, ALICE, can_manage=True),
        story.start_story(G2, C3, ALICE, world_id),
        story.get_story_instance(G2, C1),
        story.get_story(G2, started.id),
        story.pause_story(G2, C1, ALICE, can_manage=True),
        story.resume_story(G2, C1, ALICE, can_manage=True),
        story.end_story(G2, C1, ALICE, can_manage=True),
        story.add_outline(G2, C1, ALICE, "hijack", can_manage=True),
        story.set_summary_every(G2, C1, ALICE, 3, can_manage=True),
        story.get_relationships(G2, C1),
        story.set_relationship(G2, C1, ALICE, BOB, gandalf, score=-100, can_manage=True),
        story.record_turn(G2, started.id, started.version, [LineInfo("x", "y")],
                          relationships=[RelationshipChange(BOB, gandalf, -20)]),
        story.record_summary(G2, started.id, "hijacked", 1),
    ]
    for call in refused:
        with pytest.raises(DomainError):
            await call
    assert await story.get_relationships_for_story(G2, started.id) == []
    assert await story.claim_no_model_notice(G2, started.id) is False
    assert await story.forget_guild(G2) == 1
    assert await snapshot() == before
    assert (await story.get_story_instance(G1, C1)).no_model_notice is False


async def test_lookups_by_text_that_looks_like_a_number(story: StoryService) -> None:
    await world_with_places(story)
    for text in ("²", "①", "9" * 25, "-1"):
        with pytest.raises(WorldNotFoundError):
            await story.find_world(G1, text)
        with pytest.raises(CharacterNotFoundError):
            await story.characters.resolve(ALICE, text, guild_id=G1)


async def test_status_suggestions_and_forgetting_a_server(story: StoryService, db: Database) -> None:
    world_id = await world_with_places(story)
    gandalf = await npc(story)
    assert await story.story_status(G1, C1) is None
    started = await story.start_story(G1, C1, ALICE, world_id, [gandalf])
    assert await story.story_status(G1, C1) == (started.id, "active")
    await story.pause_story(G1, C1, ALICE)
    assert await story.story_status(G1, C1) == (started.id, "paused")
    assert await story.story_status(G2, C1) is None
    assert [c.name for c in await story.suggest_characters(G1, BOB, "gan")] == ["Gandalf"]
    await story.set_relationship(G1, C1, ALICE, BOB, gandalf, score=5)
    assert await story.forget_guild(G1) == 1
    async with db.session(read_only=True) as s:
        for table in (StoryWorld, StoryInstance, StoryRelationship):
            assert await s.scalar(select(func.count()).select_from(table)) == 0
    assert (await story.get_character(G1, ALICE, gandalf)).name == "Gandalf"  # characters are not the server's


async def test_a_thread_counts_as_its_channel_and_its_own_story_comes_first(story: StoryService) -> None:
    thread, other_thread = 800_000_000_000_000_011, 800_000_000_000_000_012
    in_thread = (thread, C1)  # what the Discord layer passes from a thread of C1
    world_id = await world_with_places(story)
    gandalf = await npc(story)
    started = await story.start_story(G1, C1, ALICE, world_id, [gandalf])
    assert await story.story_status(G1, in_thread) == (started.id, "active")
    assert await story.story_status(G1, thread) is None
    assert await story.story_status(G2, in_thread) is None
    context = await story.narration_context(G1, in_thread, BOB)
    assert context is not None
    assert context.story.id == started.id
    assert (await story.add_outline(G1, in_thread, ALICE, "Into the mines")).outlines == ("Into the mines",)
    rel = await story.set_relationship(G1, in_thread, ALICE, BOB, gandalf, score=10)
    assert [r.score for r in await story.get_relationships(G1, C1, BOB)] == [rel.score]
    with pytest.raises(StoryRunningError, match="thread's channel"):
        await story.start_story(G1, in_thread, BOB, world_id)
    assert await story.current_story(G1, thread) is None
    # a thread of a channel without a story may run its own, which its lookups find first
    own = await story.start_story(G1, (other_thread, C2), BOB, world_id)
    assert own.channel_id == other_thread
    parent = await story.start_story(G1, C2, ALICE, world_id)
    assert await story.story_status(G1, (other_thread, C2)) == (own.id, "active")
    assert await story.story_status(G1, C2) == (parent.id, "active")
    assert (await story.end_story(G1, in_thread, ALICE)).id == started.id
    assert await story.story_status(G1, in_thread) is None
