"""The TTL cache: expiry, invalidation, and no stale value from a load that raced a write."""

from __future__ import annotations

import asyncio

from guildkeep.leveling.cache import TTLCache


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def test_values_expire_after_the_ttl() -> None:
    clock = Clock()
    cache = TTLCache(10, clock=clock)
    cache.set(("config", 1), "a")
    clock.now = 9.9
    assert cache.get(("config", 1)) == "a"
    clock.now = 10.0
    assert cache.get(("config", 1)) is None


async def test_invalidate_guild_drops_only_that_server() -> None:
    cache = TTLCache(60)
    cache.set(("config", 1), "one")
    cache.set(("quest", 1, 7), "q")
    cache.set(("config", 2), "two")
    cache.invalidate_guild(1)
    assert cache.get(("config", 1)) is None
    assert cache.get(("quest", 1, 7)) is None
    assert cache.get(("config", 2)) == "two"


async def test_a_load_that_raced_a_write_is_not_cached() -> None:
    cache = TTLCache(60)
    stored = {"value": "old"}
    loading, release = asyncio.Event(), asyncio.Event()

    async def slow_load() -> str:
        seen = stored["value"]  # read before the write commits
        loading.set()
        await release.wait()
        return seen

    reader = asyncio.create_task(cache.get_or_load(("config", 1), slow_load))
    await loading.wait()
    stored["value"] = "new"  # the write commits, then invalidates
    cache.invalidate(("config", 1))
    release.set()
    assert await reader == "old"  # the racing reader still answers with what it read ...

    async def load() -> str:
        return stored["value"]

    assert await cache.get_or_load(("config", 1), load) == "new"  # ... but the stale value was not kept
