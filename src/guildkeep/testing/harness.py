"""Start the sandbox, a demo server and the real bot connected to it, in this process; stop them cleanly."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import warnings
from collections.abc import Callable, Iterable
from typing import Any

from discord.ext import tasks

from guildkeep.config import Settings
from guildkeep.db import Database
from guildkeep.discord.bot import GuildkeepBot
from guildkeep.discord.endpoints import pointed_at
from guildkeep.sandbox.demo import DemoGuild, build_demo_guild, demo_of
from guildkeep.sandbox.driver import Driver
from guildkeep.sandbox.server import SandboxServer

log = logging.getLogger(__name__)

READY_TIMEOUT = 30.0


class SandboxEnv:
    """A running sandbox with the real bot connected: ``env.driver`` acts, ``env.bot`` is the bot.

    With ``shards=N`` it runs N bots in this process, one per shard (``env.bots``), as N processes
    sharing one database would; each gets the guilds Discord's formula routes to its shard.
    """

    def __init__(self, server: SandboxServer, driver: Driver, settings: Settings, db: Database) -> None:
        self.server = server
        self.driver = driver
        self.settings = settings
        self.db = db
        self.bots: list[GuildkeepBot] = []
        self.demo: DemoGuild | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._stack = contextlib.ExitStack()
        self._own_db = False
        self._tasks_before: set[asyncio.Task[Any]] = asyncio.all_tasks()

    @property
    def bot(self) -> GuildkeepBot:
        return self.bots[0]

    @classmethod
    async def start(
        cls,
        db: Database,
        settings: Settings,
        *,
        demo: bool = True,
        extensions: Iterable[str] | None = None,
        extra_extensions: Iterable[str] = (),
        ready_timeout: float = READY_TIMEOUT,
        own_db: bool = False,
        shards: int = 1,
        restore: Callable[[SandboxServer], None] | None = None,
    ) -> SandboxEnv:
        """``restore`` replaces the new server's world with a saved one (the playground's) instead of
        building the demo server."""
        server = await SandboxServer().start()
        server.gateway.shard_count = shards
        env = cls(server, Driver(server), settings, db)
        env.driver.component_listened = env._listens
        env._own_db = own_db
        try:
            if restore is not None:
                restore(server)
                env.driver.guild = next(iter(server.world.guilds.values()), None)
                env.demo = demo_of(env.driver.guild) if env.driver.guild is not None else None
            elif demo:
                env.demo = await build_demo_guild(env.driver)
            env._stack.enter_context(pointed_at(server.api_url, server.gateway_url))
            for shard_id in range(shards):
                shard_settings = settings if shards == 1 else settings.model_copy(
                    update={"shard_count": shards, "shard_ids": [shard_id]})
                await env._start_bot(shard_settings, extensions, extra_extensions, ready_timeout)
        except BaseException:
            await env.stop()
            raise
        return env

    async def _start_bot(self, settings: Settings, extensions: Iterable[str] | None, extra: Iterable[str],
                         timeout: float) -> None:
        bot = GuildkeepBot(settings, self.db, sandbox=True, extensions=extensions, extra_extensions=extra)
        self.bots.append(bot)
        await bot.login(self.server.bot_token)
        task = asyncio.create_task(bot.connect(reconnect=True), name=f"guildkeep-sandbox-bot-{len(self.bots)}")
        self._tasks.append(task)
        ready = asyncio.create_task(bot.wait_until_ready(), name="guildkeep-sandbox-ready")
        done, _pending = await asyncio.wait({task, ready}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        if ready not in done:
            ready.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await ready
            if task in done and task.exception() is not None:
                raise RuntimeError("the bot stopped before it was ready") from task.exception()
            raise TimeoutError(f"the bot was not ready within {timeout:.0f}s")

    def _listens(self, message_id: int, component_type: int, custom_id: str) -> bool:
        """Whether a bot has a live view item (or a persistent or dynamic one) for this component."""
        key = (component_type, custom_id)
        for bot in self.bots:
            store = bot._connection._view_store
            if key in store._views.get(message_id, {}) or key in store._views.get(None, {}):
                return True
            if any(pattern.fullmatch(custom_id) for pattern in store._dynamic_items):
                return True
        return False

    async def run_periodic_jobs(self) -> int:
        """After the clock moved, run what would have run while that time passed: restart every running
        ``tasks.loop`` of the bots' cogs so each runs an iteration now (voice checkpoints), and run every
        scheduler job now due (quest resets, backups, reminders). Returns how many loops and jobs ran."""
        restarted = 0
        for bot in self.bots:
            for cog in list(bot.cogs.values()):
                for name in dir(type(cog)):
                    if isinstance(getattr(type(cog), name, None), tasks.Loop):
                        loop = getattr(cog, name)
                        if loop.is_running():
                            loop.restart()
                            restarted += 1
        for bot in self.bots:
            restarted += await bot.scheduler.run_until_idle()
        return restarted

    async def wait_ready(self, timeout: float = READY_TIMEOUT) -> None:
        """After a drop: wait until every bot is connected again (resumed or re-identified)."""
        await self.driver.wait_for(lambda: all(b.is_ready() and b.ws is not None and b.ws.open for b in self.bots),
                                   "the bot to reconnect", timeout)

    async def stop(self) -> None:
        for bot in self.bots:
            with contextlib.suppress(Exception):
                await bot.close()
        for task in self._tasks:
            with contextlib.suppress(BaseException):
                await task
        self._tasks.clear()
        await self.server.stop()
        self._stack.close()
        await self._reap_leftover_tasks()
        if self._own_db:
            await self.db.dispose()

    async def _reap_leftover_tasks(self) -> None:
        """Cancel what the bot left running (view timeouts, loops a cog did not stop in ``cog_unload``), so
        nothing outlives the test's database; warn about any task that ignores the cancellation."""
        current = asyncio.current_task()
        left = [t for t in asyncio.all_tasks() - self._tasks_before
                if t is not current and not t.done() and not _is_driver_cleanup(t)]
        views = [t for t in left if _code_file(t).find("discord/ui/") >= 0]  # view timeouts: nothing to finish
        finishing = [t for t in left if t not in views]
        if finishing:  # e.g. a cog loop stopped (not cancelled) in cog_unload, ending its iteration
            _done, pending = await asyncio.wait(finishing, timeout=0.5)
            left = views + list(pending)
        if left:
            log.debug("cancelling tasks left after the bot closed: %s", ", ".join(_task_name(t) for t in left))
            for task in left:
                task.cancel()
            _done, stuck = await asyncio.wait(left, timeout=5.0)
            if stuck:
                names = ", ".join(sorted(_task_name(t) for t in stuck))
                warnings.warn(f"still running 5 s after being cancelled: {names}", RuntimeWarning, stacklevel=2)
        # Connections closed by cancelled work finish closing before the test disposes the database.
        cleanup = [t for t in asyncio.all_tasks() if t is not current and not t.done() and _is_driver_cleanup(t)]
        if cleanup:
            _done, stuck = await asyncio.wait(cleanup, timeout=5.0)
            if stuck:
                log.warning("database connections still closing: %s", ", ".join(_task_name(t) for t in stuck))

    async def __aenter__(self) -> SandboxEnv:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


def _code_file(task: asyncio.Task[Any]) -> str:
    code = getattr(task.get_coro(), "cr_code", None)
    return code.co_filename.replace("\\", "/") if code is not None else ""


def _is_driver_cleanup(task: asyncio.Task[Any]) -> bool:
    """SQLAlchemy's own connection-closing tasks: they end with the engine, and shield themselves."""
    return "sqlalchemy" in _code_file(task)


def _task_name(task: asyncio.Task[Any]) -> str:
    coro = task.get_coro()
    return f"{task.get_name()} ({getattr(coro, '__qualname__', coro)})"


__all__ = ["SandboxEnv"]
