"""The gacha game on Discord: daily rewards, summons, the inventory, the auction house, administration."""

from __future__ import annotations

from typing import TYPE_CHECKING

from guildkeep.discord.cogs.gacha.commands import Gacha, setup_cog

if TYPE_CHECKING:
    from guildkeep.discord.bot import GuildkeepBot

__all__ = ["Gacha", "setup"]


async def setup(bot: GuildkeepBot) -> None:
    """Load the gacha cog."""
    await setup_cog(bot)
