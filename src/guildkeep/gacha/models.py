"""Gacha tables. The catalogue is shared by every server; everything a player owns is per guild.

Balances are guarded twice: every change is a conditional UPDATE in the service, and CHECK
constraints refuse a negative balance even if a future code path forgets.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Boolean, CheckConstraint, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from guildkeep.db import Base, BigIntPK, PortableJSON, Snowflake, TimestampMixin, UTCDateTime, utcnow

LISTING_OPEN = "open"
LISTING_SOLD = "sold"
LISTING_CANCELLED = "cancelled"


class Esprit(TimestampMixin, Base):
    """A catalogue entry, seeded from ``esprits.json``. Entries removed from the file are retired, never deleted."""

    __tablename__ = "gacha_esprits"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(100), nullable=False)
    description: Mapped[str] = mapped_column(Text, default="", nullable=False)
    rarity: Mapped[str] = mapped_column(String(32), nullable=False, index=True)
    element: Mapped[str] = mapped_column(String(32), nullable=False)
    base_hp: Mapped[int] = mapped_column(Integer, nullable=False)
    base_attack: Mapped[int] = mapped_column(Integer, nullable=False)
    base_defense: Mapped[int] = mapped_column(Integer, nullable=False)
    base_speed: Mapped[int] = mapped_column(Integer, nullable=False)
    base_magic: Mapped[int] = mapped_column(Integer, nullable=False)
    image: Mapped[str] = mapped_column(String(200), nullable=False)
    in_catalogue: Mapped[bool] = mapped_column(Boolean, default=True, nullable=False)


class Player(TimestampMixin, Base):
    """One player per (guild, user): wallet, level, daily streak and pity counters."""

    __tablename__ = "gacha_players"
    __table_args__ = (
        UniqueConstraint("guild_id", "user_id"),
        CheckConstraint("faylen >= 0 AND virelite >= 0 AND gems >= 0", name="balances_not_negative"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    guild_id: Mapped[int] = mapped_column(Snowflake(), ForeignKey("guilds.id", ondelete="CASCADE"), nullable=False)
    user_id: Mapped[int] = mapped_column(Snowflake(), ForeignKey("users.id", ondelete="CASCADE"), nullable=False)
    faylen: Mapped[int] = mapped_column(BigInteger, default=0, nullable=False)
    virelite: Mapped[int] = mapped_column(BigInteger, default=0, nullable=False)
    gems: Mapped[int] = mapped_column(BigInteger, default=0, nullable=False)
    level: Mapped[int] = mapped_column(Integer, default=1, nullable=False)
    xp: Mapped[int] = mapped_column(BigInteger, default=0, nullable=False)
    daily_streak: Mapped[int] = mapped_column(Integer, default=0, nullable=False)
    last_daily_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    pity_guaranteed: Mapped[int] = mapped_column(Integer, default=0, nullable=False)
    pity_hard: Mapped[int] = mapped_column(Integer, default=0, nullable=False)
    total_pulls: Mapped[int] = mapped_column(BigInteger, default=0, nullable=False)
    # A copy in gacha_user_esprits; no foreign key (the two tables would reference each other): the
    # service sets it only to a copy the player owns and clears it whenever that copy leaves them.
    active_esprit_id: Mapped[int | None] = mapped_column(BigInteger)
    policy_accepted_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, nullable=False)


class UserEsprit(TimestampMixin, Base):
    """An owned copy of a catalogue entry. ``in_escrow`` is set while it is listed at auction."""

    __tablename__ = "gacha_user_esprits"
    # AUTOINCREMENT on SQLite: a deleted copy's id is never handed out again (ledger lines keep pointing at it).
    __table_args__ = (Index("ix_gacha_user_esprits_guild_id_owner_id", "guild_id", "owner_id"),
                      {"sqlite_autoincrement": True})

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    guild_id: Mapped[int] = mapped_column(Snowflake(), ForeignKey("guilds.id", ondelete="CASCADE"), nullable=False)
    owner_id: Mapped[int] = mapped_column(Snowflake(), ForeignKey("users.id", ondelete="CASCADE"), nullable=False)
    esprit_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("gacha_esprits.id", ondelete="RESTRICT"), nullable=False, index=True
    )
    level: Mapped[int] = mapped_column(Integer, default=1, nullable=False)
    xp: Mapped[int] = mapped_column(BigInteger, default=0, nullable=False)
    current_hp: Mapped[int] = mapped_column(Integer, nullable=False)
    in_escrow: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)
    obtained_via: Mapped[str] = mapped_column(String(16), default="summon", nullable=False)


class AuctionListing(Base):
    """A copy offered for sale. The copy stays in escrow until the listing is sold or cancelled."""

    __tablename__ = "gacha_auction_listings"
    __table_args__ = (
        Index("ix_gacha_auction_listings_guild_id_status", "guild_id", "status"),
        CheckConstraint("price > 0", name="price_positive"),
        {"sqlite_autoincrement": True},  # ids are never reused, like the copies'
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    guild_id: Mapped[int] = mapped_column(Snowflake(), ForeignKey("guilds.id", ondelete="CASCADE"), nullable=False)
    seller_id: Mapped[int] = mapped_column(Snowflake(), ForeignKey("users.id", ondelete="CASCADE"), nullable=False)
    user_esprit_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("gacha_user_esprits.id", ondelete="CASCADE"), nullable=False, index=True
    )
    price: Mapped[int] = mapped_column(BigInteger, nullable=False)
    currency: Mapped[str] = mapped_column(String(16), nullable=False)
    status: Mapped[str] = mapped_column(String(16), default=LISTING_OPEN, nullable=False)
    buyer_id: Mapped[int | None] = mapped_column(Snowflake(), ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, nullable=False)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class LedgerEntry(Base):
    """Append-only record of every currency and ownership change.

    One request writes one or more lines under the same idempotency key (line 0, 1, ...); the unique
    constraint makes a retried request fail to write twice, and the service then replays line 0's result.
    """

    __tablename__ = "gacha_ledger"
    __table_args__ = (
        UniqueConstraint("guild_id", "idempotency_key", "line"),
        Index("ix_gacha_ledger_guild_id_user_id", "guild_id", "user_id"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    guild_id: Mapped[int] = mapped_column(Snowflake(), ForeignKey("guilds.id", ondelete="CASCADE"), nullable=False)
    user_id: Mapped[int] = mapped_column(Snowflake(), nullable=False)
    idempotency_key: Mapped[str] = mapped_column(String(128), nullable=False)
    line: Mapped[int] = mapped_column(Integer, default=0, nullable=False)
    operation: Mapped[str] = mapped_column(String(32), nullable=False)
    currency: Mapped[str | None] = mapped_column(String(16))  # None for an ownership line
    amount: Mapped[int] = mapped_column(BigInteger, default=0, nullable=False)
    balance_after: Mapped[int | None] = mapped_column(BigInteger)
    user_esprit_id: Mapped[int | None] = mapped_column(BigInteger)
    reason: Mapped[str] = mapped_column(String(300), default="", nullable=False)
    result: Mapped[dict[str, Any] | None] = mapped_column(PortableJSON())  # line 0: what the request returned
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, nullable=False)
