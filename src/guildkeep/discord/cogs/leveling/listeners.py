"""Leveling listening: XP from messages, character speech, reactions, commands and voice; announcements; level
roles kept in step with levels; the quest reset job the scheduler runs for each server."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from collections.abc import Sequence
from typing import TYPE_CHECKING

from discord.ext import commands, tasks

import discord
from discord import app_commands
from guildkeep.discord.cogs.leveling import render
from guildkeep.discord.cogs.leveling.render import RoleSync
from guildkeep.discord.limits import send
from guildkeep.leveling import rules
from guildkeep.leveling.ingest import VoiceTracker, XpIngestor
from guildkeep.leveling.results import ActivityResult, LevelChangeResult, ServerConfigInfo
from guildkeep.leveling.service import LevelingService
from guildkeep.scheduler.results import JobInfo

if TYPE_CHECKING:
    from guildkeep.discord.bot import GuildkeepBot

log = logging.getLogger(__name__)

VOICE_CHECKPOINT_SECONDS = 60


def voice_state(member: discord.Member) -> rules.VoiceState:
    """The parts of a member's voice state the eligibility rule reads."""
    voice = member.voice
    afk = voice is not None and voice.channel is not None and member.guild.afk_channel == voice.channel
    return rules.VoiceState(
        self_mute=bool(voice and voice.self_mute), self_deaf=bool(voice and voice.self_deaf),
        mute=bool(voice and voice.mute), deaf=bool(voice and voice.deaf), bot=member.bot, afk_channel=afk,
    )


def parent_id(channel: object) -> int | None:
    """A thread's parent channel, or a channel's category."""
    return getattr(channel, "parent_id", None) or getattr(channel, "category_id", None)


def role_ids(member: object) -> list[int]:
    """The ids of a member's roles (none for a user outside the server)."""
    return [r.id for r in getattr(member, "roles", ())]


def unmanageable(role: discord.Role) -> str | None:
    """Why the bot cannot give or take ``role``, or None when it can."""
    if role.is_default():
        return "everyone has @everyone"
    if role.managed:
        return "it belongs to an integration (a bot, a booster or a subscription role)"
    me = role.guild.me
    if not me.guild_permissions.manage_roles:
        return "I need the Manage Roles permission"
    if role >= me.top_role and me.id != role.guild.owner_id:
        return f"it is not below my highest role ({me.top_role.name}); move my role above it in the server settings"
    return None


class LevelingListeners:
    """Mixed into the cog: ``bot``, ``service``, ``ingestor`` and ``voice`` are set by it."""

    bot: GuildkeepBot
    service: LevelingService
    ingestor: XpIngestor
    voice: VoiceTracker
    last_channel: dict[tuple[int, int], int]
    _role_locks: defaultdict[int, asyncio.Lock]
    _loop_work: asyncio.Lock

    # ------------------------------------------------------------------------------ notifications

    def _channel(self, guild: discord.Guild, *ids: int | None) -> discord.abc.Messageable | None:
        for channel_id in ids:
            channel = guild.get_channel_or_thread(channel_id) if channel_id else None
            if isinstance(channel, discord.TextChannel | discord.Thread):
                return channel
        return None

    async def _send(self, target: discord.abc.Messageable | None, text: str) -> None:
        if target is None:
            return
        try:
            await send(target, text, allowed_mentions=discord.AllowedMentions(users=True))
        except discord.HTTPException as exc:
            log.warning("could not send a leveling notification: %s", exc)

    def remember_channel(self, guild_id: int, user_id: int, channel_id: int | None) -> None:
        """Where the member was last active (a message or a command): "same channel" announcements go there."""
        if channel_id is not None:
            self.last_channel[(guild_id, user_id)] = channel_id

    def _same_channel(self, guild: discord.Guild, user_id: int, fallback: int | None) -> list[int | None]:
        return [self.last_channel.get((guild.id, user_id)), fallback]

    async def handle_outcome(self, outcome: ActivityResult, *, channel_id: int | None = None) -> None:
        """Announce level-ups, quests and achievements as the server configured, and fix level roles.
        ``channel_id`` (where a command caused the outcome) is used when the member has no last channel."""
        guild = self.bot.get_guild(outcome.guild_id)
        if guild is None:
            return
        cfg = await self.service.get_server_config(guild.id)
        for change in outcome.level_changes:
            await self.apply_level_roles(guild, change.user_id)
            if change.leveled_up:
                await self.announce_level_up(guild, cfg, change, channel_id=channel_id)
        for user_id, quest in outcome.quests_completed:
            target = self._channel(guild, cfg.settings.quest_channel,
                                   *self._same_channel(guild, user_id, channel_id))
            await self._send(target, f"🎯 <@{user_id}> completed the quest **{quest.name}** (+{quest.reward_xp} XP)!")
        for user_id, achievement in outcome.achievements_earned:
            target = self._channel(guild, cfg.settings.achievement_channel,
                                   *self._same_channel(guild, user_id, channel_id))
            await self._send(target, f"🏆 <@{user_id}> earned the achievement **{achievement.name}**"
                                     f"{f' (+{achievement.reward_xp} XP)' if achievement.reward_xp else ''}!")

    async def announce_level_up(self, guild: discord.Guild, cfg: ServerConfigInfo, change: LevelChangeResult, *,
                                channel_id: int | None = None) -> None:
        """Say a member went up a level, where the server's level-up mode says."""
        mode = cfg.settings.level_up_mode
        if mode == "off":
            return
        member = guild.get_member(change.user_id)
        name = member.display_name if member else str(change.user_id)
        text = rules.render_template(cfg.template, user=name, mention=f"<@{change.user_id}>",
                                     level=change.new_level, xp=change.xp, server=guild.name)
        if mode == "dm":
            if member is not None and not member.bot:  # a bot (the bot itself, even) has no DMs to open
                with contextlib.suppress(discord.HTTPException):
                    await send(member, text)
            return
        ids = (cfg.settings.level_up_channel,) if mode == "channel" else ()
        await self._send(self._channel(guild, *ids, *self._same_channel(guild, change.user_id, channel_id)), text)

    # ------------------------------------------------------------------------------ level roles

    async def apply_level_roles(self, guild: discord.Guild, user_id: int) -> RoleSync:
        """Give the member the level roles their level earns and take back the ones the bot gave that it no
        longer earns (idempotent). Each role is one request, so the result counts only what Discord accepted."""
        async with self._role_locks[guild.id]:  # one reconciliation at a time per server (events re-trigger it)
            return await self._apply_level_roles(guild, user_id)

    async def _apply_level_roles(self, guild: discord.Guild, user_id: int) -> RoleSync:
        result = RoleSync()
        member = guild.get_member(user_id)
        if member is None:
            return result
        add, remove = await self.service.level_role_changes(guild.id, user_id, role_ids(member))
        for wanted, giving in ((add, True), (remove, False)):
            for role_id in sorted(wanted):
                role = guild.get_role(role_id)
                reason = "the role no longer exists" if role is None else unmanageable(role)
                if role is None or reason is not None:
                    result.failed.append((role_id, reason or ""))
                    continue
                try:
                    if giving:
                        await member.add_roles(role, reason="level role")
                    else:
                        await member.remove_roles(role, reason="level role")
                except discord.HTTPException as exc:
                    log.warning("could not %s level role %s of %s in %s: %s", "give" if giving else "take",
                                role_id, user_id, guild.id, exc)
                    result.failed.append((role_id, "Discord refused the change" if exc.status != 403
                                          else "I'm missing the permission to change it"))
                    continue
                (result.given if giving else result.taken).append(role_id)
        if add or remove or result.given:
            held = (set(role_ids(member)) | set(result.given)) - set(result.taken)
            await self.service.record_level_roles(guild.id, user_id, given=result.given, held=held)
        return result

    async def _sync_roles(self, guild: discord.Guild) -> RoleSync:
        """Reconcile every member's level roles."""
        total = RoleSync()
        for member in list(guild.members):
            if not member.bot:
                total.merge(await self.apply_level_roles(guild, member.id))
        return total

    # ---------------------------------------------------------------------------------- activity

    @commands.Cog.listener()
    async def on_message(self, message: discord.Message) -> None:
        if message.guild is None or message.author.bot or message.webhook_id is not None:
            return
        self.remember_channel(message.guild.id, message.author.id, message.channel.id)
        await self.ingestor.message(
            message.guild.id, message.author.id, message_id=message.id, channel_id=message.channel.id,
            parent_channel_id=parent_id(message.channel), role_ids=role_ids(message.author),
            username=message.author.name,
        )

    @commands.Cog.listener()
    async def on_character_speech(self, guild_id: int, channel_id: int, member: discord.Member,
                                  message: discord.Message) -> None:
        """A member spoke as a character (the webhook's message is skipped above): credit the real speaker."""
        self.remember_channel(guild_id, member.id, channel_id)
        await self.ingestor.message(
            guild_id, member.id, message_id=message.id, channel_id=channel_id,
            parent_channel_id=parent_id(member.guild.get_channel_or_thread(channel_id)),
            role_ids=role_ids(member), username=member.name,
        )

    @commands.Cog.listener()
    async def on_raw_reaction_add(self, payload: discord.RawReactionActionEvent) -> None:
        if payload.guild_id is None or payload.member is None or payload.member.bot:
            return
        guild = self.bot.get_guild(payload.guild_id)
        channel = guild.get_channel_or_thread(payload.channel_id) if guild else None
        await self.ingestor.reaction(payload.guild_id, payload.user_id, message_id=payload.message_id,
                                     emoji=str(payload.emoji), channel_id=payload.channel_id,
                                     parent_channel_id=parent_id(channel), role_ids=role_ids(payload.member))

    @commands.Cog.listener()
    async def on_app_command_completion(self, interaction: discord.Interaction,
                                        _command: app_commands.Command | app_commands.ContextMenu) -> None:
        if interaction.guild_id is None or interaction.user.bot:
            return
        self.remember_channel(interaction.guild_id, interaction.user.id, interaction.channel_id)
        await self.ingestor.command(interaction.guild_id, interaction.user.id, interaction_id=interaction.id,
                                    channel_id=interaction.channel_id,
                                    parent_channel_id=parent_id(interaction.channel),
                                    role_ids=role_ids(interaction.user))

    @commands.Cog.listener()
    async def on_voice_state_update(self, member: discord.Member, before: discord.VoiceState,
                                    after: discord.VoiceState) -> None:
        if member.bot and before.channel == after.channel:
            return
        channels = {c for c in (before.channel, after.channel) if c is not None}
        touched = {member.id: member}
        for channel in channels:
            touched.update({m.id: m for m in channel.members})
        if after.channel is None:
            await self._voice_update(member, None)
        for other in touched.values():
            if other.voice is not None and other.voice.channel is not None:
                await self._voice_update(other, other.voice.channel)

    @commands.Cog.listener()
    async def on_ready(self) -> None:
        """Members already in voice when the bot (re)connects start accruing time now; every server has its
        quest reset job."""
        try:
            await self.ingestor.preload(g.id for g in self.bot.guilds)  # a few queries for every server
        except Exception:
            log.exception("could not preload leveling state; servers load one by one instead")
        for guild in self.bot.guilds:
            for channel in [*guild.voice_channels, *guild.stage_channels]:
                for member in channel.members:
                    await self._voice_update(member, channel)
        await self._ensure_quest_reset_jobs(self.bot.guilds)

    @commands.Cog.listener()
    async def on_guild_join(self, guild: discord.Guild) -> None:
        """A new server gets its quest reset job."""
        await self._ensure_quest_reset_jobs([guild])

    async def _voice_update(self, member: discord.Member, channel: discord.abc.GuildChannel | None) -> None:
        eligible = False
        if channel is not None:
            others = [voice_state(m) for m in getattr(channel, "members", ()) if m.id != member.id]
            eligible = rules.voice_eligible(voice_state(member), others)
        await self.service.get_server_config(member.guild.id)  # loaded first: the tracker and the credit move together
        channel_id = self.voice.channel_of(member.guild.id, member.id)
        start = self.voice.since_of(member.guild.id, member.id)
        seconds = self.voice.update(member.guild.id, member.id, channel.id if channel else None, eligible)
        if seconds:
            await self.ingestor.voice(member.guild.id, member.id, seconds, channel_id=channel_id,
                                      role_ids=role_ids(member), start=start)

    async def _credit_voice(self) -> None:
        """Every flush credits the voice time so far (the same window as messages)."""

        def roles_of(guild_id: int, user_id: int) -> list[int]:
            guild = self.bot.get_guild(guild_id)
            return role_ids(guild.get_member(user_id) if guild else None)

        await self.ingestor.credit_voice(self.voice, roles_of)

    @tasks.loop(seconds=VOICE_CHECKPOINT_SECONDS)
    async def voice_checkpoint(self) -> None:
        async with self._loop_work:
            await self._credit_voice()

    @commands.Cog.listener()
    async def on_member_join(self, member: discord.Member) -> None:
        """A member who comes back gets the level roles their kept XP earns."""
        if not member.bot:
            await self.apply_level_roles(member.guild, member.id)

    @commands.Cog.listener()
    async def on_member_update(self, before: discord.Member, after: discord.Member) -> None:
        """A level role added or removed by hand is put back as the member's level says."""
        if {r.id for r in before.roles} != {r.id for r in after.roles}:
            managed = {r.role_id for r in await self.service.list_level_roles(after.guild.id)}
            if managed & ({r.id for r in before.roles} ^ {r.id for r in after.roles}):
                await self.apply_level_roles(after.guild, after.id)

    # ------------------------------------------------------------------------------ quest resets

    async def _ensure_quest_reset_jobs(self, guilds: Sequence[discord.Guild]) -> None:
        for guild in list(guilds):
            try:
                await self.service.ensure_quest_reset_job(guild.id)
            except Exception:
                log.exception("could not schedule the quest reset of guild %s", guild.id)

    async def run_quest_reset(self, job: JobInfo) -> None:
        """The scheduler's ``leveling.quest_reset`` job: this period's quests for one server, announced in its
        quest channel when this run created them. A failure raises, so the scheduler retries it."""
        done = await self.service.run_quest_reset(job)
        guild = self.bot.get_guild(done.guild_id)
        if done.created and done.quest_channel and guild is not None:
            await self._send(self._channel(guild, done.quest_channel), render.new_quests(done.created))
