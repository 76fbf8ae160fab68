"""``run_bot``: migrate (unless disabled), run the bot until it stops (backups run on its scheduler)."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from guildkeep.config import Settings
from guildkeep.db import Database, migrate
from guildkeep.db.instances import Heartbeat
from guildkeep.discord.bot import GuildkeepBot
from guildkeep.signals import install_shutdown_handlers

log = logging.getLogger(__name__)


async def serve(bot: GuildkeepBot, token: str) -> None:
    """Run ``bot`` with ``token`` and the heartbeat (``bot_instances``) until it stops, with the web pages when
    GUILDKEEP_WEB_PORT is set; its scheduler (backups included) stops with it. SIGTERM and SIGINT close the
    bot (its cogs unload and flush what they buffer) before this returns and the database is disposed."""
    heartbeat = Heartbeat(bot.db, kind="bot", instance_id=bot.instance_id)
    closing: list[asyncio.Future[None]] = []
    remove = install_shutdown_handlers(lambda: closing.append(asyncio.ensure_future(bot.close())))
    try:
        async with bot:
            await heartbeat.start()
            web = (asyncio.create_task(serve_web(bot), name="guildkeep-web")
                   if bot.settings.web_port is not None else None)
            try:
                await bot.start(token)
            finally:
                if web is not None:
                    web.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await web
        for task in closing:
            await task
    finally:
        remove()
        await heartbeat.stop()


async def serve_web(bot: GuildkeepBot) -> None:
    """Serve the web pages (GUILDKEEP_WEB_PORT) beside the bot, on its services, once it is ready."""
    from guildkeep.web.server import context_for_bot, running

    await bot.wait_until_ready()
    async with running(context_for_bot(bot)):
        await asyncio.Event().wait()


async def run_bot(settings: Settings, db: Database | None = None) -> None:
    """Run the real bot on Discord. With no ``db``, build one from the settings (migrating it) and dispose it."""
    token = settings.token
    if token is None:
        raise ValueError("run_bot needs GUILDKEEP_DISCORD_TOKEN; use the playground without one")
    own = db is None
    database = db or Database.from_settings(settings)
    try:
        if own and settings.auto_migrate:
            await migrate.upgrade(database)
        await serve(GuildkeepBot(settings, database), token)
    finally:
        if own:
            await database.dispose()
