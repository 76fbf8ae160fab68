"""Leveling on Discord: XP from messages, voice, reactions and commands; ranks, cards, quests, achievements,
level roles and the server's leveling config. Every rule and write lives in `guildkeep.leveling`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from guildkeep.discord.cogs.leveling.commands import Leveling, setup_cog
from guildkeep.discord.cogs.leveling.render import RoleSync, requirement_text

if TYPE_CHECKING:
    from guildkeep.discord.bot import GuildkeepBot

__all__ = ["Leveling", "RoleSync", "requirement_text", "setup"]


async def setup(bot: GuildkeepBot) -> None:
    await setup_cog(bot)
