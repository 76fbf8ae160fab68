"""The in-memory leaderboard (`leveling/board.py`) and the ingestor's reads served from it; the flush's quest and
achievement work in a fixed number of statements; announcements off the flush path."""

from __future__ import annotations

import asyncio
import random
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from guildkeep.db import Database, utcnow
from guildkeep.leveling import ingest as ingest_module
from guildkeep.leveling.board import GuildBoard, board_key, split_key
from guildkeep.leveling.bulk import BulkWriter
from guildkeep.leveling.ingest import XpIngestor
from guildkeep.leveling.models import Level
from guildkeep.leveling.results import ActivityResult
from guildkeep.leveling.rules import MAX_XP
from guildkeep.leveling.service import LevelingService

G = 3001
SNOW = 1_200_000_000_000_000_000


@pytest.fixture
def svc(db: Database) -> LevelingService:
    return LevelingService(db)


def _reference(xp: dict[int, int]) -> list[tuple[int, int]]:
    return sorted(xp.items(), key=lambda item: (-item[1], item[0]))


def test_board_orders_like_the_stored_leaderboard() -> None:
    rng = random.Random(5)
    xp = {u: rng.choice([0, 10, 10, 500, rng.randrange(10**6)]) for u in rng.sample(range(1, 2**63), 2_000)}
    board = GuildBoard(xp.items())
    users = list(xp)
    for step in range(5_000):
        u = rng.choice(users)
        if step % 7 == 0:
            board.discard(u)
            xp.pop(u, None)
        else:
            xp[u] = min(xp.get(u, 0) + rng.randrange(0, 300), MAX_XP)
            board.set_total(u, xp[u])
    ordered = _reference(xp)
    assert board.top(0, len(ordered)) == ordered
    assert board.top(40, 10) == ordered[40:50]
    for position, (u, _x) in enumerate(ordered, 1):
        if position % 37 == 0:
            assert board.rank(u) == position
    assert board.rank(-1) is None
    assert len(board) == len(xp)
    assert split_key(board_key(MAX_XP, 2**63 - 1)) == (2**63 - 1, MAX_XP)
    assert board_key(100, 5) < board_key(100, 6) < board_key(99, 1)  # more XP first, then the smaller id


async def test_rank_and_leaderboard_from_memory_match_the_database(svc: LevelingService) -> None:
    """Reads served from the in-memory board while events arrive and flush (quest rewards included) give what the
    database gives once everything is stored."""
    await svc.update_server_config_values(G, {"cooldowns": {"message": 0}, "message_xp_min": 1,
                                              "message_xp_max": 40})
    await svc.create_quest(G, "Chat", "", "daily", "total_messages", 5, 300)
    for user in range(1, 31):
        await svc.award_xp(G, user, user * 7)
    ing = XpIngestor(svc, flush_seconds=60, rng=random.Random(1))
    rng = random.Random(2)
    assert await ing.rank_position(G, 30) == 1  # the board is loaded here, then kept current by events
    for i in range(600):
        await ing.message(G, rng.randint(1, 40), message_id=SNOW + (i << 22), username=f"m{i}")
        if i % 150 == 149:
            await ing.flush()
    shown = {u: await ing.rank_position(G, u) for u in range(1, 42)}
    standing = {u: await ing.standing(G, u) for u in range(1, 42)}  # what /rank shows, from memory
    page = await ing.leaderboard(G, 2, 10)
    await ing.stop()
    assert shown == {u: await svc.rank_position(G, u) for u in range(1, 42)}
    stored = {u: await svc.get_user_level(G, u) for u in range(1, 42)}
    assert {u: (s.rank, s.xp, s.level, s.xp_into_level) for u, s in standing.items()} == {
        u: (shown[u], v.xp, v.level, v.xp_into_level) for u, v in stored.items()}
    stored = await svc.leaderboard(G, 2, 10)
    assert [(e.rank, e.user_id, e.xp) for e in page.items] == [(e.rank, e.user_id, e.xp) for e in stored.items]
    assert (page.total, page.pages) == (stored.total, stored.pages)


async def test_board_takes_in_changes_made_outside_the_ingestor(svc: LevelingService,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    for user, xp in ((1, 100), (2, 60), (3, 40)):
        await svc.award_xp(G, user, xp)
    ing = XpIngestor(svc, flush_seconds=60)
    assert await ing.rank_position(G, 3) == 3
    await svc.set_xp(G, 3, 500)  # an admin's /xp set, not through the ingestor: the board is read again
    assert (await ing.standing(G, 3)).rank == 1
    assert (await ing.standing(G, 1)).rank == 2
    await svc.set_xp(G, 1, 1000)
    monkeypatch.setattr(ingest_module, "BOARD_CHECK_SECONDS", 0.0)  # the page's rows are checked on every read
    board = await ing.leaderboard(G, 1, 10)
    assert [(e.user_id, e.xp) for e in board.items] == [(1, 1000), (3, 500), (2, 60)]
    await svc.reset_member(G, 2)
    board = await ing.leaderboard(G, 1, 10)
    assert [(e.user_id, e.xp) for e in board.items] == [(1, 1000), (3, 500)]
    assert board.total == 2
    async with svc.db.session() as s:  # another process's write: the page's rows are checked against the database
        await s.execute(update(Level).where(Level.guild_id == G, Level.user_id == 3).values(xp=2000))
    await ing.leaderboard(G, 1, 10)  # served at once; the check runs beside it
    for _ in range(100):
        board = await ing.leaderboard(G, 1, 10)
        if board.items[0].xp == 2000:
            break
        await asyncio.sleep(0.02)
    assert [(e.user_id, e.xp, e.rank) for e in board.items] == [(3, 2000, 1), (1, 1000, 2)]
    await ing.stop()


async def test_flush_statements_do_not_grow_with_servers_or_members(svc: LevelingService,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """Quests and achievements in many servers: the flush runs the same few statements whatever the number of
    servers and members (no statement per server, member or achievement)."""
    statements = 0
    for name in ("_execute", "_fetch"):
        real = getattr(BulkWriter, name)

        async def counted(self: BulkWriter, *args: object, _real: object = real) -> object:
            nonlocal statements
            statements += 1
            return await _real(self, *args)  # type: ignore[operator]

        monkeypatch.setattr(BulkWriter, name, counted)
    session_execute = AsyncSession.execute

    async def counted_execute(self: AsyncSession, *args: Any, **kwargs: Any) -> Any:
        nonlocal statements
        statements += 1
        return await session_execute(self, *args, **kwargs)

    monkeypatch.setattr(AsyncSession, "execute", counted_execute)

    async def flush_for(guilds: int, members: int, offset: int) -> tuple[int, int, int]:
        nonlocal statements
        ids = [G + offset + g for g in range(guilds)]
        for g in ids:
            await svc.reset_quests(g)
            await svc.create_achievement(g, "First words", "", "messages", 1, 10)
            await svc.create_achievement(g, "Talker", "", "messages", 2, 10)
        got: list[ActivityResult] = []

        async def collect(outcome: ActivityResult) -> None:
            got.append(outcome)

        ing = XpIngestor(svc, flush_seconds=60, on_outcome=collect)
        await ing.preload(ids)
        now = utcnow()
        for g in ids:
            for u in range(1, members + 1):
                for k in range(2):
                    await ing.message(g, u, now=now + timedelta(seconds=61 * k))
        statements = 0
        await ing.flush()
        earned = sum(len(o.achievements_earned) for o in got)
        return statements, earned, len(got)

    small, small_earned, small_outcomes = await flush_for(2, 3, 0)
    large, large_earned, large_outcomes = await flush_for(12, 25, 100)
    assert (small_earned, large_earned) == (2 * 3 * 2, 12 * 25 * 2)  # each member earned both, once
    assert (small_outcomes, large_outcomes) == (2, 12)
    assert large == small


async def test_two_ingestors_grant_an_achievement_once(db: Database, svc: LevelingService) -> None:
    await svc.create_achievement(G, "First words", "", "messages", 1, 25)
    earned: list[tuple[int, int]] = []

    async def collect(outcome: ActivityResult) -> None:
        earned.extend((u, a.id) for u, a in outcome.achievements_earned)

    first, second = XpIngestor(svc, on_outcome=collect), XpIngestor(LevelingService(db), on_outcome=collect)
    await first.message(G, 1, message_id=SNOW)
    await second.message(G, 1, message_id=SNOW + (1 << 22))
    await asyncio.gather(first.flush(), second.flush())
    assert len(earned) == 1
    view = await svc.get_user_level(G, 1)
    assert view.total_messages == 2
    assert len(await svc.get_user_achievements(G, 1)) == 1


async def test_a_slow_announcement_does_not_hold_up_the_next_flush(svc: LevelingService) -> None:
    gate = asyncio.Event()
    seen: list[int] = []

    async def slow(outcome: ActivityResult) -> None:
        await gate.wait()  # Discord being slow (rate limits, level roles)
        seen.extend(c.user_id for c in outcome.level_ups)

    await svc.update_server_config_values(G, {"message_xp_min": 200, "message_xp_max": 200})
    ing = XpIngestor(svc, flush_seconds=0.05, on_outcome=slow)
    ing.start()
    await ing.message(G, 1, message_id=SNOW)  # 200 XP: a level-up to announce
    for _ in range(100):
        if ing.flushed_batches >= 1 and (await svc.get_user_level(G, 1)).xp:
            break
        await asyncio.sleep(0.02)
    await ing.message(G, 2, message_id=SNOW + (1 << 22))
    for _ in range(100):  # flushed while the first announcement still waits
        if (await svc.get_user_level(G, 2)).xp:
            break
        await asyncio.sleep(0.02)
    assert (await svc.get_user_level(G, 2)).xp == 200
    assert seen == []
    gate.set()
    await ing.stop()  # stop waits for what was made durable to be announced
    assert sorted(seen) == [1, 2]


async def test_events_wait_for_a_flush_when_far_too_much_is_pending(svc: LevelingService) -> None:
    """Backpressure: when events come faster than the database stores them, memory and the window stay bounded."""
    gate = asyncio.Event()
    entered = asyncio.Event()

    async def slow_database() -> None:
        entered.set()
        await gate.wait()

    ing = XpIngestor(svc, flush_seconds=60, max_pending=5, before_flush=slow_database)
    ing.start()
    for u in range(1, 6):  # the 5th pending member wakes the flush, which then waits on the "database"
        await ing.message(G, u, message_id=SNOW + (u << 22))
    await asyncio.wait_for(entered.wait(), 5)
    for u in range(6, 20):  # below 4 × max_pending members pending: events are still taken at once
        await asyncio.wait_for(ing.message(G, u, message_id=SNOW + (u << 22)), 5)
    waiting = asyncio.create_task(ing.message(G, 20, message_id=SNOW + (20 << 22)))
    await asyncio.sleep(0.2)
    assert not waiting.done()  # held until the flush in progress ends
    gate.set()
    assert await asyncio.wait_for(waiting, 5) > 0
    await ing.stop()
    board = await svc.leaderboard(G, 1, 50)
    assert board.total == 20
