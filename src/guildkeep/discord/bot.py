"""``GuildkeepBot``: the database, the settings, every cog under ``guildkeep.discord.cogs``, command sync."""

from __future__ import annotations

import asyncio
import logging
import pkgutil
import time
from collections.abc import Iterable
from typing import Any

from discord.ext import commands

import discord
from guildkeep.cache import InvalidationBus
from guildkeep.config import Settings
from guildkeep.db import Database
from guildkeep.db.instances import new_instance_id
from guildkeep.discord import cogs
from guildkeep.discord.errors import on_app_command_error
from guildkeep.discord.webhooks import WebhookManager
from guildkeep.scheduler.core_jobs import install_core_jobs
from guildkeep.scheduler.worker import Scheduler

log = logging.getLogger(__name__)

SCHEDULER_STOP_GRACE_SECONDS = 30.0  # on close, a running job gets this long to finish; then its lease takes over


def bot_intents() -> discord.Intents:
    intents = discord.Intents.none()
    intents.guilds = True
    intents.members = True
    intents.guild_messages = True
    intents.dm_messages = True
    intents.message_content = True
    intents.voice_states = True
    intents.guild_reactions = True
    intents.dm_reactions = True
    return intents


def discover_extensions() -> list[str]:
    """Every module of ``guildkeep.discord.cogs`` (helpers start with ``_`` and are skipped)."""
    return sorted(
        f"{cogs.__name__}.{info.name}"
        for info in pkgutil.iter_modules(cogs.__path__)
        if not info.name.startswith("_")
    )


class GuildkeepBot(commands.Bot):
    """The bot. Cogs reach the data layer through ``bot.db`` (services) and read ``bot.settings``."""

    def __init__(
        self,
        settings: Settings,
        db: Database,
        *,
        sandbox: bool = False,
        extensions: Iterable[str] | None = None,
        extra_extensions: Iterable[str] = (),
        **options: Any,
    ) -> None:
        if sandbox:
            # The sandbox sends every guild at once; don't wait Discord's 2 s for stragglers.
            options.setdefault("guild_ready_timeout", 0.05)
        if settings.shard_count is not None:
            # One shard per process: several processes share the database (PostgreSQL).
            options.setdefault("shard_count", settings.shard_count)
            if settings.shard_ids:
                if len(settings.shard_ids) != 1:
                    raise ValueError("GUILDKEEP_SHARD_IDS: run one shard per process, e.g. [0]")
                options.setdefault("shard_id", settings.shard_ids[0])
        super().__init__(
            command_prefix=commands.when_mentioned,  # required by commands.Bot; never parsed (see on_message)
            intents=bot_intents(),
            help_command=None,
            allowed_mentions=discord.AllowedMentions(everyone=False, roles=False, users=True, replied_user=True),
            **options,
        )
        self.settings = settings
        self.db = db
        self.sandbox = sandbox
        self.instance_id = new_instance_id()  # this process's heartbeat row (`serve` keeps it fresh)
        self.started_at = time.monotonic()
        self.webhooks = WebhookManager(self)
        # Cache invalidations shared with the other processes (shards) through Redis when it is configured.
        self.cache_bus = InvalidationBus(settings.redis_url)
        # Durable timed jobs for this process's shards (docs/scheduler.md); cogs register handlers as they load.
        self.scheduler = Scheduler(db, poll_seconds=settings.scheduler_poll_seconds,
                                   shard_ids=settings.shard_ids, shard_count=settings.shard_count)
        self._extensions = list(extensions) if extensions is not None else discover_extensions()
        self._extensions += list(extra_extensions)
        self.tree.on_error = on_app_command_error  # type: ignore[method-assign]

    async def setup_hook(self) -> None:
        await self.cache_bus.start()  # connects in the background; never blocks or fails the start
        for name in self._extensions:
            await self.load_extension(name)
            log.debug("loaded extension %s", name)
        await install_core_jobs(self.scheduler, self.db, self.settings)
        self.scheduler.start()
        synced = await self.tree.sync()
        log.info("loaded %d extension(s); synced %d application command(s)", len(self._extensions), len(synced))

    def _ready_tasks(self) -> list[asyncio.Task[Any]]:
        """discord.py's tasks that wait for the guilds after a READY, then dispatch ``ready`` (one per shard
        when sharded). ``Client.close`` leaves them running, and drops its event loop: one that finished after
        the close would dispatch into no loop, leaving each listener's coroutine never awaited."""
        state = self._connection
        tasks = [getattr(state, "_ready_task", None), *(getattr(state, "_ready_tasks", None) or {}).values()]
        return [t for t in tasks if isinstance(t, asyncio.Task) and not t.done()]

    async def close(self) -> None:
        for task in self._ready_tasks():
            task.cancel()
        try:
            await self.scheduler.stop(grace_seconds=SCHEDULER_STOP_GRACE_SECONDS)
        finally:
            try:
                await super().close()  # unloads the cogs first
            finally:
                await self.cache_bus.close()

    async def before_identify_hook(self, shard_id: int | None, *, initial: bool = False) -> None:
        """Discord allows one IDENTIFY per 5 s (discord.py waits that long); the sandbox has no such limit."""
        if not self.sandbox:
            await super().before_identify_hook(shard_id, initial=initial)

    async def on_ready(self) -> None:
        log.info("connected as %s (%s) to %d guild(s)", self.user, getattr(self.user, "id", "?"), len(self.guilds))

    async def on_message(self, message: discord.Message, /) -> None:
        """Messages are not text commands: every command is a slash command.

        discord.py's default would parse each message that starts with the mention prefix ("@guildkeep hello",
        ordinary chat with the companion) as a command and log a CommandNotFound error for it. The cogs' own
        ``on_message`` listeners still see every message.
        """

    async def on_error(self, event_method: str, /, *args: Any, **kwargs: Any) -> None:
        """Log errors raised in event listeners rather than printing them to stderr."""
        log.exception("unhandled error in event %s", event_method)  # noqa: LOG004 - discord.py calls this in its handler


