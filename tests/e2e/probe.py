"""A test-only extension: commands that exercise the Discord layer (webhooks, roles, errors, views, modals).

Loaded with ``@pytest.mark.discord_extensions("tests.e2e.probe")``; never part of the real bot.
"""

from __future__ import annotations

import io
import struct
import zlib
from typing import TYPE_CHECKING

from discord.ext import commands

import discord
from discord import app_commands
from guildkeep.discord.limits import respond, send
from guildkeep.discord.views import BaseView, ConfirmView, Page, Paginator
from guildkeep.errors import ValidationError

if TYPE_CHECKING:
    from guildkeep.discord.bot import GuildkeepBot


def tiny_png(width: int = 2, height: int = 3) -> bytes:
    """A valid PNG of the given size, built without Pillow."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    raw = b"".join(b"\x00" + b"\xff\x00\x00" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


class NameModal(discord.ui.Modal, title="Name your character"):
    name: discord.ui.TextInput[NameModal] = discord.ui.TextInput(label="Name", max_length=32)
    story: discord.ui.TextInput[NameModal] = discord.ui.TextInput(label="Story", style=discord.TextStyle.long,
                                                                  required=False)

    async def on_submit(self, interaction: discord.Interaction) -> None:
        await interaction.response.send_message(f"Created {self.name.value} ({len(self.story.value)} chars of story)",
                                                ephemeral=True)


class FlavourView(BaseView):
    @discord.ui.select(placeholder="Pick flavours", min_values=1, max_values=2,
                       options=[discord.SelectOption(label="Vanilla", value="v"),
                                discord.SelectOption(label="Chocolate", value="c"),
                                discord.SelectOption(label="Mint", value="m")])
    async def pick(self, interaction: discord.Interaction, select: discord.ui.Select[FlavourView]) -> None:
        await interaction.response.edit_message(content=f"You picked {', '.join(select.values)}", view=None)


class Probe(commands.Cog):
    def __init__(self, bot: GuildkeepBot) -> None:
        self.bot = bot

    @app_commands.command(name="probe-say", description="Speak through the channel webhook.")
    async def say(self, interaction: discord.Interaction, text: str, name: str, avatar: str | None = None) -> None:
        await interaction.response.defer(ephemeral=True)
        assert interaction.channel is not None
        sent = await self.bot.webhooks.send(interaction.channel, text, username=name, avatar_url=avatar)
        await interaction.followup.send(f"Sent as {name} ({sent.id}).", ephemeral=True)

    @app_commands.command(name="probe-admin", description="Admins only.")
    @app_commands.default_permissions(manage_guild=True)
    @app_commands.checks.has_permissions(manage_guild=True)
    async def admin(self, interaction: discord.Interaction) -> None:
        await interaction.response.send_message("Admin thing done.", ephemeral=True)

    @app_commands.command(name="probe-role", description="Give a member a role.")
    async def role(self, interaction: discord.Interaction, member: discord.Member, role: discord.Role) -> None:
        await member.add_roles(role)
        await interaction.response.send_message(f"{member.display_name} now has {role.name}.")

    @app_commands.command(name="probe-fail", description="Fails unexpectedly.")
    async def fail(self, interaction: discord.Interaction) -> None:
        raise RuntimeError("boom")

    @app_commands.command(name="probe-domain", description="Fails with a player-readable error.")
    async def domain(self, interaction: discord.Interaction, name: str) -> None:
        raise ValidationError(f"The name {name!r} is already taken.")

    @app_commands.command(name="probe-long", description="Sends a message over Discord's limit.")
    async def long(self, interaction: discord.Interaction) -> None:
        await interaction.response.send_message("x" * 2001)

    @app_commands.command(name="probe-oversize", description="Sends everything over Discord's limits, fitted.")
    async def oversize(self, interaction: discord.Interaction, paged: bool = False) -> None:
        embed = discord.Embed(title="T" * 300, description="D" * 5000)
        for i in range(30):
            embed.add_field(name=f"{i}" + "n" * 300, value="v" * 1100)
        embed.set_footer(text="F" * 2100).set_author(name="A" * 300)
        if paged:
            await Paginator([Page(content="c" * 2500, embed=embed), embed], owner_id=interaction.user.id).send(
                interaction, ephemeral=True)
            return
        await respond(interaction, "x" * 2500, embed=embed)
        await send(interaction.channel, "y" * 3000, embeds=[embed, embed])  # type: ignore[arg-type]

    @app_commands.command(name="probe-file", description="Sends a picture.")
    async def file(self, interaction: discord.Interaction) -> None:
        await interaction.response.send_message("Here it is", file=discord.File(io.BytesIO(tiny_png()), "card.png"))

    @app_commands.command(name="probe-modal", description="Opens a modal.")
    async def modal(self, interaction: discord.Interaction) -> None:
        await interaction.response.send_modal(NameModal())

    @app_commands.command(name="probe-select", description="Shows a select menu.")
    async def select(self, interaction: discord.Interaction) -> None:
        await interaction.response.send_message("Flavours?", view=FlavourView(owner_id=interaction.user.id))

    @app_commands.command(name="probe-confirm", description="Asks for confirmation.")
    async def confirm(self, interaction: discord.Interaction) -> None:
        view = ConfirmView(owner_id=interaction.user.id, confirmed="Deleted.", cancelled="Kept.")
        await interaction.response.send_message("Delete everything?", view=view)
        await view.wait()
        if view.value and view.interaction is not None:
            await view.interaction.followup.send("Done for real.")

    @app_commands.command(name="probe-dm", description="Sends you a DM.")
    async def dm(self, interaction: discord.Interaction) -> None:
        await interaction.user.send("A private hello")
        await interaction.response.send_message("Check your DMs.", ephemeral=True)

    @commands.Cog.listener()
    async def on_raw_reaction_add(self, payload: discord.RawReactionActionEvent) -> None:
        if payload.user_id == getattr(self.bot.user, "id", None) or str(payload.emoji) != "⭐":
            return
        channel = self.bot.get_channel(payload.channel_id)
        if isinstance(channel, discord.TextChannel):
            message = await channel.fetch_message(payload.message_id)
            await message.add_reaction("✅")


async def setup(bot: GuildkeepBot) -> None:
    await bot.add_cog(Probe(bot))
