"""Characters, their per-server overrides and the speech log.

A character is global: it belongs to the user who made it, whichever server it was made in.
A server can give it another name or avatar, or hide it, without touching the other servers.
The speech log keeps one row per message posted as a character (ids only, never the content), so
the speaker can edit or delete it and anyone can ask who wrote it.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Index, String, Text, UniqueConstraint, false
from sqlalchemy.orm import Mapped, mapped_column

from guildkeep.db import Base, BigIntPK, Snowflake, TimestampMixin, UTCDateTime
from guildkeep.db.types import utcnow

NAME_MAX = 80
URL_MAX = 2048
DESCRIPTION_MAX = 2000


class Character(TimestampMixin, Base):
    __tablename__ = "characters"
    __table_args__ = (
        UniqueConstraint("owner_id", "name_key"),
        Index("ix_characters_public_name_key", "is_public", "name_key"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    owner_id: Mapped[int] = mapped_column(Snowflake(), ForeignKey("users.id", ondelete="CASCADE"), nullable=False)
    name: Mapped[str] = mapped_column(String(NAME_MAX), nullable=False)
    # casefolded name: (owner, name) is unique whatever the letter case
    name_key: Mapped[str] = mapped_column(String(NAME_MAX * 3), nullable=False)
    avatar_url: Mapped[str | None] = mapped_column(String(URL_MAX))
    description: Mapped[str] = mapped_column(Text, default="", nullable=False)
    is_public: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false(), nullable=False)
    # where it was made (informational; a character is usable in every server its owner is in)
    origin_guild_id: Mapped[int | None] = mapped_column(Snowflake())


class CharacterGuildOverride(TimestampMixin, Base):
    """One server's view of a character: another name, another avatar, or hidden there."""

    __tablename__ = "character_guild_overrides"
    __table_args__ = (
        UniqueConstraint("character_id", "guild_id"),
        Index("ix_character_guild_overrides_guild_id", "guild_id"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    character_id: Mapped[int] = mapped_column(
        BigIntPK, ForeignKey("characters.id", ondelete="CASCADE"), nullable=False
    )
    guild_id: Mapped[int] = mapped_column(Snowflake(), ForeignKey("guilds.id", ondelete="CASCADE"), nullable=False)
    nickname: Mapped[str | None] = mapped_column(String(NAME_MAX))
    avatar_url: Mapped[str | None] = mapped_column(String(URL_MAX))
    hidden: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false(), nullable=False)


class CharacterSpeech(Base):
    """A message posted as a character. No content: ids, the name shown and the time."""

    __tablename__ = "character_speech"
    __table_args__ = (
        Index("ix_character_speech_guild_id_speaker_id", "guild_id", "speaker_id", "created_at"),
        Index("ix_character_speech_character_id", "character_id"),
    )

    message_id: Mapped[int] = mapped_column(Snowflake(), primary_key=True, autoincrement=False)
    guild_id: Mapped[int] = mapped_column(Snowflake(), ForeignKey("guilds.id", ondelete="CASCADE"), nullable=False)
    channel_id: Mapped[int] = mapped_column(Snowflake(), nullable=False)  # the thread, when posted in one
    webhook_id: Mapped[int] = mapped_column(Snowflake(), nullable=False)
    speaker_id: Mapped[int] = mapped_column(Snowflake(), ForeignKey("users.id", ondelete="CASCADE"), nullable=False)
    character_id: Mapped[int | None] = mapped_column(BigIntPK, ForeignKey("characters.id", ondelete="SET NULL"))
    character_name: Mapped[str] = mapped_column(String(NAME_MAX), nullable=False)  # the name it was shown under
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, nullable=False)
