"""Leveling: message XP through the write-behind ingestor against one unit of work per message event."""

from __future__ import annotations

import random

from benchmarks.common import Result, rate
from guildkeep.db import Database
from guildkeep.leveling.ingest import XpIngestor
from guildkeep.leveling.service import ActivityDelta, LevelingService

EVENTS = 2_000
MEMBERS = 200
FLUSH_EVERY = 500  # events between flushes: about 5 s of a busy server's chat


async def run(db: Database) -> list[Result]:
    svc = LevelingService(db)
    rng = random.Random(7)
    baseline_guild, ingest_guild = 1, 2
    for guild in (baseline_guild, ingest_guild):
        await svc.update_server_config(guild, "cooldowns", {"message": 0})  # every event earns XP
        await svc.create_quest(guild, "Chat", "", "daily", "total_messages", 50, 100)
    members = [10_000 + rng.randrange(MEMBERS) for _ in range(EVENTS)]

    async def per_event() -> None:
        for user in members:
            await svc.apply_activity(baseline_guild, [ActivityDelta(user, xp=rng.randint(15, 25), messages=1,
                                                                    total_messages=1)])

    async def write_behind() -> None:
        ingestor = XpIngestor(svc, rng=rng)
        for i, user in enumerate(members, 1):
            await ingestor.message(ingest_guild, user, channel_id=5)
            if i % FLUSH_EVERY == 0:
                await ingestor.flush()
        await ingestor.stop()

    baseline = await rate(EVENTS, per_event)
    value = await rate(EVENTS, write_behind)
    stored = await svc.leaderboard(ingest_guild, per_page=1)
    assert stored.total == len(set(members)), "the write-behind path lost members"
    return [Result("message events/s, write-behind vs txn per event", "events/s", value, baseline, target=10)]
