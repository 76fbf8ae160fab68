"""The invalidation bus on a real Redis: two buses in one process stand for two shards."""

from __future__ import annotations

import logging

import pytest
from redis import asyncio as aioredis

from guildkeep.cache import InvalidationBus, TTLCache
from tests.conftest import REDIS_URL, eventually


async def test_invalidation_on_one_shard_drops_the_entry_on_the_other(shard_buses):
    a, b = (TTLCache(60, bus=bus, namespace="leveling") for bus in shard_buses)
    a.set(("config", 1), "old")
    b.set(("config", 1), "old")
    b.set(("config", 2), "other guild")
    a.invalidate(("config", 1))
    await eventually(lambda: b.get(("config", 1)) is None)
    assert b.get(("config", 2)) == "other guild"


async def test_guild_invalidation_crosses_shards(shard_buses):
    a, b = (TTLCache(60, bus=bus, namespace="leveling") for bus in shard_buses)
    b.set(("quest", 7, 3), "quest")
    b.set(("active_quests", 7), ["quest"])
    b.set(("active_quests", 8), ["kept"])
    a.invalidate_guild(7)
    await eventually(lambda: len(b) == 1)
    assert b.get(("active_quests", 8)) == ["kept"]


async def test_other_namespaces_are_untouched(shard_buses):
    a = TTLCache(60, bus=shard_buses[0], namespace="leveling")
    b = TTLCache(60, bus=shard_buses[1], namespace="gacha")
    marker = TTLCache(60, bus=shard_buses[1], namespace="leveling")
    b.set(("config", 1), "gacha")
    marker.set(("config", 1), "leveling")
    a.invalidate(("config", 1))
    await eventually(lambda: marker.get(("config", 1)) is None)
    assert b.get(("config", 1)) == "gacha"


async def test_own_messages_are_ignored(shard_buses):
    a_bus, b_bus = shard_buses
    mine = TTLCache(60, bus=a_bus, namespace="leveling")
    mine.invalidate(("config", 1))
    mine.set(("config", 1), "reloaded after the write")
    # b receiving it proves the message went through Redis; a gets b's later message after its own one, so
    # once a has counted b's, it has read (and ignored) its own.
    await eventually(lambda: b_bus.received == 1)
    b_bus.publish("other", None, None)
    await eventually(lambda: a_bus.received == 1)
    assert mine.get(("config", 1)) == "reloaded after the write"


async def test_two_caches_on_one_bus_share_invalidations_locally() -> None:
    bus = InvalidationBus(None)
    a, b = TTLCache(60, bus=bus, namespace="n"), TTLCache(60, bus=bus, namespace="n")
    b.set(("k", 1), "v")
    a.invalidate(("k", 1))
    assert b.get(("k", 1)) is None
    b.detach()
    b.set(("k", 1), "v")
    a.invalidate(("k", 1))
    assert b.get(("k", 1)) == "v"


async def test_unset_url_is_local_only(caplog: pytest.LogCaptureFixture) -> None:
    bus = InvalidationBus(None)
    await bus.start()
    cache = TTLCache(60, bus=bus, namespace="leveling")
    cache.set(("config", 1), "v")
    cache.invalidate(("config", 1))
    assert cache.get(("config", 1)) is None
    assert not bus.enabled
    assert not bus.connected
    await bus.close()
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


async def test_unreachable_redis_warns_once_and_stays_local(caplog: pytest.LogCaptureFixture,
                                                            redis_channel: str) -> None:
    caplog.set_level(logging.DEBUG, logger="guildkeep.cache")
    bus = InvalidationBus("redis://127.0.0.1:1/0", channel=redis_channel, max_backoff=0.01)
    try:
        await bus.start()
        await eventually(lambda: any("still unreachable" in r.getMessage() for r in caplog.records))
        cache = TTLCache(60, bus=bus, namespace="leveling")
        cache.set(("config", 1), "v")
        assert cache.get(("config", 1)) == "v"
        cache.invalidate(("config", 1))  # never raises nor waits
        assert cache.get(("config", 1)) is None
        assert not bus.connected
    finally:
        await bus.close()
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "unreachable" in warnings[0].getMessage()
    assert "TTL-only" in warnings[0].getMessage()


async def test_a_dropped_connection_warns_reconnects_and_invalidations_cross_again(
        shard_buses, caplog: pytest.LogCaptureFixture) -> None:
    a_bus, b_bus = shard_buses
    admin = aioredis.from_url(REDIS_URL)
    try:
        killed = [c["id"] for c in await admin.client_list() if c["name"] == f"guildkeep-bus-{b_bus.origin}"]
        assert killed
        for client_id in killed:
            await admin.client_kill_filter(_id=client_id)
    finally:
        await admin.aclose()
    await eventually(lambda: b_bus.subscriptions == 2 and b_bus.connected)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "TTL-only" in warnings[0]
    a, b = TTLCache(60, bus=a_bus, namespace="leveling"), TTLCache(60, bus=b_bus, namespace="leveling")
    b.set(("config", 1), "old")
    a.invalidate(("config", 1))
    await eventually(lambda: b.get(("config", 1)) is None)


async def test_a_key_that_is_not_json_stays_local(shard_buses, caplog: pytest.LogCaptureFixture) -> None:
    a, b = (TTLCache(60, bus=bus, namespace="leveling") for bus in shard_buses)
    key = ("config", 1, object())
    a.set(key, "v")
    a.invalidate(key)  # dropped here; never raises
    assert a.get(key) is None
    assert any("not JSON" in r.getMessage() for r in caplog.records)
    assert len(b) == 0


async def test_malformed_messages_are_ignored(shard_buses, caplog: pytest.LogCaptureFixture) -> None:
    _, b_bus = shard_buses
    cache = TTLCache(60, bus=b_bus, namespace="leveling")
    cache.set(("config", 1), "v")
    b_bus.deliver(b"not json")
    b_bus.deliver(b'{"origin": "x"}')
    assert cache.get(("config", 1)) == "v"
    assert any("malformed" in r.getMessage() for r in caplog.records)


async def test_a_load_that_raced_an_invalidation_from_another_cache_is_not_kept() -> None:
    bus = InvalidationBus(None)
    a, b = TTLCache(60, bus=bus, namespace="n"), TTLCache(60, bus=bus, namespace="n")

    async def load() -> str:
        a.invalidate(("config", 1))  # another shard writes while b reads the old row
        return "maybe stale"

    assert await b.get_or_load(("config", 1), load) == "maybe stale"
    assert b.get(("config", 1)) is None
