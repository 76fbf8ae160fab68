"""Serving the web app with uvicorn: on its own (``guildkeep web``) or beside the bot (``guildkeep run``)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

import uvicorn

from guildkeep.cache import InvalidationBus
from guildkeep.config import Settings
from guildkeep.db import Database
from guildkeep.gacha.service import GachaService
from guildkeep.leveling.service import LevelingService
from guildkeep.web.app import Directory, WebContext, create_app

log = logging.getLogger(__name__)
DEFAULT_PORT = 8080


def context_for_bot(bot: Any) -> WebContext:
    """The web pages of a running bot: its own services (one cache) and its member cache for avatars."""
    leveling = gacha = None
    for cog in bot.cogs.values():
        service = getattr(cog, "service", None)
        if isinstance(service, LevelingService):
            leveling = service
        elif isinstance(service, GachaService):
            gacha = service
    if leveling is None:
        leveling = LevelingService(bot.db, bus=bot.cache_bus)

    def avatar(user_id: int) -> str | None:
        user = bot.get_user(user_id)
        return str(user.avatar.url) if user is not None and user.avatar is not None else None

    def guild_name(guild_id: int) -> str | None:
        guild = bot.get_guild(guild_id)
        return guild.name if guild is not None else None

    def directory(guild_id: int) -> Directory | None:
        guild = bot.get_guild(guild_id)
        if guild is None:
            return None
        channels = [(c.id, c.name) for c in guild.channels if hasattr(c, "send") or hasattr(c, "text_channels")]
        roles = [(r.id, r.name) for r in reversed(guild.roles) if not r.is_default() and not r.managed]
        return Directory(channels, roles)

    return WebContext(bot.db, bot.settings, leveling, gacha, avatar_url=avatar, guild_name=guild_name,
                      directory=directory)


def make_server(ctx: WebContext, *, host: str | None = None, port: int | None = None) -> uvicorn.Server:
    config = uvicorn.Config(create_app(ctx), host=host or ctx.settings.web_host,
                            port=port if port is not None else (ctx.settings.web_port or DEFAULT_PORT),
                            log_level="warning", access_log=False, lifespan="off", proxy_headers=True)
    server = uvicorn.Server(config)
    server.install_signal_handlers = lambda: None  # type: ignore[attr-defined, method-assign]  # the caller owns signals
    return server


async def bound_port(server: uvicorn.Server, task: asyncio.Task[None]) -> int:
    """Wait (at most 10 s) until ``server`` listens; the port it bound (useful with port 0)."""
    async with asyncio.timeout(10):
        while not server.started:
            if task.done():
                task.result()
                raise RuntimeError("the web server stopped before it listened")
            await asyncio.sleep(0.02)
    return server.servers[0].sockets[0].getsockname()[1]


@contextlib.asynccontextmanager
async def running(ctx: WebContext, *, host: str | None = None, port: int | None = None,
                  ) -> AsyncIterator[tuple[uvicorn.Server, int]]:
    """Serve the app in this event loop for the block; yields the server and its port."""
    server = make_server(ctx, host=host, port=port)
    task = asyncio.create_task(server.serve(), name="guildkeep-web")
    try:
        bound = await bound_port(server, task)
        log.info("web pages at http://%s:%d", server.config.host, bound)
        yield server, bound
    finally:
        server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(task, 10)


async def serve_standalone(settings: Settings, db: Database) -> None:
    """``guildkeep web``: the pages in their own process on the bot's database. With Redis configured, a
    change made here reaches the bot's caches at once (else within their 60 s lifetime)."""
    bus = InvalidationBus(settings.redis_url)
    await bus.start()
    ctx = WebContext(db, settings, LevelingService(db, bus=bus),
                     GachaService(db, config_dir=settings.gacha_config_dir, bus=bus))
    try:
        await make_server(ctx).serve()
    finally:
        await bus.close()
