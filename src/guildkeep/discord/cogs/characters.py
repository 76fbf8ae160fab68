"""Personas and speech: ``/persona``, ``/speak``, ``/speech`` and the "Who wrote this?" message command.

Every decision is the characters service's; this file only talks to Discord. A character speaks
through the channel's bot-owned webhook (``bot.webhooks``, the parent channel's in a thread) with
its name and avatar, and may ping only what the speaker could ping posting the text themselves.

After a message is posted the cog dispatches ``character_speech`` so other modules can credit the
real speaker (the webhook message itself has no member author)::

    bot.dispatch("character_speech", guild_id, channel_id, speaker: discord.Member, message: discord.WebhookMessage)

Reactions on a character message: ❓ sends the reacting member a DM saying who wrote it; ❌ from the
person who wrote it deletes it. The bot then removes the reaction when it may.
"""

from __future__ import annotations

import contextlib
import logging
import re
from typing import TYPE_CHECKING, Any

from discord.ext import commands

import discord
from discord import app_commands
from guildkeep.characters import rules
from guildkeep.characters.errors import SpeechNotFoundError
from guildkeep.characters.results import CharacterInfo, SpeechInfo
from guildkeep.characters.service import UNSET, CharacterService
from guildkeep.discord import checks
from guildkeep.discord.errors import handle_interaction_error
from guildkeep.discord.limits import respond, send
from guildkeep.discord.speech import delete_posted, post_as_character
from guildkeep.discord.views import Paginator
from guildkeep.errors import DomainError, ValidationError
from guildkeep.text import parse_id

if TYPE_CHECKING:
    from guildkeep.discord.bot import GuildkeepBot

log = logging.getLogger(__name__)

COLOR = discord.Colour.from_rgb(155, 89, 182)
WHO_EMOJI = ("❓", "❔")
DELETE_EMOJI = ("❌",)
PER_PAGE = 10
MAX_LIST_PAGES = 25
UNKNOWN_MESSAGE = 10008
INVALID_FORM_BODY = 50035
MESSAGE_LINK = re.compile(r"channels/(?:\d+|@me)/\d+/(\d+)")


def guild_of(interaction: discord.Interaction) -> int:
    return checks.guild_of(interaction, "Characters speak inside a server, not in direct messages.")


def parse_message_id(raw: str) -> int:
    """A message id, or a message link (Copy Message Link) whose last part is the id."""
    text = raw.strip()
    link = MESSAGE_LINK.search(text)
    if link:
        text = link.group(1)
    number = parse_id(text)
    if number is None or len(text) < 15:
        raise ValidationError(
            "That is not a message id. Right-click (or long-press) the message -> Copy Message ID, "
            "or Copy Message Link, and paste it here."
        )
    return number


def allowed_mentions(speaker: discord.Member | discord.User,
                     permissions: discord.Permissions) -> discord.AllowedMentions:
    """What the speaker could ping in this channel posting the text themselves."""
    mentionable: tuple[int, ...] = ()
    if isinstance(speaker, discord.Member):
        mentionable = tuple(r.id for r in speaker.guild.roles if r.mentionable and not r.is_default())
    policy = rules.mention_policy(can_mention_everyone=permissions.mention_everyone,
                                  mentionable_role_ids=mentionable)
    roles: bool | list[discord.Object] = (
        policy.roles if isinstance(policy.roles, bool) else [discord.Object(r) for r in policy.roles]
    )
    return discord.AllowedMentions(everyone=policy.everyone, roles=roles, users=policy.users, replied_user=False)


def md(name: str) -> str:
    """A name shown inside bold text: its own markdown characters are shown, not applied."""
    return discord.utils.escape_markdown(name)


def when(info: SpeechInfo) -> str:
    return f"<t:{int(info.created_at.timestamp())}:f>"


class EditSpeechModal(discord.ui.Modal, title="Edit your message"):
    """The new text of a character message, prefilled with what it says now."""

    text: discord.ui.TextInput[EditSpeechModal] = discord.ui.TextInput(
        label="Text", style=discord.TextStyle.long, min_length=1, max_length=rules.SPEECH_MAX)

    def __init__(self, cog: Personas, speech: SpeechInfo, current: str) -> None:
        super().__init__(timeout=600)
        self.cog = cog
        self.speech = speech
        self.text.default = current[: rules.SPEECH_MAX] or None

    async def on_submit(self, interaction: discord.Interaction) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        # checked again: the form may have stayed open while the message was deleted
        speech = await self.cog.service.own_speech(self.speech.guild_id, self.speech.message_id, interaction.user.id)
        await self.cog._edit(interaction, speech, self.text.value)

    async def on_error(self, interaction: discord.Interaction, error: Exception) -> None:  # type: ignore[override]
        await handle_interaction_error(interaction, error)


class Personas(commands.Cog):
    """Personas: create characters and speak as them through the channel's webhook."""

    persona = app_commands.Group(name="persona", description="Your characters: create, edit, show, list, delete",
                                 guild_only=True)
    speech = app_commands.Group(name="speech", description="Messages posted as a character: edit, delete, who wrote",
                                guild_only=True)

    def __init__(self, bot: GuildkeepBot) -> None:
        self.bot = bot
        self.service = CharacterService(bot.db)
        self.who_menu = app_commands.ContextMenu(name="Who wrote this?", callback=self.who_wrote_menu)
        self.edit_menu_command = app_commands.ContextMenu(name="Edit speech", callback=self.edit_menu)
        self.menus = [self.who_menu, self.edit_menu_command]
        for menu in self.menus:
            menu.guild_only = True

    async def cog_load(self) -> None:
        for menu in self.menus:
            self.bot.tree.add_command(menu)

    async def cog_unload(self) -> None:
        for menu in self.menus:
            self.bot.tree.remove_command(menu.name, type=menu.type)

    # --- presentation ----------------------------------------------------------------------------

    @staticmethod
    def character_embed(info: CharacterInfo, *, viewer_id: int) -> discord.Embed:
        embed = discord.Embed(title=info.display_name[:256], description=info.description[:4096] or None, color=COLOR)
        if info.display_avatar_url:
            embed.set_thumbnail(url=info.display_avatar_url)
        embed.add_field(name="Creator", value=f"<@{info.owner_id}>")
        embed.add_field(name="Visibility", value="public" if info.is_public else "private (only you see it)")
        if info.override is not None and info.owner_id == viewer_id:
            parts = []
            if info.override.nickname:
                parts.append(f"speaks as **{md(info.override.nickname)}**")
            if info.override.avatar_url:
                parts.append("has its own avatar")
            if info.override.hidden:
                parts.append("is hidden")
            if parts:
                embed.add_field(name="On this server", value=f"It {', '.join(parts)} here."[:1024], inline=False)
        if info.display_name != info.name:
            embed.add_field(name="Name", value=info.name)
        embed.add_field(name="Created", value=f"<t:{int(info.created_at.timestamp())}:D>")
        embed.set_footer(text=f"Character #{info.id}")
        return embed

    @staticmethod
    def choice_name(info: CharacterInfo, viewer_id: int) -> str:
        label = info.display_name
        if info.owner_id != viewer_id:
            label += " (public)"
        elif info.hidden:
            label += " (hidden here)"
        return label[:100]

    async def suggest(self, interaction: discord.Interaction, current: str, *, owned_only: bool,
                      speakable: bool = False) -> list[app_commands.Choice[str]]:
        found = await self.service.suggest(interaction.user.id, current, guild_id=interaction.guild_id,
                                           owned_only=owned_only, speakable=speakable)
        return [app_commands.Choice(name=self.choice_name(c, interaction.user.id), value=str(c.id))
                for c in found[:25]]

    async def own_autocomplete(self, interaction: discord.Interaction, current: str) -> list[app_commands.Choice[str]]:
        return await self.suggest(interaction, current, owned_only=True)

    async def any_autocomplete(self, interaction: discord.Interaction, current: str) -> list[app_commands.Choice[str]]:
        return await self.suggest(interaction, current, owned_only=False)

    async def speak_autocomplete(self, interaction: discord.Interaction,
                                 current: str) -> list[app_commands.Choice[str]]:
        return await self.suggest(interaction, current, owned_only=True, speakable=True)

    @staticmethod
    def avatar_from(avatar_url: str | None, avatar: discord.Attachment | None) -> str | None:
        """The avatar link given: an uploaded image (stored by its CDN URL) wins over a typed link."""
        if avatar is not None:
            rules.check_avatar_upload(avatar.filename, avatar.content_type, avatar.size)
            return avatar.url
        return avatar_url

    # --- /persona --------------------------------------------------------------------------------

    @persona.command(name="create", description="Create a character you can speak as.")
    @app_commands.describe(name="Its name (1-80 characters; Discord refuses names with 'clyde' or 'discord')",
                           avatar_url="A link to its picture (https://...)", avatar="Or upload its picture",
                           description="Who it is", public="Let others see it (default: only you)")
    async def persona_create(self, interaction: discord.Interaction, *, name: app_commands.Range[str, 1, 100],
                             avatar_url: str | None = None, avatar: discord.Attachment | None = None,
                             description: app_commands.Range[str, 1, 2000] | None = None,
                             public: bool = False) -> None:
        guild_id = guild_of(interaction)
        info = await self.service.create(interaction.user.id, name, avatar_url=self.avatar_from(avatar_url, avatar),
                                         description=description, public=public, guild_id=guild_id)
        await respond(
            interaction, f"Created **{md(info.name)}**. Speak as it with `/speak`.",
            embed=self.character_embed(info, viewer_id=interaction.user.id), ephemeral=True,
        )

    @persona.command(name="edit", description="Change one of your characters (only what you give changes).")
    @app_commands.describe(persona="Your character", name="A new name", avatar_url="A new picture link",
                           avatar="Or upload a new picture", remove_avatar="Remove its picture",
                           description="A new description", public="Let others see it")
    @app_commands.autocomplete(persona=own_autocomplete)
    async def persona_edit(self, interaction: discord.Interaction, *, persona: str,
                           name: app_commands.Range[str, 1, 100] | None = None, avatar_url: str | None = None,
                           avatar: discord.Attachment | None = None, remove_avatar: bool = False,
                           description: app_commands.Range[str, 1, 2000] | None = None,
                           public: bool | None = None) -> None:
        guild_id = guild_of(interaction)
        target = await self.service.resolve(interaction.user.id, persona, guild_id=guild_id, owned_only=True)
        picture = self.avatar_from(avatar_url, avatar)
        info = await self.service.edit(
            interaction.user.id, target.id,
            name=name if name is not None else UNSET,
            avatar_url=None if remove_avatar else (picture if picture is not None else UNSET),
            description=description if description is not None else UNSET,
            public=public if public is not None else UNSET,
        )
        info = await self.service.get(interaction.user.id, info.id, guild_id=guild_id)
        await respond(
            interaction, f"Saved **{md(info.name)}**.", embed=self.character_embed(info, viewer_id=interaction.user.id),
            ephemeral=True)

    @persona.command(name="server", description="Give one of your characters another name or picture on this "
                                                "server, or hide it here.")
    @app_commands.describe(persona="Your character", nickname="Its name on this server",
                           avatar_url="Its picture on this server (link)", avatar="Or upload it",
                           hidden="Hide it on this server", reset="Forget this server's name, picture and hiding")
    @app_commands.autocomplete(persona=own_autocomplete)
    async def persona_server(self, interaction: discord.Interaction, *, persona: str,
                             nickname: app_commands.Range[str, 1, 100] | None = None, avatar_url: str | None = None,
                             avatar: discord.Attachment | None = None, hidden: bool | None = None,
                             reset: bool = False) -> None:
        guild_id = guild_of(interaction)
        target = await self.service.resolve(interaction.user.id, persona, guild_id=guild_id, owned_only=True)
        if reset:
            await self.service.clear_override(interaction.user.id, target.id, guild_id)
        else:
            picture = self.avatar_from(avatar_url, avatar)
            await self.service.set_override(
                interaction.user.id, target.id, guild_id,
                nickname=nickname if nickname is not None else UNSET,
                avatar_url=picture if picture is not None else UNSET,
                hidden=hidden if hidden is not None else UNSET,
            )
        info = await self.service.get(interaction.user.id, target.id, guild_id=guild_id)
        await respond(
            interaction, f"Saved **{md(info.name)}** for this server.",
            embed=self.character_embed(info, viewer_id=interaction.user.id), ephemeral=True)

    @persona.command(name="show", description="Show a character: yours, or someone's public one.")
    @app_commands.describe(persona="The character")
    @app_commands.autocomplete(persona=any_autocomplete)
    async def persona_show(self, interaction: discord.Interaction, persona: str) -> None:
        guild_id = guild_of(interaction)
        info = await self.service.resolve(interaction.user.id, persona, guild_id=guild_id)
        await respond(interaction, embed=self.character_embed(info, viewer_id=interaction.user.id),
                      ephemeral=True)

    @persona.command(name="list", description="List your characters, or someone's public ones.")
    @app_commands.describe(user="Whose characters (default: yours)")
    async def persona_list(self, interaction: discord.Interaction, user: discord.Member | None = None) -> None:
        guild_id = guild_of(interaction)
        own = user is None or user.id == interaction.user.id
        owner = interaction.user if user is None else user

        async def fetch(page: int) -> Any:
            if own:
                return await self.service.list_owned(owner.id, guild_id=guild_id, page=page, per_page=PER_PAGE)
            return await self.service.list_public(owner.id, guild_id=guild_id, page=page, per_page=PER_PAGE)

        await interaction.response.defer(ephemeral=True, thinking=True)  # up to 25 pages are read
        first = await fetch(1)
        if first.total == 0:
            text = ("You have no characters yet. Make one with `/persona create`." if own
                    else f"{owner.display_name} has no public characters.")
            await respond(interaction, text, ephemeral=True)
            return
        data = [first] + [await fetch(n) for n in range(2, min(first.pages, MAX_LIST_PAGES) + 1)]
        title = "Your characters" if own else f"{owner.display_name}'s public characters"
        embeds = []
        for page in data:
            lines = []
            for c in page.items:
                flags = [] if c.is_public or not own else ["private"]
                if c.hidden:
                    flags.append("hidden here")
                shown = f" (as {md(c.display_name)})" if c.display_name != c.name else ""
                lines.append(f"**{md(c.name)}**{shown}" + (f" - {', '.join(flags)}" if flags else ""))
            embed = discord.Embed(title=title[:256], description="\n".join(lines)[:4096], color=COLOR)
            embed.set_footer(text=f"Page {page.page}/{page.pages} - {page.total} character(s)")
            embeds.append(embed)
        await Paginator(embeds, owner_id=interaction.user.id).send(interaction, ephemeral=True)

    @persona.command(name="delete", description="Delete one of your characters (messages already posted stay).")
    @app_commands.describe(persona="Your character")
    @app_commands.autocomplete(persona=own_autocomplete)
    async def persona_delete(self, interaction: discord.Interaction, persona: str) -> None:
        target = await self.service.resolve(interaction.user.id, persona, guild_id=guild_of(interaction),
                                            owned_only=True)
        gone = await self.service.delete(interaction.user.id, target.id)
        await respond(interaction, f"Deleted **{md(gone.name)}**.", ephemeral=True)

    # --- /speak ----------------------------------------------------------------------------------

    def _channel(self, interaction: discord.Interaction) -> discord.abc.Messageable:
        guild = interaction.guild
        channel = guild.get_channel_or_thread(interaction.channel_id or 0) if guild else None
        found = channel or interaction.channel
        if found is None or not isinstance(found, discord.abc.Messageable):
            raise ValidationError("I can't post in this channel.")
        return found

    @app_commands.command(name="speak", description="Say something as one of your characters in this channel.")
    @app_commands.rename(as_="as")
    @app_commands.describe(as_="Your character", text="What it says")
    @app_commands.autocomplete(as_=speak_autocomplete)
    @app_commands.guild_only()
    async def speak(self, interaction: discord.Interaction, as_: str,
                    text: app_commands.Range[str, 1, 2000]) -> None:
        guild_id = guild_of(interaction)
        await interaction.response.defer(ephemeral=True, thinking=True)  # a webhook may have to be made first
        content = rules.clean_speech(text)
        character = await self.service.speaker_identity(interaction.user.id, as_, guild_id)
        channel = self._channel(interaction)
        await self.service.check_speak(guild_id, checks.lookup_channels(channel), interaction.user.id)
        message = await post_as_character(
            self.bot, self.service, channel, content, guild_id=guild_id, speaker_id=interaction.user.id,
            character_id=character.id, name=character.display_name, avatar_url=character.display_avatar_url,
            allowed_mentions=allowed_mentions(interaction.user, interaction.permissions))
        channel_id = getattr(channel, "id", interaction.channel_id or 0)
        if isinstance(interaction.user, discord.Member):
            self.bot.dispatch("character_speech", guild_id, channel_id, interaction.user, message)
        await respond(
            interaction, f"Posted as **{md(character.display_name)}**. `/speech edit` or `/speech delete` change it.",
            ephemeral=True)

    # --- /speech ---------------------------------------------------------------------------------

    async def _target(self, interaction: discord.Interaction, message_id: str | None) -> SpeechInfo:
        """The caller's own character message: the one given, or their latest in this channel."""
        guild_id = guild_of(interaction)
        if message_id is None or not message_id.strip():
            return await self.service.last_speech(guild_id, interaction.channel_id or 0, interaction.user.id)
        return await self.service.own_speech(guild_id, parse_message_id(message_id), interaction.user.id)

    def _speech_channel(self, speech: SpeechInfo) -> discord.abc.Messageable:
        guild = self.bot.get_guild(speech.guild_id)
        channel = guild.get_channel_or_thread(speech.channel_id) if guild else None
        if channel is None or not isinstance(channel, discord.abc.Messageable):
            raise DomainError("The channel of that message no longer exists.")
        return channel

    async def _same_webhook(self, channel: discord.abc.Messageable, speech: SpeechInfo) -> bool:
        hook = await self.bot.webhooks.get(channel)
        return hook.id == speech.webhook_id

    @speech.command(name="edit", description="Change the text of a message you posted as a character.")
    @app_commands.describe(text="The new text", message_id="The message's id or link (default: your latest here)")
    async def speech_edit(self, interaction: discord.Interaction, text: app_commands.Range[str, 1, 2000],
                          message_id: str | None = None) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        speech = await self._target(interaction, message_id)
        await self._edit(interaction, speech, text)

    async def _edit(self, interaction: discord.Interaction, speech: SpeechInfo, text: str) -> None:
        """Replace the text of ``speech`` (already checked to be the caller's); answers as a followup."""
        content = rules.clean_speech(text)
        channel = self._speech_channel(speech)
        if not await self._same_webhook(channel, speech):
            raise DomainError("That message was posted through a webhook that has since been deleted, so Discord "
                              "no longer lets me edit it. You can still delete it with `/speech delete`.")
        try:
            await self.bot.webhooks.edit(channel, speech.message_id, content=content,
                                         allowed_mentions=allowed_mentions(interaction.user, interaction.permissions))
        except discord.NotFound as exc:
            if exc.code != UNKNOWN_MESSAGE:
                raise
            await self.service.forget_speech(speech.guild_id, [speech.message_id])
            raise SpeechNotFoundError("That message no longer exists.") from exc
        await respond(interaction, f"Edited your message as **{md(speech.character_name)}**.", ephemeral=True)

    async def edit_menu(self, interaction: discord.Interaction, message: discord.Message) -> None:
        """Apps -> Edit speech: a form with the message's current text."""
        speech = await self.service.own_speech(guild_of(interaction), message.id, interaction.user.id)
        await interaction.response.send_modal(EditSpeechModal(self, speech, message.content))

    @speech.command(name="delete", description="Delete a message you posted as a character.")
    @app_commands.describe(message_id="The message's id or link (default: your latest here)")
    async def speech_delete(self, interaction: discord.Interaction, message_id: str | None = None) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        speech = await self._target(interaction, message_id)
        await self._delete(speech)
        await respond(interaction, f"Deleted your message as **{md(speech.character_name)}**.",
                      ephemeral=True)

    async def _delete(self, speech: SpeechInfo) -> None:
        await delete_posted(self.bot, self.service, speech)

    async def who_text(self, guild: discord.Guild | None, speech: SpeechInfo) -> str:
        member = guild.get_member(speech.speaker_id) if guild else None
        who = f"<@{speech.speaker_id}>" + (f" ({member.name})" if member else "")
        return f"**{md(speech.character_name)}**'s message was written by {who} on {when(speech)}."

    @speech.command(name="who", description="Who wrote a message posted as a character?")
    @app_commands.describe(message_id="The message's id or link")
    async def speech_who(self, interaction: discord.Interaction, message_id: str) -> None:
        speech = await self.service.speech(guild_of(interaction), parse_message_id(message_id))
        await respond(interaction, await self.who_text(interaction.guild, speech), ephemeral=True,
                      allowed_mentions=discord.AllowedMentions.none())

    async def who_wrote_menu(self, interaction: discord.Interaction, message: discord.Message) -> None:
        """Apps -> Who wrote this? on any message."""
        try:
            speech = await self.service.speech(guild_of(interaction), message.id)
        except SpeechNotFoundError:
            text = ("That message was not posted as a character." if message.webhook_id is None
                    else "That message was not posted as a character through me, so I don't know who wrote it.")
            raise SpeechNotFoundError(text) from None
        await respond(interaction, await self.who_text(interaction.guild, speech), ephemeral=True,
                      allowed_mentions=discord.AllowedMentions.none())

    # --- listeners -------------------------------------------------------------------------------

    @commands.Cog.listener()
    async def on_raw_reaction_add(self, payload: discord.RawReactionActionEvent) -> None:
        emoji = str(payload.emoji)
        if payload.guild_id is None or emoji not in WHO_EMOJI + DELETE_EMOJI:
            return
        if payload.member is None or payload.member.bot:
            return
        try:
            speech = await self.service.speech(payload.guild_id, payload.message_id)
        except SpeechNotFoundError:
            return
        member = payload.member
        if emoji in WHO_EMOJI:
            with contextlib.suppress(discord.HTTPException):  # DMs closed: nothing more to do
                await send(member, await self.who_text(member.guild, speech)
                           + f"\n(in <#{speech.channel_id}>, message {speech.message_id})")
        elif member.id == speech.speaker_id:
            await self._delete(speech)
            return
        else:
            return
        channel = member.guild.get_channel_or_thread(payload.channel_id)
        if channel is not None and isinstance(channel, discord.abc.Messageable):
            with contextlib.suppress(discord.HTTPException):  # without Manage Messages the reaction stays
                await channel.get_partial_message(payload.message_id).remove_reaction(
                    payload.emoji, member)

    @commands.Cog.listener()
    async def on_raw_message_delete(self, payload: discord.RawMessageDeleteEvent) -> None:
        cached = payload.cached_message
        if cached is not None and cached.webhook_id is None:
            return  # a member's own message: never in the speech log
        if payload.guild_id is not None:
            await self.service.forget_speech(payload.guild_id, [payload.message_id])

    @commands.Cog.listener()
    async def on_raw_bulk_message_delete(self, payload: discord.RawBulkMessageDeleteEvent) -> None:
        if payload.guild_id is not None:
            await self.service.forget_speech(payload.guild_id, payload.message_ids)


async def setup(bot: GuildkeepBot) -> None:
    await bot.add_cog(Personas(bot))
