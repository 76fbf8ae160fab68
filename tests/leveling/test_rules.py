from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from guildkeep.errors import ValidationError
from guildkeep.leveling import rules
from guildkeep.leveling.rules import ActivityContext, Curve, LevelRole, VoiceState, XpSettings

CURVES = [Curve("mee6"), Curve("linear", base=100), Curve("power", base=100, exponent=2), Curve("power", 7, 2.5)]
NOW = datetime(2026, 11, 25, 13, 30, tzinfo=UTC)  # a Wednesday


@pytest.mark.parametrize(("level", "total"), [(0, 0), (1, 100), (2, 255), (10, 4_675), (50, 268_375),
                                              (100, 1_899_250)])
def test_mee6_published_totals(level: int, total: int) -> None:
    curve = Curve()
    assert curve.total_for_level(level) == total
    assert curve.level_for_xp(total) == level
    assert curve.level_for_xp(total - 1) == max(level - 1, 0)


def test_mee6_step_is_5l2_50l_100() -> None:
    curve = Curve()
    for level in range(200):
        assert curve.xp_for_next(level) == 5 * level**2 + 50 * level + 100


@pytest.mark.parametrize("curve", CURVES, ids=lambda c: f"{c.kind}-{c.base}-{c.exponent}")
def test_level_from_total_is_exact_for_levels_0_to_1000(curve: Curve) -> None:
    for level in range(1001):
        total = curve.total_for_level(level)
        assert curve.level_for_xp(total) == level
        if level:
            assert curve.level_for_xp(total - 1) == level - 1
            assert curve.total_for_level(level) > curve.total_for_level(level - 1)


@settings(max_examples=300, deadline=None)
@given(xp=st.integers(min_value=0, max_value=10**12), curve=st.sampled_from(CURVES))
def test_level_brackets_any_total(xp: int, curve: Curve) -> None:
    level = curve.level_for_xp(xp)
    assert curve.total_for_level(level) <= xp
    assert level == rules.MAX_LEVEL or xp < curve.total_for_level(level + 1)
    lvl, into, span = curve.progress(xp)
    assert lvl == level
    assert into >= 0
    assert level == rules.MAX_LEVEL or into < span


def test_curve_validation() -> None:
    with pytest.raises(ValidationError):
        Curve("cubic")  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        Curve("power", base=0)
    with pytest.raises(ValidationError):
        Curve("power", exponent=9)


def test_cooldown_ready() -> None:
    assert rules.cooldown_ready(None, NOW, 60)
    assert not rules.cooldown_ready(NOW - timedelta(seconds=59), NOW, 60)
    assert rules.cooldown_ready(NOW - timedelta(seconds=60), NOW, 60)
    assert rules.cooldown_ready(NOW, NOW, 0)


def test_message_award_defaults_are_mee6() -> None:
    s = XpSettings()
    rng = random.Random(1)
    amounts = {rules.award(s, "message", ActivityContext(), rng) for _ in range(500)}
    assert amounts == set(range(15, 26))
    assert rules.award(s, "message", ActivityContext(), rng, last=NOW - timedelta(seconds=30), now=NOW) == 0


def test_multipliers_and_blocks() -> None:
    s = XpSettings(message_xp_min=20, message_xp_max=20, xp_rate=2.0, role_multipliers={7: 1.5, 8: 3.0},
                   channel_multipliers={100: 0.5}, no_xp_channels=frozenset({5}), no_xp_roles=frozenset({9}))
    rng = random.Random(0)
    assert rules.award(s, "message", ActivityContext(channel_id=1), rng) == 40
    assert rules.award(s, "message", ActivityContext(channel_id=1, role_ids=frozenset({7, 8})), rng) == 120
    assert rules.award(s, "message", ActivityContext(channel_id=100), rng) == 20
    assert rules.award(s, "message", ActivityContext(channel_id=2, parent_channel_id=100), rng) == 20
    assert rules.award(s, "message", ActivityContext(channel_id=1), rng, quest_multiplier=1.5) == 60
    assert rules.award(s, "message", ActivityContext(channel_id=5), rng) == 0
    assert rules.award(s, "message", ActivityContext(channel_id=6, parent_channel_id=5), rng) == 0
    assert rules.award(s, "message", ActivityContext(channel_id=1, role_ids=frozenset({9})), rng) == 0


def test_other_sources() -> None:
    s = XpSettings(voice_xp_per_minute=10, reaction_xp=3, command_xp=4, cooldowns={"reaction": 10})
    rng = random.Random(0)
    assert rules.award(s, "voice", ActivityContext(), rng, seconds=150) == 25
    assert rules.award(s, "reaction", ActivityContext(), rng, last=NOW, now=NOW + timedelta(seconds=5)) == 0
    assert rules.award(s, "reaction", ActivityContext(), rng, last=NOW, now=NOW + timedelta(seconds=10)) == 3
    assert rules.award(s, "command", ActivityContext(), rng, last=NOW, now=NOW) == 4  # no command cooldown set
    with pytest.raises(ValueError, match="unknown"):
        rules.base_award(s, "typing", rng)


def test_active_quest_multiplier() -> None:
    assert rules.active_quest_multiplier(2.0, NOW + timedelta(minutes=1), NOW) == 2.0
    assert rules.active_quest_multiplier(2.0, NOW, NOW) == 1.0
    assert rules.active_quest_multiplier(None, None, NOW) == 1.0


def test_voice_eligibility() -> None:
    human, bot = VoiceState(), VoiceState(bot=True)
    assert rules.voice_eligible(human, [human])
    assert not rules.voice_eligible(human, [])
    assert not rules.voice_eligible(human, [bot])
    for flag in ("self_mute", "self_deaf", "mute", "deaf", "afk_channel"):
        assert not rules.voice_eligible(VoiceState(**{flag: True}), [human])


def test_level_roles_stacked_and_highest_only() -> None:
    stacked = [LevelRole(1, 5), LevelRole(2, 10), LevelRole(3, 20)]
    single = [LevelRole(1, 5, False), LevelRole(2, 10, False), LevelRole(3, 20, False)]
    assert rules.desired_level_roles(4, stacked) == set()
    assert rules.desired_level_roles(12, stacked) == {1, 2}
    assert rules.desired_level_roles(12, single) == {2}
    add, remove = rules.reconcile_roles({1, 99}, 25, single)
    assert (add, remove) == ({3}, {1})
    add, remove = rules.reconcile_roles({3, 99}, 25, single)
    assert (add, remove) == (set(), set())
    # demoted by an admin: higher roles go
    assert rules.reconcile_roles({1, 2, 3}, 6, stacked) == (set(), {2, 3})


@given(level=st.integers(0, 50), current=st.sets(st.integers(1, 6)),
       stacked=st.lists(st.booleans(), min_size=5, max_size=5))
def test_reconcile_is_idempotent(level: int, current: set[int], stacked: list[bool]) -> None:
    roles = [LevelRole(i + 1, i * 10, s) for i, s in enumerate(stacked)]
    add, remove = rules.reconcile_roles(current, level, roles)
    after = (current | add) - remove
    assert rules.reconcile_roles(after, level, roles) == (set(), set())
    assert 6 not in remove  # a role that is not a level role is never touched


def test_quest_progress_completes_once() -> None:
    assert rules.quest_progress(0, 5, 10) == (5, False)
    assert rules.quest_progress(5, 5, 10) == (10, True)
    assert rules.quest_progress(10, 5, 10) == (10, False)
    assert rules.quest_progress(8, 100, 10) == (10, True)


def test_reset_periods() -> None:
    assert rules.period_start("daily", NOW, 12) == datetime(2026, 11, 25, 12, tzinfo=UTC)
    assert rules.period_start("daily", NOW, 18) == datetime(2026, 11, 24, 18, tzinfo=UTC)
    assert rules.next_reset("daily", NOW, 18) == datetime(2026, 11, 25, 18, tzinfo=UTC)
    # weekly on Monday (0) at 00:00; NOW is Wednesday 25th -> Monday 23rd
    assert rules.period_start("weekly", NOW, 0, 0) == datetime(2026, 11, 23, tzinfo=UTC)
    assert rules.next_reset("weekly", NOW, 0, 0) == datetime(2026, 11, 30, tzinfo=UTC)
    # weekly on Wednesday at 14:00: not yet reached this week
    assert rules.period_start("weekly", NOW, 14, 2) == datetime(2026, 11, 18, 14, tzinfo=UTC)
    assert rules.next_reset("weekly", NOW, 14, 2) == datetime(2026, 11, 25, 14, tzinfo=UTC)
    assert rules.period_start("monthly", NOW, 0) == datetime(2026, 11, 1, tzinfo=UTC)
    assert rules.next_reset("monthly", datetime(2026, 12, 5, tzinfo=UTC), 0) == datetime(2027, 1, 1, tzinfo=UTC)
    assert rules.period_start("monthly", datetime(2026, 12, 1, 1, tzinfo=UTC), 3) == datetime(2026, 11, 1, 3,
                                                                                               tzinfo=UTC)
    with pytest.raises(ValueError, match="no period"):
        rules.period_start("once", NOW)


@given(hour=st.integers(0, 23), day=st.integers(0, 6), cycle=st.sampled_from(["daily", "weekly", "monthly"]),
       offset=st.integers(0, 10**8))
def test_period_contains_now(hour: int, day: int, cycle: str, offset: int) -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=offset)
    start = rules.period_start(cycle, now, hour, day)
    end = rules.next_reset(cycle, now, hour, day)
    assert start <= now < end
    assert start.hour == hour == end.hour
    if cycle == "weekly":
        assert start.weekday() == day


def test_templates() -> None:
    text = rules.render_template("GG {mention}, level {level} ({xp} XP) in {server}! {user}",
                                 user="Ann", mention="<@1>", level=5, xp=500, server="Guild")
    assert text == "GG <@1>, level 5 (500 XP) in Guild! Ann"
    for bad in ("{player}", "{level.__class__}", "{level:>10}", "{level!r}", "oops {", ""):
        with pytest.raises(ValidationError):
            rules.validate_template(bad)


def test_colours_and_urls() -> None:
    assert rules.normalize_hex_colour("5865F2") == "#5865f2"
    assert rules.hex_to_rgb("#ff0080") == (255, 0, 128)
    for bad in ("red", "#12345", "#gggggg"):
        with pytest.raises(ValidationError):
            rules.normalize_hex_colour(bad)
    assert rules.validate_url("https://example.com/a.png") == "https://example.com/a.png"
    for bad in ("ftp://x/y", "javascript:alert(1)", "https://", "file:///etc/passwd"):
        with pytest.raises(ValidationError):
            rules.validate_url(bad)


def test_achievement_met() -> None:
    stats = {"level": 5, "total_messages": 100, "voice_time_seconds": 0, "total_reactions": 3, "commands_used": 1}
    assert rules.achievement_met("level", 5, stats)
    assert rules.achievement_met("messages", 100, stats)
    assert not rules.achievement_met("voice", 1, stats)


@pytest.mark.parametrize(("value", "shown"), [
    (0, "0"), (999, "999"), (1_234, "1,234"), (9_999, "9,999"),
    (10_000, "10K"), (12_345, "12.3K"), (99_949, "99.9K"), (99_950, "100K"), (123_456, "123K"),
    (999_499, "999K"), (999_500, "1M"), (999_950, "1M"), (1_000_000, "1M"), (1_234_567, "1.23M"),
    (5_050_100, "5.05M"), (9_995_000, "10M"), (12_345_678, "12.3M"), (1_689_200_000, "1.69B"),
    (1_005_000_000, "1.01B"), (999_999_999_999, "1T"), (2**62, "4.61Qi"), (-12_345, "-12.3K"),
])
def test_compact_numbers(value: int, shown: str) -> None:
    assert rules.compact_number(value) == shown


@given(st.integers(0, 2**62))
def test_compact_numbers_have_at_most_three_significant_digits(value: int) -> None:
    shown = rules.compact_number(value)
    if value >= 10_000:
        digits = shown.rstrip("KMBTQai").replace(".", "")
        assert 1 <= len(digits.lstrip("0") or "0") <= 3
        assert not shown.startswith("1000")
