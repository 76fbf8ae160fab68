"""Leveling tables (seed 002): levels, quests, user_quests, server_config, achievements, user_achievements,
cards, roles. Every row is keyed by guild; "paid once" is structural (unique keys + conditional updates)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import Mapped, mapped_column

from guildkeep.db import Base, BigIntPK, PortableJSON, Snowflake, TimestampMixin, UTCDateTime, utcnow
from guildkeep.leveling.rules import (
    ACHIEVEMENT_REQUIREMENTS,
    DIFFICULTIES,
    QUEST_REQUIREMENTS,
    QUEST_TYPES,
    REFRESH_CYCLES,
)
from guildkeep.leveling.settings import CURVES, LEVEL_UP_MODES
from guildkeep.leveling.settings import default as _default

_GUILD_FK = "guilds.id"
_USER_FK = "users.id"


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class Level(TimestampMixin, Base):
    """A member's XP in one server. ``xp`` is the total; ``level`` is derived from it by the server's curve."""

    __tablename__ = "leveling_levels"
    __table_args__ = (
        UniqueConstraint("guild_id", "user_id"),
        CheckConstraint("xp >= 0", name="xp_non_negative"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    guild_id: Mapped[int] = mapped_column(Snowflake(), ForeignKey(_GUILD_FK, ondelete="CASCADE"), nullable=False)
    user_id: Mapped[int] = mapped_column(Snowflake(), ForeignKey(_USER_FK, ondelete="CASCADE"), nullable=False)
    xp: Mapped[int] = mapped_column(BigInteger, default=0, nullable=False)
    level: Mapped[int] = mapped_column(Integer, default=0, nullable=False)
    messages: Mapped[int] = mapped_column(Integer, default=0, nullable=False)  # messages that earned XP
    voice_time_seconds: Mapped[int] = mapped_column(BigInteger, default=0, nullable=False)
    total_messages: Mapped[int] = mapped_column(Integer, default=0, nullable=False)
    total_reactions: Mapped[int] = mapped_column(Integer, default=0, nullable=False)
    commands_used: Mapped[int] = mapped_column(Integer, default=0, nullable=False)
    last_message_time: Mapped[datetime | None] = mapped_column(UTCDateTime())
    xp_multiplier: Mapped[float] = mapped_column(Float, default=1.0, nullable=False)
    multiplier_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # This quest period's activity that counts for quests (past its cooldown, not in a no-XP place), for the
    # server's generated daily and weekly quests: their progress is read from here, so a flush adds to the
    # member's one row instead of writing a row per quest (`rules.PERIOD_COUNTERS`). ``*_period`` is the start
    # of the period the counters belong to (POSIX seconds); a later period starts them again from zero.
    daily_period: Mapped[int | None] = mapped_column(BigInteger)
    daily_messages: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0", nullable=False)
    daily_reactions: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0", nullable=False)
    daily_voice_seconds: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0", nullable=False)
    daily_commands: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0", nullable=False)
    weekly_period: Mapped[int | None] = mapped_column(BigInteger)
    weekly_messages: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0", nullable=False)
    weekly_reactions: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0", nullable=False)
    weekly_voice_seconds: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0", nullable=False)
    weekly_commands: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0", nullable=False)


# Leaderboard order (XP high to low, ties by user id): keyset pages and rank counts read it in order.
Index("ix_leveling_levels_board", Level.guild_id, Level.xp.desc(), Level.user_id)


class Quest(Base):
    """A quest definition: generated from a template for one period, or authored by an admin."""

    __tablename__ = "leveling_quests"
    __table_args__ = (
        # One generated quest per template per period, even when two shards run the reset at once.
        UniqueConstraint("guild_id", "template_key", "period_start"),
        Index("ix_leveling_quests_guild_id_active", "guild_id", "active"),
        CheckConstraint(_in("quest_type", QUEST_TYPES), name="quest_type"),
        CheckConstraint(_in("requirement_type", QUEST_REQUIREMENTS), name="requirement_type"),
        CheckConstraint(_in("refresh_cycle", REFRESH_CYCLES), name="refresh_cycle"),
        CheckConstraint(_in("difficulty", DIFFICULTIES), name="difficulty"),
        CheckConstraint("requirement_value > 0", name="requirement_positive"),
        CheckConstraint("reward_xp >= 0", name="reward_non_negative"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    guild_id: Mapped[int] = mapped_column(Snowflake(), ForeignKey(_GUILD_FK, ondelete="CASCADE"), nullable=False)
    name: Mapped[str] = mapped_column(String(100), nullable=False)
    description: Mapped[str] = mapped_column(Text, default="", nullable=False)
    quest_type: Mapped[str] = mapped_column(String(16), nullable=False)
    requirement_type: Mapped[str] = mapped_column(String(32), nullable=False)
    requirement_value: Mapped[int] = mapped_column(Integer, nullable=False)
    reward_xp: Mapped[int] = mapped_column(Integer, default=0, nullable=False)
    reward_multiplier: Mapped[float] = mapped_column(Float, default=1.0, nullable=False)
    multiplier_minutes: Mapped[int] = mapped_column(Integer, default=0, nullable=False)
    active: Mapped[bool] = mapped_column(Boolean, default=True, nullable=False)
    refresh_cycle: Mapped[str] = mapped_column(String(16), default="once", nullable=False)
    difficulty: Mapped[str] = mapped_column(String(16), default="medium", nullable=False)
    template_key: Mapped[str | None] = mapped_column(String(64))
    period_start: Mapped[datetime | None] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_by: Mapped[int | None] = mapped_column(Snowflake())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, nullable=False)


class UserQuest(Base):
    """A member's progress on a quest. ``completed`` flips false→true once, by a conditional UPDATE."""

    __tablename__ = "leveling_user_quests"
    __table_args__ = (
        UniqueConstraint("guild_id", "user_id", "quest_id"),
        Index("ix_leveling_user_quests_quest_id", "quest_id"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    guild_id: Mapped[int] = mapped_column(Snowflake(), ForeignKey(_GUILD_FK, ondelete="CASCADE"), nullable=False)
    user_id: Mapped[int] = mapped_column(Snowflake(), ForeignKey(_USER_FK, ondelete="CASCADE"), nullable=False)
    quest_id: Mapped[int] = mapped_column(
        BigIntPK, ForeignKey("leveling_quests.id", ondelete="CASCADE"), nullable=False
    )
    progress: Mapped[int] = mapped_column(BigInteger, default=0, nullable=False)  # the member's overall counter
    quest_specific_progress: Mapped[int] = mapped_column(BigInteger, default=0, nullable=False)
    completed: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false(), nullable=False)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class ServerConfig(Base):
    """One row per server; absent means every default. The settings, their defaults and bounds are declared once in
    `leveling.settings.LevelingSettings`; this table stores them."""

    __tablename__ = "leveling_server_config"
    __table_args__ = (
        CheckConstraint("quest_reset_hour BETWEEN 0 AND 23", name="reset_hour"),
        CheckConstraint("quest_reset_day BETWEEN 0 AND 6", name="reset_day"),
        CheckConstraint(_in("level_up_mode", LEVEL_UP_MODES), name="level_up_mode"),
        CheckConstraint(_in("curve", CURVES), name="curve"),
    )

    guild_id: Mapped[int] = mapped_column(
        Snowflake(), ForeignKey(_GUILD_FK, ondelete="CASCADE"), primary_key=True, autoincrement=False
    )
    xp_rate: Mapped[float] = mapped_column(Float, default=_default("xp_rate"), nullable=False)
    level_up_mode: Mapped[str] = mapped_column(String(16), default=_default("level_up_mode"), nullable=False)
    level_up_message: Mapped[str | None] = mapped_column(Text)
    level_up_channel: Mapped[int | None] = mapped_column(Snowflake())
    quest_channel: Mapped[int | None] = mapped_column(Snowflake())
    achievement_channel: Mapped[int | None] = mapped_column(Snowflake())
    quest_reset_hour: Mapped[int] = mapped_column(Integer, default=_default("quest_reset_hour"), nullable=False)
    quest_reset_day: Mapped[int] = mapped_column(Integer, default=_default("quest_reset_day"), nullable=False)
    quests_enabled: Mapped[bool] = mapped_column(Boolean, default=_default("quests_enabled"), nullable=False)
    cooldowns: Mapped[dict[str, Any]] = mapped_column(PortableJSON(), default=dict, nullable=False)
    message_xp_min: Mapped[int] = mapped_column(Integer, default=_default("message_xp_min"), nullable=False)
    message_xp_max: Mapped[int] = mapped_column(Integer, default=_default("message_xp_max"), nullable=False)
    voice_xp_per_minute: Mapped[int] = mapped_column(Integer, default=_default("voice_xp_per_minute"), nullable=False)
    reaction_xp: Mapped[int] = mapped_column(Integer, default=_default("reaction_xp"), nullable=False)
    command_xp: Mapped[int] = mapped_column(Integer, default=_default("command_xp"), nullable=False)
    curve: Mapped[str] = mapped_column(String(16), default=_default("curve"), nullable=False)
    curve_base: Mapped[float] = mapped_column(Float, default=_default("curve_base"), nullable=False)
    curve_exponent: Mapped[float] = mapped_column(Float, default=_default("curve_exponent"), nullable=False)
    no_xp_channels: Mapped[list[int]] = mapped_column(PortableJSON(), default=list, nullable=False)
    no_xp_roles: Mapped[list[int]] = mapped_column(PortableJSON(), default=list, nullable=False)
    role_multipliers: Mapped[dict[str, float]] = mapped_column(PortableJSON(), default=dict, nullable=False)
    channel_multipliers: Mapped[dict[str, float]] = mapped_column(PortableJSON(), default=dict, nullable=False)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow, nullable=False)


class Achievement(Base):
    __tablename__ = "leveling_achievements"
    __table_args__ = (
        UniqueConstraint("guild_id", "name"),
        CheckConstraint(_in("requirement_type", ACHIEVEMENT_REQUIREMENTS), name="requirement_type"),
        CheckConstraint("requirement_value > 0", name="requirement_positive"),
        CheckConstraint("reward_xp >= 0", name="reward_non_negative"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    guild_id: Mapped[int] = mapped_column(Snowflake(), ForeignKey(_GUILD_FK, ondelete="CASCADE"), nullable=False)
    name: Mapped[str] = mapped_column(String(100), nullable=False)
    description: Mapped[str] = mapped_column(Text, default="", nullable=False)
    requirement_type: Mapped[str] = mapped_column(String(16), nullable=False)
    requirement_value: Mapped[int] = mapped_column(BigInteger, nullable=False)
    reward_xp: Mapped[int] = mapped_column(Integer, default=0, nullable=False)
    badge_url: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, nullable=False)


class UserAchievement(Base):
    """Earned once: the unique key makes a second insert a no-op, and the reward follows the insert."""

    __tablename__ = "leveling_user_achievements"
    __table_args__ = (UniqueConstraint("guild_id", "user_id", "achievement_id"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    guild_id: Mapped[int] = mapped_column(Snowflake(), ForeignKey(_GUILD_FK, ondelete="CASCADE"), nullable=False)
    user_id: Mapped[int] = mapped_column(Snowflake(), ForeignKey(_USER_FK, ondelete="CASCADE"), nullable=False)
    achievement_id: Mapped[int] = mapped_column(
        BigIntPK, ForeignKey("leveling_achievements.id", ondelete="CASCADE"), nullable=False
    )
    earned_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, nullable=False)


class Card(Base):
    """A member's rank-card look in one server."""

    __tablename__ = "leveling_cards"

    guild_id: Mapped[int] = mapped_column(
        Snowflake(), ForeignKey(_GUILD_FK, ondelete="CASCADE"), primary_key=True, autoincrement=False
    )
    user_id: Mapped[int] = mapped_column(
        Snowflake(), ForeignKey(_USER_FK, ondelete="CASCADE"), primary_key=True, autoincrement=False
    )
    background_url: Mapped[str | None] = mapped_column(String(500))
    background_color: Mapped[str | None] = mapped_column(String(7))
    primary_color: Mapped[str | None] = mapped_column(String(7))
    secondary_color: Mapped[str | None] = mapped_column(String(7))
    border_color: Mapped[str | None] = mapped_column(String(7))
    text_color: Mapped[str | None] = mapped_column(String(7))
    card_style: Mapped[str] = mapped_column(String(16), default="default", nullable=False)


class LevelRoleRow(Base):
    """A role granted from a level; ``is_stacked`` keeps it once a higher level role is earned."""

    __tablename__ = "leveling_roles"
    __table_args__ = (
        UniqueConstraint("guild_id", "role_id"),
        CheckConstraint("level >= 0", name="level_non_negative"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    guild_id: Mapped[int] = mapped_column(Snowflake(), ForeignKey(_GUILD_FK, ondelete="CASCADE"), nullable=False)
    role_id: Mapped[int] = mapped_column(Snowflake(), nullable=False)
    level: Mapped[int] = mapped_column(Integer, nullable=False)
    is_stacked: Mapped[bool] = mapped_column(Boolean, default=True, nullable=False)


class LevelRoleGrant(Base):
    """A level role guildkeep gave a member. Only these are ever taken away again: a role the member held
    before (or got elsewhere) is theirs, even when it is also a level role."""

    __tablename__ = "leveling_role_grants"

    guild_id: Mapped[int] = mapped_column(
        Snowflake(), ForeignKey(_GUILD_FK, ondelete="CASCADE"), primary_key=True, autoincrement=False
    )
    user_id: Mapped[int] = mapped_column(Snowflake(), primary_key=True, autoincrement=False)
    role_id: Mapped[int] = mapped_column(Snowflake(), primary_key=True, autoincrement=False)
    granted_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, nullable=False)


class SeenEvent(Base):
    """Activity events already counted, so two processes receiving the same event count it once.

    ``key`` is the Discord message (or interaction) id, or a 63-bit hash of a reaction's or a voice interval's
    identity. ``owner`` is NULL for an event counted once; a voice interval carries the id of the process that
    claimed it, which may add to it again. ``seen_at`` is POSIX time in microseconds, unique to the flush that
    claimed the key (so a flush tells its own claims from older ones); rows older than an hour are pruned.
    """

    __tablename__ = "leveling_seen_events"
    __table_args__ = (Index("ix_leveling_seen_events_seen_at", "seen_at"),)

    key: Mapped[int] = mapped_column(Snowflake(), primary_key=True, autoincrement=False)
    owner: Mapped[int | None] = mapped_column(BigInteger)
    seen_at: Mapped[int] = mapped_column(BigInteger, nullable=False)
