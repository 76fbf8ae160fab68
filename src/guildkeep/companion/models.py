"""Companion tables (seed 004): preferences, facts, conversations and messages, bot state (mood), mood history,
opinions, relationships, communication styles, scheduled events and fact associations.

Users, guilds and guild members are the identity tables. Every row about a user cascades away with the
user (and messages with their conversation, associations with their facts). Per-server rows carry the
guild id; direct messages use guild id 0 (`rules.GLOBAL_GUILD`), so the unique keys hold on both databases.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, CheckConstraint, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from guildkeep.companion import rules
from guildkeep.db import Base, BigIntPK, PortableJSON, Snowflake, SoftDeleteMixin, TimestampMixin, UTCDateTime, utcnow

_USER_FK = "users.id"


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def _between(column: str, low: float, high: float) -> str:
    return f"{column} >= {low} AND {column} <= {high}"


class UserPreference(TimestampMixin, Base):
    """A key/value preference of a user, one value per key."""

    __tablename__ = "companion_user_preferences"
    __table_args__ = (
        UniqueConstraint("user_id", "preference_key"),
        Index("ix_companion_user_preferences_user_id", "user_id"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(Snowflake(), ForeignKey(_USER_FK, ondelete="CASCADE"), nullable=False)
    preference_key: Mapped[str] = mapped_column(String(100), nullable=False)
    preference_value: Mapped[str] = mapped_column(Text, nullable=False, default="")


class UserFact(TimestampMixin, SoftDeleteMixin, Base):
    """Something the companion knows about a user. ``guild_id`` is where it was learned (0: a DM);
    ``is_active`` False is a superseded or retracted fact; past ``expiry_date`` a fact is hidden, not deleted."""

    __tablename__ = "companion_user_facts"
    __table_args__ = (
        Index("ix_companion_user_facts_user_id", "user_id"),
        Index("ix_companion_user_facts_fact_type", "fact_type"),
        Index("ix_companion_user_facts_is_active", "is_active"),
        CheckConstraint(_in("fact_type", rules.FACT_TYPES), name="fact_type"),
        CheckConstraint(_in("temporal_relevance", rules.TEMPORAL), name="temporal_relevance"),
        CheckConstraint(_between("confidence", 0, 1), name="confidence_range"),
        CheckConstraint(_between("importance", 0, 1), name="importance_range"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(Snowflake(), ForeignKey(_USER_FK, ondelete="CASCADE"), nullable=False)
    guild_id: Mapped[int] = mapped_column(Snowflake(), nullable=False, default=rules.GLOBAL_GUILD)
    fact_type: Mapped[str] = mapped_column(String(50), nullable=False)
    fact_content: Mapped[str] = mapped_column(Text, nullable=False)
    confidence: Mapped[float] = mapped_column(Float, nullable=False, default=0.8)
    source: Mapped[str] = mapped_column(String(50), nullable=False, default="conversation")
    learned_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)
    last_referenced_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    category: Mapped[str] = mapped_column(String(50), nullable=False)
    importance: Mapped[float] = mapped_column(Float, nullable=False, default=0.5)
    temporal_relevance: Mapped[str] = mapped_column(String(20), nullable=False, default="present")
    expiry_date: Mapped[datetime | None] = mapped_column(UTCDateTime())
    extracted_from_message_id: Mapped[int | None] = mapped_column(Snowflake())
    extraction_context: Mapped[str | None] = mapped_column(Text)


class Conversation(TimestampMixin, SoftDeleteMixin, Base):
    """A run of messages between a user and the companion in one channel; 60 minutes of silence ends it."""

    __tablename__ = "companion_conversations"
    __table_args__ = (
        Index("ix_companion_conversations_user_id", "user_id"),
        Index("ix_companion_conversations_channel_id", "channel_id"),
        Index("ix_companion_conversations_last_message_at", "last_message_at"),
        Index("ix_companion_conversations_is_active", "is_active"),
        CheckConstraint("message_count >= 0", name="message_count_non_negative"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(Snowflake(), ForeignKey(_USER_FK, ondelete="CASCADE"), nullable=False)
    guild_id: Mapped[int | None] = mapped_column(Snowflake())
    channel_id: Mapped[int] = mapped_column(Snowflake(), nullable=False)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)
    last_message_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)
    message_count: Mapped[int] = mapped_column(Integer, nullable=False, default=0)


class Message(TimestampMixin, Base):
    """One message of a conversation, the user's or the companion's."""

    __tablename__ = "companion_messages"
    __table_args__ = (
        Index("ix_companion_messages_conversation_id", "conversation_id"),
        Index("ix_companion_messages_user_id", "user_id"),
        Index("ix_companion_messages_created_at", "created_at"),
        CheckConstraint(_in("role", rules.ROLES), name="role"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    conversation_id: Mapped[int] = mapped_column(
        BigIntPK, ForeignKey("companion_conversations.id", ondelete="CASCADE"), nullable=False
    )
    user_id: Mapped[int] = mapped_column(Snowflake(), ForeignKey(_USER_FK, ondelete="CASCADE"), nullable=False)
    discord_message_id: Mapped[int | None] = mapped_column(Snowflake())
    role: Mapped[str] = mapped_column(String(20), nullable=False)
    content: Mapped[str] = mapped_column(Text, nullable=False)
    has_images: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    image_urls: Mapped[list[str]] = mapped_column(PortableJSON(), nullable=False, default=list)
    token_count: Mapped[int] = mapped_column(Integer, nullable=False, default=0)


class BotState(TimestampMixin, Base):
    """The companion's state in one server (0: direct messages): mood, counters and the server's settings."""

    __tablename__ = "companion_bot_states"
    __table_args__ = (
        UniqueConstraint("guild_id"),
        CheckConstraint(_between("mood_valence", -1, 1), name="valence_range"),
        CheckConstraint(_between("mood_arousal", -1, 1), name="arousal_range"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    guild_id: Mapped[int] = mapped_column(Snowflake(), nullable=False)
    mood_valence: Mapped[float] = mapped_column(Float, nullable=False, default=0.0)
    mood_arousal: Mapped[float] = mapped_column(Float, nullable=False, default=0.0)
    mood_updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)
    total_messages_sent: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    total_facts_learned: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    total_users_known: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    first_activated_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)
    preferences: Mapped[dict[str, Any]] = mapped_column(PortableJSON(), nullable=False, default=dict)


class MoodHistory(TimestampMixin, Base):
    """One row per mood change, with what caused it."""

    __tablename__ = "companion_mood_history"
    __table_args__ = (
        Index("ix_companion_mood_history_guild_id", "guild_id"),
        Index("ix_companion_mood_history_recorded_at", "recorded_at"),
        CheckConstraint(_in("trigger_type", rules.TRIGGER_TYPES), name="trigger_type"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    guild_id: Mapped[int] = mapped_column(Snowflake(), nullable=False)
    valence: Mapped[float] = mapped_column(Float, nullable=False)
    arousal: Mapped[float] = mapped_column(Float, nullable=False)
    trigger_type: Mapped[str] = mapped_column(String(50), nullable=False)
    trigger_user_id: Mapped[int | None] = mapped_column(Snowflake(), ForeignKey(_USER_FK, ondelete="SET NULL"))
    trigger_description: Mapped[str | None] = mapped_column(Text)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)


class BotOpinion(TimestampMixin, Base):
    """What the companion thinks of a topic in one server, formed and reinforced by conversations."""

    __tablename__ = "companion_bot_opinions"
    __table_args__ = (
        UniqueConstraint("guild_id", "topic"),
        Index("ix_companion_bot_opinions_guild_id", "guild_id"),
        Index("ix_companion_bot_opinions_topic", "topic"),
        CheckConstraint(_between("sentiment", -1, 1), name="sentiment_range"),
        CheckConstraint(_between("interest_level", 0, 1), name="interest_range"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    guild_id: Mapped[int] = mapped_column(Snowflake(), nullable=False)
    topic: Mapped[str] = mapped_column(String(rules.MAX_TOPIC), nullable=False)
    sentiment: Mapped[float] = mapped_column(Float, nullable=False, default=0.0)
    interest_level: Mapped[float] = mapped_column(Float, nullable=False, default=0.5)
    discussion_count: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    reasoning: Mapped[str | None] = mapped_column(Text)
    formed_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)
    last_reinforced_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)


class UserRelationship(TimestampMixin, Base):
    """How close the companion is to a user in one server (0: DMs), 0-100."""

    __tablename__ = "companion_user_relationships"
    __table_args__ = (
        UniqueConstraint("user_id", "guild_id"),
        Index("ix_companion_user_relationships_user_id", "user_id"),
        Index("ix_companion_user_relationships_guild_id", "guild_id"),
        CheckConstraint(_between("relationship_score", 0, 100), name="score_range"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(Snowflake(), ForeignKey(_USER_FK, ondelete="CASCADE"), nullable=False)
    guild_id: Mapped[int] = mapped_column(Snowflake(), nullable=False)
    relationship_score: Mapped[float] = mapped_column(Float, nullable=False, default=rules.DEFAULT_SCORE)
    total_interactions: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    positive_interactions: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    negative_interactions: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    avg_message_length: Mapped[float] = mapped_column(Float, nullable=False, default=0.0)
    conversation_depth_avg: Mapped[float] = mapped_column(Float, nullable=False, default=0.0)
    shared_references: Mapped[dict[str, Any]] = mapped_column(PortableJSON(), nullable=False, default=dict)
    first_interaction_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)
    last_interaction_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)


class UserCommunicationStyle(TimestampMixin, Base):
    """How a user likes to talk, learned from their messages."""

    __tablename__ = "companion_user_communication_styles"
    __table_args__ = (
        UniqueConstraint("user_id"),
        CheckConstraint(_in("preferred_length", rules.LENGTHS), name="preferred_length"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(Snowflake(), ForeignKey(_USER_FK, ondelete="CASCADE"), nullable=False)
    preferred_length: Mapped[str] = mapped_column(String(20), nullable=False, default="medium")
    preferred_formality: Mapped[float] = mapped_column(Float, nullable=False, default=0.5)
    emoji_affinity: Mapped[float] = mapped_column(Float, nullable=False, default=0.5)
    humor_affinity: Mapped[float] = mapped_column(Float, nullable=False, default=0.5)
    detail_preference: Mapped[float] = mapped_column(Float, nullable=False, default=0.5)
    engagement_signals: Mapped[dict[str, Any]] = mapped_column(PortableJSON(), nullable=False, default=dict)
    samples_collected: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    confidence: Mapped[float] = mapped_column(Float, nullable=False, default=0.0)


class ScheduledEvent(TimestampMixin, Base):
    """A proactive message due at ``trigger_at``: a birthday, a follow-up or a reminder.

    One row per occurrence: triggering a recurring one inserts the next occurrence as a new pending row.
    The scheduler job that posts it has the dedup key ``event:<id>``.
    """

    __tablename__ = "companion_scheduled_events"
    __table_args__ = (
        Index("ix_companion_scheduled_events_user_id", "user_id"),
        Index("ix_companion_scheduled_events_trigger_at", "trigger_at"),
        Index("ix_companion_scheduled_events_status", "status"),
        CheckConstraint(_in("event_type", rules.EVENT_TYPES), name="event_type"),
        CheckConstraint(_in("status", rules.EVENT_STATUSES), name="status"),
        CheckConstraint(
            f"recurrence_rule IS NULL OR {_in('recurrence_rule', rules.RECURRENCES)}", name="recurrence_rule"
        ),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(Snowflake(), ForeignKey(_USER_FK, ondelete="CASCADE"), nullable=False)
    guild_id: Mapped[int | None] = mapped_column(Snowflake())
    channel_id: Mapped[int | None] = mapped_column(Snowflake())
    event_type: Mapped[str] = mapped_column(String(50), nullable=False)
    trigger_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    title: Mapped[str] = mapped_column(String(rules.MAX_TITLE), nullable=False)
    context: Mapped[dict[str, Any]] = mapped_column(PortableJSON(), nullable=False, default=dict)
    is_recurring: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    recurrence_rule: Mapped[str | None] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(20), nullable=False, default=rules.PENDING)
    triggered_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class FactAssociation(Base):
    """A link between two facts of different users (a shared interest, the same city), ``fact_id_1 < fact_id_2``."""

    __tablename__ = "companion_fact_associations"
    __table_args__ = (
        UniqueConstraint("fact_id_1", "fact_id_2"),
        Index("ix_companion_fact_associations_fact_id_1", "fact_id_1"),
        Index("ix_companion_fact_associations_fact_id_2", "fact_id_2"),
        CheckConstraint("fact_id_1 < fact_id_2", name="ordered_pair"),
        CheckConstraint(_between("strength", 0, 1), name="strength_range"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    fact_id_1: Mapped[int] = mapped_column(
        BigIntPK, ForeignKey("companion_user_facts.id", ondelete="CASCADE"), nullable=False
    )
    fact_id_2: Mapped[int] = mapped_column(
        BigIntPK, ForeignKey("companion_user_facts.id", ondelete="CASCADE"), nullable=False
    )
    association_type: Mapped[str] = mapped_column(String(50), nullable=False)
    strength: Mapped[float] = mapped_column(Float, nullable=False, default=0.5)
    discovered_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)
