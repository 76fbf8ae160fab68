"""The game's pure rules: rarity rolls with pity, the daily reward, levels and stat scaling. No I/O.

Randomness is always an injected `random.Random`, so a seeded generator replays exactly.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True, slots=True)
class Tier:
    """A rarity tier and its roll weight."""

    id: str
    weight: float


@dataclass(frozen=True, slots=True)
class PityRules:
    """Pity thresholds as ranks in the ascending tier list.

    ``guaranteed_every``: the N-th pull since the last pull of rank >= ``guaranteed_rank`` is forced to
    that rank or better; with N equal to the multi-pull size every multi-pull holds one. ``hard_threshold``:
    the N-th pull since the last pull of rank >= ``hard_rank`` is forced to that rank or better.
    """

    guaranteed_rank: int
    guaranteed_every: int
    hard_rank: int
    hard_threshold: int


@dataclass(frozen=True, slots=True)
class PityState:
    """A player's pity counters."""

    since_guaranteed: int = 0  # pulls since the last guaranteed-rank-or-better result
    since_hard: int = 0  # pulls since the last hard-rank-or-better result


@dataclass(frozen=True, slots=True)
class Pull:
    """One pull's rarity, its rank and what forced it."""

    rarity: str
    rank: int
    forced: str | None  # None, "guaranteed" or "hard"


def roll_rarity(rng: random.Random, tiers: Sequence[Tier], *, min_rank: int = 0) -> int:
    """A rank drawn by weight among ``tiers[min_rank:]``. Falls back to the highest tier when all weigh 0."""
    candidates = list(enumerate(tiers))[min_rank:]
    total = sum(t.weight for _, t in candidates)
    if total <= 0:
        return len(tiers) - 1
    point = rng.random() * total
    for rank, tier in candidates:
        if tier.weight <= 0:
            continue
        point -= tier.weight
        if point < 0:
            return rank
    return next(rank for rank, tier in reversed(candidates) if tier.weight > 0)


def summon(
    rng: random.Random, count: int, tiers: Sequence[Tier], pity: PityRules, state: PityState
) -> tuple[list[Pull], PityState]:
    """``count`` pulls in order, applying hard pity first, then the guarantee; returns the new counters."""
    if count < 1:
        raise ValueError("count must be at least 1")
    pulls = []
    since_g, since_h = state.since_guaranteed, state.since_hard
    for _ in range(count):
        since_g += 1
        since_h += 1
        if since_h >= pity.hard_threshold:
            rank, forced = roll_rarity(rng, tiers, min_rank=pity.hard_rank), "hard"
        elif since_g >= pity.guaranteed_every:
            rank, forced = roll_rarity(rng, tiers, min_rank=pity.guaranteed_rank), "guaranteed"
        else:
            rank, forced = roll_rarity(rng, tiers), None
        if rank >= pity.hard_rank:
            since_h = 0
        if rank >= pity.guaranteed_rank:
            since_g = 0
        pulls.append(Pull(tiers[rank].id, rank, forced))
    return pulls, PityState(since_g, since_h)


def pick(rng: random.Random, ids: Sequence[str]) -> str:
    """One id, uniformly; sorted first so the result does not depend on the input order."""
    if not ids:
        raise ValueError("nothing to pick from")
    return rng.choice(sorted(ids))


# --- daily ------------------------------------------------------------------------------------------


def next_streak(last_claim: datetime | None, now: datetime, current: int, window: timedelta) -> int:
    """The streak after claiming at ``now``: one more when the previous claim is within ``window``, else 1."""
    if last_claim is None or now - last_claim > window:
        return 1
    return current + 1


def daily_amount(base: int, per_level: int, *, level: int, streak: int, bonus_percent: int, max_days: int) -> int:
    """``base + per_level*(level-1)``, plus ``bonus_percent`` for each consecutive day after the first (capped)."""
    amount = base + per_level * max(level - 1, 0)
    bonus_days = min(max(streak, 1), max_days) - 1
    return amount + amount * bonus_percent * bonus_days // 100


def daily_rewards(
    rewards: Mapping[str, tuple[int, int]], *, level: int, streak: int, bonus_percent: int, max_days: int
) -> dict[str, int]:
    """Per currency: ``rewards[currency] = (base, per_level)`` turned into the amount for this claim."""
    return {
        currency: daily_amount(
            base, per_level, level=level, streak=streak, bonus_percent=bonus_percent, max_days=max_days
        )
        for currency, (base, per_level) in rewards.items()
    }


# --- levels and stats ------------------------------------------------------------------------------------


def xp_for_level(level: int, xp_per_level: int) -> int:
    """Total XP needed to reach ``level``: going from L to L+1 costs ``xp_per_level * L``."""
    return xp_per_level * (level - 1) * level // 2


def level_for_xp(xp: int, xp_per_level: int, start_level: int = 1) -> int:
    """The level ``xp`` total XP reaches (never below ``start_level``)."""
    level = max(start_level, 1)
    while xp >= xp_for_level(level + 1, xp_per_level):
        level += 1
    return level


def scale_stats(base: Mapping[str, int], level: int, growth_percent: int) -> dict[str, int]:
    """Each stat grows by ``growth_percent`` of its base per level above 1."""
    factor_num = 100 + growth_percent * max(level - 1, 0)
    return {name: value * factor_num // 100 for name, value in base.items()}
