"""Talking on both databases: with the local stand-in model (real HTTP, nothing mocked) and without a model."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from guildkeep.companion import rules
from guildkeep.companion.models import BotState
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


async def _stored_replies(db: Database, scope: int) -> int:
    async with db.session(read_only=True) as s:
        return int(await s.scalar(select(BotState.total_messages_sent).where(BotState.guild_id == scope)) or 0)


async def test_replies_are_counted_behind_and_visible_at_once(db: Database) -> None:
    svc = CompanionService(db, clock=lambda: NOW, flush_seconds=60)  # a window longer than the test
    svc.start()
    try:
        for i in range(3):
            await svc.reply(U + i, CH, "hello", guild_id=G, now=NOW)
        await svc.reply(U, CH, "hi in private", now=NOW)  # direct messages count in their own row (0)
        assert await _stored_replies(db, G) == 0  # not stored yet ...
        assert await svc.replies_sent(G) == 3  # ... but every read adds what is pending
        assert (await svc.status(U, G, now=NOW)).replies_sent == 3
        assert await svc.replies_sent(None) == 1
    finally:
        await svc.stop()
    assert (await _stored_replies(db, G), await _stored_replies(db, 0)) == (3, 1)  # stop stored everything
    assert await svc.replies_sent(G) == 3  # and nothing is counted twice
    assert svc.tally.pending_rows == 0


async def test_without_a_window_each_reply_stores_its_count(db: Database) -> None:
    svc = CompanionService(db, clock=lambda: NOW)  # flush_seconds=0: write-through
    svc.start()
    await svc.reply(U, CH, "hello", guild_id=G, now=NOW)
    assert await _stored_replies(db, G) == 1
    assert svc.tally.pending_rows == 0
    await svc.reply(U, CH, "again", guild_id=G, now=NOW + timedelta(seconds=1))
    assert await _stored_replies(db, G) == 2


async def test_many_concurrent_replies_in_one_server_from_two_processes_are_all_counted(
    db: Database, database_url: str,
) -> None:
    other_db = Database(database_url, pool_size=5, max_overflow=5)
    services = [CompanionService(d, clock=lambda: NOW, flush_seconds=0.05) for d in (db, other_db)]
    try:
        for svc in services:
            svc.start()
        await asyncio.gather(*(services[i % 2].reply(U + i, CH, f"message {i}", guild_id=G, now=NOW)
                               for i in range(24)))
        for svc in services:
            await svc.stop()
        assert await _stored_replies(db, G) == 24
        assert await services[0].replies_sent(G) == 24
    finally:
        await other_db.dispose()
