"""``run_bot``: migrate (unless disabled), start the backup schedule, run the bot until it stops."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from guildkeep.config import Settings
from guildkeep.db import Database, migrate
from guildkeep.db.backup import start_backup_task
from guildkeep.discord.bot import GuildkeepBot
from guildkeep.signals import install_shutdown_handlers

log = logging.getLogger(__name__)


async def serve(bot: GuildkeepBot, token: str) -> None:
    """Run ``bot`` with ``token`` and the backup schedule; both stop together. SIGTERM and SIGINT close the bot
    (its cogs unload and flush what they buffer) before this returns and the database is disposed."""
    backups = start_backup_task(bot.db, bot.settings)
    closing: list[asyncio.Task[None]] = []
    remove = install_shutdown_handlers(lambda: closing.append(asyncio.ensure_future(bot.close())))
    try:
        async with bot:
            await bot.start(token)
        for task in closing:
            await task
    finally:
        remove()
        if backups is not None:
            backups.cancel()
            with contextlib.suppress(BaseException):
                await backups


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
