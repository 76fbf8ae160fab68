"""Stories: ``/world``, ``/story``, ``/relationship`` (commands.py) and the narrator (listeners.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from guildkeep.discord.cogs.story.commands import StoryCommands
from guildkeep.discord.cogs.story.listeners import StoryNarrator

if TYPE_CHECKING:
    from guildkeep.discord.bot import GuildkeepBot


async def setup(bot: GuildkeepBot) -> None:
    await bot.add_cog(StoryCommands(bot))
    await bot.add_cog(StoryNarrator(bot))
