"""Leveling's slash commands: ranks, cards, quests, achievements, level roles, XP changes and the server's
leveling config. Every rule and write lives in `guildkeep.leveling`; the ``/levels config`` options (ranges,
choices, descriptions) come from the setting declarations in `guildkeep.leveling.settings`."""

from __future__ import annotations

import asyncio
import io
import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Literal, TypeAlias

import aiohttp
from discord.ext import commands

import discord
from discord import app_commands
from guildkeep.db import utcnow
from guildkeep.discord.checks import ADMIN, admin_check, guild_of
from guildkeep.discord.cogs.leveling import render, views
from guildkeep.discord.cogs.leveling.listeners import LevelingListeners, unmanageable
from guildkeep.discord.limits import respond
from guildkeep.errors import ValidationError
from guildkeep.leveling import rules
from guildkeep.leveling import settings as config
from guildkeep.leveling.cards import RankCardData, fetch_image, render_rank_card_async
from guildkeep.leveling.ingest import VoiceTracker, XpIngestor
from guildkeep.leveling.results import LevelChangeResult
from guildkeep.leveling.service import QUEST_RESET_JOB, LevelingService

if TYPE_CHECKING:
    from guildkeep.discord.bot import GuildkeepBot

log = logging.getLogger(__name__)

MAX_CHOICES = 25  # Discord's limit on autocomplete answers
# Where XP is earned: text, voice and stage channels, threads (their parent counts too) and categories.
XpChannel = discord.TextChannel | discord.VoiceChannel | discord.StageChannel | discord.Thread | discord.CategoryChannel


def _range(kind: type, name: str) -> Any:
    lo, hi = config.bounds(name)
    return app_commands.Range[kind, kind(lo), kind(hi)]  # type: ignore[valid-type]


# ``/levels config``'s option types, derived from the declarations (discord.py reads them by name; a type
# checker sees the plain number types).
if TYPE_CHECKING:
    XpRate: TypeAlias = float
    CurveBase: TypeAlias = float
    CurveExponent: TypeAlias = float
    ResetHour: TypeAlias = int
    MessageXpMin: TypeAlias = int
    MessageXpMax: TypeAlias = int
    VoiceXp: TypeAlias = int
    ReactionXp: TypeAlias = int
    CommandXp: TypeAlias = int
else:
    XpRate = _range(float, "xp_rate")
    ResetHour = _range(int, "quest_reset_hour")
    MessageXpMin = _range(int, "message_xp_min")
    MessageXpMax = _range(int, "message_xp_max")
    VoiceXp = _range(int, "voice_xp_per_minute")
    ReactionXp = _range(int, "reaction_xp")
    CommandXp = _range(int, "command_xp")
    CurveBase = _range(float, "curve_base")
    CurveExponent = _range(float, "curve_exponent")
CooldownSeconds = app_commands.Range[int, 0, config.COOLDOWN_MAX]
MultiplierValue = app_commands.Range[float, 0.0, config.MULTIPLIER_MAX]

_CONFIG_SETTINGS = ("xp_rate", "level_up_mode", "level_up_message", "level_up_channel", "quest_channel",
                    "achievement_channel", "quest_reset_hour", "quest_reset_day", "message_xp_min", "message_xp_max",
                    "voice_xp_per_minute", "reaction_xp", "command_xp", "curve", "curve_base", "curve_exponent",
                    "quests_enabled")
CONFIG_DESCRIPTIONS = {
    **{name: config.describe(name) for name in _CONFIG_SETTINGS},
    **{f"{source}_cooldown": f"Seconds between XP-earning {source}s" for source in config.COOLDOWN_SOURCES},
    "clear": "Unset a channel or go back to the default level-up message",
}


def _choices(values: tuple[str, ...]) -> list[app_commands.Choice[str]]:
    return [app_commands.Choice(name=v, value=v) for v in values]


def _guild(interaction: discord.Interaction) -> discord.Guild:
    """The server the command came from (a player-readable refusal in direct messages)."""
    guild_of(interaction)
    if interaction.guild is None:
        raise ValidationError("I can't see this server right now; try again in a moment.")
    return interaction.guild


class Leveling(LevelingListeners, commands.Cog):
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
                                   on_outcome=self.handle_outcome, before_flush=self._credit_voice,
                                   instance_id=bot.instance_id)
        self.voice = VoiceTracker()
        self.last_channel = {}
        self.http: aiohttp.ClientSession | None = None
        self._role_locks = defaultdict(asyncio.Lock)
        self._loop_work = asyncio.Lock()  # held while a background loop touches the database

    async def cog_load(self) -> None:
        self.http = aiohttp.ClientSession()
        self.ingestor.start()
        self.voice_checkpoint.start()
        self.bot.scheduler.register(QUEST_RESET_JOB, self.run_quest_reset)

    async def cog_unload(self) -> None:
        self.bot.scheduler.unregister(QUEST_RESET_JOB)
        async with self._loop_work:  # never cancel a loop in the middle of a database call
            self.voice_checkpoint.cancel()
        await self._credit_voice()
        await self.ingestor.stop()
        self.service.cache.detach()
        if self.http is not None:
            await self.http.close()

    async def _flush(self) -> None:
        """What a member sees reflects their latest activity."""
        await self.ingestor.flush()

    # ------------------------------------------------------------------------------ member commands

    @app_commands.command(name="rank", description="Show a member's rank card.")
    @app_commands.describe(member="Whose card to show (you by default)")
    @app_commands.guild_only()
    async def rank(self, interaction: discord.Interaction, member: discord.Member | None = None) -> None:
        guild_id = guild_of(interaction)
        target = member or interaction.user
        await interaction.response.defer(thinking=True)
        # From the ingestor's in-memory leaderboard, with activity not stored yet.
        view = await self.ingestor.standing(guild_id, target.id)
        position = view.rank
        card = await self.service.get_card(guild_id, target.id)
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
        guild = _guild(interaction)

        async def load(number: int) -> Any:
            return await self.ingestor.leaderboard(guild.id, number, views.PER_PAGE)  # with activity not stored yet

        await views.leaderboard(interaction, guild.name, load, page)

    @app_commands.command(name="quests", description="Your active quests and your progress.")
    @app_commands.guild_only()
    async def quests(self, interaction: discord.Interaction) -> None:
        guild_id = guild_of(interaction)
        mine = await self.ingestor.user_quests(guild_id, interaction.user.id)  # with pending progress
        if not mine:
            await respond(interaction, "There are no active quests right now.", ephemeral=True)
            return
        await respond(interaction, embed=render.my_quests(mine), ephemeral=True)

    @app_commands.command(name="achievements", description="Achievements earned and still to earn.")
    @app_commands.describe(member="Whose achievements to show (you by default)")
    @app_commands.guild_only()
    async def achievements(self, interaction: discord.Interaction, member: discord.Member | None = None) -> None:
        guild_id = guild_of(interaction)
        target = member or interaction.user
        await self._flush()
        earned = {a.id for a in await self.service.get_user_achievements(guild_id, target.id)}
        every = await self.service.list_achievements(guild_id)
        if not every:
            await respond(interaction, "This server has no achievements yet.", ephemeral=True)
            return
        await respond(interaction, embed=render.achievements(target.display_name, every, earned))

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
        guild_id = guild_of(interaction)
        changes = {k: v for k, v in {
            "background_url": background_url, "background_color": background_color, "primary_color": primary_color,
            "secondary_color": secondary_color, "border_color": border_color, "text_color": text_color,
            "card_style": style}.items() if v is not None}
        if reset:
            changes = dict.fromkeys(("background_url", "background_color", "primary_color", "secondary_color",
                                     "border_color", "text_color", "card_style"), "")
        card = await self.service.update_card(guild_id, interaction.user.id, **changes)
        shown = ", ".join(f"{k.replace('_', ' ')}: {v}" for k, v in asdict(card).items() if v)
        await respond(
            interaction,
            ("Saved your rank card." if changes else "Your rank card settings.") + (f"\n{shown}" if shown else ""),
            ephemeral=True)

    # ----------------------------------------------------------------------------------- admin: config

    @levels.command(name="config", description="View the leveling settings, or change them.")
    @app_commands.describe(**CONFIG_DESCRIPTIONS)
    @app_commands.choices(level_up_mode=_choices(config.LEVEL_UP_MODES), curve=_choices(config.CURVES),
                          quest_reset_day=_choices(config.WEEKDAYS),
                          clear=_choices((*config.CHANNELS, "level_up_message")))
    @admin_check
    async def levels_config(
        self, interaction: discord.Interaction, *,
        xp_rate: XpRate | None = None,
        level_up_mode: str | None = None,
        level_up_message: str | None = None,
        level_up_channel: discord.TextChannel | None = None,
        quest_channel: discord.TextChannel | None = None,
        achievement_channel: discord.TextChannel | None = None,
        quest_reset_hour: ResetHour | None = None,
        quest_reset_day: str | None = None,
        message_cooldown: CooldownSeconds | None = None,
        reaction_cooldown: CooldownSeconds | None = None,
        command_cooldown: CooldownSeconds | None = None,
        message_xp_min: MessageXpMin | None = None,
        message_xp_max: MessageXpMax | None = None,
        voice_xp_per_minute: VoiceXp | None = None,
        reaction_xp: ReactionXp | None = None,
        command_xp: CommandXp | None = None,
        curve: str | None = None,
        curve_base: CurveBase | None = None,
        curve_exponent: CurveExponent | None = None,
        quests_enabled: bool | None = None,
        clear: str | None = None,
    ) -> None:
        guild_id = guild_of(interaction)
        cooldowns = {source: seconds for source, seconds in (("message", message_cooldown),
                     ("reaction", reaction_cooldown), ("command", command_cooldown)) if seconds is not None}
        given: dict[str, Any] = {
            "xp_rate": xp_rate, "level_up_mode": level_up_mode, "level_up_message": level_up_message,
            "level_up_channel": level_up_channel.id if level_up_channel else None,
            "quest_channel": quest_channel.id if quest_channel else None,
            "achievement_channel": achievement_channel.id if achievement_channel else None,
            "quest_reset_hour": quest_reset_hour,
            "quest_reset_day": config.WEEKDAYS.index(quest_reset_day) if quest_reset_day in config.WEEKDAYS
            else quest_reset_day,
            "cooldowns": cooldowns or None,
            "message_xp_min": message_xp_min, "message_xp_max": message_xp_max,
            "voice_xp_per_minute": voice_xp_per_minute, "reaction_xp": reaction_xp, "command_xp": command_xp,
            "curve": curve, "curve_base": curve_base, "curve_exponent": curve_exponent,
            "quests_enabled": quests_enabled,
        }
        changes = {k: v for k, v in given.items() if v is not None}
        if clear:
            changes[clear] = None
        if changes:
            cfg = await self.service.update_server_config_values(guild_id, changes)
        else:
            cfg = await self.service.get_server_config(guild_id)
        await respond(
            interaction,
            ("Saved. " if changes else "") + "Leveling settings:", embed=render.config_embed(cfg), ephemeral=True)

    @levels.command(name="noxp", description="Stop (or restart) XP in a channel or for a role.")
    @app_commands.describe(channel="Channel (or category) without XP", role="Role without XP",
                           remove="Give XP there again")
    @admin_check
    async def levels_noxp(self, interaction: discord.Interaction,
                          channel: XpChannel | None = None,
                          role: discord.Role | None = None, remove: bool = False) -> None:
        cfg = await self.service.set_no_xp(guild_of(interaction), channel_id=channel.id if channel else None,
                                           role_id=role.id if role else None, remove=remove)
        await respond(interaction, "Saved.", embed=render.config_embed(cfg), ephemeral=True)

    @levels.command(name="multiplier", description="Set an XP multiplier for a role or channel (1 removes it).")
    @app_commands.describe(value="Multiplier, 0–10", role="Role", channel="Channel")
    @admin_check
    async def levels_multiplier(self, interaction: discord.Interaction, value: MultiplierValue,
                                role: discord.Role | None = None, channel: XpChannel | None = None) -> None:
        cfg = await self.service.set_multiplier(guild_of(interaction), value, role_id=role.id if role else None,
                                                channel_id=channel.id if channel else None)
        await respond(interaction, "Saved.", embed=render.config_embed(cfg), ephemeral=True)

    @levels.command(name="reset", description="Reset a member's XP, or the whole server's (asks first).")
    @app_commands.describe(member="The member to reset; leave empty to reset everyone")
    @admin_check
    async def levels_reset(self, interaction: discord.Interaction, member: discord.Member | None = None) -> None:
        guild = _guild(interaction)
        what = f"**{member.display_name}**'s XP, quests and achievements" if member else (
            "**everyone's** XP, quests and achievements on this server")
        if not await views.confirm_reset(interaction, what):
            return
        await self._flush()
        if member is not None:
            await self.service.reset_member(guild.id, member.id)
            await self.apply_level_roles(guild, member.id)
            done = f"Reset {member.display_name}."
        else:
            count = await self.service.reset_server(guild.id)
            await self._sync_roles(guild)
            done = f"Reset {count} member{'' if count == 1 else 's'}."
        await respond(interaction, done, ephemeral=True)

    # ------------------------------------------------------------------------------- admin: roles

    @levels_roles.command(name="add", description="Give a role to members who reach a level.")
    @app_commands.describe(role="The role", level="Level that earns it",
                           stacked="Keep it after earning a higher-level role (default yes)")
    @admin_check
    async def roles_add(self, interaction: discord.Interaction, role: discord.Role,
                        level: app_commands.Range[int, 0, 1000], stacked: bool = True) -> None:
        guild_id = guild_of(interaction)
        reason = unmanageable(role)
        if reason is not None:
            raise ValidationError(f"I can't use {role.mention} as a level role: {reason}.")
        await self.service.add_level_role(guild_id, role.id, level, stacked=stacked)
        holders = [m.id for m in role.members if not m.bot]
        below = sum(1 for lvl in (await self.service.levels_of(guild_id, holders)).values() if lvl < level)
        keep = (f" {below} member{' already has' if below == 1 else 's already have'} it below level {level} and "
                f"keep{'s' if below == 1 else ''} it: I only take back roles I gave.") if below else ""
        await respond(
            interaction,
            f"{role.mention} is now earned at level {level}{'' if stacked else ' (highest only)'}.{keep} "
            "Use `/levels roles sync` to apply it to everyone now.", ephemeral=True)

    @levels_roles.command(name="remove", description="Stop giving a role for a level.")
    @admin_check
    async def roles_remove(self, interaction: discord.Interaction, role: discord.Role) -> None:
        await self.service.remove_level_role(guild_of(interaction), role.id)
        await respond(interaction, f"{role.mention} is no longer a level role.", ephemeral=True)

    @levels_roles.command(name="list", description="The level roles.")
    @admin_check
    async def roles_list(self, interaction: discord.Interaction) -> None:
        roles = await self.service.list_level_roles(guild_of(interaction))
        text = "\n".join(f"Level {r.level}: <@&{r.role_id}>{'' if r.is_stacked else ' (highest only)'}"
                         for r in roles) or "No level roles yet. Add one with `/levels roles add`."
        await respond(interaction, text, ephemeral=True)

    @levels_roles.command(name="sync", description="Give and take level roles so everyone matches their level.")
    @admin_check
    async def roles_sync(self, interaction: discord.Interaction) -> None:
        guild = _guild(interaction)
        await interaction.response.defer(ephemeral=True, thinking=True)
        await self._flush()
        result = await self._sync_roles(guild)
        await respond(interaction, result.report(), ephemeral=True)

    # ------------------------------------------------------------------------------ admin: xp, level

    async def _admin_change(self, interaction: discord.Interaction, member: discord.Member,
                            change: Callable[[int, int], Awaitable[LevelChangeResult]], done: str) -> None:
        """Flush pending activity, apply an admin XP change, fix the member's level roles and report."""
        guild = _guild(interaction)
        await self._flush()
        result = await change(guild.id, member.id)
        await self.apply_level_roles(guild, member.id)
        await respond(
            interaction,
            f"{done} {member.mention}: now level {result.new_level} ({result.xp} XP).", ephemeral=True)

    @xp.command(name="add", description="Give a member XP.")
    @admin_check
    async def xp_add(self, interaction: discord.Interaction, member: discord.Member,
                     amount: app_commands.Range[int, 1, 10**9]) -> None:
        async def add(guild_id: int, user_id: int) -> LevelChangeResult:
            outcome = await self.service.add_xp(guild_id, user_id, amount)
            await self.handle_outcome(outcome, channel_id=interaction.channel_id)
            info = await self.service.get_user_level(guild_id, user_id)
            return LevelChangeResult(user_id, info.level, info.level, info.xp)

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
        guild_id = guild_of(interaction)
        expires = utcnow() + timedelta(hours=duration_hours) if duration_hours else None
        created = await self.service.create_quest(
            guild_id, name, description, quest_type, requirement, amount, reward_xp,
            reward_multiplier, difficulty, refresh, multiplier_minutes=multiplier_minutes, expires_at=expires,
            created_by=interaction.user.id)
        await respond(interaction, f"Created quest #{created.id}:\n{render.quest_line(created)}", ephemeral=True)

    @quest.command(name="list", description="Every active quest, with ids.")
    @admin_check
    async def quest_list(self, interaction: discord.Interaction) -> None:
        active = await self.service.get_guild_active_quests(guild_of(interaction))
        text = "\n".join(f"`#{q.id}` {render.quest_line(q)}" for q in active) or "No active quests."
        await respond(interaction, text, ephemeral=True)

    @quest.command(name="end", description="End a quest now.")
    @app_commands.describe(quest_id="The quest's id (see /quest list)")
    @admin_check
    async def quest_end(self, interaction: discord.Interaction, quest_id: int) -> None:
        ended = await self.service.end_quest(guild_of(interaction), quest_id)
        await respond(interaction, f"Ended quest **{ended.name}**.", ephemeral=True)

    @quest_end.autocomplete("quest_id")
    async def quest_id_autocomplete(self, interaction: discord.Interaction,
                                    current: str) -> list[app_commands.Choice[int]]:
        if interaction.guild_id is None:
            return []
        typed = current.lower().lstrip("#")
        return [app_commands.Choice(name=f"#{q.id} {q.name} ({q.quest_type})"[:100], value=q.id)
                for q in await self.service.get_guild_active_quests(interaction.guild_id)
                if typed in q.name.lower() or typed == str(q.id)][:MAX_CHOICES]

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
        created = await self.service.create_achievement(guild_of(interaction), name, description, requirement, value,
                                                        reward_xp, badge_url)
        await respond(
            interaction,
            f"Created achievement **{created.name}** ({render.requirement_text(requirement, value)}, "
            f"{reward_xp:,} XP).", ephemeral=True)

    @achievement.command(name="list", description="Every achievement of this server.")
    @admin_check
    async def achievement_list(self, interaction: discord.Interaction) -> None:
        every = await self.service.list_achievements(guild_of(interaction))
        text = "\n".join(f"`#{a.id}` **{a.name}** — {render.requirement_text(a.requirement_type, a.requirement_value)}"
                         f", {a.reward_xp:,} XP" for a in every) or "No achievements yet."
        await respond(interaction, text, ephemeral=True)


async def setup_cog(bot: GuildkeepBot) -> None:
    await bot.add_cog(Leveling(bot))
