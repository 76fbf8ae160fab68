"""The companion's pure rules."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from guildkeep.companion import rules

NOW = datetime(2026, 12, 2, 11, 0, tzinfo=UTC)


@pytest.mark.parametrize(("score", "level"), [
    (0, "stranger"), (20, "stranger"), (20.01, "acquaintance"), (21, "acquaintance"), (40, "acquaintance"),
    (41, "friend"), (60, "friend"), (61, "good_friend"), (80, "good_friend"), (81, "close_friend"),
    (100, "close_friend"),
])
def test_relationship_level_boundaries(score: float, level: str) -> None:
    assert rules.relationship_level(score) == level


def test_mood_decays_toward_neutral_by_half_life() -> None:
    v, a = rules.decay_mood(0.8, -0.6, timedelta(hours=rules.MOOD_HALF_LIFE_HOURS))
    assert v == pytest.approx(0.4)
    assert a == pytest.approx(-0.3)
    assert rules.decay_mood(0.8, 0.8, timedelta(0)) == (0.8, 0.8)
    v, a = rules.decay_mood(1.0, 1.0, timedelta(days=30))
    assert abs(v) < 1e-6
    assert rules.mood_label(v, a) == "neutral"


def test_mood_stays_in_bounds_and_has_labels() -> None:
    v, a = 0.95, 0.95
    for _ in range(10):
        v, a = rules.nudge_mood(v, a, 1.0, 1.0)
    assert (v, a) == (1.0, 1.0)
    assert rules.mood_label(0.6, 0.6) == "excited"
    assert rules.mood_label(-0.6, -0.6) == "sad"
    assert rules.mood_label(-0.6, 0.6) == "frustrated"
    assert rules.mood_label(0.6, -0.6) == "content"


def test_conversation_split_at_sixty_minutes() -> None:
    assert rules.starts_new_conversation(None, NOW)
    assert not rules.starts_new_conversation(NOW - timedelta(minutes=59, seconds=59), NOW)
    assert rules.starts_new_conversation(NOW - timedelta(minutes=60), NOW)


def test_deterministic_extractor() -> None:
    facts = rules.extract_facts("My birthday is March 14 and I love painting. I work as a nurse; I live in Lyon.")
    assert [(f.fact_type, f.content) for f in facts] == [
        ("event", "Birthday is March 14"), ("hobby", "Loves painting"), ("work", "Works as nurse"),
        ("location", "Lives in Lyon"),
    ]
    assert facts[0].birthday == (3, 14)
    assert rules.extract_facts("my birthday is february 30") == []
    assert rules.extract_facts("what a nice day") == []
    assert rules.parse_month_day("14th of July") == (7, 14)
    assert rules.parse_month_day("1990-02-29") == (2, 29)


def test_reconcile_add_update_none() -> None:
    existing = [rules.ExistingFact(1, "work", "Works as nurse"), rules.ExistingFact(2, "hobby", "Loves painting")]
    assert rules.reconcile("hobby", "Loves painting", existing) == (rules.NOOP, 2)
    assert rules.reconcile("work", "Works as teacher", existing) == (rules.UPDATE, 1)
    assert rules.reconcile("hobby", "Loves painting watercolors", existing) == (rules.UPDATE, 2)
    assert rules.reconcile("hobby", "Loves chess", existing) == (rules.ADD, None)


def test_fact_score_is_recency_times_importance_times_relevance() -> None:
    fresh = rules.fact_score(importance=0.5, last_used=NOW, now=NOW, content="Loves chess", query="chess tonight?")
    old = rules.fact_score(importance=0.5, last_used=NOW - timedelta(days=30), now=NOW, content="Loves chess",
                           query="chess tonight?")
    unrelated = rules.fact_score(importance=0.5, last_used=NOW, now=NOW, content="Loves chess", query="hello")
    assert old == pytest.approx(fresh / 2)
    assert unrelated == pytest.approx(0.5 * rules.RELEVANCE_FLOOR)
    assert fresh > unrelated > 0


def test_style_sample() -> None:
    casual = rules.style_sample("lol yeah gonna do it 😂😂")
    formal = rules.style_sample("Could you please send me the report? Thank you.")
    assert casual.humor > formal.humor
    assert casual.emoji > formal.emoji
    assert formal.formality > casual.formality
    assert rules.preferred_length(20) == "short"
    assert rules.preferred_length(400) == "long"


@pytest.mark.parametrize(("text", "expected"), [
    ("in 10 minutes", NOW + timedelta(minutes=10)),
    ("in 2 hours", NOW + timedelta(hours=2)),
    ("tomorrow 9:00", datetime(2026, 12, 3, 9, 0, tzinfo=UTC)),
    ("tomorrow at 7pm", datetime(2026, 12, 3, 19, 0, tzinfo=UTC)),
    ("2027-03-14 18:30", datetime(2027, 3, 14, 18, 30, tzinfo=UTC)),
    ("2027-03-14", datetime(2027, 3, 14, 9, 0, tzinfo=UTC)),
    ("2020-01-01", None), ("next week maybe", None), ("tomorrow 25:00", None), ("in 0 minutes", None),
])
def test_parse_when(text: str, expected: datetime | None) -> None:
    assert rules.parse_when(text, NOW) == expected


def test_next_yearly_birthday() -> None:
    assert rules.next_yearly(3, 14, NOW) == datetime(2027, 3, 14, 9, tzinfo=UTC)
    assert rules.next_yearly(12, 2, NOW) == datetime(2027, 12, 2, 9, tzinfo=UTC)  # 9:00 today is past
    assert rules.next_yearly(2, 29, NOW) == datetime(2027, 2, 28, 9, tzinfo=UTC)
    assert rules.next_yearly(2, 29, datetime(2027, 3, 1, tzinfo=UTC)) == datetime(2028, 2, 29, 9, tzinfo=UTC)
