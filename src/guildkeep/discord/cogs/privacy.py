"""/privacy export and /privacy forget: what the bot stores about the caller, in every server."""

from __future__ import annotations

import io
import logging
import zipfile
from typing import TYPE_CHECKING

from discord.ext import commands

import discord
from discord import app_commands
from guildkeep.discord.limits import respond, send
from guildkeep.discord.views import ConfirmView
from guildkeep.errors import ValidationError
from guildkeep.privacy import ExportInfo, ForgetResult, PrivacyService

if TYPE_CHECKING:
    from guildkeep.discord.bot import GuildkeepBot

log = logging.getLogger(__name__)

CANNOT_DM = 50007  # Discord: "Cannot send messages to this user"
FILE_LIMIT = 8 * 1024 * 1024  # above this the export is sent zipped
DISCORD_FILE_MAX = 10 * 1024 * 1024  # Discord refuses bigger files
MESSAGE_LIMIT = 2000

FORGET_WARNING = (
    "This removes everything I store about you, in **every** server and here: levels, XP and counters, quest "
    "progress, achievements, rank cards, gacha players with their wallets and Esprits (open auction listings are "
    "withdrawn), your characters and their speech log, what the companion remembers about you (facts, "
    "conversations, our relationship, birthday and reminders), your standing with story characters, scheduled "
    "jobs about you, and your user and membership records (story worlds you created stay, without your name).\n"
    "The gacha ledger keeps its lines so that the other players' accounts still add up, with your id replaced "
    "by an anonymous one. This cannot be undone; use `/privacy export` first if you want a copy. Continue?"
)


def export_attachment(info: ExportInfo) -> discord.File:
    """The export as a file: plain JSON, or zipped when it is too big for Discord."""
    if len(info.data) <= FILE_LIMIT:
        return discord.File(io.BytesIO(info.data), filename=info.filename)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(info.filename, info.data)
    if buffer.tell() > DISCORD_FILE_MAX:
        raise ValidationError(
            f"Your data is too large to send through Discord ({buffer.tell() / 2**20:.0f} MiB even zipped). "
            "Ask the bot's operator for it: they can run `guildkeep privacy export` with your user id.")
    buffer.seek(0)
    return discord.File(buffer, filename=info.filename.removesuffix(".json") + ".zip")


def forget_message(result: ForgetResult) -> str:
    """What was removed, per module, within Discord's message limit."""
    lines = result.summary_lines()
    if not lines:
        return "I had nothing stored about you; nothing was removed."
    head = f"Done. I removed {result.total_deleted} record(s) about you"
    if result.total_anonymised:
        head += f" and anonymised {result.total_anonymised} that a ledger must keep"
    text = head + ":\n" + "\n".join(f"- {line}" for line in lines)
    text += "\nAnything you do from now on starts a new record."
    return text if len(text) <= MESSAGE_LIMIT else text[: MESSAGE_LIMIT - 1] + "…"


class ForgetView(ConfirmView):
    """Confirm/Cancel for a forget; Confirm runs it (the command itself has returned by then)."""

    def __init__(self, bot: GuildkeepBot, service: PrivacyService, *, owner_id: int) -> None:
        super().__init__(owner_id=owner_id, confirmed="Removing your data...",
                         cancelled="Cancelled; nothing was removed.")
        self.bot = bot
        self.service = service

    async def _finish(self, interaction: discord.Interaction, value: bool) -> None:
        await super()._finish(interaction, value)  # answers the click at once, within Discord's deadline
        if value:
            await forget_confirmed(self.bot, self.service, interaction)


async def ask_to_forget(bot: GuildkeepBot, service: PrivacyService, interaction: discord.Interaction,
                        *, warning: str = FORGET_WARNING) -> None:
    """Ask the caller to confirm forgetting everything about them; `ForgetView` does the rest.

    The one path behind `/privacy forget` and the companion's `/forget all`.
    """
    # The work happens on Confirm, after the command has completed: activity counted for the command
    # itself (leveling's command XP) is then already pending, and is flushed and removed with the rest.
    view = ForgetView(bot, service, owner_id=interaction.user.id)
    await respond(interaction, warning, view=view, ephemeral=True)
    view.message = await interaction.original_response()


async def forget_confirmed(bot: GuildkeepBot, service: PrivacyService, interaction: discord.Interaction) -> None:
    """Remove the clicking user's data in every module and answer with what was removed."""
    await flush_pending_activity(bot)
    result = await service.forget_user(interaction.user.id)
    await respond(interaction, forget_message(result), ephemeral=True)


async def flush_pending_activity(bot: GuildkeepBot) -> None:
    """Write XP still held in memory (write-behind) first, so that it cannot re-create rows afterwards."""
    leveling = bot.get_cog("Leveling")
    ingestor = getattr(leveling, "ingestor", None)
    if ingestor is not None:
        await ingestor.flush()


class Privacy(commands.Cog):
    """Your data: get a copy of everything stored about you, or have it removed."""

    privacy = app_commands.Group(name="privacy", description="See or remove what the bot stores about you")

    def __init__(self, bot: GuildkeepBot) -> None:
        self.bot = bot
        self.service = PrivacyService(bot.db)

    @privacy.command(name="export", description="Get a JSON file of everything stored about you, in a DM")
    async def export(self, interaction: discord.Interaction) -> None:
        """DM the caller their export; attach it to the private reply when DMs are closed."""
        await interaction.response.defer(ephemeral=True, thinking=True)
        info = await self.service.export_file(interaction.user.id)
        modules = ", ".join(info.document["modules"])
        if interaction.guild_id is None:  # already in our DMs
            await respond(interaction, f"Everything I store about you ({modules}) is in this file.",
                          file=export_attachment(info))
            return
        try:
            await send(interaction.user, f"Here is everything I store about you ({modules}), from every server.",
                       file=export_attachment(info))
        except discord.Forbidden as exc:
            if exc.code != CANNOT_DM:
                raise
            await respond(
                interaction,
                "I could not DM you (your direct messages are closed), so here is the file; only you can see it.",
                file=export_attachment(info), ephemeral=True)
            return
        await respond(interaction, "I sent you a DM with a JSON file of everything I store about you.", ephemeral=True)

    @privacy.command(name="forget", description="Remove everything stored about you, in every server")
    async def forget(self, interaction: discord.Interaction) -> None:
        """Ask for confirmation; `ForgetView` does the rest."""
        await ask_to_forget(self.bot, self.service, interaction)


async def setup(bot: GuildkeepBot) -> None:
    """Load the cog (discord.py extension entry point)."""
    await bot.add_cog(Privacy(bot))
