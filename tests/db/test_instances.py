"""Heartbeats of running bots (``bot_instances``): written while running, gone on a clean stop, left out of backups."""

from __future__ import annotations

import asyncio
import os
from datetime import timedelta
from pathlib import Path

from sqlalchemy import select, update

from guildkeep.config import load_settings
from guildkeep.db import Database, utcnow
from guildkeep.db import backup as bk
from guildkeep.db.instances import BotInstance, Heartbeat, live_instances
from guildkeep.discord.bot import GuildkeepBot
from guildkeep.discord.endpoints import pointed_at
from guildkeep.discord.runner import serve
from guildkeep.sandbox.demo import build_demo_guild
from guildkeep.sandbox.driver import Driver
from guildkeep.sandbox.server import SandboxServer


async def _rows(db: Database) -> list[BotInstance]:
    async with db.session(read_only=True) as s:
        return list((await s.execute(select(BotInstance))).scalars().all())


async def test_heartbeat_is_fresh_while_running_and_gone_after_a_clean_stop(db: Database) -> None:
    beat = Heartbeat(db, kind="bot", interval=0.05)
    await beat.start()
    first = (await _rows(db))[0].heartbeat_at
    await asyncio.sleep(0.3)
    live = await live_instances(db)
    assert [(i.id, i.kind, i.pid) for i in live] == [(beat.id, "bot", os.getpid())]
    assert live[0].heartbeat_at > first  # refreshed by the loop
    await beat.stop()
    assert await _rows(db) == []
    assert await live_instances(db) == []


async def test_a_stale_heartbeat_is_not_a_running_bot(db: Database) -> None:
    crashed = Heartbeat(db, kind="bot")
    await crashed.beat()  # a process that died without stopping leaves its row
    async with db.session() as s:
        await s.execute(update(BotInstance).values(heartbeat_at=utcnow() - timedelta(seconds=120)))
    assert len(await _rows(db)) == 1
    assert await live_instances(db) == []


async def test_backups_leave_heartbeats_out(db: Database, tmp_path: Path, database_url: str) -> None:
    async with Heartbeat(db, kind="bot"):
        path = await bk.create_backup(db, tmp_path)
    assert bk.read_manifest(path)["tables"]["bot_instances"] == 0
    report = await bk.verify_backup(path, scratch_url=database_url)
    assert report.ok, report.problems


async def test_serve_keeps_a_heartbeat_and_removes_it_when_the_bot_stops(db: Database, database_url: str) -> None:
    settings = load_settings(database_url=database_url, backup_interval_hours=0)
    async with SandboxServer() as server:
        await build_demo_guild(Driver(server))
        with pointed_at(server.api_url, server.gateway_url):
            bot = GuildkeepBot(settings, db, sandbox=True)
            running = asyncio.create_task(serve(bot, server.bot_token))
            await asyncio.wait_for(bot.wait_until_ready(), 30)
            live = await live_instances(db)
            assert [(i.kind, i.pid) for i in live] == [("bot", os.getpid())]
            await bot.close()
            await asyncio.wait_for(running, 30)
    assert await _rows(db) == []


async def test_without_the_table_the_heartbeat_warns_and_nothing_is_running(empty_database_url: str) -> None:
    db = Database(empty_database_url)  # never migrated: no bot_instances
    try:
        beat = Heartbeat(db)
        assert await beat.beat() is False
        await beat.start()  # keeps running, does not raise
        await beat.stop()
        assert await live_instances(db) == []
    finally:
        await db.dispose()
