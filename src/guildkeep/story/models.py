"""Story tables. Every row carries ``guild_id``: one server never sees another's worlds, stories or
relationships.

* ``story_worlds``: a server's worlds; locations (with their events) in one validated JSON value.
* ``story_instances``: a story played in a channel. ``live_channel_id`` is the channel while the story is
  active or paused and NULL once it ended; it is unique, so the database itself allows one running story
  per channel (two ``/story start`` at once: one wins).
* ``story_cast``: the characters (global, from ``guildkeep.characters``) a story uses.
* ``story_relationships``: a player's relationship with a character in a story: a text and a score.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Boolean, CheckConstraint, ForeignKey, Index, Integer, String, Text, UniqueConstraint, false
from sqlalchemy.orm import Mapped, mapped_column

from guildkeep.db import Base, BigIntPK, PortableJSON, Snowflake, TimestampMixin


class StoryWorld(TimestampMixin, Base):
    __tablename__ = "story_worlds"
    __table_args__ = (UniqueConstraint("guild_id", "name_key"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    guild_id: Mapped[int] = mapped_column(Snowflake(), ForeignKey("guilds.id", ondelete="CASCADE"), nullable=False)
    name: Mapped[str] = mapped_column(String(100), nullable=False)
    name_key: Mapped[str] = mapped_column(String(300), nullable=False)
    description: Mapped[str] = mapped_column(Text, default="", nullable=False)
    locations: Mapped[list[dict[str, Any]]] = mapped_column(PortableJSON(), default=list, nullable=False)
    created_by: Mapped[int] = mapped_column(Snowflake(), nullable=False)
    version: Mapped[int] = mapped_column(Integer, default=1, nullable=False)


class StoryInstance(TimestampMixin, Base):
    __tablename__ = "story_instances"
    __table_args__ = (
        UniqueConstraint("live_channel_id"),
        Index("ix_story_instances_guild_id_channel_id", "guild_id", "channel_id"),
        CheckConstraint("summary_every >= 2", name="summary_every_min"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    guild_id: Mapped[int] = mapped_column(Snowflake(), ForeignKey("guilds.id", ondelete="CASCADE"), nullable=False)
    channel_id: Mapped[int] = mapped_column(Snowflake(), nullable=False)
    # the channel while the story runs (active or paused), NULL once ended: unique = one running story per channel
    live_channel_id: Mapped[int | None] = mapped_column(Snowflake())
    world_id: Mapped[int] = mapped_column(
        BigIntPK, ForeignKey("story_worlds.id", ondelete="CASCADE"), nullable=False, index=True)
    started_by: Mapped[int] = mapped_column(Snowflake(), nullable=False)
    status: Mapped[str] = mapped_column(String(16), nullable=False)
    state: Mapped[dict[str, Any]] = mapped_column(PortableJSON(), default=dict, nullable=False)
    summaries: Mapped[list[str]] = mapped_column(PortableJSON(), default=list, nullable=False)
    outlines: Mapped[list[str]] = mapped_column(PortableJSON(), default=list, nullable=False)
    event_log: Mapped[list[dict[str, Any]]] = mapped_column(PortableJSON(), default=list, nullable=False)
    # the last lines of play (speaker and text), for the narrator's context; bounded
    recent: Mapped[list[dict[str, Any]]] = mapped_column(PortableJSON(), default=list, nullable=False)
    message_count: Mapped[int] = mapped_column(Integer, default=0, nullable=False)
    since_summary: Mapped[int] = mapped_column(Integer, default=0, nullable=False)
    summary_every: Mapped[int] = mapped_column(Integer, default=10, nullable=False)
    no_model_notice: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false(), nullable=False)
    version: Mapped[int] = mapped_column(Integer, default=1, nullable=False)


class StoryCast(Base):
    __tablename__ = "story_cast"
    __table_args__ = (Index("ix_story_cast_character_id", "character_id"),)

    story_id: Mapped[int] = mapped_column(
        BigIntPK, ForeignKey("story_instances.id", ondelete="CASCADE"), primary_key=True, autoincrement=False)
    # a character of `guildkeep.characters`, referred to by id (no foreign key across modules): a character
    # deleted after its story ended is simply left out when the story is read
    character_id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=False)
    guild_id: Mapped[int] = mapped_column(Snowflake(), nullable=False)
    position: Mapped[int] = mapped_column(Integer, default=0, nullable=False)


class StoryRelationship(TimestampMixin, Base):
    __tablename__ = "story_relationships"
    __table_args__ = (
        UniqueConstraint("story_id", "user_id", "character_id"),
        Index("ix_story_relationships_guild_id", "guild_id"),
        CheckConstraint("score >= -100 AND score <= 100", name="score_range"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    guild_id: Mapped[int] = mapped_column(Snowflake(), ForeignKey("guilds.id", ondelete="CASCADE"), nullable=False)
    story_id: Mapped[int] = mapped_column(
        BigIntPK, ForeignKey("story_instances.id", ondelete="CASCADE"), nullable=False)
    user_id: Mapped[int] = mapped_column(Snowflake(), nullable=False)
    character_id: Mapped[int] = mapped_column(BigIntPK, nullable=False)  # see StoryCast.character_id
    description: Mapped[str] = mapped_column(Text, default="", nullable=False)
    score: Mapped[int] = mapped_column(Integer, default=0, nullable=False)
