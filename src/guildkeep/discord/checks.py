"""The one idiom every cog uses for "which server (and channel) is this" and "is this an admin".

`guild_of` turns a command used in direct messages into a clear refusal (a `ValidationError` the error
handler shows as-is). `channels_of` and `lookup_channels` say where to look for "the campaign or story of
this channel": the channel itself, then, in a thread (a forum post too), its parent channel. `ADMIN` is the
default permission of admin command groups (Discord hides them from members) and `admin_check` the check
that refuses them anyway when a server overrides that default.
"""

from __future__ import annotations

import discord
from discord import app_commands
from guildkeep.errors import ValidationError

ADMIN = discord.Permissions(manage_guild=True)
"""Default permissions of admin command groups: Manage Server."""

admin_check = app_commands.checks.has_permissions(manage_guild=True)
"""Refuse a command to members without Manage Server, whatever the server's command overrides say."""

IN_SERVER_ONLY = "That works inside a server, not in direct messages."


def guild_of(interaction: discord.Interaction, refusal: str = IN_SERVER_ONLY) -> int:
    """The id of the server the interaction came from; a player-readable refusal in direct messages."""
    if interaction.guild_id is None:
        raise ValidationError(refusal)
    return interaction.guild_id


def channel_of(interaction: discord.Interaction) -> int:
    """The id of the channel the interaction came from."""
    if interaction.channel_id is None:
        raise ValidationError("I can't tell which channel this is.")
    return interaction.channel_id


def lookup_channels(channel: object) -> tuple[int, ...]:
    """Where to look for what belongs to ``channel``: the channel itself, then, for a thread (a forum post
    too), its parent channel. A thread of a campaign's or story's channel counts as that channel."""
    own = getattr(channel, "id", None)
    if not isinstance(own, int):
        raise ValidationError("I can't tell which channel this is.")
    parent = channel.parent_id if isinstance(channel, discord.Thread) else None
    return (own, parent) if parent and parent != own else (own,)


def channels_of(interaction: discord.Interaction) -> tuple[int, ...]:
    """`lookup_channels` of the channel the interaction came from."""
    if interaction.channel is None:
        return (channel_of(interaction),)
    return lookup_channels(interaction.channel)
