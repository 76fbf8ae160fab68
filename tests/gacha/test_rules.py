"""Pure rules: weighted rolls (chi-square at a fixed seed), pity, daily amounts, levels, stats."""

from __future__ import annotations

import random
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from guildkeep.gacha import rules
from guildkeep.gacha.config import load_config

TIERS = [rules.Tier("common", 55), rules.Tier("uncommon", 27), rules.Tier("rare", 12),
         rules.Tier("epic", 5), rules.Tier("legendary", 1)]
NO_PITY = rules.PityRules(guaranteed_rank=2, guaranteed_every=10**9, hard_rank=4, hard_threshold=10**9)
DEFAULT_PITY = rules.PityRules(guaranteed_rank=2, guaranteed_every=10, hard_rank=4, hard_threshold=90)
# Chi-square critical value for 4 degrees of freedom at p = 0.001.
CHI2_CRITICAL_DF4 = 18.467


def chi_square(counts: Counter[str], tiers: list[rules.Tier], total: int) -> float:
    weight_sum = sum(t.weight for t in tiers)
    stat = 0.0
    for tier in tiers:
        expected = total * tier.weight / weight_sum
        stat += (counts[tier.id] - expected) ** 2 / expected
    return stat


def test_rarities_follow_the_configured_weights_at_a_fixed_seed() -> None:
    cfg = load_config()
    tiers = [rules.Tier(t.id, t.weight) for t in cfg.tiers]
    rng = random.Random(20261129)
    total = 100_000
    pulls, _ = rules.summon(rng, total, tiers, NO_PITY, rules.PityState())
    counts = Counter(p.rarity for p in pulls)
    assert chi_square(counts, tiers, total) < CHI2_CRITICAL_DF4
    assert all(p.forced is None for p in pulls)


def test_chi_square_rejects_a_skewed_generator() -> None:
    """The statistic is strong enough to notice weights that are off by a few points."""
    skewed = [rules.Tier("common", 50), *TIERS[1:4], rules.Tier("legendary", 6)]
    pulls, _ = rules.summon(random.Random(1), 100_000, skewed, NO_PITY, rules.PityState())
    assert chi_square(Counter(p.rarity for p in pulls), TIERS, 100_000) > CHI2_CRITICAL_DF4


class AlwaysLowest(random.Random):
    """random() is always 0.0: every unforced roll is the most common tier."""

    def random(self) -> float:
        return 0.0


def test_guarantee_triggers_exactly_every_configured_pull() -> None:
    pulls, state = rules.summon(AlwaysLowest(), 35, TIERS, DEFAULT_PITY, rules.PityState())
    forced = [i + 1 for i, p in enumerate(pulls) if p.forced]
    assert forced == [10, 20, 30]
    assert all(pulls[i - 1].rank >= 2 for i in forced)
    assert all(p.rarity == "common" for i, p in enumerate(pulls, start=1) if i not in forced)
    assert state == rules.PityState(since_guaranteed=5, since_hard=35)


def test_every_ten_pull_holds_a_rare_or_better_whatever_the_counter() -> None:
    state = rules.PityState()
    rng = random.Random(7)
    for _ in range(2_000):
        pulls, state = rules.summon(rng, 10, TIERS, DEFAULT_PITY, state)
        assert any(p.rank >= 2 for p in pulls)


def test_hard_pity_triggers_exactly_at_the_threshold_and_resets_both_counters() -> None:
    pulls, state = rules.summon(AlwaysLowest(), 90, TIERS, DEFAULT_PITY, rules.PityState())
    assert pulls[89].forced == "hard"
    assert pulls[89].rarity == "legendary"
    assert [p.rarity for p in pulls].count("legendary") == 1
    assert state == rules.PityState(0, 0)
    # The counter carries across calls: 89 pulls, then one more is the hard pity.
    _, state = rules.summon(AlwaysLowest(), 89, TIERS, DEFAULT_PITY, rules.PityState())
    (last,), _ = rules.summon(AlwaysLowest(), 1, TIERS, DEFAULT_PITY, state)
    assert last.forced == "hard"


def test_a_natural_hit_resets_the_counter() -> None:
    class Sequence(random.Random):
        def __init__(self, values: list[float]) -> None:
            super().__init__(0)
            self.values = values

        def random(self) -> float:
            return self.values.pop(0) if self.values else 0.0

    # Pull 4 rolls 0.95 (epic by weight); the next guarantee is then pull 14, not pull 10.
    pulls, _ = rules.summon(Sequence([0, 0, 0, 0.95]), 15, TIERS, DEFAULT_PITY, rules.PityState())
    assert pulls[3].rarity == "epic"
    assert pulls[3].forced is None
    assert [i + 1 for i, p in enumerate(pulls) if p.forced] == [14]


def test_zero_weight_tiers_are_never_rolled() -> None:
    tiers = [rules.Tier("a", 1), rules.Tier("b", 0), rules.Tier("c", 1)]
    rng = random.Random(3)
    assert {rules.roll_rarity(rng, tiers) for _ in range(2_000)} == {0, 2}


def test_summon_refuses_zero_pulls() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        rules.summon(random.Random(), 0, TIERS, DEFAULT_PITY, rules.PityState())


def test_daily_amount_scales_with_level_and_streak() -> None:
    assert rules.daily_amount(200, 20, level=1, streak=1, bonus_percent=10, max_days=7) == 200
    assert rules.daily_amount(200, 20, level=6, streak=1, bonus_percent=10, max_days=7) == 300
    assert rules.daily_amount(200, 20, level=1, streak=3, bonus_percent=10, max_days=7) == 240
    assert rules.daily_amount(200, 20, level=1, streak=30, bonus_percent=10, max_days=7) == 320


def test_streak_continues_inside_the_window_and_restarts_after_it() -> None:
    now = datetime(2026, 11, 29, 12, tzinfo=UTC)
    window = timedelta(hours=48)
    assert rules.next_streak(None, now, 0, window) == 1
    assert rules.next_streak(now - timedelta(hours=25), now, 4, window) == 5
    assert rules.next_streak(now - timedelta(hours=49), now, 4, window) == 1


@given(st.integers(min_value=0, max_value=10**7), st.integers(min_value=1, max_value=1000))
def test_level_for_xp_is_the_inverse_of_xp_for_level(xp: int, per_level: int) -> None:
    level = rules.level_for_xp(xp, per_level)
    assert rules.xp_for_level(level, per_level) <= xp < rules.xp_for_level(level + 1, per_level)


def test_stats_grow_with_level() -> None:
    base = {"hp": 50, "attack": 10}
    assert rules.scale_stats(base, 1, 8) == base
    assert rules.scale_stats(base, 11, 8) == {"hp": 90, "attack": 18}


def test_pick_does_not_depend_on_input_order() -> None:
    assert rules.pick(random.Random(5), ["b", "a", "c"]) == rules.pick(random.Random(5), ["c", "b", "a"])
