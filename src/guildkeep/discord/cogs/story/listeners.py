"""The narrator in a channel with an active story: a player's message goes to the language model with the
story's context; the answer is posted as the narrator (a bot message) or as one of the story's characters
(through the channel's webhook, under its name and avatar); then what the reply changes is written.

Turns of one story are taken one at a time (a lock per story: a channel belongs to one shard, and so do its
threads, so this is exact). A message in a thread (or forum post) of a story's channel is a turn of that
story, answered in the thread. The model is never awaited inside a unit of work: read the context, ask the
model, post, then write conditionally on the story's version. Without a model configured the narrator says
so, once per story.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from discord.ext import commands

import discord
from guildkeep.discord.checks import lookup_channels
from guildkeep.discord.limits import clip, send
from guildkeep.discord.speech import post_as_character
from guildkeep.errors import DomainError
from guildkeep.llm import LLMClient, LLMError, client_from_settings
from guildkeep.story import narrator, rules
from guildkeep.story.results import LineInfo, NarrationContext
from guildkeep.story.service import StoryService

if TYPE_CHECKING:
    from guildkeep.discord.bot import GuildkeepBot

log = logging.getLogger(__name__)

NO_MODEL = ("📖 No language model is set up for this bot, so the narrator can't answer. The story commands "
            "all work (`/story status`, `/story outline`, `/relationship set`...); a bot admin can set "
            "`GUILDKEEP_LLM_BASE_URL` and `GUILDKEEP_LLM_MODEL` to bring the narrator to life.")
NARRATOR_NAME = "Narrator"


class StoryNarrator(commands.Cog):
    """Answers players' messages in channels with an active story."""

    def __init__(self, bot: GuildkeepBot, llm: LLMClient | None = None) -> None:
        self.bot = bot
        self.service = StoryService(bot.db)
        self.llm = llm or client_from_settings(bot.settings)
        self._locks: dict[int, asyncio.Lock] = {}

    async def cog_unload(self) -> None:
        await self.llm.close()

    @commands.Cog.listener()
    async def on_message(self, message: discord.Message) -> None:
        if message.guild is None or message.author.bot or message.webhook_id is not None:
            return
        text = message.content.strip()
        if not text or not isinstance(message.channel, discord.abc.Messageable):
            return
        running = await self.service.story_status(message.guild.id, lookup_channels(message.channel))
        if running is None or running[1] != rules.STATUS_ACTIVE:
            return  # most messages: one indexed read, and no lock kept for channels without a story
        lock = self._locks.setdefault(running[0], asyncio.Lock())
        async with lock:
            try:
                await self.turn(message, text)
            except DomainError as exc:  # the story changed meanwhile, a limit, Discord refused a name ...
                log.info("narrator turn in channel %s: %s", message.channel.id, exc.message)
                await self._say(message.channel, exc.message)

    async def turn(self, message: discord.Message, text: str) -> None:
        assert message.guild is not None
        guild_id, channel = message.guild.id, message.channel
        channels = lookup_channels(channel)
        context = await self.service.narration_context(guild_id, channels, message.author.id)
        if context is None or context.story.status != rules.STATUS_ACTIVE:
            return
        if not self.llm.configured:
            if await self.service.claim_no_model_notice(guild_id, context.story.id):
                await self._say(channel, NO_MODEL)
            return
        player = getattr(message.author, "display_name", message.author.name)
        try:
            narration = await narrator.narrate(self.llm, context, player_id=message.author.id, player_name=player,
                                               text=text)
        except LLMError as exc:
            await self._say(channel, exc.message)
            return
        await self._post(message, context, narration)
        speaker = narration.speaker.name if narration.speaker else narrator.NARRATOR
        result = await self.service.record_turn(
            guild_id, context.story.id, context.story.version,
            [LineInfo(player, text), LineInfo(speaker, narration.text)], state=narration.state,
            relationships=narration.relationships, event=narration.event)
        if result.summary_due:
            await self._summarize(guild_id, channels, result.story.since_summary)

    async def _post(self, message: discord.Message, context: NarrationContext, narration: narrator.Narration) -> None:
        channel = message.channel
        content = clip(narration.text, 2000)
        if narration.speaker is None:
            await send(channel, f"**{NARRATOR_NAME}:** {content}", allowed_mentions=discord.AllowedMentions.none())
            return
        me = self.bot.user
        await post_as_character(
            self.bot, self.service.characters, channel, content, guild_id=context.story.guild_id,
            speaker_id=me.id if me else message.author.id, character_id=narration.speaker.character_id,
            name=narration.speaker.name, avatar_url=narration.speaker.avatar_url,
            allowed_mentions=discord.AllowedMentions.none())

    async def _summarize(self, guild_id: int, channels: tuple[int, ...], covered: int) -> None:
        context = await self.service.narration_context(guild_id, channels)
        if context is None:
            return
        lines = context.recent[-2 * covered:]
        try:
            summary = await narrator.summarize(self.llm, context, lines)
        except LLMError as exc:
            log.warning("story %s: no summary this time: %s", context.story.id, exc.message)
            return
        await self.service.record_summary(guild_id, context.story.id, summary, covered)

    @staticmethod
    async def _say(channel: discord.abc.Messageable, text: str) -> None:
        try:
            await send(channel, text, allowed_mentions=discord.AllowedMentions.none())
        except discord.HTTPException:
            log.warning("could not post the narrator's message", exc_info=True)
