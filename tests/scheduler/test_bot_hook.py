"""The bot runs the scheduler for its shards from start-up to close."""

from __future__ import annotations

from guildkeep.config import load_settings
from guildkeep.db import Database
from guildkeep.db.types import utcnow
from guildkeep.discord.bot import GuildkeepBot
from guildkeep.scheduler import rules
from guildkeep.scheduler.results import JobInfo
from guildkeep.testing.harness import SandboxEnv
from tests.conftest import eventually


async def test_the_bot_runs_scheduled_jobs_while_it_is_up(db: Database, database_url: str) -> None:
    settings = load_settings(database_url=database_url, discord_token=None, auto_migrate=False,
                             backup_interval_hours=0, scheduler_poll_seconds=0.05)
    env = await SandboxEnv.start(db, settings)
    try:
        bot = env.bot
        assert bot.scheduler.running
        assert bot.scheduler.poll_seconds == 0.05
        ran: list[JobInfo] = []

        async def handler(job: JobInfo) -> None:
            ran.append(job)

        bot.scheduler.register("test.hello", handler)  # what a cog does when it loads
        assert env.demo is not None
        job = (await bot.scheduler.service.schedule("test.hello", utcnow(), now=utcnow(),
                                                    guild_id=env.demo.guild.id, payload={"hi": 1})).job
        await eventually(lambda: len(ran) == 1)
        assert (ran[0].id, ran[0].payload) == (job.id, {"hi": 1})
    finally:
        await env.stop()
    assert not bot.scheduler.running
    assert (await bot.scheduler.service.get(job.id)).status == rules.DONE


async def test_the_scheduler_follows_the_shard_settings(db: Database, database_url: str) -> None:
    bot = GuildkeepBot(load_settings(database_url=database_url, shard_count=4, shard_ids=[2]), db)
    assert (bot.scheduler.shards.shard_ids, bot.scheduler.shards.shard_count) == ((2,), 4)
    single = GuildkeepBot(load_settings(database_url=database_url), db)
    assert single.scheduler.shards.shard_count is None
    assert not single.scheduler.running  # started by setup_hook, not by the constructor
