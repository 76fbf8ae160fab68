from __future__ import annotations

import asyncio
import contextlib
import random
from datetime import datetime, timedelta

import pytest
from sqlalchemy import delete, func, select

from guildkeep.db import Database, utcnow
from guildkeep.db.instances import FRESH_SECONDS, BotInstance
from guildkeep.leveling.bulk import BulkWriter
from guildkeep.leveling.ingest import VoiceTracker, XpIngestor
from guildkeep.leveling.models import SeenEvent
from guildkeep.leveling.results import ActivityResult
from guildkeep.leveling.service import LevelingService

G = 2001
SNOW = 1_200_000_000_000_000_000  # a message id (a snowflake of 2024)


@pytest.fixture
def svc(db: Database) -> LevelingService:
    return LevelingService(db)


async def test_messages_are_scored_in_memory_and_flushed_in_one_batch(svc: LevelingService) -> None:
    outcomes: list[ActivityResult] = []

    async def collect(outcome: ActivityResult) -> None:
        outcomes.append(outcome)

    ing = XpIngestor(svc, on_outcome=collect, rng=random.Random(3))
    now = utcnow()
    earned = 0
    for i in range(10):  # one message every 30 s: only every other one is past the 60 s cooldown
        earned += await ing.message(G, 1, channel_id=5, username="ann", now=now + timedelta(seconds=30 * i))
    assert await ing.message(G, 2, channel_id=5, now=now) > 0
    assert ing.pending_members == 2
    assert (await svc.get_user_level(G, 1)).xp == 0  # nothing written yet
    await ing.flush()
    view = await svc.get_user_level(G, 1)
    assert view.xp == earned
    assert 5 * 15 <= earned <= 5 * 25
    assert (view.messages, view.total_messages) == (5, 10)
    assert ing.pending_members == 0
    assert {c.user_id for o in outcomes for c in o.level_ups} == ({1} if earned >= 100 else set())


async def test_config_applies_per_event(svc: LevelingService) -> None:
    await svc.update_server_config_values(G, {"cooldowns": {"message": 0, "reaction": 0}, "message_xp_min": 10,
                                              "message_xp_max": 10, "no_xp_channels": [9], "xp_rate": 2,
                                              "reaction_xp": 3, "command_xp": 4, "voice_xp_per_minute": 6})
    ing = XpIngestor(svc)
    assert await ing.message(G, 1, channel_id=1) == 20
    assert await ing.message(G, 1, channel_id=1) == 20
    assert await ing.message(G, 1, channel_id=9) == 0
    assert await ing.message(G, 1, channel_id=10, parent_channel_id=9) == 0
    assert await ing.reaction(G, 1, channel_id=1) == 6
    assert await ing.command(G, 1) == 8
    assert await ing.voice(G, 1, 120) == 24
    await ing.stop()
    view = await svc.get_user_level(G, 1)
    assert (view.xp, view.total_messages, view.total_reactions, view.commands_used, view.voice_time_seconds) == (
        78, 2, 1, 1, 120)


async def test_quest_completes_through_the_ingestor_once(svc: LevelingService) -> None:
    await svc.update_server_config(G, "cooldowns", {"message": 0})
    quest = await svc.create_quest(G, "Chat", "", "daily", "total_messages", 5, 1000)
    outcomes: list[ActivityResult] = []

    async def collect(outcome: ActivityResult) -> None:
        outcomes.append(outcome)

    ing = XpIngestor(svc, on_outcome=collect)
    for _ in range(3):
        await ing.message(G, 1)
    await ing.flush()
    for _ in range(6):
        await ing.message(G, 1)
    await ing.flush()
    for _ in range(3):
        await ing.message(G, 1)
    await ing.flush()
    completed = [(u, q.id) for o in outcomes for u, q in o.quests_completed]
    assert completed == [(1, quest.id)]
    assert any(c.user_id == 1 and c.new_level >= 4 for o in outcomes for c in o.level_ups)
    assert (await svc.get_user_level(G, 1)).xp >= 1000


async def test_background_loop_flushes_and_stop_loses_nothing(svc: LevelingService) -> None:
    ing = XpIngestor(svc, flush_seconds=0.05)
    ing.start()
    await ing.message(G, 1)
    for _ in range(100):
        await asyncio.sleep(0.02)
        if ing.flushed_batches:
            break
    assert ing.flushed_batches >= 1
    await ing.reaction(G, 2)
    await ing.stop()
    assert (await svc.get_user_level(G, 2)).total_reactions == 1
    assert ing.pending_members == 0


async def test_failed_flush_keeps_the_batch(svc: LevelingService, monkeypatch: pytest.MonkeyPatch) -> None:
    ing = XpIngestor(svc)
    await ing.message(G, 1, message_id=SNOW)

    async def broken(*_args: object, **_kw: object) -> list:
        raise RuntimeError("database down")

    with monkeypatch.context() as patch:
        patch.setattr(BulkWriter, "upsert_levels", broken)
        assert await ing.flush() == []
        assert ing.pending_members == 1
    await ing.flush()
    view = await svc.get_user_level(G, 1)
    assert (view.total_messages, view.messages) == (1, 1)  # the rolled-back event key did not count it as seen


@pytest.mark.parametrize("upsert_done", [False, True], ids=["upsert-still-waiting", "upsert-already-ran"])
async def test_a_flush_failing_beside_its_running_upsert_leaves_nothing(
        svc: LevelingService, monkeypatch: pytest.MonkeyPatch, upsert_done: bool) -> None:
    """On SQLite the level upsert runs beside the rest of the flush; when the rest fails, the upsert is stopped or
    rolled back with it, and the next flush stores every event once."""
    await svc.create_achievement(G, "First words", "Send a message.", "messages", 1, 10)
    await svc.create_achievement(G, "Regular", "Reach level 1.", "level", 1, 10)  # checked after the level write
    await svc.update_server_config_values(G, {"message_xp_min": 100, "message_xp_max": 100})
    real = BulkWriter.upsert_levels
    real_grant = BulkWriter.grant_achievements
    failed = asyncio.Event()

    async def until_failed() -> None:  # (PostgreSQL awaits the upsert before going on: it waits a while only)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(failed.wait(), 0.5)

    async def upsert(self: BulkWriter, *args: object, **kwargs: object) -> object:
        if upsert_done:
            out = await real(self, *args, **kwargs)
            await until_failed()
            return out
        await until_failed()
        return await real(self, *args, **kwargs)

    async def grant(self: BulkWriter, *args: object, **kw: object) -> object:
        if kw.get("known_users"):  # the achievements the flush's activity meets, granted before the level write
            return await real_grant(self, *args, **kw)  # type: ignore[arg-type]
        failed.set()
        await asyncio.sleep(0)
        raise RuntimeError("database down")

    ing = XpIngestor(svc)
    for i in range(5):
        await ing.message(G, 1 + i, message_id=SNOW + (i << 22))
    with monkeypatch.context() as patch:
        patch.setattr(BulkWriter, "upsert_levels", upsert)
        patch.setattr(BulkWriter, "grant_achievements", grant)
        assert await ing.flush() == []
        assert ing.pending_members == 5
        await asyncio.sleep(0.8)  # anything of the failed flush left running would have run by now
        for u in range(1, 6):
            assert (await svc.get_user_level(G, u)).total_messages == 0
    await ing.flush()
    assert [(await svc.get_user_level(G, u)).total_messages for u in range(1, 6)] == [1] * 5
    assert [len(await svc.get_user_achievements(G, u)) for u in range(1, 6)] == [2] * 5
    assert [(await svc.get_user_level(G, u)).xp for u in range(1, 6)] == [120] * 5  # each reward once


async def test_max_pending_wakes_the_loop(svc: LevelingService) -> None:
    ing = XpIngestor(svc, flush_seconds=60, max_pending=3)
    ing.start()
    for user in range(1, 4):
        await ing.message(G, user)
    for _ in range(100):
        await asyncio.sleep(0.02)
        if ing.flushed_batches:
            break
    await ing.stop()
    assert (await svc.leaderboard(G)).total == 3


def test_voice_tracker() -> None:
    t0 = utcnow()
    vt = VoiceTracker()
    assert vt.update(G, 1, 50, eligible=False, now=t0) == 0  # alone
    assert vt.update(G, 1, 50, eligible=True, now=t0 + timedelta(seconds=30)) == 0
    assert vt.checkpoint(t0 + timedelta(seconds=90, milliseconds=500)) == [(G, 1, 50, 60)]
    assert vt.members(G, 50) == [1]
    assert (vt.channel_of(G, 1), vt.channel_of(G, 2)) == (50, None)
    assert vt.update(G, 1, None, eligible=False, now=t0 + timedelta(seconds=100)) == 10  # left: 9.5 s + carry
    assert len(vt) == 0
    assert vt.checkpoint(t0 + timedelta(seconds=200)) == []


async def test_message_cooldown_survives_a_restart(svc: LevelingService) -> None:
    now = utcnow()
    first = XpIngestor(svc)
    assert await first.message(G, 1, now=now) > 0
    await first.stop()
    restarted = XpIngestor(svc)
    assert await restarted.message(G, 1, now=now + timedelta(seconds=30)) == 0
    assert await restarted.message(G, 1, now=now + timedelta(seconds=61)) > 0
    await restarted.stop()
    assert (await svc.get_user_level(G, 1)).messages == 2


async def test_quests_count_only_activity_that_counts_for_xp(svc: LevelingService) -> None:
    """20 one-word messages and 15 commands in a minute: the cooldown lets one of each count, for XP and quests."""
    now = utcnow()
    created = {q.template_key: q for q in await svc.reset_quests(G, now=now)}
    outcomes: list[ActivityResult] = []

    async def collect(outcome: ActivityResult) -> None:
        outcomes.append(outcome)

    ing = XpIngestor(svc, on_outcome=collect)
    for i in range(20):
        await ing.message(G, 1, message_id=SNOW + (i << 22), now=now + timedelta(seconds=i))
    for i in range(15):
        await ing.command(G, 1, interaction_id=SNOW + ((100 + i) << 22), now=now + timedelta(seconds=20 + i))
    await ing.stop()
    assert [q for o in outcomes for _, q in o.quests_completed] == []
    view = await svc.get_user_level(G, 1)
    assert (view.total_messages, view.messages, view.commands_used) == (20, 1, 15)
    assert view.xp <= 25 + 5  # one message and one command
    progress = {q.quest.template_key: q.quest_specific_progress for q in await svc.get_user_active_quests(G, 1)}
    assert progress["daily_chat"] == 1
    assert progress["weekly_commands"] == 1
    assert {"daily_chat", "weekly_commands"} <= created.keys()


async def test_voice_time_is_credited_at_every_flush(svc: LevelingService) -> None:
    """Voice time waits no longer than messages: the background flush credits it without any voice change."""
    tracker = VoiceTracker()
    holder: list[XpIngestor] = []

    async def credit() -> None:
        await holder[0].credit_voice(tracker)

    ing = XpIngestor(svc, flush_seconds=0.1, before_flush=credit)
    holder.append(ing)
    tracker.update(G, 1, 50, eligible=True, now=utcnow() - timedelta(seconds=30))
    ing.start()
    try:
        async with asyncio.timeout(20):
            while (await svc.get_user_level(G, 1)).voice_time_seconds < 30:  # noqa: ASYNC110 - the database changes
                await asyncio.sleep(0.05)
        first = (await svc.get_user_level(G, 1)).voice_time_seconds
        await asyncio.sleep(1.2)
        assert (await svc.get_user_level(G, 1)).voice_time_seconds >= first + 1
    finally:
        await ing.stop()
    view = await svc.get_user_level(G, 1)
    assert view.xp == view.voice_time_seconds * 10 // 60  # credited second by second, no fraction is lost


async def test_write_through_stores_each_event_before_returning(svc: LevelingService) -> None:
    ing = XpIngestor(svc, flush_seconds=0)
    await ing.message(G, 1, message_id=SNOW)
    assert (await svc.get_user_level(G, 1)).total_messages == 1
    assert ing.pending_members == 0


async def _feed(ing: XpIngestor, guild: int, start: datetime, part: slice = slice(None)) -> None:
    events = []
    snow = SNOW + guild % 1000  # Discord ids are unique everywhere: each server's events have their own
    for i in range(40):  # three members chatting, reacting, using commands, one in voice
        user = 1 + i % 3
        when = start + timedelta(seconds=20 * i)
        events.append(("message", user, snow + (i << 22), when))
        if i % 4 == 0:
            events.append(("reaction", user, snow + (i << 22), when))
        if i % 5 == 0:
            events.append(("command", user, snow + ((1000 + i) << 22), when))
        if i % 10 == 0:
            events.append(("voice", 4, i, when))
    for kind, user, ident, when in events[part]:
        if kind == "message":
            await ing.message(guild, user, message_id=ident, now=when)
        elif kind == "reaction":
            await ing.reaction(guild, user, message_id=ident, emoji="👍", now=when)
        elif kind == "command":
            await ing.command(guild, user, interaction_id=ident, now=when)
        else:
            await ing.voice(guild, user, 200, start=when)


async def test_two_processes_fed_the_same_events_count_each_once(db: Database, database_url: str) -> None:
    """A rolling deploy's overlap: two processes (two services on their own connections) receive the same events;
    the totals are those of one process."""
    fixed = {"message_xp_min": 20, "message_xp_max": 20}
    one = LevelingService(db)
    other_db = Database(database_url)
    try:
        other = LevelingService(other_db)
        for guild in (G, G + 1):
            await one.update_server_config_values(guild, fixed)
        start = utcnow() - timedelta(hours=1)
        alone = XpIngestor(one)
        await _feed(alone, G + 1, start)
        await alone.stop()

        first, second = XpIngestor(one), XpIngestor(other)
        await _feed(first, G, start, slice(0, 30))
        await first.flush()
        await _feed(second, G, start)  # everything, including what the first one already stored
        await _feed(first, G, start, slice(30, None))
        await second.flush()
        await first.stop()
        await second.stop()
        assert first.duplicates + second.duplicates > 0
        for user in (1, 2, 3, 4):
            expected = await one.get_user_level(G + 1, user)
            got = await one.get_user_level(G, user)
            assert (got.xp, got.messages, got.total_messages, got.total_reactions, got.commands_used,
                    got.voice_time_seconds) == (expected.xp, expected.messages, expected.total_messages,
                                                expected.total_reactions, expected.commands_used,
                                                expected.voice_time_seconds), user
            assert got.total_messages > 0 or got.voice_time_seconds > 0
    finally:
        await other_db.dispose()


async def test_event_keys_are_claimed_only_while_another_instance_may_receive_the_events(
        db: Database, database_url: str) -> None:
    """A bot process alone writes no event keys; from the moment another one has a heartbeat row (written before
    its gateway session starts) both claim keys, so the events both receive count once; the keys of events
    received while it ran are still claimed after it stops."""
    svc = LevelingService(db)

    async def keys() -> int:
        async with db.session(read_only=True) as s:
            return int(await s.scalar(select(func.count()).select_from(SeenEvent)) or 0)

    async def beat(instance: str, when: datetime) -> None:
        async with db.session() as s:
            row = await s.get(BotInstance, instance)
            if row is None:
                s.add(BotInstance(id=instance, kind="bot", host="here", pid=1, started_at=when, heartbeat_at=when))
            else:
                row.heartbeat_at = when

    async def total() -> int:
        return sum([(await svc.get_user_level(G, u)).total_messages for u in range(1, 6)])

    await beat("a", utcnow())
    alone = XpIngestor(svc, instance_id="a")
    for i in range(5):
        await alone.message(G, 1 + i % 5, message_id=SNOW + (i << 22))
    await alone.flush()
    assert (await keys(), alone.stats["keys_skipped"]) == (0, 5)

    other_db = Database(database_url)
    try:
        second = XpIngestor(LevelingService(other_db), instance_id="b")
        await beat("b", utcnow())  # the second process starts: its row first, then its gateway session
        for i in range(5, 10):  # both receive these
            await alone.message(G, 1 + i % 5, message_id=SNOW + (i << 22))
            await second.message(G, 1 + i % 5, message_id=SNOW + (i << 22))
        await asyncio.gather(alone.flush(), second.flush())
        assert await total() == 10
        assert alone.duplicates + second.duplicates == 5
        assert await keys() == 5
    finally:
        await other_db.dispose()
    async with db.session() as s:  # the second process stopped cleanly: its row is gone
        await s.execute(delete(BotInstance).where(BotInstance.id == "b"))
    await alone.message(G, 1, message_id=SNOW + (10 << 22))
    await alone.flush()
    assert await keys() == 6  # received within FRESH_SECONDS of its last heartbeat: still claimed

    await beat("a", utcnow() - timedelta(seconds=2 * FRESH_SECONDS))  # a process that died long ago
    later = XpIngestor(svc, instance_id="c")
    await later.message(G, 2, message_id=SNOW + (11 << 22))
    await later.flush()
    assert (await keys(), later.stats["keys_skipped"]) == (6, 1)
    assert await total() == 12


async def test_reads_include_activity_not_flushed_yet(svc: LevelingService) -> None:
    await svc.update_server_config_values(G, {"message_xp_min": 20, "message_xp_max": 20,
                                              "cooldowns": {"message": 0}})
    quest = await svc.create_quest(G, "Chat", "", "daily", "total_messages", 10, 0)
    for user, xp in ((1, 100), (2, 60), (3, 40)):
        await svc.award_xp(G, user, xp)
    ing = XpIngestor(svc, flush_seconds=60)
    for i in range(4):  # member 3 goes from 40 to 120 XP: first place, but nothing is stored yet
        await ing.message(G, 3, message_id=SNOW + (i << 22))
    await ing.message(G, 4, message_id=SNOW + (9 << 22), username="newcomer")  # a member with no row yet
    assert (await svc.get_user_level(G, 3)).xp == 40
    view = await ing.user_level(G, 3)
    assert (view.xp, view.total_messages, view.level) == (120, 4, 1)
    assert await ing.rank_position(G, 3) == 1
    assert await ing.rank_position(G, 1) == 2
    assert await ing.rank_position(G, 4) == 4
    assert await ing.rank_position(G, 99) is None
    board = await ing.leaderboard(G, 1, 2)
    assert [(e.user_id, e.xp, e.rank) for e in board.items] == [(3, 120, 1), (1, 100, 2)]
    assert (board.total, board.pages) == (4, 2)
    second = await ing.leaderboard(G, 2, 2)
    assert [(e.user_id, e.xp, e.rank) for e in second.items] == [(2, 60, 3), (4, 20, 4)]
    assert second.items[1].name == "newcomer"
    progress = {q.quest.id: q.quest_specific_progress for q in await ing.user_quests(G, 3)}
    assert progress[quest.id] == 4
    await ing.stop()  # what was shown is what is stored
    assert (await svc.get_user_level(G, 3)).xp == 120
    assert [(e.user_id, e.xp) for e in (await svc.leaderboard(G, 1, 2)).items] == [(3, 120), (1, 100)]


async def test_stop_during_a_flush_loses_nothing(svc: LevelingService, monkeypatch: pytest.MonkeyPatch) -> None:
    """`stop` cancels the background loop; a flush it was running completes (or comes back) instead of vanishing."""
    real = BulkWriter.upsert_levels
    started = asyncio.Event()

    async def slow(self: BulkWriter, *args: object, **kwargs: object) -> object:
        started.set()
        await asyncio.sleep(0.3)
        return await real(self, *args, **kwargs)

    monkeypatch.setattr(BulkWriter, "upsert_levels", slow)
    await svc.create_achievement(G, "First words", "Send a message.", "messages", 1, 10)
    earned: list[int] = []

    async def collect(outcome: ActivityResult) -> None:
        earned.extend(u for u, _a in outcome.achievements_earned)

    ing = XpIngestor(svc, flush_seconds=0.05, on_outcome=collect)
    ing.start()
    for i in range(50):
        await ing.message(G, 1 + i % 5, message_id=SNOW + (i << 22))
    await asyncio.wait_for(started.wait(), 10)
    await ing.stop()
    assert sum([(await svc.get_user_level(G, u)).total_messages for u in range(1, 6)]) == 50
    assert sorted(earned) == [1, 2, 3, 4, 5]  # what the interrupted flush stored is announced too, once


async def test_idle_members_leave_memory(svc: LevelingService) -> None:
    ing = XpIngestor(svc, idle_seconds=600, max_members=1_000)
    start = utcnow() - timedelta(hours=2)
    for user in range(1, 101):
        await ing.message(G, user, message_id=SNOW + (user << 22), now=start)
    await ing.flush()
    assert ing.members_held == 100
    later = start + timedelta(seconds=300)  # five minutes on: idle, but not for long enough
    await ing.message(G, 500, message_id=SNOW + (500 << 22), now=later)
    await ing.flush()
    assert ing.members_held == 101
    await ing.message(G, 501, message_id=SNOW + (501 << 22), now=start + timedelta(seconds=700))
    await ing.flush()
    assert ing.members_held == 2  # the first hundred were idle for over ten minutes
    assert (await svc.leaderboard(G)).total == 102  # nothing they did was lost
    # A member who comes back is known again from the database at the next flush; their cooldown had passed.
    assert await ing.message(G, 1, message_id=SNOW + (900 << 22), now=start + timedelta(seconds=710)) > 0
    assert ing.bytes_per_member() > 0


async def test_memory_is_capped_but_never_inside_a_cooldown(svc: LevelingService) -> None:
    ing = XpIngestor(svc, idle_seconds=3600, max_members=10)
    start = utcnow() - timedelta(hours=2)
    for user in range(1, 31):
        await ing.message(G, user, message_id=SNOW + (user << 22), now=start + timedelta(seconds=user))
    await ing.flush()
    assert ing.members_held == 30  # everyone is still inside the 60 s message cooldown
    await ing.message(G, 99, message_id=SNOW + (99 << 22), now=start + timedelta(seconds=200))
    await ing.flush()
    assert ing.members_held <= 10
    assert await ing.message(G, 99, message_id=SNOW + (98 << 22), now=start + timedelta(seconds=201)) == 0
