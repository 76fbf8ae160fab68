"""Two leveling services on one database stand for two shards; the Redis bus keeps their caches in step."""

from __future__ import annotations

from guildkeep.db import Database
from guildkeep.leveling.service import LevelingService
from tests.conftest import eventually

G = 2001


async def test_config_change_on_one_shard_is_seen_by_the_other(db: Database, shard_buses) -> None:
    a, b = LevelingService(db, bus=shard_buses[0]), LevelingService(db, bus=shard_buses[1])
    assert (await b.get_server_config(G)).settings.xp_rate == 1.0  # cached in b
    await a.update_server_config(G, "xp_rate", 2.5)
    await eventually(lambda: b.cache.get(("config", G)) is None)
    assert (await b.get_server_config(G)).settings.xp_rate == 2.5


async def test_quest_changes_cross_shards(db: Database, shard_buses) -> None:
    a, b = LevelingService(db, bus=shard_buses[0]), LevelingService(db, bus=shard_buses[1])
    await a.reset_quests(G)
    quests = await b.get_guild_active_quests(G)  # cached in b
    assert quests
    await a.mark_quests_inactive(G, quests[0].quest_type)
    await eventually(lambda: b.cache.get(("active_quests", G)) is None)
    assert all(q.quest_type != quests[0].quest_type for q in await b.get_guild_active_quests(G))


async def test_without_the_bus_the_other_shard_keeps_its_cached_copy(db: Database) -> None:
    a, b = LevelingService(db), LevelingService(db)
    await b.get_server_config(G)
    await a.update_server_config(G, "xp_rate", 2.5)
    assert (await b.get_server_config(G)).settings.xp_rate == 1.0  # until the TTL expires
