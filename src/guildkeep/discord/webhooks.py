"""One bot-owned webhook per channel, created on first use, cached, recreated when Discord says it is gone.

Characters speak through it with their own name and avatar (``username``/``avatar_url``); in a thread
the parent channel's webhook posts with ``thread``. Never a webhook URL pasted by a user.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import discord
from guildkeep.discord.errors import BotPermissionError
from guildkeep.errors import DomainError

if TYPE_CHECKING:
    from discord.ext import commands

log = logging.getLogger(__name__)

WEBHOOK_NAME = "guildkeep"
UNKNOWN_WEBHOOK = 10015
MAX_WEBHOOKS = 30007

WebhookChannel = discord.TextChannel | discord.VoiceChannel | discord.ForumChannel | discord.StageChannel


class WebhookLimitError(DomainError):
    default_message = (
        "This channel already has 15 webhooks, Discord's limit. Ask a server admin to delete one "
        "(Channel settings -> Integrations -> Webhooks) so I can speak here."
    )


class WebhookManager:
    """Finds or creates the bot's webhook in a channel and sends through it."""

    def __init__(self, bot: commands.Bot, name: str = WEBHOOK_NAME) -> None:
        self.bot = bot
        self.name = name
        self._cache: dict[int, discord.Webhook] = {}
        self._locks: dict[int, asyncio.Lock] = {}

    @staticmethod
    def _home(channel: discord.abc.Messageable) -> tuple[WebhookChannel, discord.Thread | None]:
        if isinstance(channel, discord.Thread):
            parent = channel.parent
            if parent is None:
                raise DomainError("I can't find this thread's channel.")
            return parent, channel  # type: ignore[return-value]
        if isinstance(channel, WebhookChannel):
            return channel, None
        raise DomainError("Characters can only speak in server text channels and their threads.")

    def forget(self, channel_id: int) -> None:
        self._cache.pop(channel_id, None)

    async def get(self, channel: discord.abc.Messageable) -> discord.Webhook:
        """The bot's webhook for this channel (the parent channel for a thread), created when missing."""
        home, _thread = self._home(channel)
        cached = self._cache.get(home.id)
        if cached is not None:
            return cached
        lock = self._locks.setdefault(home.id, asyncio.Lock())
        async with lock:
            cached = self._cache.get(home.id)
            if cached is not None:
                return cached
            webhook = await self._find_or_create(home)
            self._cache[home.id] = webhook
            return webhook

    async def _find_or_create(self, home: WebhookChannel) -> discord.Webhook:
        me = self.bot.user
        try:
            hooks = await home.webhooks()
            for hook in hooks:
                if hook.token and hook.user is not None and me is not None and hook.user.id == me.id:
                    return hook
            if len(hooks) >= 15:
                raise WebhookLimitError
            return await home.create_webhook(name=self.name, reason="guildkeep character speech")
        except discord.Forbidden as exc:
            raise BotPermissionError(
                f"I need the Manage Webhooks permission in #{home.name} to speak as characters there."
            ) from exc
        except discord.HTTPException as exc:
            if exc.code == MAX_WEBHOOKS:
                raise WebhookLimitError from exc
            raise

    async def send(
        self,
        channel: discord.abc.Messageable,
        content: str | None = None,
        *,
        username: str,
        avatar_url: str | None = None,
        embeds: Sequence[discord.Embed] = (),
        files: Sequence[discord.File] = (),
        **kwargs: Any,
    ) -> discord.WebhookMessage:
        """Post as ``username`` with ``avatar_url``; on 10015 Unknown Webhook recreate it and retry once."""
        _home, thread = self._home(channel)
        send_kwargs: dict[str, Any] = {"username": username[:80], "wait": True, **kwargs}
        if content is not None:
            send_kwargs["content"] = content
        if avatar_url:
            send_kwargs["avatar_url"] = avatar_url
        if embeds:
            send_kwargs["embeds"] = list(embeds)
        if files:
            send_kwargs["files"] = list(files)
        if thread is not None:
            send_kwargs["thread"] = thread
        for attempt in range(2):
            webhook = await self.get(channel)
            try:
                return await webhook.send(**send_kwargs)
            except discord.NotFound as exc:
                if exc.code != UNKNOWN_WEBHOOK or attempt:
                    raise
                log.info("webhook %s in channel %s is gone; recreating it", webhook.id, webhook.channel_id)
                self.forget(webhook.channel_id or 0)
                for file in files:
                    file.reset()
        raise AssertionError("unreachable")  # pragma: no cover

    async def edit(self, channel: discord.abc.Messageable, message_id: int, **kwargs: Any) -> discord.WebhookMessage:
        _home, thread = self._home(channel)
        webhook = await self.get(channel)
        if thread is not None:
            kwargs["thread"] = thread
        return await webhook.edit_message(message_id, **kwargs)

    async def delete(self, channel: discord.abc.Messageable, message_id: int) -> None:
        _home, thread = self._home(channel)
        webhook = await self.get(channel)
        await webhook.delete_message(message_id, thread=thread or discord.utils.MISSING)
