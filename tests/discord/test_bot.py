"""The bot skeleton: extension discovery, endpoint scoping, sharding settings, the scheduler the bot runs (backups)."""

from __future__ import annotations

import asyncio

import pytest
import yarl
from discord.gateway import DiscordWebSocket
from discord.http import Route

from guildkeep.config import Settings, SettingsError, load_settings
from guildkeep.db import Database
from guildkeep.discord.bot import GuildkeepBot, discover_extensions
from guildkeep.discord.endpoints import pointed_at
from guildkeep.discord.runner import run_bot, serve
from guildkeep.sandbox.demo import build_demo_guild
from guildkeep.sandbox.driver import Driver
from guildkeep.sandbox.server import SandboxServer
from guildkeep.scheduler.core_jobs import BACKUP_KEY, BACKUP_KIND
from tests.conftest import REDIS_URL, eventually


def test_every_cog_module_is_an_extension() -> None:
    found = discover_extensions()
    assert "guildkeep.discord.cogs.core" in found
    assert not any(name.rsplit(".", 1)[1].startswith("_") for name in found)


def test_endpoints_are_restored() -> None:
    base, gateway = Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY
    with pointed_at("http://127.0.0.1:9/api/v10", "ws://127.0.0.1:9/gw"):
        assert Route.BASE == "http://127.0.0.1:9/api/v10"
        assert yarl.URL("ws://127.0.0.1:9/gw") == DiscordWebSocket.DEFAULT_GATEWAY
    assert (base, gateway) == (Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY)
    assert base == "https://discord.com/api/v10"


async def test_one_shard_per_process(db: Database, database_url: str) -> None:
    sharded = GuildkeepBot(load_settings(database_url=database_url, shard_count=4, shard_ids=[2]), db)
    assert (sharded.shard_id, sharded.shard_count) == (2, 4)
    with pytest.raises(SettingsError, match="one shard per process"):
        load_settings(database_url=database_url, shard_count=4, shard_ids=[0, 1])
    two = load_settings(database_url=database_url, shard_count=4, shard_ids=[2])
    two = two.model_copy(update={"shard_ids": [0, 1]})  # bypassing the settings check
    with pytest.raises(ValueError, match="one shard per process"):
        GuildkeepBot(two, db)


async def test_run_bot_needs_a_token(database_url: str) -> None:
    with pytest.raises(ValueError, match="GUILDKEEP_DISCORD_TOKEN"):
        await run_bot(load_settings(database_url=database_url, discord_token=None))


async def test_serve_runs_the_backup_schedule_until_the_bot_stops(db: Database, database_url: str) -> None:
    settings: Settings = load_settings(database_url=database_url, backup_interval_hours=1)
    async with SandboxServer() as server:
        await build_demo_guild(Driver(server))
        with pointed_at(server.api_url, server.gateway_url):
            bot = GuildkeepBot(settings, db, sandbox=True)
            running = asyncio.create_task(serve(bot, server.bot_token))
            await asyncio.wait_for(bot.wait_until_ready(), 30)
            assert bot.scheduler.running
            assert (BACKUP_KIND in bot.scheduler.kinds) is not db.is_memory  # modules register their own kinds too
            job = await bot.scheduler.service.find(BACKUP_KIND, BACKUP_KEY)
            assert job is not None
            assert (job.status, job.interval_seconds) == ("pending", 3600)
            await bot.close()
            await asyncio.wait_for(running, 30)
            assert not bot.scheduler.running


async def test_the_bot_runs_the_cache_bus_from_the_settings(db: Database, database_url: str,
                                                            redis_channel: str) -> None:
    settings = load_settings(database_url=database_url, redis_url=REDIS_URL)
    async with SandboxServer() as server:
        await build_demo_guild(Driver(server))
        with pointed_at(server.api_url, server.gateway_url):
            bot = GuildkeepBot(settings, db, sandbox=True)
            assert bot.cache_bus.url == REDIS_URL
            bot.cache_bus.channel = redis_channel  # this test's own channel
            running = asyncio.create_task(serve(bot, server.bot_token))
            await asyncio.wait_for(bot.wait_until_ready(), 30)
            assert bot.get_cog("Leveling").service.cache.bus is bot.cache_bus
            await eventually(lambda: bot.cache_bus.connected)
            await bot.close()
            await asyncio.wait_for(running, 30)
            assert not bot.cache_bus.connected
            assert not [t for t in asyncio.all_tasks() if t.get_name() == "guildkeep-invalidation-bus"]


async def test_without_redis_the_bot_keeps_caches_local(db: Database, database_url: str) -> None:
    bot = GuildkeepBot(load_settings(database_url=database_url, redis_url=None), db)
    assert not bot.cache_bus.enabled
