"""Plain read-only values the gacha service returns (no ORM objects leave the service).

Each is named ``*Info`` (a thing as it is) or ``*Result`` (what an operation did).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path


@dataclass(frozen=True, slots=True)
class PlayerInfo:
    """A player's wallet, level, daily streak and pity counters in one server."""

    guild_id: int
    user_id: int
    balances: dict[str, int]
    level: int
    xp: int
    xp_next_level: int
    daily_streak: int
    last_daily_at: datetime | None
    next_daily_at: datetime | None
    active_esprit_id: int | None
    pity_guaranteed: int
    pity_hard: int
    total_pulls: int


@dataclass(frozen=True, slots=True)
class EspritInfo:
    """An owned copy with its catalogue entry and its stats at its level."""

    copy_id: int
    owner_id: int
    esprit_id: str
    name: str
    description: str
    rarity: str
    element: str
    image: str
    level: int
    stats: dict[str, int]
    in_escrow: bool
    is_active: bool


@dataclass(frozen=True, slots=True)
class StartResult:
    """What `/start` created: the new player and their starter Esprit."""

    player: PlayerInfo
    starter: EspritInfo


@dataclass(frozen=True, slots=True)
class DailyResult:
    """A daily claim: what was credited, the streak, when the next claim opens and the wallet after."""

    paid: dict[str, int]  # what was credited (after the balance maximum)
    streak: int
    next_daily_at: datetime
    balances: dict[str, int]


@dataclass(frozen=True, slots=True)
class PullInfo:
    """One pulled Esprit and whether pity forced its rarity."""

    esprit: EspritInfo
    forced: str | None  # None, "guaranteed" or "hard"


@dataclass(frozen=True, slots=True)
class SummonResult:
    """A summon: the pulls in order, what it cost, the balance and pity counters after."""

    pulls: list[PullInfo]
    cost: int
    currency: str
    balance_after: int
    pity_guaranteed: int
    pity_hard: int
    level: int
    active: list[int] | None = None  # [copy id, level before, level after] of the active Esprit


@dataclass(frozen=True, slots=True)
class ListingInfo:
    """An auction listing with the Esprit it holds."""

    listing_id: int
    seller_id: int
    price: int
    currency: str
    status: str
    buyer_id: int | None
    created_at: datetime
    esprit: EspritInfo


@dataclass(frozen=True, slots=True)
class PurchaseResult:
    """A purchase: the listing as it was sold and both balances after the sale."""

    listing: ListingInfo
    buyer_balance: int
    seller_balance: int


@dataclass(frozen=True, slots=True)
class GrantResult:
    """An administrator's grant (or removal) and the member's balance after it."""

    user_id: int
    currency: str
    amount: int
    balance_after: int


@dataclass(frozen=True, slots=True)
class RankInfo:
    """One line of the gacha leaderboard."""

    rank: int
    user_id: int
    value: int
    level: int


@dataclass(frozen=True, slots=True)
class SeedResult:
    """How a catalogue seed changed ``gacha_esprits``."""

    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    retired: int = 0


@dataclass(frozen=True, slots=True)
class ResetResult:
    """A server's game reset: what was deleted and the backup holding it before."""

    backup: Path
    players: int
    esprits: int
    listings: int
    seed: SeedResult = field(default_factory=SeedResult)
    replayed: bool = False  # a retried request: the first outcome, nothing done again
