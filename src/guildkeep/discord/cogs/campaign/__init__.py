"""RPG campaigns: ``/campaign``, ``/character``, ``/npc``, ``/say`` (commands.py) and the speech listeners."""

from __future__ import annotations

from typing import TYPE_CHECKING

from guildkeep.discord.cogs.campaign.commands import CampaignCommands
from guildkeep.discord.cogs.campaign.listeners import CampaignListeners

if TYPE_CHECKING:
    from guildkeep.discord.bot import GuildkeepBot


async def setup(bot: GuildkeepBot) -> None:
    await bot.add_cog(CampaignCommands(bot))
    await bot.add_cog(CampaignListeners(bot))
