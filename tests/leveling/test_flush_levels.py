"""Levels a flush moves: on PostgreSQL the level write also sets the levels of the servers on the flush's most
common curve (the others, and every server on SQLite, get theirs in the statement that adds the rewards). Either
way the stored level is the curve's level of the stored XP, and each level-up is announced once."""

from __future__ import annotations

import asyncio
import random

from guildkeep.db import Database
from guildkeep.leveling.ingest import XpIngestor
from guildkeep.leveling.results import ActivityResult
from guildkeep.leveling.rules import Curve
from guildkeep.leveling.service import LevelingService

MEE6_A, MEE6_B, LINEAR = 2301, 2302, 2303
SNOW = 1_200_000_000_000_000_000


async def _server(svc: LevelingService, guild: int, curve: str) -> None:
    await svc.update_server_config_values(guild, {"message_xp_min": 10, "message_xp_max": 10, "curve": curve,
                                                  "cooldowns": {"message": 0}})


def _collect(into: list[tuple[int, int, int, int]]) -> object:
    async def collect(outcome: ActivityResult) -> None:
        into.extend((outcome.guild_id, c.user_id, c.old_level, c.new_level) for c in outcome.level_changes)
    return collect


async def test_levels_of_every_curve_are_stored_and_announced_once(db: Database) -> None:
    svc = LevelingService(db)
    await _server(svc, MEE6_A, "mee6")
    await _server(svc, MEE6_B, "mee6")
    await _server(svc, LINEAR, "linear")
    await svc.create_achievement(MEE6_B, "First words", "Send a message.", "messages", 1, 80)
    for guild in (MEE6_A, MEE6_B, LINEAR):
        await svc.add_xp(guild, 1, 95)  # mee6: level 1 at 100 XP; linear (base 100): 75 XP, level 2 at 250
        await svc.add_xp(guild, 2, 10)
    announced: list[tuple[int, int, int, int]] = []
    ing = XpIngestor(svc, on_outcome=_collect(announced), rng=random.Random(2))  # type: ignore[arg-type]
    n = 0
    for guild in (MEE6_A, MEE6_B, LINEAR):
        for user, messages in ((1, 1), (2, 1), (3, 30)):  # member 3 is new: inserted, not updated
            for _ in range(messages):
                n += 1
                await ing.message(guild, user, message_id=SNOW + (n << 22))
    await ing.flush()
    mee6, linear = Curve("mee6"), Curve("linear")
    for guild, curve in ((MEE6_A, mee6), (MEE6_B, mee6), (LINEAR, linear)):
        for user in (1, 2, 3):
            view = await svc.get_user_level(guild, user)
            assert view.level == curve.level_for_xp(view.xp), (guild, user, view.xp, view.level)
    # What moved, once each: 95 + 10 crosses mee6's level 1 (100 XP); member 2 of MEE6_B only with the reward
    # (10 + 10 + 80); member 3's 300 XP is level 2 on both curves (mee6: 255, linear: 250).
    assert sorted(announced) == [(MEE6_A, 1, 0, 1), (MEE6_A, 3, 0, 2),
                                 (MEE6_B, 1, 0, 1), (MEE6_B, 2, 0, 1), (MEE6_B, 3, 0, 2),
                                 (LINEAR, 3, 0, 2)]
    assert (await svc.get_user_level(LINEAR, 1)).level == 1  # 105 XP: still level 1 on the linear curve


async def test_two_processes_crossing_one_level_at_once_announce_it_once(db: Database, database_url: str) -> None:
    """Two processes add to the same member in flushes running at the same time: the level the two add up to is
    stored, and exactly one of them announces it."""
    one = LevelingService(db)
    other_db = Database(database_url)
    try:
        other = LevelingService(other_db)
        await _server(one, MEE6_A, "mee6")
        await one.add_xp(MEE6_A, 1, 85)
        announced: list[tuple[int, int, int, int]] = []
        first = XpIngestor(one, on_outcome=_collect(announced))  # type: ignore[arg-type]
        second = XpIngestor(other, on_outcome=_collect(announced))  # type: ignore[arg-type]
        await first.message(MEE6_A, 1, message_id=SNOW + (1 << 22))
        await second.message(MEE6_A, 1, message_id=SNOW + (2 << 22))
        await asyncio.gather(first.flush(), second.flush())
        view = await one.get_user_level(MEE6_A, 1)
        assert (view.xp, view.level) == (105, 1)
        assert announced == [(MEE6_A, 1, 0, 1)]
    finally:
        await other_db.dispose()


async def test_a_flush_runs_with_the_cyclic_collector_paused_and_resumes_it(db: Database, monkeypatch) -> None:
    """The flush's rows live for the flush only: the collector is off while it runs (guildkeep.runtime) and on
    again after, the flush stored or failed."""
    import gc

    from guildkeep.leveling import bulk

    svc = LevelingService(db)
    await _server(svc, LINEAR, "linear")
    seen: list[bool] = []
    original = bulk.BulkWriter.open

    async def open_(cls: type, session: object, backend: str) -> bulk.BulkWriter:
        seen.append(gc.isenabled())
        if len(seen) == 2:
            raise ConnectionError("database went away")
        return await original.__func__(cls, session, backend)  # type: ignore[attr-defined]

    monkeypatch.setattr(bulk.BulkWriter, "open", classmethod(open_))
    ing = XpIngestor(svc, rng=random.Random(2))
    await ing.message(LINEAR, 1, message_id=SNOW + (1 << 22))
    await ing.flush()
    assert (await svc.get_user_level(LINEAR, 1)).xp == 10
    assert gc.isenabled()
    await ing.message(LINEAR, 1, message_id=SNOW + (2 << 22))
    await ing.flush()  # fails: the batch is kept for the next flush
    assert gc.isenabled()
    await ing.flush()
    assert seen == [False, False, False]
    assert (await svc.get_user_level(LINEAR, 1)).xp == 20
    assert gc.isenabled()


async def test_the_level_rows_go_to_the_database_in_key_order(db: Database, monkeypatch) -> None:
    """One lock order for every process (no deadlock between two flushes): the rows reach the level write sorted
    by (server, member), whatever order the members spoke in."""
    from guildkeep.leveling import bulk

    svc = LevelingService(db)
    for guild in (MEE6_A, MEE6_B, LINEAR):
        await _server(svc, guild, "mee6")
    sent: list[list[tuple[int, int]]] = []
    name = "update_levels" if db.backend == "postgresql" else "upsert_levels"
    original = getattr(bulk.BulkWriter, name)

    async def capture(self: bulk.BulkWriter, rows: list[bulk.LevelRow], *args: object, **kwargs: object) -> object:
        sent.append([(r.guild_id, r.user_id) for r in rows])
        return await original(self, rows, *args, **kwargs)

    monkeypatch.setattr(bulk.BulkWriter, name, capture)
    ing = XpIngestor(svc, rng=random.Random(3))
    order = random.Random(4)
    speakers = [(g, u) for g in (LINEAR, MEE6_B, MEE6_A) for u in (9, 1_000_000_000_000_000_000, 5, 77)]
    order.shuffle(speakers)
    for n, (guild, user) in enumerate(speakers):
        await ing.message(guild, user, message_id=SNOW + (n << 22))
    await ing.flush()
    assert sent
    assert sent[0] == sorted(speakers)
