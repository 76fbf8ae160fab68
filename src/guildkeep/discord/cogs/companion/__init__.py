"""The AI companion on Discord: chat on mention or DM, memory, forgetting, reminders, birthdays, status, config."""

from __future__ import annotations

from typing import TYPE_CHECKING

from guildkeep.discord.cogs.companion.commands import Companion, setup_cog

if TYPE_CHECKING:
    from guildkeep.discord.bot import GuildkeepBot

__all__ = ["Companion", "setup"]


async def setup(bot: GuildkeepBot) -> None:
    await setup_cog(bot)
