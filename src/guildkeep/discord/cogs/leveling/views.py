"""Leveling's interactive messages: the paged leaderboard and the reset confirmation (shared views underneath)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import discord
from guildkeep.discord.cogs.leveling import render
from guildkeep.discord.limits import respond
from guildkeep.discord.views import ConfirmView, Paginator
from guildkeep.leveling.results import LeaderboardEntryInfo
from guildkeep.results import Page

PER_PAGE = 10
MAX_LEADERBOARD_PAGES = 25

PageLoader = Callable[[int], Awaitable[Page[LeaderboardEntryInfo]]]


async def leaderboard(interaction: discord.Interaction, guild_name: str, load: PageLoader, start: int) -> None:
    """Show the leaderboard as up to `MAX_LEADERBOARD_PAGES` pages the caller can turn."""
    first = await load(1)
    if not first.total:
        await respond(interaction, "Nobody has earned XP here yet.", ephemeral=True)
        return
    embeds = []
    for number in range(1, min(first.pages, MAX_LEADERBOARD_PAGES) + 1):
        board = first if number == 1 else await load(number)
        embeds.append(render.leaderboard_page(guild_name, board, number, first))
    paginator = Paginator(embeds, owner_id=interaction.user.id, start=start - 1)
    await paginator.send(interaction)


async def confirm_reset(interaction: discord.Interaction, what: str) -> bool:
    """Ask the caller to confirm a reset of ``what``; True once they did (False on cancel or timeout)."""
    view = ConfirmView(owner_id=interaction.user.id, confirmed="Resetting…", cancelled="Nothing was reset.")
    await respond(interaction, f"Reset {what}? This cannot be undone.", view=view, ephemeral=True)
    view.message = await interaction.original_response()  # so a timeout greys the buttons out
    return not await view.wait() and bool(view.value)
