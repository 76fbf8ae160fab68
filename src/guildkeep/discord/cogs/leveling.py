"""Leveling on Discord: XP from messages, voice, reactions and commands; ranks, cards, quests, achievements,
level roles and the server's leveling config. Every rule and write lives in `guildkeep.leveling`."""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Literal

import aiohttp
from discord.ext import commands, tasks

import discord
from discord import app_commands
from guildkeep.db import utcnow
from guildkeep.discord.checks import ADMIN, admin_check
from guildkeep.discord.limits import clip, respond, send
from guildkeep.discord.views import ConfirmView, Paginator
from guildkeep.errors import ValidationError
from guildkeep.leveling import rules
from guildkeep.leveling.cards import RankCardData, fetch_image, render_rank_card_async
from guildkeep.leveling.ingest import VoiceTracker, XpIngestor
from guildkeep.leveling.service import (
    ActivityOutcome,
    LevelChange,
    LevelingService,
    QuestView,
    ServerConfigView,
)

if TYPE_CHECKING:
    from guildkeep.discord.bot import GuildkeepBot

log = logging.getLogger(__name__)

COLOR = discord.Color.blurple()
PER_PAGE = 10
MAX_LEADERBOARD_PAGES = 25
VOICE_CHECKPOINT_SECONDS = 60
QUEST_RESET_MINUTES = 5
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
# Where XP is earned: text, voice and stage channels, threads (their parent counts too) and categories.
XpChannel = discord.TextChannel | discord.VoiceChannel | discord.StageChannel | discord.Thread | discord.CategoryChannel


def _bar(done: int, total: int, width: int = 12) -> str:
    filled = 0 if total <= 0 else min(width, round(width * done / total))
    return "█" * filled + "░" * (width - filled)


def _voice_state(member: discord.Member) -> rules.VoiceState:
    voice = member.voice
    afk = voice is not None and voice.channel is not None and member.guild.afk_channel == voice.channel
    return rules.VoiceState(
        self_mute=bool(voice and voice.self_mute), self_deaf=bool(voice and voice.self_deaf),
        mute=bool(voice and voice.mute), deaf=bool(voice and voice.deaf), bot=member.bot, afk_channel=afk,
    )


def _parent_id(channel: object) -> int | None:
    return getattr(channel, "parent_id", None) or getattr(channel, "category_id", None)


def _role_ids(member: object) -> list[int]:
    return [r.id for r in getattr(member, "roles", ())]


def requirement_text(kind: str, value: int) -> str:
    """What an achievement asks for, in words: "level 5", "100 messages", "1 reaction", "60 minutes in voice"."""
    if kind == "level":
        return f"level {value:,}"
    if kind == "voice":  # counted in seconds
        count, unit = (value // 60, "minute") if value % 60 == 0 else (value, "second")
        return f"{count:,} {unit}{'' if count == 1 else 's'} in voice"
    noun = {"messages": "message", "reactions": "reaction", "commands": "command"}.get(kind, kind)
    return f"{value:,} {noun}{'' if value == 1 else 's'}"


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


@dataclass
class RoleSync:
    """What one reconciliation did: roles given and taken (Discord accepted), and the ones that failed why."""

    given: list[int] = field(default_factory=list)
    taken: list[int] = field(default_factory=list)
    failed: list[tuple[int, str]] = field(default_factory=list)

    def merge(self, other: RoleSync) -> None:
        self.given += other.given
        self.taken += other.taken
        self.failed += other.failed

    def report(self) -> str:
        text = f"Level roles synced: {len(self.given)} given, {len(self.taken)} taken."
        if self.failed:
            counts = Counter(self.failed)
            lines = [f"• <@&{role_id}> ({n} member{'s' if n != 1 else ''}): {reason}"
                     for (role_id, reason), n in counts.most_common()]
            text += f"\n{len(self.failed)} change{'s' if len(self.failed) != 1 else ''} failed:\n" + "\n".join(lines)
        return text


def _quest_line(quest: QuestView, progress: int | None = None, completed: bool = False) -> str:
    reward = f"{quest.reward_xp} XP"
    if quest.reward_multiplier > 1 and quest.multiplier_minutes:
        reward += f" + ×{quest.reward_multiplier:g} XP for {quest.multiplier_minutes} min"
    ends = f" · ends {discord.utils.format_dt(quest.expires_at, 'R')}" if quest.expires_at else ""
    head = f"{'✅' if completed else '▫️'} **{quest.name}** ({quest.quest_type}, {quest.difficulty}) — {reward}{ends}"
    if progress is None:
        return f"{head}\n{quest.description}"
    bar = _bar(progress, quest.requirement_value)
    return f"{head}\n{quest.description}\n`{bar}` {progress}/{quest.requirement_value}"


class Leveling(commands.Cog):
    """XP, levels, rank cards, quests, achievements and level roles."""

    levels = app_commands.Group(name="levels", description="Configure leveling on this server.",
                                default_permissions=ADMIN, guild_only=True)
    levels_roles = app_commands.Group(name="roles", description="Roles granted by level.", parent=levels)
    quest = app_commands.Group(name="quest", description="Manage quests.", default_permissions=ADMIN,
                               guild_only=True)
    achievement = app_commands.Group(name="achievement", description="Manage achievements.",
                                     default_permissions=ADMIN, guild_only=True)
    xp = app_commands.Group(name="xp", description="Change members' XP.", default_permissions=ADMIN,
                            guild_only=True)
    level = app_commands.Group(name="level", description="Change members' levels.", default_permissions=ADMIN,
                               guild_only=True)

    def __init__(self, bot: GuildkeepBot) -> None:
        self.bot = bot
        self.service = LevelingService(bot.db, bus=bot.cache_bus)
        self.ingestor = XpIngestor(self.service, flush_seconds=bot.settings.write_behind_flush_seconds,
                                   on_outcome=self.handle_outcome, before_flush=self._credit_voice)
        self.voice = VoiceTracker()
        self.last_channel: dict[tuple[int, int], int] = {}
        self.http: aiohttp.ClientSession | None = None
        self._role_locks: defaultdict[int, asyncio.Lock] = defaultdict(asyncio.Lock)
        self._loop_work = asyncio.Lock()  # held while a background loop touches the database

    async def cog_load(self) -> None:
        self.http = aiohttp.ClientSession()
        self.ingestor.start()
        self.voice_checkpoint.start()
        self.quest_resets.start()

    async def cog_unload(self) -> None:
        async with self._loop_work:  # never cancel a loop in the middle of a database call
            self.quest_resets.cancel()
            self.voice_checkpoint.cancel()
        await self._credit_voice()
        await self.ingestor.stop()
        self.service.cache.detach()
        if self.http is not None:
            await self.http.close()

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

    async def handle_outcome(self, outcome: ActivityOutcome, *, channel_id: int | None = None) -> None:
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
            target = self._channel(guild, cfg.quest_channel, *self._same_channel(guild, user_id, channel_id))
            await self._send(target, f"🎯 <@{user_id}> completed the quest **{quest.name}** (+{quest.reward_xp} XP)!")
        for user_id, achievement in outcome.achievements_earned:
            target = self._channel(guild, cfg.achievement_channel, *self._same_channel(guild, user_id, channel_id))
            await self._send(target, f"🏆 <@{user_id}> earned the achievement **{achievement.name}**"
                                     f"{f' (+{achievement.reward_xp} XP)' if achievement.reward_xp else ''}!")

    async def announce_level_up(self, guild: discord.Guild, cfg: ServerConfigView, change: LevelChange, *,
                                channel_id: int | None = None) -> None:
        if cfg.level_up_mode == "off":
            return
        member = guild.get_member(change.user_id)
        name = member.display_name if member else str(change.user_id)
        text = rules.render_template(cfg.template, user=name, mention=f"<@{change.user_id}>",
                                     level=change.new_level, xp=change.xp, server=guild.name)
        if cfg.level_up_mode == "dm":
            if member is not None:
                with contextlib.suppress(discord.HTTPException):
                    await send(member, text)
            return
        ids = (cfg.level_up_channel,) if cfg.level_up_mode == "channel" else ()
        await self._send(self._channel(guild, *ids, *self._same_channel(guild, change.user_id, channel_id)), text)

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
        add, remove = await self.service.level_role_changes(guild.id, user_id, _role_ids(member))
        for role_ids, giving in ((add, True), (remove, False)):
            for role_id in sorted(role_ids):
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
            held = (set(_role_ids(member)) | set(result.given)) - set(result.taken)
            await self.service.record_level_roles(guild.id, user_id, given=result.given, held=held)
        return result

    # ---------------------------------------------------------------------------------- listeners

    @commands.Cog.listener()
    async def on_message(self, message: discord.Message) -> None:
        if message.guild is None or message.author.bot or message.webhook_id is not None:
            return
        self.remember_channel(message.guild.id, message.author.id, message.channel.id)
        await self.ingestor.message(
            message.guild.id, message.author.id, message_id=message.id, channel_id=message.channel.id,
            parent_channel_id=_parent_id(message.channel), role_ids=_role_ids(message.author),
            username=message.author.name,
        )

    @commands.Cog.listener()
    async def on_character_speech(self, guild_id: int, channel_id: int, member: discord.Member,
                                  message: discord.Message) -> None:
        """A member spoke as a character (the webhook's message is skipped above): credit the real speaker."""
        self.remember_channel(guild_id, member.id, channel_id)
        await self.ingestor.message(
            guild_id, member.id, message_id=message.id, channel_id=channel_id,
            parent_channel_id=_parent_id(member.guild.get_channel_or_thread(channel_id)),
            role_ids=_role_ids(member), username=member.name,
        )

    @commands.Cog.listener()
    async def on_raw_reaction_add(self, payload: discord.RawReactionActionEvent) -> None:
        if payload.guild_id is None or payload.member is None or payload.member.bot:
            return
        guild = self.bot.get_guild(payload.guild_id)
        channel = guild.get_channel_or_thread(payload.channel_id) if guild else None
        await self.ingestor.reaction(payload.guild_id, payload.user_id, message_id=payload.message_id,
                                     emoji=str(payload.emoji), channel_id=payload.channel_id,
                                     parent_channel_id=_parent_id(channel), role_ids=_role_ids(payload.member))

    @commands.Cog.listener()
    async def on_app_command_completion(self, interaction: discord.Interaction,
                                        _command: app_commands.Command | app_commands.ContextMenu) -> None:
        if interaction.guild_id is None or interaction.user.bot:
            return
        self.remember_channel(interaction.guild_id, interaction.user.id, interaction.channel_id)
        await self.ingestor.command(interaction.guild_id, interaction.user.id, interaction_id=interaction.id,
                                    channel_id=interaction.channel_id,
                                    parent_channel_id=_parent_id(interaction.channel),
                                    role_ids=_role_ids(interaction.user))

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
        """Members already in voice when the bot (re)connects start accruing time now."""
        try:
            await self.ingestor.preload(g.id for g in self.bot.guilds)  # a few queries for every server
        except Exception:
            log.exception("could not preload leveling state; servers load one by one instead")
        for guild in self.bot.guilds:
            for channel in [*guild.voice_channels, *guild.stage_channels]:
                for member in channel.members:
                    await self._voice_update(member, channel)

    async def _voice_update(self, member: discord.Member, channel: discord.abc.GuildChannel | None) -> None:
        eligible = False
        if channel is not None:
            others = [_voice_state(m) for m in getattr(channel, "members", ()) if m.id != member.id]
            eligible = rules.voice_eligible(_voice_state(member), others)
        await self.service.get_server_config(member.guild.id)  # loaded first: the tracker and the credit move together
        channel_id = self.voice.channel_of(member.guild.id, member.id)
        start = self.voice.since_of(member.guild.id, member.id)
        seconds = self.voice.update(member.guild.id, member.id, channel.id if channel else None, eligible)
        if seconds:
            await self.ingestor.voice(member.guild.id, member.id, seconds, channel_id=channel_id,
                                      role_ids=_role_ids(member), start=start)

    async def _credit_voice(self) -> None:
        """Every flush credits the voice time so far (the same window as messages)."""

        def roles_of(guild_id: int, user_id: int) -> list[int]:
            guild = self.bot.get_guild(guild_id)
            return _role_ids(guild.get_member(user_id) if guild else None)

        await self.ingestor.credit_voice(self.voice, roles_of)

    @tasks.loop(seconds=VOICE_CHECKPOINT_SECONDS)
    async def voice_checkpoint(self) -> None:
        async with self._loop_work:
            await self._credit_voice()

    @tasks.loop(minutes=QUEST_RESET_MINUTES)
    async def quest_resets(self) -> None:
        """Generate each period's daily and weekly quests (once per period, however often this runs)."""
        async with self._loop_work:
            await self._reset_all_quests()

    async def _reset_all_quests(self) -> None:
        for guild in list(self.bot.guilds):
            try:
                created = await self.service.reset_quests(guild.id)
            except Exception:
                log.exception("quest reset failed for guild %s", guild.id)
                continue
            cfg = await self.service.get_server_config(guild.id)
            if created and cfg.quest_channel:
                lines = "\n".join(f"• **{q.name}** — {q.description} ({q.reward_xp} XP)" for q in created)
                await self._send(self._channel(guild, cfg.quest_channel), f"📜 New quests are up!\n{lines}")

    @quest_resets.before_loop
    async def _before_resets(self) -> None:
        await self.bot.wait_until_ready()

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

    # ------------------------------------------------------------------------------ member commands

    async def _flush(self) -> None:
        """What a member sees reflects their latest activity."""
        await self.ingestor.flush()

    @app_commands.command(name="rank", description="Show a member's rank card.")
    @app_commands.describe(member="Whose card to show (you by default)")
    @app_commands.guild_only()
    async def rank(self, interaction: discord.Interaction, member: discord.Member | None = None) -> None:
        assert interaction.guild is not None
        target = member or interaction.user
        await interaction.response.defer(thinking=True)
        # From the ingestor's in-memory leaderboard, with activity not stored yet.
        view = await self.ingestor.standing(interaction.guild.id, target.id)
        position = view.rank
        card = await self.service.get_card(interaction.guild.id, target.id)
        avatar, background = await asyncio.gather(
            self._image(None if self.bot.sandbox else target.display_avatar.replace(size=256, format="png").url),
            self._image(card.background_url),
        )
        png = await render_rank_card_async(RankCardData(
            target.display_name, view.level, view.xp_into_level, view.xp_for_level, view.xp, position, card,
            avatar, background))
        await respond(
            interaction,
            f"**{target.display_name}** — level {view.level}, {rules.compact_number(view.xp)} XP"
            + (f", rank #{position}" if position else ""),
            file=discord.File(fp=io.BytesIO(png), filename="rank.png"),
        )

    async def _image(self, url: str | None) -> bytes | None:
        return await fetch_image(url, session=self.http, timeout_seconds=3)

    @app_commands.command(name="leaderboard", description="The server's XP leaderboard.")
    @app_commands.describe(page="Page to open")
    @app_commands.guild_only()
    async def leaderboard(self, interaction: discord.Interaction,
                          page: app_commands.Range[int, 1, 1000] = 1) -> None:
        assert interaction.guild is not None
        first = await self.ingestor.leaderboard(interaction.guild.id, 1, PER_PAGE)  # with activity not stored yet
        if not first.total:
            await respond(interaction, "Nobody has earned XP here yet.", ephemeral=True)
            return
        embeds = []
        for number in range(1, min(first.pages, MAX_LEADERBOARD_PAGES) + 1):
            lb = first if number == 1 else await self.ingestor.leaderboard(interaction.guild.id, number, PER_PAGE)
            embed = discord.Embed(title=f"{interaction.guild.name} leaderboard", color=COLOR, description="\n".join(
                f"**#{e.rank}** <@{e.user_id}> — level {e.level} · {rules.compact_number(e.xp)} XP"
                for e in lb.entries))
            embed.set_footer(text=f"Page {number}/{first.pages} · {first.total} members")
            embeds.append(embed)
        paginator = Paginator(embeds, owner_id=interaction.user.id, start=page - 1)
        await paginator.send(interaction)

    @app_commands.command(name="quests", description="Your active quests and your progress.")
    @app_commands.guild_only()
    async def quests(self, interaction: discord.Interaction) -> None:
        assert interaction.guild is not None
        mine = await self.ingestor.user_quests(interaction.guild.id, interaction.user.id)  # with pending progress
        if not mine:
            await respond(interaction, "There are no active quests right now.", ephemeral=True)
            return
        embed = discord.Embed(title="Your quests", color=COLOR, description="\n\n".join(
            _quest_line(q.quest, q.quest_specific_progress, q.completed) for q in mine)[:4000])
        await respond(interaction, embed=embed, ephemeral=True)

    @app_commands.command(name="achievements", description="Achievements earned and still to earn.")
    @app_commands.describe(member="Whose achievements to show (you by default)")
    @app_commands.guild_only()
    async def achievements(self, interaction: discord.Interaction, member: discord.Member | None = None) -> None:
        assert interaction.guild is not None
        target = member or interaction.user
        await self._flush()
        earned = {a.id: a for a in await self.service.get_user_achievements(interaction.guild.id, target.id)}
        every = await self.service.list_achievements(interaction.guild.id)
        if not every:
            await respond(interaction, "This server has no achievements yet.", ephemeral=True)
            return
        lines = [
            f"{'🏆' if a.id in earned else '🔒'} **{a.name}** — {a.description or a.requirement_type} "
            f"({requirement_text(a.requirement_type, a.requirement_value)}"
            f"{f', {a.reward_xp:,} XP' if a.reward_xp else ''})"
            for a in every
        ]
        embed = discord.Embed(title=f"{target.display_name}'s achievements ({len(earned)}/{len(every)})",
                              color=COLOR, description="\n".join(lines)[:4000])
        await respond(interaction, embed=embed)

    @app_commands.command(name="rankcard", description="Customise your rank card (with no options, shows it).")
    @app_commands.describe(
        background_url="An http(s) image link for the background", background_color="Hex colour, e.g. #23272a",
        primary_color="XP bar colour", secondary_color="XP bar track colour", border_color="Border colour",
        text_color="Text colour", style="Card style", reset="Go back to the default card",
    )
    @app_commands.guild_only()
    async def rankcard(
        self, interaction: discord.Interaction, *, background_url: str | None = None,
        background_color: str | None = None, primary_color: str | None = None, secondary_color: str | None = None,
        border_color: str | None = None, text_color: str | None = None,
        style: Literal["default", "minimal", "rounded"] | None = None, reset: bool = False,
    ) -> None:
        assert interaction.guild is not None
        changes = {k: v for k, v in {
            "background_url": background_url, "background_color": background_color, "primary_color": primary_color,
            "secondary_color": secondary_color, "border_color": border_color, "text_color": text_color,
            "card_style": style}.items() if v is not None}
        if reset:
            changes = dict.fromkeys(("background_url", "background_color", "primary_color", "secondary_color",
                                     "border_color", "text_color", "card_style"), "")
        card = await self.service.update_card(interaction.guild.id, interaction.user.id, **changes)
        shown = ", ".join(f"{k.replace('_', ' ')}: {v}" for k, v in asdict(card).items() if v)
        await respond(
            interaction,
            ("Saved your rank card." if changes else "Your rank card settings.") + (f"\n{shown}" if shown else ""),
            ephemeral=True)

    # ----------------------------------------------------------------------------------- admin: config

    @levels.command(name="config", description="View the leveling settings, or change them.")
    @app_commands.describe(
        xp_rate="Multiplier on all XP (0–10)", level_up_mode="Where level-ups are announced",
        level_up_message="Template with {user} {mention} {level} {xp} {server}",
        level_up_channel="Channel for level-ups (mode 'channel')", quest_channel="Channel for quest news",
        achievement_channel="Channel for achievement news", quest_reset_hour="Hour (UTC) quests reset",
        quest_reset_day="Weekday on which weekly quests reset", message_cooldown="Seconds between XP-earning messages",
        reaction_cooldown="Seconds between XP-earning reactions",
        command_cooldown="Seconds between XP-earning commands",
        message_xp_min="Least XP per message", message_xp_max="Most XP per message",
        voice_xp_per_minute="XP per eligible voice minute", reaction_xp="XP per reaction",
        command_xp="XP per command", curve="Level curve", curve_base="Curve base (linear/power)",
        curve_exponent="Curve exponent (power)", quests_enabled="Generate daily and weekly quests",
        clear="Unset a channel or go back to the default level-up message",
    )
    @admin_check
    async def levels_config(
        self, interaction: discord.Interaction, *,
        xp_rate: app_commands.Range[float, 0, 10] | None = None,
        level_up_mode: Literal["off", "same", "dm", "channel"] | None = None,
        level_up_message: str | None = None,
        level_up_channel: discord.TextChannel | None = None,
        quest_channel: discord.TextChannel | None = None,
        achievement_channel: discord.TextChannel | None = None,
        quest_reset_hour: app_commands.Range[int, 0, 23] | None = None,
        quest_reset_day: Literal["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday",
                                 "Sunday"] | None = None,
        message_cooldown: app_commands.Range[int, 0, 86400] | None = None,
        reaction_cooldown: app_commands.Range[int, 0, 86400] | None = None,
        command_cooldown: app_commands.Range[int, 0, 86400] | None = None,
        message_xp_min: app_commands.Range[int, 0, 1000] | None = None,
        message_xp_max: app_commands.Range[int, 0, 1000] | None = None,
        voice_xp_per_minute: app_commands.Range[int, 0, 1000] | None = None,
        reaction_xp: app_commands.Range[int, 0, 1000] | None = None,
        command_xp: app_commands.Range[int, 0, 1000] | None = None,
        curve: Literal["mee6", "linear", "power"] | None = None,
        curve_base: app_commands.Range[float, 1, 1000000] | None = None,
        curve_exponent: app_commands.Range[float, 1, 4] | None = None,
        quests_enabled: bool | None = None,
        clear: Literal["level_up_channel", "quest_channel", "achievement_channel", "level_up_message"] | None = None,
    ) -> None:
        assert interaction.guild is not None
        given = {
            "xp_rate": xp_rate, "level_up_mode": level_up_mode, "level_up_message": level_up_message,
            "level_up_channel": level_up_channel.id if level_up_channel else None,
            "quest_channel": quest_channel.id if quest_channel else None,
            "achievement_channel": achievement_channel.id if achievement_channel else None,
            "quest_reset_hour": quest_reset_hour,
            "quest_reset_day": WEEKDAYS.index(quest_reset_day) if quest_reset_day else None,
            "cooldowns": {source: seconds for source, seconds in (("message", message_cooldown),
                          ("reaction", reaction_cooldown), ("command", command_cooldown)) if seconds is not None}
            or None,
            "message_xp_min": message_xp_min, "message_xp_max": message_xp_max,
            "voice_xp_per_minute": voice_xp_per_minute, "reaction_xp": reaction_xp, "command_xp": command_xp,
            "curve": curve, "curve_base": curve_base, "curve_exponent": curve_exponent,
            "quests_enabled": quests_enabled,
        }
        changes = {k: v for k, v in given.items() if v is not None}
        if clear:
            changes[clear] = None
        if changes:
            cfg = await self.service.update_server_config_values(interaction.guild.id, changes)
        else:
            cfg = await self.service.get_server_config(interaction.guild.id)
        await respond(
            interaction,
            ("Saved. " if changes else "") + "Leveling settings:", embed=self._config_embed(cfg), ephemeral=True)

    def _config_embed(self, cfg: ServerConfigView) -> discord.Embed:
        def channel(cid: int | None) -> str:
            return f"<#{cid}>" if cid else "not set"

        embed = discord.Embed(title="Leveling settings", color=COLOR)
        embed.add_field(name="XP", value=(
            f"rate ×{cfg.xp_rate:g} · message {cfg.message_xp_min}–{cfg.message_xp_max} "
            f"(cooldown {cfg.cooldowns.get('message', 60)} s) · voice {cfg.voice_xp_per_minute}/min · "
            f"reaction {cfg.reaction_xp} ({cfg.cooldowns.get('reaction', 0)} s) · "
            f"command {cfg.command_xp} ({cfg.cooldowns.get('command', 0)} s)"), inline=False)
        curve = {"mee6": "MEE6 (5L²+50L+100)", "linear": f"linear ({cfg.curve_base:g}·L+75)",
                 "power": f"power ({cfg.curve_base:g}·L^{cfg.curve_exponent:g})"}[cfg.curve]
        embed.add_field(name="Curve", value=curve, inline=False)
        embed.add_field(name="Level-ups", value=f"{cfg.level_up_mode} · {channel(cfg.level_up_channel)}\n"
                                                f"`{clip(cfg.template, 900)}`", inline=False)
        embed.add_field(name="Quests", value=(
            f"{'on' if cfg.quests_enabled else 'off'} · reset {cfg.quest_reset_hour:02d}:00 UTC, weekly on "
            f"{WEEKDAYS[cfg.quest_reset_day]} · {channel(cfg.quest_channel)}"), inline=False)
        embed.add_field(name="Achievements", value=channel(cfg.achievement_channel), inline=False)
        no_xp = [f"<#{c}>" for c in cfg.no_xp_channels] + [f"<@&{r}>" for r in cfg.no_xp_roles]
        embed.add_field(name="No XP", value=", ".join(no_xp) or "none", inline=False)
        multipliers = [f"<@&{r}> ×{m:g}" for r, m in cfg.role_multipliers.items()] + [
            f"<#{c}> ×{m:g}" for c, m in cfg.channel_multipliers.items()]
        embed.add_field(name="Multipliers", value=", ".join(multipliers) or "none", inline=False)
        return embed

    @levels.command(name="noxp", description="Stop (or restart) XP in a channel or for a role.")
    @app_commands.describe(channel="Channel (or category) without XP", role="Role without XP",
                           remove="Give XP there again")
    @admin_check
    async def levels_noxp(self, interaction: discord.Interaction,
                          channel: XpChannel | None = None,
                          role: discord.Role | None = None, remove: bool = False) -> None:
        assert interaction.guild is not None
        if channel is None and role is None:
            raise ValidationError("Pick a channel or a role.")
        cfg = await self.service.get_server_config(interaction.guild.id)
        changes = {}
        if channel is not None:
            changes["no_xp_channels"] = self._toggle(cfg.no_xp_channels, channel.id, remove)
        if role is not None:
            changes["no_xp_roles"] = self._toggle(cfg.no_xp_roles, role.id, remove)
        cfg = await self.service.update_server_config_values(interaction.guild.id, changes)
        await respond(interaction, "Saved.", embed=self._config_embed(cfg), ephemeral=True)

    @staticmethod
    def _toggle(current: Iterable[int], item: int, remove: bool) -> list[int]:
        return sorted(set(current) - {item}) if remove else sorted({*current, item})

    @levels.command(name="multiplier", description="Set an XP multiplier for a role or channel (1 removes it).")
    @app_commands.describe(value="Multiplier, 0–10", role="Role", channel="Channel")
    @admin_check
    async def levels_multiplier(self, interaction: discord.Interaction, value: app_commands.Range[float, 0, 10],
                                role: discord.Role | None = None, channel: XpChannel | None = None) -> None:
        assert interaction.guild is not None
        if (role is None) == (channel is None):
            raise ValidationError("Pick exactly one role or channel.")
        cfg = await self.service.get_server_config(interaction.guild.id)
        name, current, key = ("role_multipliers", cfg.role_multipliers, role.id) if role else (
            "channel_multipliers", cfg.channel_multipliers, channel.id)  # type: ignore[union-attr]
        updated = {k: v for k, v in current.items() if k != key}
        if value != 1:
            updated[key] = value
        cfg = await self.service.update_server_config_values(interaction.guild.id, {name: updated})
        await respond(interaction, "Saved.", embed=self._config_embed(cfg), ephemeral=True)

    @levels.command(name="reset", description="Reset a member's XP, or the whole server's (asks first).")
    @app_commands.describe(member="The member to reset; leave empty to reset everyone")
    @admin_check
    async def levels_reset(self, interaction: discord.Interaction, member: discord.Member | None = None) -> None:
        assert interaction.guild is not None
        what = f"**{member.display_name}**'s XP, quests and achievements" if member else (
            "**everyone's** XP, quests and achievements on this server")
        view = ConfirmView(owner_id=interaction.user.id, confirmed="Resetting…", cancelled="Nothing was reset.")
        await respond(interaction, f"Reset {what}? This cannot be undone.", view=view, ephemeral=True)
        view.message = await interaction.original_response()  # so a timeout greys the buttons out
        if await view.wait() or not view.value:
            return
        await self._flush()
        if member is not None:
            await self.service.reset_member(interaction.guild.id, member.id)
            await self.apply_level_roles(interaction.guild, member.id)
            done = f"Reset {member.display_name}."
        else:
            count = await self.service.reset_server(interaction.guild.id)
            await self._sync_roles(interaction.guild)
            done = f"Reset {count} member{'' if count == 1 else 's'}."
        await respond(interaction, done, ephemeral=True)

    # ------------------------------------------------------------------------------- admin: roles

    @levels_roles.command(name="add", description="Give a role to members who reach a level.")
    @app_commands.describe(role="The role", level="Level that earns it",
                           stacked="Keep it after earning a higher-level role (default yes)")
    @admin_check
    async def roles_add(self, interaction: discord.Interaction, role: discord.Role,
                        level: app_commands.Range[int, 0, 1000], stacked: bool = True) -> None:
        assert interaction.guild is not None
        reason = unmanageable(role)
        if reason is not None:
            raise ValidationError(f"I can't use {role.mention} as a level role: {reason}.")
        await self.service.add_level_role(interaction.guild.id, role.id, level, stacked=stacked)
        holders = [m.id for m in role.members if not m.bot]
        below = sum(1 for lvl in (await self.service.levels_of(interaction.guild.id, holders)).values() if lvl < level)
        keep = (f" {below} member{' already has' if below == 1 else 's already have'} it below level {level} and "
                f"keep{'s' if below == 1 else ''} it: I only take back roles I gave.") if below else ""
        await respond(
            interaction,
            f"{role.mention} is now earned at level {level}{'' if stacked else ' (highest only)'}.{keep} "
            "Use `/levels roles sync` to apply it to everyone now.", ephemeral=True)

    @levels_roles.command(name="remove", description="Stop giving a role for a level.")
    @admin_check
    async def roles_remove(self, interaction: discord.Interaction, role: discord.Role) -> None:
        assert interaction.guild is not None
        await self.service.remove_level_role(interaction.guild.id, role.id)
        await respond(interaction, f"{role.mention} is no longer a level role.", ephemeral=True)

    @levels_roles.command(name="list", description="The level roles.")
    @admin_check
    async def roles_list(self, interaction: discord.Interaction) -> None:
        assert interaction.guild is not None
        roles = await self.service.list_level_roles(interaction.guild.id)
        text = "\n".join(f"Level {r.level}: <@&{r.role_id}>{'' if r.is_stacked else ' (highest only)'}"
                         for r in roles) or "No level roles yet. Add one with `/levels roles add`."
        await respond(interaction, text, ephemeral=True)

    @levels_roles.command(name="sync", description="Give and take level roles so everyone matches their level.")
    @admin_check
    async def roles_sync(self, interaction: discord.Interaction) -> None:
        assert interaction.guild is not None
        await interaction.response.defer(ephemeral=True, thinking=True)
        await self._flush()
        result = await self._sync_roles(interaction.guild)
        await respond(interaction, result.report(), ephemeral=True)

    async def _sync_roles(self, guild: discord.Guild) -> RoleSync:
        """Reconcile every member's level roles."""
        total = RoleSync()
        for member in list(guild.members):
            if not member.bot:
                total.merge(await self.apply_level_roles(guild, member.id))
        return total

    # ------------------------------------------------------------------------------ admin: xp, level

    async def _admin_change(self, interaction: discord.Interaction, member: discord.Member,
                            change: Callable[[int, int], Awaitable[LevelChange]], done: str) -> None:
        """Flush pending activity, apply an admin XP change, fix the member's level roles and report."""
        assert interaction.guild is not None
        await self._flush()
        result = await change(interaction.guild.id, member.id)
        await self.apply_level_roles(interaction.guild, member.id)
        await respond(
            interaction,
            f"{done} {member.mention}: now level {result.new_level} ({result.xp} XP).", ephemeral=True)

    @xp.command(name="add", description="Give a member XP.")
    @admin_check
    async def xp_add(self, interaction: discord.Interaction, member: discord.Member,
                     amount: app_commands.Range[int, 1, 10**9]) -> None:
        async def add(guild_id: int, user_id: int) -> LevelChange:
            outcome = await self.service.add_xp(guild_id, user_id, amount)
            await self.handle_outcome(outcome, channel_id=interaction.channel_id)
            view = await self.service.get_user_level(guild_id, user_id)
            return LevelChange(user_id, view.level, view.level, view.xp)

        await self._admin_change(interaction, member, add, f"Gave {amount} XP to")

    @xp.command(name="remove", description="Take XP from a member.")
    @admin_check
    async def xp_remove(self, interaction: discord.Interaction, member: discord.Member,
                        amount: app_commands.Range[int, 1, 10**9]) -> None:
        await self._admin_change(interaction, member, lambda g, u: self.service.remove_xp(g, u, amount),
                                 f"Took {amount} XP from")

    @xp.command(name="set", description="Set a member's total XP.")
    @admin_check
    async def xp_set(self, interaction: discord.Interaction, member: discord.Member,
                     amount: app_commands.Range[int, 0, 10**9]) -> None:
        await self._admin_change(interaction, member, lambda g, u: self.service.set_xp(g, u, amount),
                                 "Set the XP of")

    @level.command(name="set", description="Set a member's level (their XP moves to the start of it).")
    @admin_check
    async def level_set(self, interaction: discord.Interaction, member: discord.Member,
                        level: app_commands.Range[int, 0, 1000]) -> None:
        await self._admin_change(interaction, member, lambda g, u: self.service.set_level(g, u, level),
                                 "Set the level of")

    # ------------------------------------------------------------------------------- admin: quests

    @quest.command(name="create", description="Create a custom quest.")
    @app_commands.describe(
        name="Quest name", requirement="What counts", amount="How much of it", reward_xp="XP paid on completion",
        quest_type="Kind of quest", description="What to tell players", refresh="How often progress restarts",
        difficulty="Difficulty", reward_multiplier="XP multiplier paid on completion (1 = none)",
        multiplier_minutes="How long the multiplier lasts", duration_hours="Ends after this many hours",
    )
    @admin_check
    async def quest_create(
        self, interaction: discord.Interaction, *, name: str,
        requirement: Literal["total_messages", "total_reactions", "voice_time_seconds", "commands_used"],
        amount: app_commands.Range[int, 1, 10**9], reward_xp: app_commands.Range[int, 0, 10**7],
        quest_type: Literal["special", "event", "challenge", "daily", "weekly"] = "special",
        description: str = "", refresh: Literal["once", "daily", "weekly", "monthly"] | None = None,
        difficulty: Literal["easy", "medium", "hard"] = "medium",
        reward_multiplier: app_commands.Range[float, 1, 10] = 1.0,
        multiplier_minutes: app_commands.Range[int, 0, 43200] = 0,
        duration_hours: app_commands.Range[int, 1, 8760] | None = None,
    ) -> None:
        assert interaction.guild is not None
        expires = utcnow() + timedelta(hours=duration_hours) if duration_hours else None
        created = await self.service.create_quest(
            interaction.guild.id, name, description, quest_type, requirement, amount, reward_xp,
            reward_multiplier, difficulty, refresh, multiplier_minutes=multiplier_minutes, expires_at=expires,
            created_by=interaction.user.id)
        await respond(interaction, f"Created quest #{created.id}:\n{_quest_line(created)}",
                                                ephemeral=True)

    @quest.command(name="list", description="Every active quest, with ids.")
    @admin_check
    async def quest_list(self, interaction: discord.Interaction) -> None:
        assert interaction.guild is not None
        active = await self.service.get_guild_active_quests(interaction.guild.id)
        text = "\n".join(f"`#{q.id}` {_quest_line(q)}" for q in active) or "No active quests."
        await respond(interaction, text, ephemeral=True)

    @quest.command(name="end", description="End a quest now.")
    @app_commands.describe(quest_id="The quest's id (see /quest list)")
    @admin_check
    async def quest_end(self, interaction: discord.Interaction, quest_id: int) -> None:
        assert interaction.guild is not None
        ended = await self.service.end_quest(interaction.guild.id, quest_id)
        await respond(interaction, f"Ended quest **{ended.name}**.", ephemeral=True)

    @quest_end.autocomplete("quest_id")
    async def quest_id_autocomplete(self, interaction: discord.Interaction,
                                    current: str) -> list[app_commands.Choice[int]]:
        if interaction.guild_id is None:
            return []
        typed = current.lower().lstrip("#")
        return [app_commands.Choice(name=f"#{q.id} {q.name} ({q.quest_type})"[:100], value=q.id)
                for q in await self.service.get_guild_active_quests(interaction.guild_id)
                if typed in q.name.lower() or typed == str(q.id)][:25]

    # -------------------------------------------------------------------------- admin: achievements

    @achievement.command(name="create", description="Create an achievement.")
    @app_commands.describe(name="Name", requirement="What counts", value="How much of it",
                           reward_xp="XP paid once when earned", description="What to tell players",
                           badge_url="An http(s) badge image")
    @admin_check
    async def achievement_create(
        self, interaction: discord.Interaction, *, name: str,
        requirement: Literal["level", "messages", "voice", "reactions", "commands"],
        value: app_commands.Range[int, 1, 10**9], reward_xp: app_commands.Range[int, 0, 10**7] = 0,
        description: str = "", badge_url: str | None = None,
    ) -> None:
        assert interaction.guild is not None
        created = await self.service.create_achievement(interaction.guild.id, name, description, requirement, value,
                                                        reward_xp, badge_url)
        await respond(
            interaction,
            f"Created achievement **{created.name}** ({requirement_text(requirement, value)}, {reward_xp:,} XP).",
            ephemeral=True)

    @achievement.command(name="list", description="Every achievement of this server.")
    @admin_check
    async def achievement_list(self, interaction: discord.Interaction) -> None:
        assert interaction.guild is not None
        every = await self.service.list_achievements(interaction.guild.id)
        text = "\n".join(f"`#{a.id}` **{a.name}** — {requirement_text(a.requirement_type, a.requirement_value)}, "
                         f"{a.reward_xp:,} XP"
                         for a in every) or "No achievements yet."
        await respond(interaction, text, ephemeral=True)


async def setup(bot: GuildkeepBot) -> None:
    await bot.add_cog(Leveling(bot))
