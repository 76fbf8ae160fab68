"""Campaign tables. Every row carries ``guild_id``: one server never sees another's campaigns.

* ``campaigns``: one per channel (unique ``guild_id, channel_id``), its GM, its two roles, its webhook and
  the archived (read-only) flag.
* ``campaign_players``: who joined (primary key ``campaign_id, user_id``: joining twice is one membership).
* ``campaign_characters``: the character (from ``guildkeep.characters``) a player plays in a campaign;
  unique ``campaign_id, user_id``: one character per player per campaign, enforced by the database.
* ``campaign_npcs``: the GM's non-player characters, several per campaign, unique name per campaign.
* ``campaign_speech``: which campaign a message posted as a character or NPC belongs to, so the GM can
  delete any message of their campaign (who posted it, as whom, lives in ``character_speech``).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, UniqueConstraint, false
from sqlalchemy.orm import Mapped, mapped_column

from guildkeep.db import Base, BigIntPK, Snowflake, TimestampMixin, UTCDateTime
from guildkeep.db.types import utcnow

NAME_MAX = 100
NPC_NAME_MAX = 80
URL_MAX = 2048


class Campaign(TimestampMixin, Base):
    __tablename__ = "campaigns"
    __table_args__ = (UniqueConstraint("guild_id", "channel_id"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    guild_id: Mapped[int] = mapped_column(Snowflake(), ForeignKey("guilds.id", ondelete="CASCADE"), nullable=False)
    channel_id: Mapped[int] = mapped_column(Snowflake(), nullable=False)
    name: Mapped[str] = mapped_column(String(NAME_MAX), nullable=False)
    gm_id: Mapped[int] = mapped_column(Snowflake(), nullable=False, index=True)
    player_role_id: Mapped[int | None] = mapped_column(Snowflake())
    gm_role_id: Mapped[int | None] = mapped_column(Snowflake())
    webhook_id: Mapped[int | None] = mapped_column(Snowflake())
    archived: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false(), nullable=False)
    version: Mapped[int] = mapped_column(Integer, default=1, nullable=False)


class CampaignPlayer(Base):
    __tablename__ = "campaign_players"
    __table_args__ = (Index("ix_campaign_players_user_id", "user_id"),)

    campaign_id: Mapped[int] = mapped_column(
        BigIntPK, ForeignKey("campaigns.id", ondelete="CASCADE"), primary_key=True, autoincrement=False)
    user_id: Mapped[int] = mapped_column(Snowflake(), primary_key=True, autoincrement=False)
    guild_id: Mapped[int] = mapped_column(Snowflake(), nullable=False)
    joined_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, nullable=False)


class CampaignCharacter(TimestampMixin, Base):
    __tablename__ = "campaign_characters"
    __table_args__ = (
        UniqueConstraint("campaign_id", "user_id"),
        Index("ix_campaign_characters_user_id", "user_id"),
        Index("ix_campaign_characters_character_id", "character_id"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    campaign_id: Mapped[int] = mapped_column(
        BigIntPK, ForeignKey("campaigns.id", ondelete="CASCADE"), nullable=False)
    guild_id: Mapped[int] = mapped_column(Snowflake(), nullable=False)
    user_id: Mapped[int] = mapped_column(Snowflake(), nullable=False)
    # a character of `guildkeep.characters`, referred to by id (no foreign key across modules); a character
    # bound to a campaign can't be deleted (a delete guard), so the id always resolves
    character_id: Mapped[int] = mapped_column(BigIntPK, nullable=False)


class CampaignNpc(TimestampMixin, Base):
    __tablename__ = "campaign_npcs"
    __table_args__ = (UniqueConstraint("campaign_id", "name_key"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    campaign_id: Mapped[int] = mapped_column(
        BigIntPK, ForeignKey("campaigns.id", ondelete="CASCADE"), nullable=False)
    guild_id: Mapped[int] = mapped_column(Snowflake(), nullable=False)
    name: Mapped[str] = mapped_column(String(NPC_NAME_MAX), nullable=False)
    name_key: Mapped[str] = mapped_column(String(NPC_NAME_MAX * 3), nullable=False)
    avatar_url: Mapped[str | None] = mapped_column(String(URL_MAX))
    creator_id: Mapped[int] = mapped_column(Snowflake(), nullable=False, index=True)


class CampaignSpeech(Base):
    """A message posted in a campaign (as a player's character or an NPC). Ids only."""

    __tablename__ = "campaign_speech"
    __table_args__ = (Index("ix_campaign_speech_campaign_id", "campaign_id"),)

    message_id: Mapped[int] = mapped_column(Snowflake(), primary_key=True, autoincrement=False)
    campaign_id: Mapped[int] = mapped_column(
        BigIntPK, ForeignKey("campaigns.id", ondelete="CASCADE"), nullable=False)
    guild_id: Mapped[int] = mapped_column(Snowflake(), nullable=False)
    npc_id: Mapped[int | None] = mapped_column(BigIntPK, ForeignKey("campaign_npcs.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, nullable=False)
