"""Campaign speech kept in step with Discord: a ❌ from the GM deletes any message of their campaign, and
messages deleted on Discord leave the campaign's log."""

from __future__ import annotations

import contextlib
import logging
from typing import TYPE_CHECKING

from discord.ext import commands

import discord
from guildkeep.campaign.service import CampaignService
from guildkeep.characters.errors import SpeechNotFoundError
from guildkeep.discord.speech import delete_posted
from guildkeep.errors import DomainError

if TYPE_CHECKING:
    from guildkeep.discord.bot import GuildkeepBot

log = logging.getLogger(__name__)

DELETE_EMOJI = ("❌",)


class CampaignListeners(commands.Cog):
    """Reactions and deletions on campaign messages."""

    def __init__(self, bot: GuildkeepBot) -> None:
        self.bot = bot
        self.service = CampaignService(bot.db)

    @commands.Cog.listener()
    async def on_raw_reaction_add(self, payload: discord.RawReactionActionEvent) -> None:
        if payload.guild_id is None or str(payload.emoji) not in DELETE_EMOJI:
            return
        member = payload.member
        if member is None or member.bot:
            return
        try:
            speech = await self.service.characters.speech(payload.guild_id, payload.message_id)
        except SpeechNotFoundError:
            return
        if speech.speaker_id == member.id:
            return  # the author's own ❌ is the characters cog's
        try:
            await self.service.gm_speech(payload.guild_id, payload.message_id, member.id)
        except DomainError:
            return  # not a campaign message, or not this member's campaign
        with contextlib.suppress(discord.HTTPException, DomainError):
            await delete_posted(self.bot, self.service.characters, speech)
        await self.service.forget_speech(payload.guild_id, [payload.message_id])

    @commands.Cog.listener()
    async def on_raw_message_delete(self, payload: discord.RawMessageDeleteEvent) -> None:
        cached = payload.cached_message
        if cached is not None and cached.webhook_id is None:
            return
        if payload.guild_id is not None:
            await self.service.forget_speech(payload.guild_id, [payload.message_id])

    @commands.Cog.listener()
    async def on_raw_bulk_message_delete(self, payload: discord.RawBulkMessageDeleteEvent) -> None:
        if payload.guild_id is not None:
            await self.service.forget_speech(payload.guild_id, payload.message_ids)
