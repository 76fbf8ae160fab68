"""The gacha game's buttons: the policy prompt of ``/start``."""

from __future__ import annotations

from typing import TYPE_CHECKING

import discord
from guildkeep.discord.cogs.gacha import render
from guildkeep.discord.limits import edit
from guildkeep.discord.views import BaseView

if TYPE_CHECKING:
    from guildkeep.discord.cogs.gacha.commands import Gacha


class StartView(BaseView):
    """The policy prompt: Accept creates the player (once, keyed by the button's interaction), Decline does nothing."""

    def __init__(self, cog: Gacha, owner_id: int) -> None:
        super().__init__(owner_id=owner_id, timeout=300)
        self.cog = cog

    @discord.ui.button(label="Accept", style=discord.ButtonStyle.success)
    async def accept(self, interaction: discord.Interaction, _button: discord.ui.Button[StartView]) -> None:
        from guildkeep.discord.cogs.gacha.commands import guild_of, interaction_key

        result = await self.cog.service.start(
            guild_of(interaction), interaction.user.id, username=interaction.user.name,
            key=interaction_key(interaction),
        )
        self.stop()
        config = self.cog.config
        starter = result.starter
        embed = render.esprit_embed(config, starter, title=f"Welcome, {interaction.user.display_name}!")
        embed.description = (
            f"Your starter Esprit is **{starter.name}**, and it is now your active Esprit.\n"
            f"{render.wallet_line(config, result.player.balances)}\n\n"
            "Next: `/daily` for your daily reward, `/summon` for more Esprits, `/inventory` to see them."
        )
        file = await render.card_file(config, starter)
        await edit(interaction, content=None, embed=embed, attachments=[file], view=None)

    @discord.ui.button(label="Decline", style=discord.ButtonStyle.secondary)
    async def decline(self, interaction: discord.Interaction, _button: discord.ui.Button[StartView]) -> None:
        self.stop()
        await edit(interaction, content="No problem: nothing was stored. Use /start again whenever you like.",
                   embed=None, view=None)
