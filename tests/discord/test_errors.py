"""What the central handler tells players, error by error."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

import discord
from discord import app_commands
from guildkeep.discord.errors import BOT_MISSING_PERMISSION, BotPermissionError, permission_name, player_message
from guildkeep.errors import InsufficientFundsError, NotFoundError


def forbidden(code: int) -> discord.Forbidden:
    response = SimpleNamespace(status=403, reason="Forbidden")
    return discord.Forbidden(response, {"code": code, "message": "Missing Permissions"})  # type: ignore[arg-type]


def invoke_error(original: Exception) -> app_commands.CommandInvokeError:
    command = app_commands.Command(name="x", description="x", callback=_noop)
    error = app_commands.CommandInvokeError(command, original)
    error.__cause__ = original
    return error


async def _noop(interaction: discord.Interaction) -> None:
    return None


@pytest.mark.parametrize(("error", "expected"), [
    (NotFoundError("No such character."), "No such character."),
    (InsufficientFundsError(), "You cannot afford that."),
    (BotPermissionError("I need Manage Roles."), "I need Manage Roles."),
    (app_commands.MissingPermissions(["manage_guild"]), "You need the Manage Server permission to use this command."),
    (app_commands.MissingPermissions(["kick_members", "ban_members"]),
     "You need the Kick Members and Ban Members permissions to use this command."),
    (app_commands.BotMissingPermissions(["manage_roles"]), "I'm missing the Manage Roles permission to do that here."),
    (app_commands.NoPrivateMessage(), "This command only works in a server."),
    (app_commands.CheckFailure(), "You can't use this command here."),
    (forbidden(50013), BOT_MISSING_PERMISSION),
    (forbidden(50001), BOT_MISSING_PERMISSION),
])
def test_player_messages(error: Exception, expected: str) -> None:
    assert player_message(error) == expected
    assert player_message(invoke_error(error)) == expected


def test_unexpected_errors_have_no_player_message() -> None:
    assert player_message(RuntimeError("boom")) is None
    assert player_message(invoke_error(KeyError("x"))) is None
    assert player_message(forbidden(50007)) is None


def test_permission_names_follow_discord() -> None:
    assert permission_name("manage_guild") == "Manage Server"
    assert permission_name("manage_webhooks") == "Manage Webhooks"


def test_several_missing_bot_permissions_are_plural() -> None:
    error = app_commands.BotMissingPermissions(["manage_roles", "embed_links"])
    assert player_message(error) == "I'm missing the Manage Roles and Embed Links permissions to do that here."
