"""Achievements a flush's own activity meets are granted before its level write and their XP goes into it (one new
version of each member's row per flush, not two): each is still granted, rewarded and announced exactly once."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest
from sqlalchemy import update

from guildkeep.db import Database, utcnow
from guildkeep.leveling.ingest import XpIngestor
from guildkeep.leveling.models import Level
from guildkeep.leveling.results import ActivityResult
from guildkeep.leveling.service import LevelingService

G = 2101
SNOW = 1_200_000_000_000_000_000


@pytest.fixture
async def svc(db: Database) -> LevelingService:
    service = LevelingService(db)
    await service.update_server_config_values(G, {"message_xp_min": 10, "message_xp_max": 10,
                                                  "cooldowns": {"message": 0}})
    await service.create_achievement(G, "First words", "Send a message.", "messages", 1, 7)
    await service.create_achievement(G, "Chatty", "Send three messages.", "messages", 3, 100)
    return service


async def _ingestor(svc: LevelingService) -> tuple[XpIngestor, list[tuple[int, str]]]:
    earned: list[tuple[int, str]] = []

    async def collect(outcome: ActivityResult) -> None:
        earned.extend((u, a.name) for u, a in outcome.achievements_earned)

    return XpIngestor(svc, on_outcome=collect, rng=random.Random(1)), earned


async def test_met_by_the_flush_granted_rewarded_and_announced_once(svc: LevelingService) -> None:
    await svc.add_xp(G, 1, 5)  # member 1 has a row already; member 2 is new to the server and to the bot
    ing, earned = await _ingestor(svc)
    for i in range(3):
        await ing.message(G, 1, message_id=SNOW + (i << 22))
    await ing.message(G, 2, message_id=SNOW + (9 << 22))
    await ing.flush()
    assert sorted(earned) == [(1, "Chatty"), (1, "First words"), (2, "First words")]
    assert (await svc.get_user_level(G, 1)).xp == 5 + 30 + 7 + 100
    assert (await svc.get_user_level(G, 2)).xp == 10 + 7
    assert (await svc.get_user_level(G, 1)).level == 1  # the rewards count for the level (mee6 curve: 100 XP)

    for i in range(3, 6):  # nothing new to earn: no grant, no reward, no announcement
        await ing.message(G, 1, message_id=SNOW + (i << 22))
    await ing.flush()
    assert len(earned) == 3
    assert (await svc.get_user_level(G, 1)).xp == 5 + 60 + 7 + 100
    assert len(await svc.get_user_achievements(G, 1)) == 2


async def test_held_already_is_neither_granted_nor_rewarded_again(svc: LevelingService) -> None:
    """A restarted bot does not know what members hold until it reads it: meeting an achievement already stored
    adds no reward and announces nothing."""
    first, earned = await _ingestor(svc)
    await first.message(G, 3, message_id=SNOW)
    await first.flush()
    assert earned == [(3, "First words")]
    assert (await svc.get_user_level(G, 3)).xp == 17

    again, earned_again = await _ingestor(svc)  # knows nothing of member 3
    await again.message(G, 3, message_id=SNOW + (1 << 22))
    await again.flush()
    assert earned_again == []
    assert (await svc.get_user_level(G, 3)).xp == 27
    assert [a.name for a in await svc.get_user_achievements(G, 3)] == ["First words"]


async def test_a_quest_boost_never_multiplies_an_achievement_reward(svc: LevelingService, db: Database) -> None:
    await svc.add_xp(G, 4, 1)
    async with db.session() as s:
        await s.execute(update(Level).where(Level.guild_id == G, Level.user_id == 4)
                        .values(xp_multiplier=2.0, multiplier_expires_at=utcnow() + timedelta(hours=1)))
    ing, earned = await _ingestor(svc)
    await ing.message(G, 4, message_id=SNOW)
    await ing.flush()
    assert earned == [(4, "First words")]
    assert (await svc.get_user_level(G, 4)).xp == 1 + 2 * 10 + 7  # the message doubled, the reward as it is


async def test_a_level_only_a_quest_reward_reaches_earns_its_achievement_in_the_same_flush(
        svc: LevelingService) -> None:
    """The quest completes in the flush's quest statement, after the member's totals were checked: its reward is
    what lifts the member to the level, so the level achievement is checked again with it, granted once."""
    await svc.create_quest(G, "Say two things", "Send two messages.", "special", "total_messages", 2, 500)
    await svc.create_achievement(G, "Level 3", "Reach level 3.", "level", 3, 5)
    ing, earned = await _ingestor(svc)
    for n in range(2):
        await ing.message(G, 6, message_id=SNOW + (n << 22))
    await ing.flush()
    assert sorted(earned) == [(6, "First words"), (6, "Level 3")]
    view = await svc.get_user_level(G, 6)
    assert view.xp == 2 * 10 + 7 + 500 + 5  # messages, first words, the quest, level 3
    assert view.level == 3  # mee6: level 3 at 475 XP; 27 without the quest
    await ing.message(G, 6, message_id=SNOW + (5 << 22))
    await ing.flush()
    assert sorted(earned) == [(6, "Chatty"), (6, "First words"), (6, "Level 3")]  # none twice
