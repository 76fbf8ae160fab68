from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from guildkeep.db import Database, utcnow
from guildkeep.errors import NotFoundError, ValidationError
from guildkeep.leveling import rules
from guildkeep.leveling.models import Level, Quest, UserAchievement, UserQuest
from guildkeep.leveling.rules import LevelRole
from guildkeep.leveling.service import ActivityDelta, LevelingService

G, G2 = 1001, 1002
A, B, C = 11, 12, 13


@pytest.fixture
def svc(db: Database) -> LevelingService:
    return LevelingService(db)


async def test_new_member_has_level_zero(svc: LevelingService) -> None:
    view = await svc.get_user_level(G, A)
    assert (view.xp, view.level, view.xp_for_level) == (0, 0, 100)


async def test_award_xp_levels_up_and_is_guild_isolated(svc: LevelingService) -> None:
    out = await svc.award_xp(G, A, 4_675, username="ann")
    assert [(c.user_id, c.old_level, c.new_level) for c in out.level_ups] == [(A, 0, 10)]
    view = await svc.get_user_level(G, A)
    assert (view.xp, view.level, view.xp_into_level) == (4_675, 10, 0)
    assert (await svc.get_user_level(G2, A)).xp == 0
    again = await svc.award_xp(G, A, 10)
    assert again.level_ups == []


async def test_counters_and_activity_batch(svc: LevelingService) -> None:
    now = utcnow()
    out = await svc.apply_activity(G, [
        ActivityDelta(A, xp=20, messages=1, total_messages=1, last_message_time=now),
        ActivityDelta(A, xp=20, messages=1, total_messages=1, last_message_time=now + timedelta(seconds=61)),
        ActivityDelta(B, total_reactions=3, commands_used=2, voice_time_seconds=120, xp=100),
    ])
    assert [c.user_id for c in out.level_ups] == [B]
    a = await svc.get_user_level(G, A)
    assert (a.xp, a.messages, a.total_messages) == (40, 2, 2)
    assert a.last_message_time == now + timedelta(seconds=61)
    b = await svc.get_user_level(G, B)
    assert (b.total_reactions, b.commands_used, b.voice_time_seconds, b.level) == (3, 2, 120, 1)
    await svc.update_activity_counter_db(G, A, "total_reactions", 4)
    assert (await svc.get_user_level(G, A)).total_reactions == 4
    with pytest.raises(ValidationError):
        await svc.update_activity_counter_db(G, A, "gold", 1)
    with pytest.raises(ValidationError):
        await svc.update_activity_counter_db(G, A, "total_messages", -1)


async def test_concurrent_awards_lose_nothing(svc: LevelingService) -> None:
    await asyncio.gather(*(svc.award_xp(G, A, 7) for _ in range(30)))
    assert (await svc.get_user_level(G, A)).xp == 210


async def test_admin_xp_commands(svc: LevelingService) -> None:
    await svc.add_xp(G, A, 500)
    change = await svc.remove_xp(G, A, 200)
    assert (change.xp, change.old_level, change.new_level) == (300, 3, 2)
    assert (await svc.remove_xp(G, A, 10_000)).xp == 0
    assert (await svc.set_xp(G, A, 4_675)).new_level == 10
    change = await svc.set_level(G, A, 50)
    assert (change.xp, change.new_level) == (268_375, 50)
    with pytest.raises(ValidationError):
        await svc.add_xp(G, A, 0)
    with pytest.raises(ValidationError):
        await svc.set_level(G, A, -1)


async def test_reset_member_and_server(svc: LevelingService) -> None:
    await svc.award_xp(G, A, 100)
    await svc.award_xp(G, B, 100)
    await svc.award_xp(G2, A, 100)
    await svc.update_card(G, A, primary_color="#00ff00")
    assert await svc.reset_member(G, A)
    assert not await svc.reset_member(G, A)
    assert (await svc.get_card(G, A)).primary_color == "#00ff00"  # the look is not progress
    assert (await svc.get_user_level(G, A)).xp == 0
    assert await svc.reset_server(G) == 1
    assert (await svc.get_user_level(G, B)).xp == 0
    assert (await svc.get_user_level(G2, A)).xp == 100


async def test_leaderboard_and_rank(svc: LevelingService) -> None:
    for i in range(25):
        await svc.award_xp(G, 100 + i, 10 * i, username=f"user{i}")
    await svc.award_xp(G2, 999, 10**6)
    page = await svc.leaderboard(G, page=1, per_page=10)
    assert (page.total, page.pages, page.page) == (25, 3, 1)
    assert [e.user_id for e in page.items[:2]] == [124, 123]
    assert page.items[0].name == "user24"
    last = await svc.leaderboard(G, page=9, per_page=10)
    assert last.page == 3
    assert [e.rank for e in last.items] == [21, 22, 23, 24, 25]
    assert await svc.rank_position(G, 124) == 1
    assert await svc.rank_position(G, 100) == 25
    assert await svc.rank_position(G, 999) is None
    await svc.award_xp(G, 50, 240)  # ties with user 124 (240 XP), lower id ranks first
    assert await svc.rank_position(G, 50) == 1
    assert await svc.rank_position(G, 124) == 2


async def test_server_config_validation_and_cache(svc: LevelingService) -> None:
    cfg = await svc.get_server_config(G)
    s = cfg.settings
    assert (s.xp_rate, s.level_up_mode, s.curve, s.cooldowns["message"]) == (1.0, "same", "mee6", 60)
    cfg = await svc.update_server_config(G, "xp_rate", 2.5)
    assert cfg.settings.xp_rate == 2.5
    assert (await svc.get_server_config(G)).settings.xp_rate == 2.5  # cache invalidated on write
    cfg = await svc.update_server_config_values(G, {"cooldowns": {"message": 0}, "no_xp_channels": [5, 5, 6],
                                                    "role_multipliers": {"7": 2}, "level_up_mode": "channel",
                                                    "level_up_channel": 77, "quest_reset_hour": 6,
                                                    "quest_reset_day": 4, "level_up_message": "{mention} -> {level}"})
    assert cfg.settings.cooldowns == {"message": 0, "reaction": 60, "command": 60}
    assert cfg.settings.no_xp_channels == (5, 6)
    assert cfg.settings.role_multipliers == {7: 2.0}
    assert await svc.get_level_up_channel(G) == 77
    await svc.update_server_config_values(G, {"quest_channel": 78, "achievement_channel": 79})
    assert (await svc.get_quest_channel(G), await svc.get_achievement_channel(G)) == (78, 79)
    assert await svc.get_quest_channel(G2) is None
    assert await svc.get_quest_reset_settings(G) == (6, 4)
    assert cfg.xp_settings.cooldown("message") == 0
    bad = [("xp_rate", -1), ("level_up_mode", "loud"), ("quest_reset_hour", 24), ("quest_reset_day", 7),
           ("level_up_message", "{player}"), ("cooldowns", {"typing": 3}), ("nope", 1), ("curve", "cubic"),
           ("curve_exponent", 9), ("message_xp_min", 100)]
    for setting, value in bad:
        with pytest.raises(ValidationError):
            await svc.update_server_config(G, setting, value)
    assert (await svc.get_server_config(G)).settings.message_xp_min == 15
    assert (await svc.get_server_config(G2)).settings.xp_rate == 1.0


async def test_changing_curve_rederives_levels(svc: LevelingService, db: Database) -> None:
    await svc.award_xp(G, A, 4_675)
    await svc.update_server_config_values(G, {"curve": "power", "curve_base": 100, "curve_exponent": 2})
    assert (await svc.get_user_level(G, A)).level == 6  # 100·6² = 3,600 <= 4,675 < 4,900
    async with db.session(read_only=True) as s:
        assert await s.scalar(select(Level.level).where(Level.user_id == A)) == 6


async def test_level_roles_reconcile(svc: LevelingService) -> None:
    await svc.add_level_role(G, 501, 1)
    await svc.add_level_role(G, 502, 5, stacked=False)
    await svc.add_level_role(G, 503, 10, stacked=False)
    await svc.add_level_role(G, 502, 5, stacked=False)  # idempotent
    assert await svc.list_level_roles(G) == [LevelRole(501, 1), LevelRole(502, 5, False), LevelRole(503, 10, False)]
    await svc.set_level(G, A, 12)
    assert await svc.level_role_changes(G, A, [502, 999]) == ({501, 503}, set())  # 502 was not ours to take
    await svc.record_level_roles(G, A, given={502}, held={502, 999})  # had the bot given it, it would go
    assert await svc.level_role_changes(G, A, [502, 999]) == ({501, 503}, {502})
    await svc.record_level_roles(G, A, given={501, 503}, held={501, 503, 999})
    assert await svc.level_role_changes(G, A, [501, 503, 999]) == (set(), set())
    await svc.set_level(G, A, 6)  # demoted by an admin
    assert await svc.level_role_changes(G, A, [501, 503]) == ({502}, {503})
    await svc.remove_level_role(G, 503)
    with pytest.raises(NotFoundError):
        await svc.remove_level_role(G, 503)
    assert await svc.level_role_changes(G2, A, [1]) == (set(), set())


async def test_quest_completes_from_activity_and_pays_once(svc: LevelingService) -> None:
    quest = await svc.create_quest(G, "Talk", "Send 3 messages", "special", "total_messages", 3, 500,
                                   reward_multiplier=2.0, multiplier_minutes=30)
    assert quest.refresh_cycle == "once"
    assert [q.id for q in await svc.get_guild_active_quests(G)] == [quest.id]
    assert await svc.check_quest_progress(G, A, "total_messages", 1) == []
    await svc.update_activity_counter_db(G, A, "total_messages", 1)
    out = await svc.update_activity_counter_db(G, A, "total_messages", 1)
    assert [(u, q.id) for u, q in out.quests_completed] == [(A, quest.id)]
    view = await svc.get_user_level(G, A)
    assert view.xp == 500
    assert view.xp_multiplier == 2.0
    assert view.multiplier_expires_at is not None
    assert view.multiplier_expires_at > utcnow()
    more = await svc.update_activity_counter_db(G, A, "total_messages", 5)
    assert more.quests_completed == []
    assert not await svc.award_quest_rewards(G, A, quest.id)
    assert (await svc.get_user_level(G, A)).xp == 500
    [uq] = await svc.get_user_active_quests(G, A)
    assert uq.completed
    assert uq.quest_specific_progress == 3
    # boosted activity XP while the multiplier lasts; admin XP is not boosted
    await svc.apply_activity(G, [ActivityDelta(A, xp=10)])
    assert (await svc.get_user_level(G, A)).xp == 520
    await svc.award_xp(G, A, 10)
    assert (await svc.get_user_level(G, A)).xp == 530


async def test_concurrent_completion_pays_exactly_once(svc: LevelingService, db: Database) -> None:
    quest = await svc.create_quest(G, "Race", "", "challenge", "total_reactions", 5, 1000)
    await svc.update_activity_counter_db(G, A, "total_reactions", 4)
    results = await asyncio.gather(*(svc.update_activity_counter_db(G, A, "total_reactions", 1) for _ in range(12)))
    assert sum(len(r.quests_completed) for r in results) == 1
    paid = await asyncio.gather(*(svc.award_quest_rewards(G, A, quest.id) for _ in range(6)))
    assert not any(paid)
    assert (await svc.get_user_level(G, A)).xp == 1000
    async with db.session(read_only=True) as s:
        assert await s.scalar(select(func.count()).select_from(UserQuest)) == 1


async def test_award_quest_rewards_directly(svc: LevelingService, db: Database) -> None:
    quest = await svc.create_quest(G, "Direct", "", "event", "commands_used", 2, 300)
    await svc.award_xp(G, A, 1)
    assert not await svc.award_quest_rewards(G, A, quest.id)  # no progress yet
    async with db.session() as s:
        s.add(UserQuest(guild_id=G, user_id=A, quest_id=quest.id, progress=2, quest_specific_progress=2))
    results = await asyncio.gather(*(svc.award_quest_rewards(G, A, quest.id) for _ in range(8)))
    assert results.count(True) == 1
    assert (await svc.get_user_level(G, A)).xp == 301


async def test_quest_validation_and_end(svc: LevelingService) -> None:
    for args in [("", "d", "daily", "total_messages", 1, 1), ("x", "d", "monthly", "total_messages", 1, 1),
                 ("x", "d", "daily", "gold", 1, 1), ("x", "d", "daily", "total_messages", 0, 1)]:
        with pytest.raises(ValidationError):
            await svc.create_quest(G, *args)
    quest = await svc.create_quest(G, "Daily talk", "", "daily", "total_messages", 2, 50)
    assert quest.refresh_cycle == "daily"
    assert quest.expires_at is not None
    assert quest.expires_at > utcnow()
    with pytest.raises(NotFoundError):
        await svc.get_quest(G2, quest.id)  # another server cannot see it
    assert (await svc.get_quest(G, quest.id)).name == "Daily talk"
    await svc.end_quest(G, quest.id)
    assert await svc.get_guild_active_quests(G) == []
    with pytest.raises(NotFoundError):
        await svc.end_quest(G2, quest.id)


async def test_reset_generates_templates_once_per_period(svc: LevelingService, db: Database) -> None:
    now = datetime(2026, 11, 25, 13, tzinfo=UTC)
    first, second = await asyncio.gather(svc.reset_quests(G, now), svc.reset_quests(G, now))
    assert len(first) + len(second) == len(rules.QUEST_TEMPLATES)
    again = await svc.reset_quests(G, now + timedelta(hours=1))
    assert again == []
    async with db.session(read_only=True) as s:
        assert await s.scalar(select(func.count()).select_from(Quest)) == len(rules.QUEST_TEMPLATES)
    # next day: yesterday's dailies expire, new ones appear; weeklies stay
    tomorrow = now + timedelta(days=1)
    fresh = await svc.reset_quests(G, tomorrow)
    assert {q.quest_type for q in fresh} == {"daily"}
    async with db.session(read_only=True) as s:
        active = (await s.execute(select(Quest).where(Quest.active.is_(True)))).scalars().all()
    assert {q.quest_type for q in active} == {"daily", "weekly"}
    assert all(q.period_start == datetime(2026, 11, 26, tzinfo=UTC) for q in active if q.quest_type == "daily")


async def test_mark_quests_inactive(svc: LevelingService) -> None:
    await svc.create_quest(G, "a", "", "daily", "total_messages", 1, 1)
    await svc.create_quest(G, "b", "", "special", "total_messages", 1, 1)
    assert await svc.mark_quests_inactive(G, now=utcnow()) == 0
    assert await svc.mark_quests_inactive(G, now=utcnow() + timedelta(days=2)) == 1
    assert await svc.mark_quests_inactive(G, "special") == 1
    assert await svc.get_guild_active_quests(G) == []


async def test_refreshing_custom_quest_restarts_progress(svc: LevelingService) -> None:
    await svc.update_server_config(G, "quest_reset_hour", 0)
    quest = await svc.create_quest(G, "Every day", "", "special", "total_messages", 1, 10, refresh_cycle="daily")
    out = await svc.update_activity_counter_db(G, A, "total_messages", 1)
    assert len(out.quests_completed) == 1
    await svc.reset_quests(G, utcnow() + timedelta(days=1))
    [uq] = [q for q in await svc.get_user_active_quests(G, A) if q.quest.id == quest.id]
    assert not uq.completed
    out = await svc.update_activity_counter_db(G, A, "total_messages", 1)
    assert len(out.quests_completed) == 1


async def test_achievements_paid_once(svc: LevelingService, db: Database) -> None:
    a = await svc.create_achievement(G, "Chatty", "100 messages", "messages", 3, reward_xp=50,
                                     badge_url="https://example.com/b.png")
    lvl = await svc.create_achievement(G, "Five", "Reach level 1", "level", 1, reward_xp=5)
    with pytest.raises(ValidationError):
        await svc.create_achievement(G, "Bad", "", "gold", 1)
    with pytest.raises(ValidationError):
        await svc.create_achievement(G, "Bad", "", "level", 1, badge_url="ftp://x")
    assert [x.name for x in await svc.list_achievements(G)] == ["Five", "Chatty"]
    results = await asyncio.gather(*(svc.update_activity_counter_db(G, A, "total_messages", 1) for _ in range(6)))
    earned = [x for r in results for _, x in r.achievements_earned]
    assert [x.id for x in earned] == [a.id]
    assert (await svc.get_user_level(G, A)).xp == 50
    assert await svc.check_achievement_progress(G, A) == []
    out = await svc.award_xp(G, A, 60)  # reaches level 1
    assert [x.id for _, x in out.achievements_earned] == [lvl.id]
    assert [x.name for x in await svc.get_user_achievements(G, A)] == ["Chatty", "Five"]
    async with db.session(read_only=True) as s:
        assert await s.scalar(select(func.count()).select_from(UserAchievement)) == 2
    assert (await svc.get_user_level(G, A)).xp == 115


async def test_cards(svc: LevelingService) -> None:
    assert (await svc.get_card(G, A)).card_style == "default"
    card = await svc.update_card(G, A, primary_color="FF0000", background_url="https://example.com/bg.png",
                                 card_style="minimal")
    assert (card.primary_color, card.card_style) == ("#ff0000", "minimal")
    card = await svc.update_card(G, A, primary_color="", card_style="")
    assert (card.primary_color, card.card_style, card.background_url) == (None, "default",
                                                                           "https://example.com/bg.png")
    for bad in ({"text_color": "blue"}, {"background_url": "javascript:x"}, {"card_style": "neon"}, {"font": "x"}):
        with pytest.raises(ValidationError):
            await svc.update_card(G, A, **bad)
    assert (await svc.get_card(G2, A)).primary_color is None


async def test_import_mee6_is_idempotent(svc: LevelingService) -> None:
    players = [{"id": "111", "xp": 4675, "level": 10, "username": "a"}, {"id": 112, "xp": 0},
               {"id": "nope", "xp": 1}, {"id": 113, "xp": -5}, {"id": 111, "xp": 5}, "junk", {"xp": 3}]
    report = await svc.import_mee6(G, players)
    assert (report.imported, report.updated, report.unchanged) == (2, 0, 0)
    assert len(report.skipped) == 5
    assert (await svc.get_user_level(G, 111)).level == 10
    again = await svc.import_mee6(G, players)
    assert (again.imported, again.updated, again.unchanged) == (0, 0, 2)
    changed = await svc.import_mee6(G, [{"id": 111, "xp": 268_375}])
    assert changed.updated == 1
    assert (await svc.get_user_level(G, 111)).level == 50
    page = await svc.leaderboard(G)
    assert page.items[0].name == "a"


async def test_quests_enabled_off_stops_templates_not_custom_quests(svc: LevelingService) -> None:
    await svc.update_server_config(G, "quests_enabled", False)
    assert await svc.reset_quests(G) == []
    await svc.create_quest(G, "Custom", "", "special", "total_messages", 1, 10)
    out = await svc.update_activity_counter_db(G, A, "total_messages", 1)
    assert [q.name for _, q in out.quests_completed] == ["Custom"]
