"""The companion listening: a mention or a DM gets a reply, then facts are learned; due events are posted."""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING

from discord.ext import commands

import discord
from guildkeep.companion.service import CompanionService
from guildkeep.discord.checks import lookup_channels
from guildkeep.discord.cogs.companion import render
from guildkeep.discord.limits import send
from guildkeep.errors import DomainError
from guildkeep.scheduler.results import JobInfo

if TYPE_CHECKING:
    from guildkeep.discord.bot import GuildkeepBot

log = logging.getLogger(__name__)

IMAGE_TYPES = ("image/",)


class ChatListeners:
    """Mixed into the cog: ``bot`` and ``service`` are set by it."""

    bot: GuildkeepBot
    service: CompanionService

    def _addressed(self, message: discord.Message) -> bool:
        me = self.bot.user
        if me is None or message.author.bot or message.author.id == me.id:
            return False
        if message.guild is None:
            return True
        return any(u.id == me.id for u in message.mentions)

    def _strip_mention(self, content: str) -> str:
        me = self.bot.user
        if me is None:
            return content.strip()
        return re.sub(rf"<@!?{me.id}>", "", content).strip()

    async def claims_mention(self, message: discord.Message) -> bool:
        """Whether the companion answers this message (a DM, or a mention where it is on and may talk)."""
        if not self._addressed(message):
            return False
        if message.guild is None:
            return True
        config = await self.service.get_config(message.guild.id)
        return config.talks_in(*lookup_channels(message.channel))

    @commands.Cog.listener("on_message")
    async def companion_on_message(self, message: discord.Message) -> None:
        if not await self.claims_mention(message):
            return
        guild_id = message.guild.id if message.guild else None
        text = self._strip_mention(message.content)
        images = [a.url for a in message.attachments if (a.content_type or "").startswith(IMAGE_TYPES)]
        if not text and not images:
            return
        try:
            result = await self.service.reply(
                message.author.id, message.channel.id, text or "(an image)", guild_id=guild_id,
                username=message.author.name, display_name=message.author.display_name,
                discord_message_id=message.id, image_urls=images,
            )
            answer = result.text
        except DomainError as exc:  # the model is busy, over budget, or said something unusable
            answer = exc.message
        try:
            await send(message.channel, answer, reference=message, mention_author=False)
        except discord.HTTPException:
            log.warning("could not answer message %s in channel %s", message.id, message.channel.id, exc_info=True)
        if not text:
            return
        try:
            await self.service.learn(message.author.id, message.channel.id, text, guild_id=guild_id,
                                     discord_message_id=message.id)
        except DomainError as exc:
            log.info("nothing learned from message %s: %s", message.id, exc.message)

    async def post_event(self, job: JobInfo) -> None:
        """The scheduler's handler for ``companion.event``: trigger the event once, then post it."""
        now = max(self.bot.scheduler.clock(), job.run_at)
        result = await self.service.trigger_event(int(job.payload["event_id"]), now=now)
        if result is None:  # cancelled, forgotten, or already posted
            return
        event = result.event
        text = render.event_text(event)
        channel: discord.abc.Messageable | None = None
        if event.channel_id is not None and event.guild_id is not None:
            found = self.bot.get_channel(event.channel_id)
            channel = found if isinstance(found, discord.abc.Messageable) else None
        try:
            if channel is None:
                user = self.bot.get_user(event.user_id) or await self.bot.fetch_user(event.user_id)
                channel = await user.create_dm()
            await send(channel, text, allowed_mentions=discord.AllowedMentions(users=True))
        except discord.HTTPException:
            # The event is already marked triggered: it is never posted twice, so a failed post is only logged.
            log.warning("could not post companion event %s", event.id, exc_info=True)
