"""Talking on both databases: with the local stand-in model (real HTTP, nothing mocked) and without a model."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from guildkeep.companion import rules
from guildkeep.companion.service import NO_MODEL_REPLY, CompanionService
from guildkeep.db import Database
from guildkeep.llm import LLMClient
from guildkeep.llm.standin import StandinModel

NOW = datetime(2026, 12, 2, 11, 0, tzinfo=UTC)
G = 111_111_111_111_111_111
U = 222_222_222_222_222_222
CH = 444_444_444_444_444_444
F = rules.ExtractedFact


async def test_reply_sends_persona_level_mood_style_facts_and_recent_messages(
    db: Database, llm: LLMClient, standin: StandinModel,
) -> None:
    svc = CompanionService(db, llm=llm, clock=lambda: NOW)
    await svc.update_config(G, persona="You are Pip, a cheerful owl.")
    await svc.remember(U, [F("hobby", "Loves chess", 0.6), F("location", "Lives in Oslo", 0.6)], guild_id=G,
                       now=NOW - timedelta(days=1))
    await svc.remember(U, [F("work", "Works as baker", 0.6)], guild_id=G + 1, now=NOW)  # another server
    standin.reply("Hoo! Welcome back.")
    first = await svc.reply(U, CH, "hello there", guild_id=G, display_name="Bob", now=NOW)
    assert first.text == "Hoo! Welcome back."
    assert first.model_used
    standin.reply("Chess it is.")
    second = await svc.reply(U, CH, "want to play chess tonight?", guild_id=G, display_name="Bob",
                             now=NOW + timedelta(minutes=1))
    assert second.conversation_id == first.conversation_id
    body = standin.chat_requests()[-1].body
    system = body["messages"][0]["content"]
    assert system.startswith("You are Pip, a cheerful owl.")
    assert "talking with Bob" in system
    assert "Stranger" in system
    assert "Your mood:" in system
    assert "replies; formality" in system
    assert system.index("Loves chess") < system.index("Lives in Oslo")  # ranked: the message is about chess
    assert "baker" not in system
    turns = [(m["role"], m["content"]) for m in body["messages"][1:]]
    assert turns == [("user", "hello there"), ("assistant", "Hoo! Welcome back."),
                     ("user", "want to play chess tonight?")]
    messages = await svc.messages(first.conversation_id)
    assert [m.role for m in messages] == ["user", "assistant", "user", "assistant"]
    facts = await svc.list_facts(U, now=NOW + timedelta(minutes=1))
    assert all(f.last_referenced_at is not None for f in facts.facts if f.guild_id == G)
    assert (await svc.get_relationship(U, G)).total_interactions == 2
    assert [o.topic for o in await svc.opinions(G)] == ["chess"]


async def test_facts_come_from_a_json_schema_request_after_the_reply(
    db: Database, llm: LLMClient, standin: StandinModel,
) -> None:
    svc = CompanionService(db, llm=llm, clock=lambda: NOW)
    text = "My birthday is March 14 and I love painting"
    standin.reply("Happy early birthday!")
    await svc.reply(U, CH, text, guild_id=G, now=NOW)
    standin.reply_json({"facts": [
        {"type": "event", "content": "Birthday is March 14", "importance": 0.9, "confidence": 0.9,
         "temporal": "timeless", "birthday": "March 14"},
        {"type": "hobby", "content": "Loves painting", "importance": 0.6, "confidence": 0.8, "temporal": "present",
         "birthday": None},
    ]})
    learned = await svc.learn(U, CH, text, guild_id=G, discord_message_id=99, now=NOW)
    assert learned.extractor == "model"
    assert [c.action for c in learned.changes] == ["add", "add"]
    request = standin.chat_requests()[-1].body
    assert request["response_format"]["type"] == "json_schema"
    assert request["messages"][-1]["content"] == text
    [event] = learned.events
    assert (event.event_type, event.trigger_at) == ("birthday", datetime(2027, 3, 14, 9, tzinfo=UTC))
    facts = await svc.list_facts(U, now=NOW)
    assert sorted(f.content for f in facts.facts) == ["Birthday is March 14", "Loves painting"]
    assert {f.extracted_from_message_id for f in facts.facts} == {99}
    assert {f.source for f in facts.facts} == {"auto_extraction"}


async def test_a_reply_that_does_not_parse_adds_nothing(db: Database, llm: LLMClient, standin: StandinModel) -> None:
    svc = CompanionService(db, llm=llm, clock=lambda: NOW)
    standin.invalid_for_schema()
    learned = await svc.learn(U, CH, "My birthday is March 14 and I love painting", guild_id=G, now=NOW)
    assert learned.extractor == "none"
    assert learned.changes == ()
    standin.malformed()
    learned = await svc.learn(U, CH, "I work as a nurse", guild_id=G, now=NOW)
    assert learned.changes == ()
    assert (await svc.list_facts(U, now=NOW)).total == 0
    assert await svc.list_events(U) == []


async def test_without_a_model_memory_mood_and_relationships_still_work(db: Database) -> None:
    svc = CompanionService(db, clock=lambda: NOW)
    text = "My birthday is March 14 and I love painting! Thanks, you are great."
    result = await svc.reply(U, CH, text, guild_id=G, now=NOW)
    assert result.text == NO_MODEL_REPLY
    assert not result.model_used
    learned = await svc.learn(U, CH, text, guild_id=G, now=NOW)
    assert learned.extractor == "rules"
    assert sorted(c.content for c in learned.changes) == ["Birthday is March 14", "Loves painting"]
    assert len(learned.events) == 1
    assert (await svc.get_relationship(U, G)).positive_interactions == 1
    assert (await svc.get_mood(G, now=NOW)).valence > 0
    assert len(await svc.mood_history(G)) == 1
    # Saying it again changes nothing and schedules no second birthday.
    again = await svc.learn(U, CH, text, guild_id=G, now=NOW)
    assert [c.action for c in again.changes] == ["none", "none"]
    assert len(await svc.list_events(U)) == 1
