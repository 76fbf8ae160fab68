"""One place that turns any failure in a command or a component into what the player reads.

Order of handling:
1. ``DomainError`` (raised by services, or by the Discord layer with ``BotPermissionError``): its
   ``message`` is shown to the player, ephemerally.
2. The player lacks a permission (app command checks): "You need the <Permission> permission ...".
3. The bot lacks a permission: ``BotMissingPermissions`` or Discord's 403 (50013 Missing
   Permissions / 50001 Missing Access): "I'm missing a permission ...".
4. Other check failures and cooldowns: a short explanation.
5. Anything else: logged with an error id; the player gets a short apology quoting that id.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable

import discord
from discord import app_commands
from guildkeep.discord.limits import CONTENT, clip
from guildkeep.errors import DomainError

log = logging.getLogger(__name__)

MISSING_PERMISSIONS = 50013
MISSING_ACCESS = 50001
BOT_MISSING_PERMISSION = (
    "I'm missing a permission to do that here. Ask a server admin to check my role and this channel's "
    "permissions."
)


class BotPermissionError(DomainError):
    """The bot itself lacks a Discord permission; the message says which, for the player to pass on."""

    default_message = BOT_MISSING_PERMISSION


def permission_name(name: str) -> str:
    """``manage_guild`` -> ``Manage Server`` (the names Discord's UI uses)."""
    special = {"manage_guild": "Manage Server", "administrator": "Administrator",
               "manage_expressions": "Manage Expressions", "moderate_members": "Timeout Members"}
    return special.get(name, name.replace("_", " ").title())


def _names(perms: Iterable[str]) -> str:
    names = [permission_name(p) for p in perms]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def _transformer_message(error: app_commands.TransformerError) -> str:
    """An option value discord.py could not turn into what the command takes (a thread for a text channel,
    a user who is not a member of the server, ...)."""
    kind = error.type
    if kind in (discord.AppCommandOptionType.user, discord.AppCommandOptionType.mentionable):
        return "That user isn't a member of this server; pick someone who is."
    if kind is discord.AppCommandOptionType.channel:
        return "That kind of channel can't be used for this option; pick another channel."
    if kind is discord.AppCommandOptionType.role:
        return "That role can't be used for this option; pick another role."
    return "That value can't be used for this option; check it and try again."


def player_message(error: BaseException) -> str | None:
    """The text for the player, or None when the error is unexpected (to be logged with an id)."""
    if isinstance(error, app_commands.TransformerError) and not isinstance(error.__cause__, DomainError):
        return _transformer_message(error)
    if isinstance(error, app_commands.CommandInvokeError | app_commands.TransformerError):
        cause = error.__cause__
        error = cause if cause is not None else getattr(error, "original", error)
    if isinstance(error, DomainError):
        return error.message
    if isinstance(error, app_commands.MissingPermissions):
        plural = "permission" if len(error.missing_permissions) == 1 else "permissions"
        return f"You need the {_names(error.missing_permissions)} {plural} to use this command."
    if isinstance(error, app_commands.BotMissingPermissions):
        plural = "permission" if len(error.missing_permissions) == 1 else "permissions"
        return f"I'm missing the {_names(error.missing_permissions)} {plural} to do that here."
    if isinstance(error, app_commands.MissingRole | app_commands.MissingAnyRole):
        return "You don't have the role this command needs."
    if isinstance(error, app_commands.NoPrivateMessage):
        return "This command only works in a server."
    if isinstance(error, app_commands.CommandOnCooldown):
        return f"Slow down! Try again in {error.retry_after:.0f} seconds."
    if isinstance(error, app_commands.CheckFailure):
        return "You can't use this command here."
    if isinstance(error, discord.Forbidden) and error.code in (MISSING_PERMISSIONS, MISSING_ACCESS):
        return BOT_MISSING_PERMISSION
    return None


async def tell(interaction: discord.Interaction, message: str) -> None:
    """Answer ephemerally, whether or not the interaction was already answered. A message that echoes a long
    input is cut to Discord's 2,000 characters (with an ellipsis) rather than refused."""
    message = clip(message, CONTENT)
    try:
        if interaction.response.is_done():
            await interaction.followup.send(message, ephemeral=True)
        else:
            await interaction.response.send_message(message, ephemeral=True)
    except discord.HTTPException:
        log.warning("could not tell the player about an error in interaction %s", interaction.id, exc_info=True)


async def handle_interaction_error(interaction: discord.Interaction, error: BaseException) -> None:
    """The one handler for slash commands, autocomplete, buttons, selects and modals."""
    text = player_message(error)
    if text is None:
        error_id = uuid.uuid4().hex[:8]
        original = getattr(error, "original", None) or error.__cause__ or error
        command = interaction.command.qualified_name if interaction.command else None
        log.error(
            "unexpected error %s in %s (guild %s, user %s)", error_id, f"/{command}" if command else "a component",
            interaction.guild_id, interaction.user.id, exc_info=original,
        )
        text = f"Sorry, something went wrong on my side. The error id is `{error_id}` if you report it."
    elif isinstance(error, app_commands.CheckFailure | DomainError):
        log.debug("refused interaction %s: %s", interaction.id, text)
    else:
        log.info("interaction %s failed: %s", interaction.id, error)
    if interaction.type is discord.InteractionType.autocomplete:
        return  # nothing can be shown while the player types
    await tell(interaction, text)


async def on_app_command_error(interaction: discord.Interaction, error: app_commands.AppCommandError) -> None:
    await handle_interaction_error(interaction, error)
