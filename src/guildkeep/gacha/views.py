"""Plain read-only values the gacha service returns (no ORM objects leave the service)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path


@dataclass(frozen=True, slots=True)
class PlayerView:
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
class EspritView:
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
    player: PlayerView
    starter: EspritView


@dataclass(frozen=True, slots=True)
class DailyResult:
    paid: dict[str, int]  # what was credited (after the balance maximum)
    streak: int
    next_daily_at: datetime
    balances: dict[str, int]


@dataclass(frozen=True, slots=True)
class SummonedEsprit:
    esprit: EspritView
    forced: str | None  # None, "guaranteed" or "hard"


@dataclass(frozen=True, slots=True)
class SummonResult:
    pulls: list[SummonedEsprit]
    cost: int
    currency: str
    balance_after: int
    pity_guaranteed: int
    pity_hard: int
    level: int
    active: list[int] | None = None  # [copy id, level before, level after] of the active Esprit


@dataclass(frozen=True, slots=True)
class ListingView:
    listing_id: int
    seller_id: int
    price: int
    currency: str
    status: str
    buyer_id: int | None
    created_at: datetime
    esprit: EspritView


@dataclass(frozen=True, slots=True)
class PurchaseResult:
    listing: ListingView
    buyer_balance: int
    seller_balance: int


@dataclass(frozen=True, slots=True)
class GrantResult:
    user_id: int
    currency: str
    amount: int
    balance_after: int


@dataclass(frozen=True, slots=True)
class LeaderboardEntry:
    rank: int
    user_id: int
    value: int
    level: int


@dataclass(frozen=True, slots=True)
class SeedReport:
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    retired: int = 0


@dataclass(frozen=True, slots=True)
class ResetReport:
    backup: Path
    players: int
    esprits: int
    listings: int
    seed: SeedReport = field(default_factory=SeedReport)
    replayed: bool = False  # a retried request: the first outcome, nothing done again
