"""``run_bot``: migrate (unless disabled), run the bot until it stops (backups run on its scheduler)."""

from __future__ import annotations

import logging

from guildkeep.config import Settings
from guildkeep.db import Database, migrate
from guildkeep.db.instances import Heartbeat
from guildkeep.discord.bot import GuildkeepBot

log = logging.getLogger(__name__)


async def serve(bot: GuildkeepBot, token: str) -> None:
    """Run ``bot`` with ``token`` and the heartbeat (``bot_instances``) until it stops; its scheduler (backups
    included) stops with it."""
    heartbeat = Heartbeat(bot.db, kind="bot")
    try:
        async with bot:
            await heartbeat.start()
            await bot.start(token)
    finally:
        await heartbeat.stop()


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
