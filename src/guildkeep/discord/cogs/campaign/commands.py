"""``/campaign``, ``/character``, ``/npc`` and ``/say``: every decision is the campaign service's.

This file talks to Discord: the campaign's two roles (made at ``/campaign create``, given and taken as
players join, leave, are kicked and as the GM changes), and posting through the channel's bot-owned
webhook with the shared ``discord/speech.py`` helper, so messages are logged in the characters' speech log
(``/speech edit``, ``/speech who`` and "Who wrote this?" work on them) and in the campaign's own log (the
GM deletes any message of their campaign with ``/campaign unsay`` or a ❌ reaction).

Every command finds the campaign with ``checks.channels_of``: used in a thread (or forum post) of a
campaign's channel, it is that campaign, and ``/say`` posts into the thread.
"""

from __future__ import annotations

import contextlib
import logging
from typing import TYPE_CHECKING

from discord.ext import commands

import discord
from discord import app_commands
from guildkeep.campaign import rules
from guildkeep.campaign.service import SESSION_JOB, CampaignService
from guildkeep.characters import rules as character_rules
from guildkeep.characters.service import UNSET
from guildkeep.db import utcnow
from guildkeep.discord import checks
from guildkeep.discord.cogs.campaign import render
from guildkeep.discord.cogs.campaign.views import DeleteCampaignView
from guildkeep.discord.cogs.characters import allowed_mentions, parse_message_id
from guildkeep.discord.errors import BotPermissionError
from guildkeep.discord.limits import clip, respond, send
from guildkeep.discord.speech import delete_posted, post_as_character
from guildkeep.errors import DomainError, PermissionDeniedError, ValidationError
from guildkeep.scheduler.results import JobInfo

if TYPE_CHECKING:
    from guildkeep.discord.bot import GuildkeepBot

log = logging.getLogger(__name__)

Choices = list[app_commands.Choice[str]]
CHOICES_MAX = 25


def guild_of(interaction: discord.Interaction) -> int:
    return checks.guild_of(interaction, "Campaigns are played inside a server, not in direct messages.")


def can_manage(interaction: discord.Interaction) -> bool:
    return bool(interaction.permissions.manage_guild)


def avatar_from(avatar_url: str | None, avatar: discord.Attachment | None) -> str | None:
    """An uploaded image (stored by its CDN URL) wins over a typed link."""
    if avatar is not None:
        character_rules.check_avatar_upload(avatar.filename, avatar.content_type, avatar.size)
        return avatar.url
    return avatar_url


class CampaignCommands(commands.Cog):
    """Campaigns per channel, their players' characters, the GM's NPCs and speaking as them."""

    campaign = app_commands.Group(name="campaign", description="The RPG campaign played in this channel",
                                  guild_only=True)
    character = app_commands.Group(name="character", description="Your character in this channel's campaign",
                                   guild_only=True)
    npc = app_commands.Group(name="npc", description="The GM's non-player characters in this campaign",
                             guild_only=True)

    def __init__(self, bot: GuildkeepBot) -> None:
        self.bot = bot
        self.service = CampaignService(bot.db)

    async def cog_load(self) -> None:
        self.bot.scheduler.register(SESSION_JOB, self.remind_session)

    async def cog_unload(self) -> None:
        self.bot.scheduler.unregister(SESSION_JOB)

    async def remind_session(self, job: JobInfo) -> None:
        """The scheduler's handler for ``campaign.session``: ping the players' role in the campaign's channel."""
        due = await self.service.session_due(job)
        if due is None:
            return  # deleted or archived since
        campaign, session = due
        channel = self.bot.get_channel(campaign.channel_id)
        if channel is None or not isinstance(channel, discord.abc.Messageable):
            return
        ping = f"<@&{campaign.player_role_id}> " if campaign.player_role_id else ""
        text = f"{ping}The session of **{render.md(campaign.name)}** starts now!"
        if session.note:
            text += f"\n{session.note}"
        roles = [discord.Object(campaign.player_role_id)] if campaign.player_role_id else False
        await send(channel, text, allowed_mentions=discord.AllowedMentions(everyone=False, users=False, roles=roles))

    # --- Discord helpers ---------------------------------------------------------------------------

    @staticmethod
    def _channel(interaction: discord.Interaction) -> discord.abc.GuildChannel | discord.Thread:
        channel = interaction.channel
        if channel is None or not isinstance(channel, (discord.abc.GuildChannel, discord.Thread)):
            raise ValidationError("I can't tell which channel this is.")
        return channel

    @staticmethod
    async def _member(guild: discord.Guild, user_id: int) -> discord.Member | None:
        member = guild.get_member(user_id)
        if member is None:
            with contextlib.suppress(discord.HTTPException):
                member = await guild.fetch_member(user_id)
        return member

    async def _give(self, guild: discord.Guild | None, user_id: int, role_id: int | None) -> bool:
        """Give a role; False when Discord refused (the bot lacks Manage Roles or the role is above it)."""
        if guild is None or role_id is None or (member := await self._member(guild, user_id)) is None:
            return False
        try:
            await member.add_roles(discord.Object(role_id), reason="guildkeep campaign")
        except discord.HTTPException:
            return False
        return True

    async def _take(self, guild: discord.Guild | None, user_id: int, role_id: int | None) -> bool:
        """Take a role away; True when the member no longer has it (or has left the server)."""
        if guild is None or role_id is None:
            return False
        member = await self._member(guild, user_id)
        if member is None or all(r.id != role_id for r in member.roles):
            return True
        try:
            await member.remove_roles(discord.Object(role_id), reason="guildkeep campaign")
        except discord.HTTPException:
            return False
        return True

    @staticmethod
    def _role_warning(done: bool) -> str:
        return "" if done else ("\nI could not change the campaign's role (I need Manage Roles, and my role "
                                "must be above the campaign's roles).")

    # --- autocomplete ------------------------------------------------------------------------------

    async def npc_autocomplete(self, interaction: discord.Interaction, current: str) -> Choices:
        if interaction.guild_id is None or interaction.channel_id is None:
            return []
        npcs = await self.service.suggest_npcs(interaction.guild_id, checks.channels_of(interaction), current)
        return [app_commands.Choice(name=clip(n.name, 100), value=f"{rules.NPC_PREFIX}{n.id}")
                for n in npcs[:CHOICES_MAX]]

    async def speaker_autocomplete(self, interaction: discord.Interaction, current: str) -> Choices:
        if interaction.guild_id is None or interaction.channel_id is None:
            return []
        found = await self.service.suggest_speakers(interaction.guild_id, checks.channels_of(interaction),
                                                    interaction.user.id, current)
        choices = []
        for s in found[:CHOICES_MAX]:
            if s.npc_id is not None:
                choices.append(app_commands.Choice(name=clip(f"{s.name} (NPC)", 100),
                                                   value=f"{rules.NPC_PREFIX}{s.npc_id}"))
            else:
                choices.append(app_commands.Choice(name=clip(s.name, 100),
                                                   value=f"{rules.CHARACTER_PREFIX}{s.character_id}"))
        return choices

    # --- /campaign ---------------------------------------------------------------------------------

    @campaign.command(name="create", description="Start a campaign in this channel; you are its GM.")
    @app_commands.describe(name="The campaign's name (default: the channel's name)")
    async def campaign_create(self, interaction: discord.Interaction,
                              name: app_commands.Range[str, 1, 100] | None = None) -> None:
        guild_id = guild_of(interaction)
        channel = self._channel(interaction)
        if not interaction.permissions.manage_channels:
            raise PermissionDeniedError("Starting a campaign makes two roles for this channel, so it needs the "
                                        "Manage Channels permission here. Ask a moderator to start it and "
                                        "/campaign transfer it to you.")
        await interaction.response.defer(ephemeral=True, thinking=True)
        info = await self.service.create(guild_id, checks.lookup_channels(channel), interaction.user.id,
                                         name or channel.name)
        guild = interaction.guild
        assert guild is not None
        player_name, gm_name = rules.role_names(info.name)
        made: list[discord.Role] = []
        try:
            made.append(await guild.create_role(name=player_name, mentionable=True, reason="guildkeep campaign"))
            made.append(await guild.create_role(name=gm_name, mentionable=True, reason="guildkeep campaign"))
        except discord.HTTPException as exc:
            for role in made:
                with contextlib.suppress(discord.HTTPException):
                    await role.delete(reason="guildkeep campaign not started")
            await self.service.delete(guild_id, channel.id, interaction.user.id)
            raise BotPermissionError("I need the Manage Roles permission to make the campaign's player and GM "
                                     "roles; the campaign was not started.") from exc
        webhook_id: int | None = None
        with contextlib.suppress(DomainError, discord.HTTPException):
            webhook_id = (await self.bot.webhooks.get(channel)).id  # type: ignore[arg-type]
        info = await self.service.set_discord_ids(guild_id, info.id, player_role_id=made[0].id,
                                                  gm_role_id=made[1].id, webhook_id=webhook_id)
        given = await self._give(guild, interaction.user.id, info.gm_role_id)
        text = (f"Started **{render.md(info.name)}**. Players join with `/campaign join` and make their "
                "character with `/character create`." + self._role_warning(given))
        if webhook_id is None:
            text += "\nI can't manage webhooks here yet, so characters can't speak until I can."
        await respond(interaction, text, embed=render.campaign_embed(info), ephemeral=True,
                      allowed_mentions=discord.AllowedMentions.none())

    @campaign.command(name="info", description="The campaign played in this channel.")
    async def campaign_info(self, interaction: discord.Interaction) -> None:
        guild_id = guild_of(interaction)
        channels = checks.channels_of(interaction)
        info = await self.service.get(guild_id, channels)
        characters = await self.service.list_characters(guild_id, channels)
        npcs = await self.service.list_npcs(guild_id, channels)
        session = await self.service.next_session(guild_id, channels)
        await respond(interaction, embed=render.campaign_embed(info, characters=len(characters), npcs=len(npcs),
                                                               session=session),
                      ephemeral=True, allowed_mentions=discord.AllowedMentions.none())

    @campaign.command(name="join", description="Join this channel's campaign as a player.")
    async def campaign_join(self, interaction: discord.Interaction) -> None:
        guild_id = guild_of(interaction)
        info = await self.service.join(guild_id, checks.channels_of(interaction), interaction.user.id)
        given = await self._give(interaction.guild, interaction.user.id, info.player_role_id)
        await respond(interaction, f"You joined **{render.md(info.name)}**. Make your character with "
                      "`/character create`." + self._role_warning(given), ephemeral=True)

    @campaign.command(name="leave", description="Leave this channel's campaign.")
    async def campaign_leave(self, interaction: discord.Interaction) -> None:
        guild_id = guild_of(interaction)
        left = await self.service.leave(guild_id, checks.channels_of(interaction), interaction.user.id)
        taken = await self._take(interaction.guild, interaction.user.id, left.campaign.player_role_id)
        await respond(interaction, f"You left **{render.md(left.campaign.name)}**. Your character stays yours."
                      + self._role_warning(taken), ephemeral=True)

    @campaign.command(name="kick", description="(GM) Remove a player from this campaign.")
    @app_commands.describe(player="The player to remove")
    async def campaign_kick(self, interaction: discord.Interaction, player: discord.Member) -> None:
        guild_id = guild_of(interaction)
        left = await self.service.kick(guild_id, checks.channels_of(interaction), interaction.user.id, player.id,
                                       can_manage=can_manage(interaction))
        taken = await self._take(interaction.guild, player.id, left.campaign.player_role_id)
        await respond(interaction, f"Removed {player.mention} from **{render.md(left.campaign.name)}**."
                      + self._role_warning(taken), ephemeral=True, allowed_mentions=discord.AllowedMentions.none())

    @campaign.command(name="transfer", description="(GM) Hand this campaign to another GM.")
    @app_commands.describe(new_gm="The new GM")
    async def campaign_transfer(self, interaction: discord.Interaction, new_gm: discord.Member) -> None:
        guild_id = guild_of(interaction)
        if new_gm.bot:
            raise ValidationError("A bot can't be a campaign's GM.")
        info, old = await self.service.transfer(guild_id, checks.channels_of(interaction), interaction.user.id,
                                                new_gm.id, can_manage=can_manage(interaction))
        done = await self._take(interaction.guild, old, info.gm_role_id)
        done = await self._give(interaction.guild, new_gm.id, info.gm_role_id) and done
        await self._take(interaction.guild, new_gm.id, info.player_role_id)
        await respond(interaction, f"{new_gm.mention} is now the GM of **{render.md(info.name)}**."
                      + self._role_warning(done), ephemeral=True, allowed_mentions=discord.AllowedMentions.none())

    @campaign.command(name="archive", description="(GM) Make this campaign read-only, or writable again.")
    @app_commands.describe(archived="True: read-only (default); False: unarchive")
    async def campaign_archive(self, interaction: discord.Interaction, archived: bool = True) -> None:
        guild_id = guild_of(interaction)
        info = await self.service.archive(guild_id, checks.channels_of(interaction), interaction.user.id, archived,
                                          can_manage=can_manage(interaction))
        text = "archived: read-only" if info.archived else "writable again"
        await respond(interaction, f"**{render.md(info.name)}** is {text}.", ephemeral=True)

    @campaign.command(name="delete", description="(GM) Delete this campaign, its NPCs and its roles.")
    async def campaign_delete(self, interaction: discord.Interaction) -> None:
        guild_id = guild_of(interaction)
        channels = checks.channels_of(interaction)
        info = await self.service.get(guild_id, channels)
        if info.gm_id != interaction.user.id and not can_manage(interaction):
            raise PermissionDeniedError("Only this campaign's GM can delete it.")
        view = DeleteCampaignView(interaction.user.id, info.name)
        await respond(interaction, f"Delete **{render.md(info.name)}**, its NPCs and its two roles? The "
                      "players' characters stay theirs.", view=view, ephemeral=True)
        view.message = await interaction.original_response()  # so a timeout greys the buttons out
        if await view.wait() or not view.value:
            return
        gone = await self.service.delete(guild_id, channels, interaction.user.id,
                                         can_manage=can_manage(interaction))
        problems = False
        for role_id in (gone.player_role_id, gone.gm_role_id):
            if role_id is None:
                continue
            try:
                await self.bot.http.delete_role(guild_id, role_id, reason="guildkeep campaign deleted")
            except discord.NotFound:
                pass  # already deleted by hand
            except discord.HTTPException:
                problems = True
        await respond(interaction, f"Deleted **{render.md(gone.name)}**." + self._role_warning(not problems),
                      ephemeral=True)

    @campaign.command(name="schedule", description="(GM) Schedule the next session; the players are reminded.")
    @app_commands.describe(when="`in 30 minutes`, `in 2 days` or `2027-03-14 18:30` (UTC)",
                           weekly="Every week from then on", note="What to tell the players")
    async def campaign_schedule(self, interaction: discord.Interaction, when: app_commands.Range[str, 1, 40],
                                weekly: bool = False, note: app_commands.Range[str, 1, 500] | None = None) -> None:
        guild_id = guild_of(interaction)
        session = await self.service.schedule_session(guild_id, checks.channels_of(interaction), interaction.user.id,
                                                      when, now=utcnow(), weekly=weekly, note=note,
                                                      can_manage=can_manage(interaction))
        stamp = int(session.run_at.timestamp())
        every = " and every week after" if session.weekly else ""
        await respond(interaction, f"Next session: <t:{stamp}:F> (<t:{stamp}:R>){every}. I will remind the "
                      "players here.", ephemeral=True)

    @campaign.command(name="unschedule", description="(GM) Cancel the scheduled session.")
    async def campaign_unschedule(self, interaction: discord.Interaction) -> None:
        guild_id = guild_of(interaction)
        cancelled = await self.service.cancel_session(guild_id, checks.channels_of(interaction), interaction.user.id,
                                                      now=utcnow(), can_manage=can_manage(interaction))
        await respond(interaction, "Cancelled the scheduled session." if cancelled
                      else "No session was scheduled.", ephemeral=True)

    @campaign.command(name="unsay", description="(GM) Delete a message posted in your campaign.")
    @app_commands.describe(message_id="The message's id or link")
    async def campaign_unsay(self, interaction: discord.Interaction, message_id: str) -> None:
        guild_id = guild_of(interaction)
        await interaction.response.defer(ephemeral=True, thinking=True)
        target = parse_message_id(message_id)
        await self.service.gm_speech(guild_id, target, interaction.user.id, can_manage=can_manage(interaction))
        speech = await self.service.characters.speech(guild_id, target)
        await delete_posted(self.bot, self.service.characters, speech)
        await self.service.forget_speech(guild_id, [target])
        await respond(interaction, f"Deleted the message posted as **{render.md(speech.character_name)}**.",
                      ephemeral=True)

    # --- /character --------------------------------------------------------------------------------

    @character.command(name="create", description="Make your character for this campaign (or pick a /persona).")
    @app_commands.describe(name="Its name (1-80 characters)", avatar_url="A link to its picture (https://...)",
                           avatar="Or upload its picture", description="Who it is",
                           persona="Or play one of your existing characters instead")
    async def character_create(self, interaction: discord.Interaction, *,
                               name: app_commands.Range[str, 1, 100] | None = None, avatar_url: str | None = None,
                               avatar: discord.Attachment | None = None,
                               description: app_commands.Range[str, 1, 2000] | None = None,
                               persona: str | None = None) -> None:
        guild_id = guild_of(interaction)
        channels = checks.channels_of(interaction)
        if persona:
            played = await self.service.bind_character(guild_id, channels, interaction.user.id, persona)
        elif name:
            played = await self.service.create_character(guild_id, channels, interaction.user.id, name,
                                                         avatar_url=avatar_from(avatar_url, avatar),
                                                         description=description)
        else:
            raise ValidationError("Give your character a `name` (or pick one of yours in `persona`).")
        await respond(interaction, f"You play **{render.md(played.character.display_name)}** here. Speak with "
                      "`/say`.", embed=render.character_embed(played), ephemeral=True,
                      allowed_mentions=discord.AllowedMentions.none())

    @character.command(name="edit", description="Change your character in this campaign.")
    @app_commands.describe(name="A new name", avatar_url="A new picture link", avatar="Or upload a new picture",
                           remove_avatar="Remove its picture", description="A new description")
    async def character_edit(self, interaction: discord.Interaction, *,
                             name: app_commands.Range[str, 1, 100] | None = None, avatar_url: str | None = None,
                             avatar: discord.Attachment | None = None, remove_avatar: bool = False,
                             description: app_commands.Range[str, 1, 2000] | None = None) -> None:
        guild_id = guild_of(interaction)
        picture = avatar_from(avatar_url, avatar)
        played = await self.service.edit_character(
            guild_id, checks.channels_of(interaction), interaction.user.id,
            name=name if name is not None else UNSET,
            avatar_url=None if remove_avatar else (picture if picture is not None else UNSET),
            description=description if description is not None else UNSET)
        await respond(interaction, f"Saved **{render.md(played.character.display_name)}**.",
                      embed=render.character_embed(played), ephemeral=True,
                      allowed_mentions=discord.AllowedMentions.none())

    @character.command(name="show", description="Show a player's character in this campaign (default: yours).")
    @app_commands.describe(player="Whose character (default: yours)")
    async def character_show(self, interaction: discord.Interaction, player: discord.Member | None = None) -> None:
        guild_id = guild_of(interaction)
        who = player or interaction.user
        played = await self.service.character_of(guild_id, checks.channels_of(interaction), who.id)
        await respond(interaction, embed=render.character_embed(played), ephemeral=True,
                      allowed_mentions=discord.AllowedMentions.none())

    @character.command(name="list", description="The characters played in this campaign.")
    async def character_list(self, interaction: discord.Interaction) -> None:
        guild_id = guild_of(interaction)
        channels = checks.channels_of(interaction)
        info = await self.service.get(guild_id, channels)
        played = await self.service.list_characters(guild_id, channels)
        await respond(interaction, embed=render.characters_embed(f"Characters of {info.name}", played),
                      ephemeral=True, allowed_mentions=discord.AllowedMentions.none())

    # --- /npc --------------------------------------------------------------------------------------

    @npc.command(name="create", description="(GM) Add an NPC to this campaign.")
    @app_commands.describe(name="Its name (1-80 characters)", avatar_url="A link to its picture",
                           avatar="Or upload its picture")
    async def npc_create(self, interaction: discord.Interaction, name: app_commands.Range[str, 1, 100],
                         avatar_url: str | None = None, avatar: discord.Attachment | None = None) -> None:
        guild_id = guild_of(interaction)
        npc = await self.service.create_npc(guild_id, checks.channels_of(interaction), interaction.user.id, name,
                                            avatar_url=avatar_from(avatar_url, avatar),
                                            can_manage=can_manage(interaction))
        await respond(interaction, f"Added **{render.md(npc.name)}**. Speak as it with `/say`.",
                      embed=render.npc_embed(npc), ephemeral=True)

    @npc.command(name="edit", description="(GM) Rename an NPC or change its picture.")
    @app_commands.describe(npc="The NPC", name="A new name", avatar_url="A new picture link",
                           avatar="Or upload a new picture", remove_avatar="Remove its picture")
    @app_commands.autocomplete(npc=npc_autocomplete)
    async def npc_edit(self, interaction: discord.Interaction, *, npc: str,
                       name: app_commands.Range[str, 1, 100] | None = None, avatar_url: str | None = None,
                       avatar: discord.Attachment | None = None, remove_avatar: bool = False) -> None:
        guild_id = guild_of(interaction)
        picture = avatar_from(avatar_url, avatar)
        info = await self.service.edit_npc(
            guild_id, checks.channels_of(interaction), interaction.user.id, npc,
            name=name if name is not None else UNSET,
            avatar_url=None if remove_avatar else (picture if picture is not None else UNSET),
            can_manage=can_manage(interaction))
        await respond(interaction, f"Saved **{render.md(info.name)}**.", embed=render.npc_embed(info),
                      ephemeral=True)

    @npc.command(name="list", description="This campaign's NPCs.")
    async def npc_list(self, interaction: discord.Interaction) -> None:
        guild_id = guild_of(interaction)
        channels = checks.channels_of(interaction)
        info = await self.service.get(guild_id, channels)
        npcs = await self.service.list_npcs(guild_id, channels)
        await respond(interaction, embed=render.npcs_embed(f"NPCs of {info.name}", npcs), ephemeral=True)

    @npc.command(name="delete", description="(GM) Delete an NPC (its messages stay).")
    @app_commands.describe(npc="The NPC")
    @app_commands.autocomplete(npc=npc_autocomplete)
    async def npc_delete(self, interaction: discord.Interaction, npc: str) -> None:
        guild_id = guild_of(interaction)
        gone = await self.service.delete_npc(guild_id, checks.channels_of(interaction), interaction.user.id, npc,
                                             can_manage=can_manage(interaction))
        await respond(interaction, f"Deleted **{render.md(gone.name)}**.", ephemeral=True)

    # --- /say --------------------------------------------------------------------------------------

    @app_commands.command(name="say", description="Speak in this channel's campaign as your character (or, "
                                                  "for the GM, an NPC).")
    @app_commands.rename(as_="as")
    @app_commands.describe(text="What it says", as_="Your character, or (GM) an NPC; default: your character")
    @app_commands.autocomplete(as_=speaker_autocomplete)
    @app_commands.guild_only()
    async def say(self, interaction: discord.Interaction, text: app_commands.Range[str, 1, 2000],
                  as_: str | None = None) -> None:
        guild_id = guild_of(interaction)
        channel = self._channel(interaction)
        await interaction.response.defer(ephemeral=True, thinking=True)  # a webhook may have to be made first
        content = character_rules.clean_speech(text)
        speaker = await self.service.speaker(guild_id, checks.lookup_channels(channel), interaction.user.id, as_)
        message = await post_as_character(
            self.bot, self.service.characters, channel, content, guild_id=guild_id,  # type: ignore[arg-type]
            speaker_id=interaction.user.id, character_id=speaker.character_id, name=speaker.name,
            avatar_url=speaker.avatar_url, allowed_mentions=allowed_mentions(interaction.user,
                                                                             interaction.permissions))
        try:
            await self.service.record_speech(guild_id, speaker.campaign_id, message.id, speaker.npc_id)
        except Exception:
            speech = await self.service.characters.speech(guild_id, message.id)
            with contextlib.suppress(discord.HTTPException, DomainError):
                await delete_posted(self.bot, self.service.characters, speech)
            raise
        if message.webhook_id:
            await self.service.note_webhook(guild_id, speaker.campaign_id, message.webhook_id)
        if isinstance(interaction.user, discord.Member):
            self.bot.dispatch("character_speech", guild_id, channel.id, interaction.user, message)
        await respond(interaction, f"Posted as **{render.md(speaker.name)}**. `/speech edit` changes it.",
                      ephemeral=True)
