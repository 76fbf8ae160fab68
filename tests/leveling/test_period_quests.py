"""Generated daily and weekly quests read their progress from the member's period counters (one row write per
member and flush, however many quests move); custom quests keep their rows."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import func, select, text

from guildkeep.db import Database, migrate, utcnow
from guildkeep.leveling.ingest import XpIngestor
from guildkeep.leveling.models import Level, UserQuest
from guildkeep.leveling.results import ActivityResult, UserQuestInfo
from guildkeep.leveling.service import LevelingService

G = 3001


@pytest.fixture
def svc(db: Database) -> LevelingService:
    return LevelingService(db)


def _by_key(quests: list[UserQuestInfo]) -> dict[str, UserQuestInfo]:
    return {q.quest.template_key or q.quest.name: q for q in quests}


async def _rows(db: Database) -> int:
    async with db.session(read_only=True) as s:
        return int(await s.scalar(select(func.count()).select_from(UserQuest)) or 0)


async def _chat(ing: XpIngestor, user: int, count: int) -> None:
    for _ in range(count):
        await ing.message(G, user)


async def test_progress_lives_on_the_member_row_until_a_quest_completes_once(svc: LevelingService) -> None:
    await svc.update_server_config(G, "cooldowns", {"message": 0})
    generated = await svc.reset_quests(G)
    assert {q.template_key for q in generated} >= {"daily_chat", "weekly_chat"}
    custom = await svc.create_quest(G, "Talk a lot", "", "daily", "total_messages", 3, 10)
    outcomes: list[ActivityResult] = []

    async def collect(outcome: ActivityResult) -> None:
        outcomes.append(outcome)

    ing = XpIngestor(svc, on_outcome=collect)
    await _chat(ing, 1, 2)
    await _chat(ing, 2, 1)
    await ing.flush()
    assert await _rows(svc.db) == 2  # the custom quest's rows; the generated quests wrote none
    mine = _by_key(await svc.get_user_active_quests(G, 1))
    assert (mine["daily_chat"].quest_specific_progress, mine["weekly_chat"].quest_specific_progress) == (2, 2)
    assert not mine["daily_chat"].completed
    await _chat(ing, 1, 5)
    assert _by_key(await ing.user_quests(G, 1))["daily_chat"].quest_specific_progress == 7  # pending included
    await ing.flush()
    await _chat(ing, 1, 13)  # 20: the daily requirement
    await ing.flush()
    await _chat(ing, 1, 30)
    await ing.flush()
    done = [(u, q.template_key or q.name) for o in outcomes for u, q in o.quests_completed]
    assert done == [(1, "Talk a lot"), (1, "daily_chat")]
    mine = _by_key(await svc.get_user_active_quests(G, 1))
    assert mine["daily_chat"].completed
    assert mine["daily_chat"].completed_at is not None
    assert mine["weekly_chat"].quest_specific_progress == 50
    assert not mine["weekly_chat"].completed
    assert custom.id in {q.quest.id for q in mine.values()}
    daily = next(q for q in generated if q.template_key == "daily_chat")
    reward = daily.reward_xp + custom.reward_xp
    assert (await svc.get_user_level(G, 1)).xp >= reward


async def test_a_new_period_starts_the_counters_again(svc: LevelingService) -> None:
    await svc.update_server_config(G, "cooldowns", {"message": 0})
    await svc.reset_quests(G)
    ing = XpIngestor(svc)
    await _chat(ing, 1, 4)
    await ing.flush()
    await svc.reset_quests(G, now=utcnow() + timedelta(days=7, hours=1))  # next week's quests
    svc.cache.invalidate_guild(G)
    await _chat(ing, 1, 3)
    await ing.flush()
    mine = _by_key(await svc.get_user_active_quests(G, 1))
    assert (mine["daily_chat"].quest_specific_progress, mine["weekly_chat"].quest_specific_progress) == (3, 3)
    async with svc.db.session(read_only=True) as s:
        row = (await s.execute(select(Level).where(Level.guild_id == G, Level.user_id == 1))).scalar_one()
    assert row.total_messages == 7  # the member's lifetime counters go on


async def test_the_service_path_counts_and_completes_from_the_same_counters(svc: LevelingService) -> None:
    await svc.reset_quests(G)
    await svc.update_activity_counter_db(G, 1, "total_reactions", 4)
    assert _by_key(await svc.get_user_active_quests(G, 1))["daily_react"].quest_specific_progress == 4
    completed = await svc.check_quest_progress(G, 1, "total_reactions", 0, 6)
    assert [q.template_key for q in completed] == ["daily_react"]
    assert await svc.check_quest_progress(G, 1, "total_reactions", 0, 6) == []  # once
    mine = _by_key(await svc.get_user_active_quests(G, 1))["daily_react"]
    assert mine.completed
    assert mine.quest_specific_progress == mine.quest.requirement_value


async def test_two_processes_crossing_a_requirement_together_complete_it_once(db: Database, database_url: str,
                                                                              svc: LevelingService) -> None:
    await svc.update_server_config(G, "cooldowns", {"message": 0})
    await svc.reset_quests(G)
    first = XpIngestor(svc)
    await _chat(first, 1, 17)
    await first.flush()
    other_db = Database(database_url)
    try:
        other = LevelingService(other_db)
        for round_ in range(3):  # 17 → 21 → 25 → 29 with the weekly goal far away: the daily one crosses once
            seen: list[tuple[int, str | None]] = []

            async def collect(outcome: ActivityResult, seen: list[tuple[int, str | None]] = seen) -> None:
                seen.extend((u, q.template_key) for u, q in outcome.quests_completed)

            a, b = XpIngestor(svc, on_outcome=collect), XpIngestor(other, on_outcome=collect)
            await _chat(a, 1, 2)
            await _chat(b, 1, 2)
            await asyncio.gather(a.flush(), b.flush())
            assert seen == ([(1, "daily_chat")] if round_ == 0 else []), round_
    finally:
        await other_db.dispose()
    mine = _by_key(await svc.get_user_active_quests(G, 1))
    assert mine["daily_chat"].completed
    assert mine["weekly_chat"].quest_specific_progress == 29


async def test_an_upgrade_carries_progress_made_before_it(empty_database_url: str) -> None:
    """Progress on this period's generated quests stored as rows before the period counters existed is carried
    into them: nobody loses progress, and the quest completes once at its requirement."""
    db = Database(empty_database_url)
    try:
        await migrate.upgrade(db)
        svc = LevelingService(db)
        await svc.update_server_config(G, "cooldowns", {"message": 0})
        quests = {q.template_key: q for q in await svc.reset_quests(G)}
        await svc.award_xp(G, 1, 5)  # the member's row
        await migrate.downgrade(db, "leveling_0005")
        async with db.session() as s:  # what the earlier version stored for 7 messages today
            for key, progress in (("daily_chat", 7), ("weekly_chat", 7), ("daily_react", 2)):
                await s.execute(text(
                    "INSERT INTO leveling_user_quests (guild_id, user_id, quest_id, progress, "
                    "quest_specific_progress, completed) VALUES (:g, 1, :q, :p, :p, :no)"),
                    {"g": G, "q": quests[key].id, "p": progress, "no": False})
        await migrate.upgrade(db)
        await migrate.check(db)
        svc = LevelingService(db)
        mine = _by_key(await svc.get_user_active_quests(G, 1))
        assert {k: mine[k].quest_specific_progress for k in ("daily_chat", "weekly_chat", "daily_react")} == {
            "daily_chat": 7, "weekly_chat": 7, "daily_react": 2}
        done: list[str | None] = []

        async def collect(outcome: ActivityResult) -> None:
            done.extend(q.template_key for _u, q in outcome.quests_completed)

        ing = XpIngestor(svc, on_outcome=collect)
        await _chat(ing, 1, 12)
        await ing.flush()
        assert done == []
        await _chat(ing, 1, 1)  # 7 + 13 = 20
        await ing.flush()
        assert done == ["daily_chat"]
        assert _by_key(await svc.get_user_active_quests(G, 1))["weekly_chat"].quest_specific_progress == 20
    finally:
        await db.dispose()
