"""Posting as a character through the channel's bot-owned webhook, logged in the speech log (ids only).

Shared by every module whose characters speak (``/speak``, a story's NPCs): the post, Discord's refusal of a
name or avatar explained to the player, and the log row, or the message taken back when the row could not
be written (an unlogged message could never be edited, deleted or attributed).
"""

from __future__ import annotations

import contextlib
import logging
from typing import TYPE_CHECKING

import discord
from guildkeep.characters.results import SpeechInfo
from guildkeep.characters.service import CharacterService
from guildkeep.errors import DomainError

if TYPE_CHECKING:
    from guildkeep.discord.bot import GuildkeepBot

log = logging.getLogger(__name__)

INVALID_FORM_BODY = 50035


async def post_as_character(
    bot: GuildkeepBot, service: CharacterService, channel: discord.abc.Messageable, content: str, *,
    guild_id: int, speaker_id: int,
    character_id: int | None, name: str, avatar_url: str | None, allowed_mentions: discord.AllowedMentions,
) -> discord.WebhookMessage:
    """Post ``content`` as ``name`` in ``channel`` (the parent's webhook in a thread) and log who spoke."""
    try:
        message = await bot.webhooks.send(channel, content, username=name, avatar_url=avatar_url,
                                          allowed_mentions=allowed_mentions)
    except discord.HTTPException as exc:
        if exc.status != 400 or exc.code != INVALID_FORM_BODY:
            raise
        log.info("Discord refused to post as %r: %s", name, exc.text)
        raise DomainError(f"Discord refused to post as **{discord.utils.escape_markdown(name)}** "
                          f"({exc.text[:200] or 'invalid name or avatar'}). Try another name or avatar with "
                          "`/persona edit` or `/persona server`.") from exc
    try:
        await service.record_speech(
            message_id=message.id, guild_id=guild_id, channel_id=getattr(channel, "id", 0),
            webhook_id=message.webhook_id or 0, speaker_id=speaker_id, character_id=character_id,
            character_name=name, created_at=message.created_at)
    except Exception:
        with contextlib.suppress(discord.HTTPException):
            await bot.webhooks.delete(channel, message.id)
        raise
    return message


UNKNOWN_MESSAGE = 10008


async def delete_posted(bot: GuildkeepBot, service: CharacterService, speech: SpeechInfo) -> None:
    """Delete a message posted as a character and its log row: through the webhook that posted it, or,
    when that webhook is gone, as a moderator would (Manage Messages). Already gone is fine."""
    guild = bot.get_guild(speech.guild_id)
    channel = guild.get_channel_or_thread(speech.channel_id) if guild else None
    if channel is None or not isinstance(channel, discord.abc.Messageable):
        raise DomainError("The channel of that message no longer exists.")
    try:
        hook = await bot.webhooks.get(channel)
        if hook.id == speech.webhook_id:
            await bot.webhooks.delete(channel, speech.message_id)
        else:
            await channel.get_partial_message(speech.message_id).delete()
    except discord.NotFound as exc:
        if exc.code != UNKNOWN_MESSAGE:
            raise
    await service.forget_speech(speech.guild_id, [speech.message_id])
