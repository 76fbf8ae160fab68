"""The rule for callers: read, call the model outside any unit of work, write only after a valid reply.

A tiny service stores a scene the model describes. On both databases: a valid reply writes one row;
a reply that does not parse, or breaks the schema, raises `LLMBadReply` and writes nothing.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import BigInteger, Column, Integer, MetaData, String, Table, func, insert, select

from guildkeep.db import Database
from guildkeep.llm import ChatMessage, LLMBadReply, LLMClient
from guildkeep.llm.standin import StandinModel

from .test_client import SCENE

_metadata = MetaData()  # not the models' metadata: this table exists only for these tests
scenes = Table(
    "llm_test_scenes",
    _metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("guild_id", BigInteger, nullable=False),
    Column("title", String(40), nullable=False),
    Column("mood", String(10), nullable=False),
    Column("danger", Integer, nullable=False),
)


@pytest.fixture
async def scene_table(db: Database) -> AsyncIterator[Database]:
    async with db.engine.begin() as conn:
        await conn.run_sync(_metadata.create_all)
    try:
        yield db
    finally:
        async with db.engine.begin() as conn:
            await conn.run_sync(_metadata.drop_all)


async def describe_scene(db: Database, llm: LLMClient, guild_id: int, action: str) -> dict[str, Any]:
    """Ask the model for the scene an action leads to and store it; a bad reply stores nothing."""
    async with db.session(read_only=True) as session:  # 1. read what the prompt needs
        known = await session.scalar(select(func.count()).select_from(scenes).where(scenes.c.guild_id == guild_id))
    messages = [ChatMessage.system(f"Scenes so far: {known}."), ChatMessage.user(action)]
    reply = await llm.structured(messages, SCENE, name="scene", guild_id=guild_id)  # 2. no session is open
    async with db.session() as session:  # 3. write, only now that the reply is valid
        await session.execute(insert(scenes).values(guild_id=guild_id, **reply.data))
    return reply.data


async def _rows(db: Database) -> list[tuple[Any, ...]]:
    async with db.session(read_only=True) as session:
        result = await session.execute(
            select(scenes.c.guild_id, scenes.c.title, scenes.c.mood, scenes.c.danger).order_by(scenes.c.id)
        )
        return [tuple(row) for row in result]


async def test_only_a_valid_reply_is_written(scene_table: Database, standin: StandinModel, llm: LLMClient) -> None:
    db = scene_table
    standin.reply_json({"title": "The Crypt", "mood": "tense", "danger": 6})
    stored = await describe_scene(db, llm, 7, "I go down the stairs")
    assert stored == {"title": "The Crypt", "mood": "tense", "danger": 6}
    assert await _rows(db) == [(7, "The Crypt", "tense", 6)]

    standin.reply("The crypt is dark and you hear dripping water.")  # prose, not JSON
    with pytest.raises(LLMBadReply):
        await describe_scene(db, llm, 7, "I light a torch")
    standin.invalid_for_schema()
    with pytest.raises(LLMBadReply):
        await describe_scene(db, llm, 7, "I light a torch")
    standin.reply_json({"title": "The Crypt", "mood": "spooky", "danger": 6})  # parses, breaks the enum
    with pytest.raises(LLMBadReply):
        await describe_scene(db, llm, 7, "I light a torch")
    standin.malformed()
    with pytest.raises(LLMBadReply):
        await describe_scene(db, llm, 7, "I light a torch")
    assert await _rows(db) == [(7, "The Crypt", "tense", 6)]  # nothing changed

    await describe_scene(db, llm, 7, "I light a torch")  # the rule-based reply is valid again
    assert await _rows(db) == [(7, "The Crypt", "tense", 6), (7, "I light a torch", "calm", 0)]
    assert "Scenes so far: 1." in standin.chat_requests()[-1].messages[0]["content"]
