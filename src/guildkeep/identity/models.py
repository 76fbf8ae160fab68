"""Guilds, users and guild members. Discord snowflakes are the primary keys of guilds and users."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from guildkeep.db import Base, BigIntPK, PortableJSON, Snowflake, SoftDeleteMixin, TimestampMixin, UTCDateTime
from guildkeep.db.types import utcnow


class Guild(TimestampMixin, SoftDeleteMixin, Base):
    __tablename__ = "guilds"

    id: Mapped[int] = mapped_column(Snowflake(), primary_key=True, autoincrement=False)
    name: Mapped[str] = mapped_column(String(100), default="", nullable=False)
    joined_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, nullable=False)
    settings: Mapped[dict[str, Any]] = mapped_column(PortableJSON(), default=dict, nullable=False)


class User(TimestampMixin, SoftDeleteMixin, Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Snowflake(), primary_key=True, autoincrement=False)
    username: Mapped[str] = mapped_column(String(255), default="", nullable=False)
    discord_display_name: Mapped[str | None] = mapped_column(String(255))
    custom_name: Mapped[str | None] = mapped_column(String(255))
    first_seen_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, nullable=False)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, nullable=False, index=True)

    @property
    def display_name(self) -> str:
        """The companion seed's rule: custom name, else display name, else username."""
        return self.custom_name or self.discord_display_name or self.username or str(self.id)


class GuildMember(TimestampMixin, Base):
    __tablename__ = "guild_members"
    __table_args__ = (
        UniqueConstraint("guild_id", "user_id"),
        Index("ix_guild_members_user_id", "user_id"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    guild_id: Mapped[int] = mapped_column(Snowflake(), ForeignKey("guilds.id", ondelete="CASCADE"), nullable=False)
    user_id: Mapped[int] = mapped_column(Snowflake(), ForeignKey("users.id", ondelete="CASCADE"), nullable=False)
    nickname: Mapped[str | None] = mapped_column(String(255))
    roles: Mapped[list[int]] = mapped_column(PortableJSON(), default=list, nullable=False)
    joined_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
