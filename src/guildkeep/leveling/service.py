"""Leveling operations (seed 002's functions, on the data core). Async, plain ids and values, own transactions.

Every change to a member's XP goes through `_apply`, which in one unit of work locks the members' rows in id
order, adds the activity, advances quests (completion is a conditional UPDATE, so a reward is paid once even
when two events race), grants achievements (a unique key makes a second grant a no-op) and re-derives the
level from total XP. The write-behind ingestor calls the same function with a batch.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import BigInteger, bindparam, delete, false, func, or_, select, text, true, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession

from guildkeep.cache import InvalidationBus, TTLCache
from guildkeep.db import Database, utcnow
from guildkeep.db.dialect import insert_for
from guildkeep.errors import NotFoundError, ValidationError
from guildkeep.identity.models import User
from guildkeep.identity.service import ensure_guild
from guildkeep.leveling import rules
from guildkeep.leveling.models import (
    Achievement,
    Card,
    Level,
    LevelRoleGrant,
    LevelRoleRow,
    Quest,
    ServerConfig,
    UserAchievement,
    UserQuest,
)
from guildkeep.leveling.rules import Curve, LevelRole, XpSettings
from guildkeep.text import clean_text, echo, strip_control

COUNTERS = ("messages", "total_messages", "total_reactions", "commands_used", "voice_time_seconds")
MAX_ADMIN_XP = 10**12
IMPORT_CHUNK = 2_000  # players per statement: 7 columns x 2,000 stays far below asyncpg's 32,767 arguments


# ---------------------------------------------------------------------------------------------- views


@dataclass(frozen=True, slots=True)
class ServerConfigView:
    guild_id: int
    xp_rate: float = 1.0
    level_up_mode: str = "same"
    level_up_message: str | None = None
    level_up_channel: int | None = None
    quest_channel: int | None = None
    achievement_channel: int | None = None
    quest_reset_hour: int = 0
    quest_reset_day: int = 0
    quests_enabled: bool = True
    cooldowns: Mapping[str, int] = field(default_factory=lambda: {"message": 60, "reaction": 60, "command": 60})
    message_xp_min: int = 15
    message_xp_max: int = 25
    voice_xp_per_minute: int = 10
    reaction_xp: int = 5
    command_xp: int = 5
    curve: str = "mee6"
    curve_base: float = 100.0
    curve_exponent: float = 2.0
    no_xp_channels: tuple[int, ...] = ()
    no_xp_roles: tuple[int, ...] = ()
    role_multipliers: Mapping[int, float] = field(default_factory=dict)
    channel_multipliers: Mapping[int, float] = field(default_factory=dict)

    @property
    def curve_rule(self) -> Curve:
        return Curve(self.curve, self.curve_base, self.curve_exponent)  # type: ignore[arg-type]

    @property
    def xp_settings(self) -> XpSettings:
        return XpSettings(
            xp_rate=self.xp_rate,
            message_xp_min=self.message_xp_min,
            message_xp_max=self.message_xp_max,
            voice_xp_per_minute=self.voice_xp_per_minute,
            reaction_xp=self.reaction_xp,
            command_xp=self.command_xp,
            cooldowns=dict(self.cooldowns),
            no_xp_channels=frozenset(self.no_xp_channels),
            no_xp_roles=frozenset(self.no_xp_roles),
            role_multipliers=dict(self.role_multipliers),
            channel_multipliers=dict(self.channel_multipliers),
            curve=self.curve_rule,
        )

    @property
    def template(self) -> str:
        return self.level_up_message or rules.DEFAULT_LEVEL_UP_MESSAGE

    @classmethod
    def of(cls, row: ServerConfig) -> ServerConfigView:
        defaults = cls(guild_id=row.guild_id)
        return cls(
            guild_id=row.guild_id,
            xp_rate=row.xp_rate,
            level_up_mode=row.level_up_mode,
            level_up_message=row.level_up_message,
            level_up_channel=row.level_up_channel,
            quest_channel=row.quest_channel,
            achievement_channel=row.achievement_channel,
            quest_reset_hour=row.quest_reset_hour,
            quest_reset_day=row.quest_reset_day,
            quests_enabled=row.quests_enabled,
            cooldowns={**defaults.cooldowns, **{k: int(v) for k, v in (row.cooldowns or {}).items()}},
            message_xp_min=row.message_xp_min,
            message_xp_max=row.message_xp_max,
            voice_xp_per_minute=row.voice_xp_per_minute,
            reaction_xp=row.reaction_xp,
            command_xp=row.command_xp,
            curve=row.curve,
            curve_base=row.curve_base,
            curve_exponent=row.curve_exponent,
            no_xp_channels=tuple(int(c) for c in row.no_xp_channels or ()),
            no_xp_roles=tuple(int(r) for r in row.no_xp_roles or ()),
            role_multipliers={int(k): float(v) for k, v in (row.role_multipliers or {}).items()},
            channel_multipliers={int(k): float(v) for k, v in (row.channel_multipliers or {}).items()},
        )


@dataclass(frozen=True, slots=True)
class LevelView:
    guild_id: int
    user_id: int
    xp: int
    level: int
    xp_into_level: int
    xp_for_level: int
    messages: int = 0
    total_messages: int = 0
    total_reactions: int = 0
    commands_used: int = 0
    voice_time_seconds: int = 0
    last_message_time: datetime | None = None
    xp_multiplier: float = 1.0
    multiplier_expires_at: datetime | None = None

    @property
    def stats(self) -> dict[str, int]:
        return {"level": self.level, **{c: getattr(self, c) for c in COUNTERS}}


@dataclass(frozen=True, slots=True)
class QuestView:
    id: int
    guild_id: int
    name: str
    description: str
    quest_type: str
    requirement_type: str
    requirement_value: int
    reward_xp: int
    reward_multiplier: float
    multiplier_minutes: int
    active: bool
    refresh_cycle: str
    difficulty: str
    template_key: str | None
    period_start: datetime | None
    expires_at: datetime | None
    created_at: datetime

    @classmethod
    def of(cls, row: Quest) -> QuestView:
        return cls(**{f.name: getattr(row, f.name) for f in fields(cls)})


@dataclass(frozen=True, slots=True)
class UserQuestView:
    quest: QuestView
    progress: int
    quest_specific_progress: int
    completed: bool
    completed_at: datetime | None


@dataclass(frozen=True, slots=True)
class AchievementView:
    id: int
    guild_id: int
    name: str
    description: str
    requirement_type: str
    requirement_value: int
    reward_xp: int
    badge_url: str | None
    created_at: datetime
    earned_at: datetime | None = None

    @classmethod
    def of(cls, row: Achievement, earned_at: datetime | None = None) -> AchievementView:
        values = {f.name: getattr(row, f.name) for f in fields(cls) if f.name != "earned_at"}
        return cls(**values, earned_at=earned_at)


@dataclass(frozen=True, slots=True)
class CardView:
    background_url: str | None = None
    background_color: str | None = None
    primary_color: str | None = None
    secondary_color: str | None = None
    border_color: str | None = None
    text_color: str | None = None
    card_style: str = "default"


CARD_COLOURS = ("background_color", "primary_color", "secondary_color", "border_color", "text_color")


@dataclass(frozen=True, slots=True)
class LevelChange:
    user_id: int
    old_level: int
    new_level: int
    xp: int

    @property
    def leveled_up(self) -> bool:
        return self.new_level > self.old_level


@dataclass(slots=True)
class ActivityDelta:
    """What one member did since the last write: XP earned and counters to add."""

    user_id: int
    xp: int = 0
    messages: int = 0
    total_messages: int = 0
    total_reactions: int = 0
    commands_used: int = 0
    voice_time_seconds: int = 0
    last_message_time: datetime | None = None
    boostable: bool = True  # activity XP gets the member's quest multiplier; admin XP does not
    username: str | None = None
    # What advances quests, by requirement type: only activity that counts (past its cooldown, not in a no-XP
    # place). None means the counters themselves (an explicit counter update counts in full).
    quest: dict[str, int] | None = None

    def quest_increment(self, requirement_type: str) -> int:
        if self.quest is None:
            return int(getattr(self, requirement_type))
        return self.quest.get(requirement_type, 0)

    def merge(self, other: ActivityDelta) -> None:
        if self.quest is not None or other.quest is not None:
            mine = {t: self.quest_increment(t) for t in rules.QUEST_REQUIREMENTS}
            self.quest = {t: mine[t] + other.quest_increment(t) for t in rules.QUEST_REQUIREMENTS}
        self.xp += other.xp
        for name in COUNTERS:
            setattr(self, name, getattr(self, name) + getattr(other, name))
        if other.last_message_time and (not self.last_message_time or other.last_message_time > self.last_message_time):
            self.last_message_time = other.last_message_time
        self.username = other.username or self.username


@dataclass(slots=True)
class ActivityOutcome:
    guild_id: int
    level_changes: list[LevelChange] = field(default_factory=list)
    quests_completed: list[tuple[int, QuestView]] = field(default_factory=list)
    achievements_earned: list[tuple[int, AchievementView]] = field(default_factory=list)

    @property
    def level_ups(self) -> list[LevelChange]:
        return [c for c in self.level_changes if c.leveled_up]


@dataclass(frozen=True, slots=True)
class LeaderboardEntry:
    rank: int
    user_id: int
    name: str
    xp: int
    level: int


@dataclass(frozen=True, slots=True)
class LeaderboardPage:
    entries: list[LeaderboardEntry]
    page: int
    pages: int
    total: int


@dataclass(slots=True)
class ImportReport:
    imported: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)


# ------------------------------------------------------------------------------------- config fields


def _int_in(name: str, lo: int, hi: int) -> Any:
    def check(value: Any) -> int:
        try:
            number = int(value)
        except (TypeError, ValueError):
            raise ValidationError(f"{name} must be a whole number.") from None
        if not lo <= number <= hi:
            raise ValidationError(f"{name} must be between {lo:,} and {hi:,}.")
        return number

    return check


def _float_in(name: str, lo: float, hi: float) -> Any:
    def check(value: Any) -> float:
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise ValidationError(f"{name} must be a number.") from None
        if not math.isfinite(number) or not lo <= number <= hi:
            raise ValidationError(f"{name} must be between {lo:,g} and {hi:,g}.")
        return number

    return check


def _choice(name: str, options: Sequence[str]) -> Any:
    def check(value: Any) -> str:
        if value not in options:
            raise ValidationError(f"{name} must be one of: {', '.join(options)}.")
        return str(value)

    return check


def _optional_id(value: Any) -> int | None:
    return None if value in (None, "", 0) else _int_in("A channel", 1, 2**63 - 1)(value)


def _id_list(value: Any) -> list[int]:
    return sorted({_int_in("An id", 1, 2**63 - 1)(v) for v in value or ()})


def _multipliers(value: Any) -> dict[str, float]:
    check = _float_in("A multiplier", 0.0, 10.0)
    return {str(_int_in("An id", 1, 2**63 - 1)(k)): check(v) for k, v in dict(value or {}).items()}


def _cooldowns(value: Any) -> dict[str, int]:
    check = _int_in("A cooldown", 0, 86_400)
    out = {}
    for source, seconds in dict(value or {}).items():
        if source not in rules.SOURCES:
            raise ValidationError(f"Cooldowns exist for: {', '.join(rules.SOURCES)}.")
        out[source] = check(seconds)
    return out


def _message(value: Any) -> str | None:
    return None if value in (None, "") else rules.validate_template(str(value))


CONFIG_FIELDS: dict[str, Any] = {
    "xp_rate": _float_in("The XP rate", 0.0, 10.0),
    "level_up_mode": _choice("The level-up mode", rules.LEVEL_UP_MODES),
    "level_up_message": _message,
    "level_up_channel": _optional_id,
    "quest_channel": _optional_id,
    "achievement_channel": _optional_id,
    "quest_reset_hour": _int_in("The reset hour", 0, 23),
    "quest_reset_day": _int_in("The reset weekday", 0, 6),
    "quests_enabled": bool,
    "cooldowns": _cooldowns,
    "message_xp_min": _int_in("Message XP", 0, 1000),
    "message_xp_max": _int_in("Message XP", 0, 1000),
    "voice_xp_per_minute": _int_in("Voice XP", 0, 1000),
    "reaction_xp": _int_in("Reaction XP", 0, 1000),
    "command_xp": _int_in("Command XP", 0, 1000),
    "curve": _choice("The curve", rules.CURVES),
    "curve_base": _float_in("The curve base", 1, 1_000_000),
    "curve_exponent": _float_in("The curve exponent", 1, 4),
    "no_xp_channels": _id_list,
    "no_xp_roles": _id_list,
    "role_multipliers": _multipliers,
    "channel_multipliers": _multipliers,
}


def _whole_number(value: Any) -> int | None:
    """A JSON whole number or a string of digits (exports quote snowflakes); None for floats, booleans and the rest."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isascii() and value.strip().lstrip("-").isdigit():
        return int(value.strip())
    return None


def _json_text(value: Any) -> str:
    """How a value looked in the JSON file, cut short: ``1.9``, ``true``, ``null``."""
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= 40 else text[:39] + "…"


def _level_view(row: Level, curve: Curve) -> LevelView:
    level, into, span = curve.progress(row.xp)
    return LevelView(
        row.guild_id, row.user_id, row.xp, level, into, span, row.messages, row.total_messages,
        row.total_reactions, row.commands_used, row.voice_time_seconds, row.last_message_time,
        row.xp_multiplier, row.multiplier_expires_at,
    )


async def _ensure_users(session: AsyncSession, users: Mapping[int, str | None]) -> None:
    if not users:
        return
    now = utcnow()
    rows = [
        {"id": uid, "username": strip_control(name)[:255], "first_seen_at": now, "last_seen_at": now, "created_at": now,
         "updated_at": now, "is_active": True}
        for uid, name in sorted(users.items())
    ]
    await session.execute(insert_for(session, User).on_conflict_do_nothing(index_elements=["id"]), rows)


async def _ensure_levels(session: AsyncSession, guild_id: int, user_ids: Iterable[int]) -> None:
    now = utcnow()
    rows = [{"guild_id": guild_id, "user_id": uid, "created_at": now, "updated_at": now} for uid in sorted(user_ids)]
    if rows:
        stmt = insert_for(session, Level).on_conflict_do_nothing(index_elements=["guild_id", "user_id"])
        await session.execute(stmt, rows)


class LevelingService:
    """The leveling module's whole API. The Discord cog and the CLI only call this."""

    def __init__(self, db: Database, *, cache_ttl: float = 60.0, bus: InvalidationBus | None = None) -> None:
        self.db = db
        self.cache = TTLCache(cache_ttl, bus=bus, namespace="leveling")
        self.xp_changes: dict[int, int] = {}  # guild -> XP changes made here outside the ingestor (its boards reload)

    def _xp_changed(self, guild_id: int) -> None:
        self.xp_changes[guild_id] = self.xp_changes.get(guild_id, 0) + 1

    # ------------------------------------------------------------------------------------ config

    async def get_server_config(self, guild_id: int) -> ServerConfigView:
        """Server configuration, cached; a server with no row gets every default."""

        async def load() -> ServerConfigView:
            async with self.db.session(read_only=True) as s:
                row = await s.get(ServerConfig, guild_id)
                return ServerConfigView.of(row) if row else ServerConfigView(guild_id=guild_id)

        return await self.cache.get_or_load(("config", guild_id), load)

    async def update_server_config(self, guild_id: int, setting: str, value: Any) -> ServerConfigView:
        """Change one setting (validated). Changing the curve re-derives every member's level."""
        return await self.update_server_config_values(guild_id, {setting: value})

    async def update_server_config_values(self, guild_id: int, changes: Mapping[str, Any]) -> ServerConfigView:
        unknown = set(changes) - CONFIG_FIELDS.keys()
        if unknown:
            raise ValidationError(
                f"Unknown setting “{echo(sorted(unknown)[0])}”; settings: {', '.join(CONFIG_FIELDS)}.")
        values = {name: CONFIG_FIELDS[name](value) for name, value in changes.items()}

        async def work(s: AsyncSession) -> ServerConfigView:
            await ensure_guild(s, guild_id)
            await s.execute(insert_for(s, ServerConfig).values(guild_id=guild_id, cooldowns={}, no_xp_channels=[],
                            no_xp_roles=[], role_multipliers={}, channel_multipliers={})
                            .on_conflict_do_nothing(index_elements=["guild_id"]))
            row = (await s.execute(select(ServerConfig).where(ServerConfig.guild_id == guild_id)
                                   .with_for_update())).scalar_one()
            old_curve = (row.curve, row.curve_base, row.curve_exponent)
            for name, value in values.items():
                if name == "cooldowns":
                    value = {**(row.cooldowns or {}), **value}  # noqa: PLW2901 - merged, not replaced
                setattr(row, name, value)
            if row.message_xp_min > row.message_xp_max:
                raise ValidationError("The minimum message XP cannot be above the maximum.")
            view = ServerConfigView.of(row)
            view.curve_rule  # noqa: B018 - validates base and exponent together
            if old_curve != (row.curve, row.curve_base, row.curve_exponent):
                await self._rederive_levels(s, guild_id, view.curve_rule)
            return view

        try:
            return await self.db.run(work)
        finally:
            self.cache.invalidate(("config", guild_id))

    async def _rederive_levels(self, s: AsyncSession, guild_id: int, curve: Curve) -> None:
        rows = (await s.execute(select(Level.user_id, Level.xp, Level.level).where(Level.guild_id == guild_id))).all()
        changed = [{"g": guild_id, "u": uid, "lvl": curve.level_for_xp(xp)} for uid, xp, lvl in rows
                   if curve.level_for_xp(xp) != lvl]
        if changed:
            table = Level.__table__
            stmt = update(table).where(table.c.guild_id == bindparam("g"), table.c.user_id == bindparam("u"))
            await s.execute(stmt.values(level=bindparam("lvl")), changed)

    async def get_level_up_channel(self, guild_id: int) -> int | None:
        return (await self.get_server_config(guild_id)).level_up_channel

    async def get_quest_channel(self, guild_id: int) -> int | None:
        return (await self.get_server_config(guild_id)).quest_channel

    async def get_achievement_channel(self, guild_id: int) -> int | None:
        return (await self.get_server_config(guild_id)).achievement_channel

    async def get_quest_reset_settings(self, guild_id: int) -> tuple[int, int]:
        """(reset hour UTC, weekly reset weekday with 0 = Monday)."""
        cfg = await self.get_server_config(guild_id)
        return cfg.quest_reset_hour, cfg.quest_reset_day

    # ------------------------------------------------------------------------------------ levels

    async def get_user_level(self, guild_id: int, user_id: int) -> LevelView:
        curve = (await self.get_server_config(guild_id)).curve_rule
        async with self.db.session(read_only=True) as s:
            row = (await s.execute(select(Level).where(Level.guild_id == guild_id, Level.user_id == user_id)))
            level = row.scalar_one_or_none()
        if level is None:
            return LevelView(guild_id, user_id, 0, 0, 0, curve.xp_for_next(0))
        return _level_view(level, curve)

    async def recent_message_times(self, guild_id: int, since: datetime) -> dict[int, datetime]:
        """Members whose last XP-earning message here is after ``since`` (the persisted message cooldowns)."""
        async with self.db.session(read_only=True) as s:
            rows = await s.execute(select(Level.user_id, Level.last_message_time).where(
                Level.guild_id == guild_id, Level.last_message_time > since))
            return dict(rows.all())

    async def award_xp(self, guild_id: int, user_id: int, xp_amount: int, *, boostable: bool = False,
                       username: str | None = None) -> ActivityOutcome:
        """Add XP (quests, achievements and the level follow)."""
        if xp_amount < 0:
            raise ValidationError("Use remove_xp to take XP away.")
        return await self.apply_activity(guild_id, [ActivityDelta(user_id, xp=int(xp_amount), boostable=boostable,
                                                                  username=username)])

    async def update_activity_counter_db(self, guild_id: int, user_id: int, counter_type: str, increment: int,
                                         *, xp: int = 0) -> ActivityOutcome:
        """Add to one activity counter (and optional XP); quests and achievements advance with it."""
        if counter_type not in COUNTERS:
            raise ValidationError(f"Unknown counter “{echo(counter_type)}”.")
        if increment < 0:
            raise ValidationError("Counters only go up.")
        delta = ActivityDelta(user_id, xp=xp, **{counter_type: increment})
        return await self.apply_activity(guild_id, [delta])

    async def apply_activity(self, guild_id: int, deltas: Sequence[ActivityDelta],
                             now: datetime | None = None) -> ActivityOutcome:
        """Apply a batch of member activity in one unit of work (the ingestor's flush and single events)."""
        merged: dict[int, ActivityDelta] = {}
        for d in deltas:
            if d.user_id in merged:
                merged[d.user_id].merge(d)
            else:
                merged[d.user_id] = replace(d)
        if not merged:
            return ActivityOutcome(guild_id)
        cfg = await self.get_server_config(guild_id)
        quests = await self.get_guild_active_quests(guild_id)
        when = now or utcnow()
        try:
            return await self.db.run(
                lambda s: self._apply(s, guild_id, merged, curve=cfg.curve_rule, quests=quests, now=when)
            )
        finally:
            self._xp_changed(guild_id)

    async def _apply(self, s: AsyncSession, guild_id: int, deltas: dict[int, ActivityDelta], *, curve: Curve,
                     quests: Sequence[QuestView], now: datetime) -> ActivityOutcome:
        outcome = ActivityOutcome(guild_id)
        users = sorted(deltas)
        await ensure_guild(s, guild_id)
        await _ensure_users(s, {u: deltas[u].username for u in users})
        await _ensure_levels(s, guild_id, users)
        rows = {
            r.user_id: r
            for r in (await s.execute(
                select(Level.user_id, Level.xp, Level.level, Level.xp_multiplier, Level.multiplier_expires_at,
                       *(getattr(Level, c) for c in COUNTERS))
                .where(Level.guild_id == guild_id, Level.user_id.in_(users))
                .order_by(Level.user_id).with_for_update()
            )).all()
        }
        xp = {}
        stats: dict[int, dict[str, int]] = {}
        params = []
        for uid in users:
            d, row = deltas[uid], rows[uid]
            gain = d.xp
            if d.boostable and gain:
                gain = rules.apply_multiplier(gain, rules.active_quest_multiplier(
                    row.xp_multiplier, row.multiplier_expires_at, now))
            xp[uid] = min(row.xp + gain, rules.MAX_XP)
            stats[uid] = {c: getattr(row, c) + getattr(d, c) for c in COUNTERS}
            params.append({"g": guild_id, "u": uid, "dxp": xp[uid] - row.xp, "lmt": d.last_message_time,
                           **{f"d_{c}": getattr(d, c) for c in COUNTERS}})
        table = Level.__table__
        stmt = update(table).where(table.c.guild_id == bindparam("g"), table.c.user_id == bindparam("u")).values(
            xp=table.c.xp + bindparam("dxp"),
            last_message_time=func.coalesce(bindparam("lmt", type_=Level.last_message_time.type),
                                            table.c.last_message_time),
            updated_at=now,
            **{c: table.c[c] + bindparam(f"d_{c}") for c in COUNTERS},
        )
        await s.execute(stmt, params)

        rewards: dict[int, int] = {}
        boosts: dict[int, tuple[float, datetime]] = {}
        for quest in quests:
            if quest.expires_at is not None and quest.expires_at <= now:
                continue
            moved = [(uid, deltas[uid].quest_increment(quest.requirement_type)) for uid in users]
            moved = [(uid, inc) for uid, inc in moved if inc > 0]
            if not moved:
                continue
            for uid in await self._advance_quest(s, guild_id, quest, moved, stats=stats, now=now):
                outcome.quests_completed.append((uid, quest))
                rewards[uid] = rewards.get(uid, 0) + quest.reward_xp
                if quest.reward_multiplier > 1 and quest.multiplier_minutes > 0:
                    boosts[uid] = (quest.reward_multiplier, now + timedelta(minutes=quest.multiplier_minutes))

        levels = {uid: curve.level_for_xp(xp[uid] + rewards.get(uid, 0)) for uid in users}
        for uid, achievement in await self._grant_achievements(s, guild_id, users, stats=stats, levels=levels, now=now):
            outcome.achievements_earned.append((uid, achievement))
            rewards[uid] = rewards.get(uid, 0) + achievement.reward_xp

        finals = []
        for uid in users:
            total = min(xp[uid] + rewards.get(uid, 0), rules.MAX_XP)
            new_level = curve.level_for_xp(total)
            old_level = rows[uid].level
            if total != xp[uid] or new_level != old_level:
                finals.append({"g": guild_id, "u": uid, "dxp": total - xp[uid], "lvl": new_level})
            if new_level != old_level:
                outcome.level_changes.append(LevelChange(uid, old_level, new_level, total))
        if finals:
            stmt = update(table).where(table.c.guild_id == bindparam("g"), table.c.user_id == bindparam("u"))
            await s.execute(stmt.values(xp=table.c.xp + bindparam("dxp"), level=bindparam("lvl")), finals)
        for uid, (value, until) in boosts.items():
            await s.execute(update(Level).where(Level.guild_id == guild_id, Level.user_id == uid)
                            .values(xp_multiplier=value, multiplier_expires_at=until))
        return outcome

    async def _advance_quest(self, s: AsyncSession, guild_id: int, quest: QuestView, moved: list[tuple[int, int]],
                             *, stats: Mapping[int, Mapping[str, int]], now: datetime) -> list[int]:
        """Add progress for members on one quest; return who completed it now (each pays once)."""
        table = UserQuest.__table__
        rows = [{"guild_id": guild_id, "user_id": uid, "quest_id": quest.id, "progress": stats[uid][
            quest.requirement_type], "quest_specific_progress": inc, "completed": False,
            "expires_at": quest.expires_at} for uid, inc in moved]
        ins = insert_for(s, UserQuest)
        ins = ins.on_conflict_do_update(
            index_elements=["guild_id", "user_id", "quest_id"],
            set_={"quest_specific_progress": table.c.quest_specific_progress + ins.excluded.quest_specific_progress,
                  "progress": ins.excluded.progress},
            where=table.c.completed == false(),
        )
        await s.execute(ins, rows)
        return await self._complete(s, guild_id, quest, [uid for uid, _ in moved], now)

    async def _complete(self, s: AsyncSession, guild_id: int, quest: QuestView, users: Sequence[int],
                        now: datetime) -> list[int]:
        done = await s.execute(
            update(UserQuest)
            .where(UserQuest.guild_id == guild_id, UserQuest.quest_id == quest.id, UserQuest.user_id.in_(users),
                   UserQuest.completed == false(), UserQuest.quest_specific_progress >= quest.requirement_value)
            .values(completed=True, completed_at=now)
            .returning(UserQuest.user_id)
        )
        return sorted(done.scalars())

    async def _grant_achievements(self, s: AsyncSession, guild_id: int, users: Sequence[int], *,
                                  stats: Mapping[int, Mapping[str, int]], levels: Mapping[int, int],
                                  now: datetime) -> list[tuple[int, AchievementView]]:
        defs = (await s.execute(select(Achievement).where(Achievement.guild_id == guild_id))).scalars().all()
        if not defs:
            return []
        have = {tuple(r) for r in (await s.execute(
            select(UserAchievement.user_id, UserAchievement.achievement_id)
            .where(UserAchievement.guild_id == guild_id, UserAchievement.user_id.in_(users))
        )).all()}
        earned = []
        for uid in users:
            member = {**stats[uid], "level": levels[uid]}
            for a in defs:
                if (uid, a.id) in have or not rules.achievement_met(a.requirement_type, a.requirement_value, member):
                    continue
                ins = insert_for(s, UserAchievement).values(guild_id=guild_id, user_id=uid, achievement_id=a.id,
                                                            earned_at=now)
                inserted = await s.execute(
                    ins.on_conflict_do_nothing(index_elements=["guild_id", "user_id", "achievement_id"])
                    .returning(UserAchievement.id)
                )
                if inserted.scalar_one_or_none() is not None:
                    earned.append((uid, AchievementView.of(a, now)))
        return earned

    # ------------------------------------------------------------------------------------- admin

    async def add_xp(self, guild_id: int, user_id: int, amount: int) -> ActivityOutcome:
        _int_in("The amount", 1, MAX_ADMIN_XP)(amount)
        return await self.award_xp(guild_id, user_id, amount)

    async def remove_xp(self, guild_id: int, user_id: int, amount: int) -> LevelChange:
        _int_in("The amount", 1, MAX_ADMIN_XP)(amount)
        return await self._set_xp(guild_id, user_id, lambda xp, _curve: max(0, xp - amount))

    async def set_xp(self, guild_id: int, user_id: int, xp: int) -> LevelChange:
        _int_in("The XP", 0, MAX_ADMIN_XP)(xp)
        return await self._set_xp(guild_id, user_id, lambda _xp, _curve: xp)

    async def set_level(self, guild_id: int, user_id: int, level: int) -> LevelChange:
        """Set the member's XP to the start of ``level``."""
        _int_in("The level", 0, 1000)(level)
        return await self._set_xp(guild_id, user_id, lambda _xp, curve: curve.total_for_level(level))

    async def _set_xp(self, guild_id: int, user_id: int, new_xp: Any) -> LevelChange:
        curve = (await self.get_server_config(guild_id)).curve_rule

        async def work(s: AsyncSession) -> LevelChange:
            await ensure_guild(s, guild_id)
            await _ensure_users(s, {user_id: None})
            await _ensure_levels(s, guild_id, [user_id])
            row = (await s.execute(select(Level).where(Level.guild_id == guild_id, Level.user_id == user_id)
                                   .with_for_update())).scalar_one()
            old = row.level
            row.xp = int(new_xp(row.xp, curve))
            row.level = curve.level_for_xp(row.xp)
            return LevelChange(user_id, old, row.level, row.xp)

        try:
            return await self.db.run(work)
        finally:
            self._xp_changed(guild_id)

    async def reset_member(self, guild_id: int, user_id: int) -> bool:
        """Forget a member's XP, counters, quest progress and achievements in this server (not their card)."""
        try:
            async with self.db.session() as s:
                gone = await s.execute(delete(Level).where(Level.guild_id == guild_id, Level.user_id == user_id))
                for model in (UserQuest, UserAchievement):
                    await s.execute(delete(model).where(model.guild_id == guild_id, model.user_id == user_id))
                return gone.rowcount > 0
        finally:
            self._xp_changed(guild_id)

    async def reset_server(self, guild_id: int) -> int:
        """Forget every member's XP, quest progress and achievements in this server; returns members reset."""
        try:
            async with self.db.session() as s:
                gone = await s.execute(delete(Level).where(Level.guild_id == guild_id))
                for model in (UserQuest, UserAchievement):
                    await s.execute(delete(model).where(model.guild_id == guild_id))
                return gone.rowcount
        finally:
            self._xp_changed(guild_id)

    # ------------------------------------------------------------------------------- leaderboard

    async def leaderboard(self, guild_id: int, page: int = 1, per_page: int = 10) -> LeaderboardPage:
        per_page = max(1, min(per_page, 50))
        total = await self.member_count(guild_id)
        pages = max(1, math.ceil(total / per_page))
        page = max(1, min(page, pages))
        entries = await self.top_entries(guild_id, per_page, offset=(page - 1) * per_page)
        return LeaderboardPage(entries, page, pages, total)

    async def member_count(self, guild_id: int) -> int:
        """Members with an XP row in the server."""
        async with self.db.session(read_only=True) as s:
            return int(await s.scalar(select(func.count()).select_from(Level).where(Level.guild_id == guild_id)) or 0)

    async def top_entries(self, guild_id: int, limit: int, offset: int = 0) -> list[LeaderboardEntry]:
        """Leaderboard entries ``offset+1 .. offset+limit`` by stored XP (ties by user id)."""
        async with self.db.session(read_only=True) as s:
            rows = (await s.execute(
                select(Level.user_id, Level.xp, Level.level, User.username, User.custom_name,
                       User.discord_display_name)
                .join(User, User.id == Level.user_id)
                .where(Level.guild_id == guild_id)
                .order_by(Level.xp.desc(), Level.user_id)
                .limit(limit).offset(offset)
            )).all()
        return [
            LeaderboardEntry(offset + i + 1, r.user_id, r.custom_name or r.discord_display_name or r.username
                             or str(r.user_id), r.xp, r.level)
            for i, r in enumerate(rows)
        ]

    async def member_names(self, guild_id: int, user_ids: Iterable[int]) -> dict[int, str]:
        """Display names of members (custom name, else Discord display name, else username)."""
        del guild_id  # names are global; kept so every read names the server it serves
        ids = sorted(set(user_ids))
        if not ids:
            return {}
        async with self.db.session(read_only=True) as s:
            rows = (await s.execute(select(User.id, User.username, User.custom_name, User.discord_display_name)
                                    .where(User.id.in_(ids)))).all()
        return {r.id: r.custom_name or r.discord_display_name or r.username or str(r.id) for r in rows}

    async def stored_xp(self, guild_id: int, user_ids: Iterable[int]) -> dict[int, int]:
        """Stored total XP of the members that have a row here."""
        ids = sorted(set(user_ids))
        out: dict[int, int] = {}
        if not ids:
            return out
        async with self.db.session(read_only=True) as s:
            for i in range(0, len(ids), 10_000):  # below both drivers' limits on bound values
                rows = await s.execute(select(Level.user_id, Level.xp).where(
                    Level.guild_id == guild_id, Level.user_id.in_(ids[i:i + 10_000])))
                out.update({int(u): int(x) for u, x in rows.all()})
        return out

    async def _pending_join(self, sql_sqlite: str, sql_pg: str, guild_id: int, pending: Mapping[int, int],
                            **params: Any) -> list[Any]:
        """Run a read joining members' pending XP ({user: xp}) to their stored rows, in one statement: the pairs
        travel as one JSON parameter (SQLite) or two arrays (PostgreSQL), never as one bound value per member."""
        users = sorted(pending)
        async with self.db.session(read_only=True) as s:
            if self.db.backend == "postgresql":
                stmt = text(sql_pg).bindparams(bindparam("users", type_=ARRAY(BigInteger())),
                                               bindparam("gains", type_=ARRAY(BigInteger())))
                rows = await s.execute(stmt, {"g": guild_id, "users": users, "gains": [pending[u] for u in users],
                                              **params})
            else:
                rows = await s.execute(text(sql_sqlite), {"g": guild_id, "p": json.dumps(
                    [(u, pending[u]) for u in users]), **params})
            return list(rows.all())

    async def count_passing(self, guild_id: int, user_id: int, xp: int, pending: Mapping[int, int]) -> int:
        """How many members with pending XP ({user: xp}) are stored behind a member holding ``xp`` but pass them
        with it (a member with no row counts from 0)."""
        if not pending:
            return 0
        behind = "NOT (coalesce(l.xp, 0) > :x OR (coalesce(l.xp, 0) = :x AND {u} < :me) OR l.xp IS NULL AND 0 > :x)"
        passes = "(coalesce(l.xp, 0) + {gain} > :x OR (coalesce(l.xp, 0) + {gain} = :x AND {u} < :me))"
        where = f"{behind} AND {passes}"
        sqlite = ("SELECT count(*) FROM json_each(:p) AS j LEFT JOIN leveling_levels AS l "
                  "ON l.guild_id = :g AND l.user_id = j.value->>0 WHERE "
                  + where.format(u="j.value->>0", gain="j.value->>1"))
        pg = ("SELECT count(*) FROM unnest(:users, :gains) AS t(u, x) LEFT JOIN leveling_levels AS l "
              "ON l.guild_id = :g AND l.user_id = t.u WHERE " + where.format(u="t.u", gain="t.x"))
        rows = await self._pending_join(sqlite, pg, guild_id, pending, x=xp, me=user_id)
        return int(rows[0][0])

    async def pending_reaching(self, guild_id: int, threshold: int, pending: Mapping[int, int]
                               ) -> dict[int, int | None]:
        """Members with pending XP ({user: xp}) whose stored XP plus it reaches ``threshold``, and those with no row
        at all: {user: stored XP, or None for a member with no row}."""
        if not pending:
            return {}
        sqlite = ("SELECT j.value->>0, l.xp FROM json_each(:p) AS j LEFT JOIN leveling_levels AS l "
                  "ON l.guild_id = :g AND l.user_id = j.value->>0 WHERE l.xp IS NULL OR l.xp + j.value->>1 >= :t")
        pg = ("SELECT t.u, l.xp FROM unnest(:users, :gains) AS t(u, x) LEFT JOIN leveling_levels AS l "
              "ON l.guild_id = :g AND l.user_id = t.u WHERE l.xp IS NULL OR l.xp + t.x >= :t")
        rows = await self._pending_join(sqlite, pg, guild_id, pending, t=threshold)
        return {int(u): (None if x is None else int(x)) for u, x in rows}

    async def stored_xp_between(self, guild_id: int, low: int, high: int | None = None) -> dict[int, int]:
        """Members whose stored XP is in [low, high] (a range of the leaderboard index)."""
        cond = [Level.guild_id == guild_id, Level.xp >= low]
        if high is not None:
            cond.append(Level.xp <= high)
        async with self.db.session(read_only=True) as s:
            rows = await s.execute(select(Level.user_id, Level.xp).where(*cond))
            return {int(u): int(x) for u, x in rows.all()}

    async def rank_for_xp(self, guild_id: int, user_id: int, xp: int) -> int:
        """The rank a member with ``xp`` would hold among the stored rows (ties broken by user id)."""
        async with self.db.session(read_only=True) as s:
            return await self._rank_for_xp(s, guild_id, user_id, xp)

    @staticmethod
    async def _rank_for_xp(s: AsyncSession, guild_id: int, user_id: int, xp: int) -> int:
        # Two counts, so the larger one reads the (guild_id, xp) index alone (no table lookups): members above,
        # then the few tied members with a smaller id (the member's own stored XP is never above ``xp``).
        above = select(func.count()).select_from(Level).where(Level.guild_id == guild_id, Level.xp > xp)
        tied = select(func.count()).select_from(Level).where(Level.guild_id == guild_id, Level.xp == xp,
                                                             Level.user_id < user_id)
        ahead = await s.scalar(select(above.scalar_subquery() + tied.scalar_subquery()))
        return int(ahead or 0) + 1

    async def level_and_rank(self, guild_id: int, user_id: int, extra_xp: int = 0) -> tuple[int | None, int]:
        """(stored XP or None, rank the member holds with ``extra_xp`` more) in one read."""
        async with self.db.session(read_only=True) as s:
            mine = await s.scalar(select(Level.xp).where(Level.guild_id == guild_id, Level.user_id == user_id))
            xp = min((mine or 0) + extra_xp, rules.MAX_XP)
            return (None if mine is None else int(mine)), await self._rank_for_xp(s, guild_id, user_id, xp)

    async def rank_position(self, guild_id: int, user_id: int) -> int | None:
        """1-based rank by XP (ties broken by user id), or None for a member with no XP row."""
        mine = (await self.stored_xp(guild_id, [user_id])).get(user_id)
        return None if mine is None else await self.rank_for_xp(guild_id, user_id, mine)

    # ------------------------------------------------------------------------------- level roles

    async def add_level_role(self, guild_id: int, role_id: int, level: int, *, stacked: bool = True) -> LevelRole:
        _int_in("The level", 0, 1000)(level)

        async def work(s: AsyncSession) -> LevelRole:
            await ensure_guild(s, guild_id)
            ins = insert_for(s, LevelRoleRow).values(guild_id=guild_id, role_id=role_id, level=level,
                                                      is_stacked=stacked)
            await s.execute(ins.on_conflict_do_update(index_elements=["guild_id", "role_id"],
                                                      set_={"level": level, "is_stacked": stacked}))
            return LevelRole(role_id, level, stacked)

        try:
            return await self.db.run(work)
        finally:
            self.cache.invalidate(("level_roles", guild_id))

    async def remove_level_role(self, guild_id: int, role_id: int) -> None:
        """Stop granting a role; members keep it, and it is no longer counted as a level reward."""
        try:
            async with self.db.session() as s:
                gone = await s.execute(delete(LevelRoleRow).where(LevelRoleRow.guild_id == guild_id,
                                                                  LevelRoleRow.role_id == role_id))
                if not gone.rowcount:
                    raise NotFoundError("That role is not a level role.")
                await s.execute(delete(LevelRoleGrant).where(LevelRoleGrant.guild_id == guild_id,
                                                             LevelRoleGrant.role_id == role_id))
        finally:
            self.cache.invalidate(("level_roles", guild_id))

    async def list_level_roles(self, guild_id: int) -> list[LevelRole]:
        """The server's level roles by level (cached: every level-up asks; invalidated when they change)."""

        async def load() -> list[LevelRole]:
            async with self.db.session(read_only=True) as s:
                rows = (await s.execute(select(LevelRoleRow).where(LevelRoleRow.guild_id == guild_id)
                                        .order_by(LevelRoleRow.level, LevelRoleRow.role_id))).scalars()
                return [LevelRole(r.role_id, r.level, r.is_stacked) for r in rows]

        return list(await self.cache.get_or_load(("level_roles", guild_id), load))

    async def level_role_changes(self, guild_id: int, user_id: int,
                                 current_roles: Iterable[int]) -> tuple[set[int], set[int]]:
        """(roles to add, roles to remove) so the member holds the level roles their level earns. Only roles
        this bot granted as level rewards are removed (see `record_level_roles`)."""
        roles = await self.list_level_roles(guild_id)
        if not roles:
            return set(), set()
        level = (await self.get_user_level(guild_id, user_id)).level
        return rules.reconcile_roles(current_roles, level, roles, granted=await self.granted_roles(guild_id, user_id))

    async def granted_roles(self, guild_id: int, user_id: int) -> set[int]:
        """The level roles this bot gave the member (and has not taken back)."""
        async with self.db.session(read_only=True) as s:
            return set((await s.execute(select(LevelRoleGrant.role_id).where(
                LevelRoleGrant.guild_id == guild_id, LevelRoleGrant.user_id == user_id))).scalars())

    async def record_level_roles(self, guild_id: int, user_id: int, *, given: Iterable[int],
                                 held: Iterable[int]) -> None:
        """Remember the level roles just given; forget grants of roles the member no longer holds (taken back
        by the bot, or removed by hand: a role they get again elsewhere is then theirs)."""
        given, held = set(given), set(held) | set(given)
        now = utcnow()

        async def work(s: AsyncSession) -> None:
            await ensure_guild(s, guild_id)
            if given:
                rows = [{"guild_id": guild_id, "user_id": user_id, "role_id": r, "granted_at": now}
                        for r in sorted(given)]
                await s.execute(insert_for(s, LevelRoleGrant).on_conflict_do_nothing(
                    index_elements=["guild_id", "user_id", "role_id"]), rows)
            await s.execute(delete(LevelRoleGrant).where(
                LevelRoleGrant.guild_id == guild_id, LevelRoleGrant.user_id == user_id,
                LevelRoleGrant.role_id.not_in(sorted(held))))

        await self.db.run(work)

    async def levels_of(self, guild_id: int, user_ids: Iterable[int]) -> dict[int, int]:
        """Each member's level (0 for members with no XP yet)."""
        wanted = sorted(set(user_ids))
        found: dict[int, int] = {}
        async with self.db.session(read_only=True) as s:
            for start in range(0, len(wanted), 1000):
                chunk = wanted[start:start + 1000]
                rows = await s.execute(select(Level.user_id, Level.level).where(
                    Level.guild_id == guild_id, Level.user_id.in_(chunk)))
                found.update((uid, level) for uid, level in rows)
        return {uid: found.get(uid, 0) for uid in wanted}

    # ------------------------------------------------------------------------------------ quests

    async def create_quest(  # noqa: PLR0917 - the seed's signature
        self,
        guild_id: int,
        name: str,
        description: str,
        quest_type: str,
        requirement_type: str,
        requirement_value: int,
        reward_xp: int,
        reward_multiplier: float = 1.0,
        difficulty: str = "medium",
        refresh_cycle: str | None = None,
        *,
        multiplier_minutes: int = 0,
        expires_at: datetime | None = None,
        created_by: int | None = None,
        template_key: str | None = None,
        period_start: datetime | None = None,
    ) -> QuestView:
        name = clean_text(name, "The quest name", max_length=100)
        description = clean_text(description or "", "The description", max_length=1000, min_length=0,
                                 multiline=True)
        _choice("The quest type", rules.QUEST_TYPES)(quest_type)
        _choice("The requirement", rules.QUEST_REQUIREMENTS)(requirement_type)
        _choice("The difficulty", rules.DIFFICULTIES)(difficulty)
        refresh_cycle = refresh_cycle or (quest_type if quest_type in ("daily", "weekly") else "once")
        _choice("The refresh cycle", rules.REFRESH_CYCLES)(refresh_cycle)
        _int_in("The requirement", 1, 10**9)(requirement_value)
        _int_in("The reward", 0, 10**7)(reward_xp)
        _float_in("The reward multiplier", 1.0, 10.0)(reward_multiplier)
        _int_in("The multiplier duration", 0, 60 * 24 * 30)(multiplier_minutes)
        now = utcnow()
        if expires_at is None and refresh_cycle != "once":
            hour, day = await self.get_quest_reset_settings(guild_id)
            period_start = period_start or rules.period_start(refresh_cycle, now, hour, day)
            expires_at = rules.next_reset(refresh_cycle, now, hour, day) if quest_type in ("daily", "weekly") else None

        async def work(s: AsyncSession) -> QuestView:
            await ensure_guild(s, guild_id)
            row = Quest(guild_id=guild_id, name=name, description=description, quest_type=quest_type,
                        requirement_type=requirement_type, requirement_value=requirement_value, reward_xp=reward_xp,
                        reward_multiplier=reward_multiplier, multiplier_minutes=multiplier_minutes, active=True,
                        refresh_cycle=refresh_cycle, difficulty=difficulty, template_key=template_key,
                        period_start=period_start, expires_at=expires_at, created_by=created_by, created_at=now)
            s.add(row)
            await s.flush()
            return QuestView.of(row)

        try:
            return await self.db.run(work)
        finally:
            self.cache.invalidate(("active_quests", guild_id))

    async def get_quest(self, guild_id: int, quest_id: int) -> QuestView:
        """A quest of this server by id (cached)."""

        async def load() -> QuestView:
            async with self.db.session(read_only=True) as s:
                row = (await s.execute(select(Quest).where(Quest.guild_id == guild_id, Quest.id == quest_id)))
                quest = row.scalar_one_or_none()
                if quest is None:
                    raise NotFoundError("There is no quest with that id here.")
                return QuestView.of(quest)

        return await self.cache.get_or_load(("quest", guild_id, quest_id), load)

    async def warm(self, guild_ids: Iterable[int]) -> None:
        """Load the config, active quests and achievements of every server in ``guild_ids`` that is not cached
        (or expired), with one query each for all of them: the write-behind path keeps its servers warm this way
        instead of one round trip per server."""
        wanted = sorted(set(guild_ids))
        cache = self.cache
        configs = [g for g in wanted if cache.get(("config", g)) is None]
        quests = [g for g in wanted if cache.get(("active_quests", g)) is None]
        achievements = [g for g in wanted if cache.get(("achievements", g)) is None]
        if not (configs or quests or achievements):
            return
        epoch = cache.epoch
        async with self.db.session(read_only=True) as s:
            found_cfg = {r.guild_id: ServerConfigView.of(r) for r in (await s.execute(
                select(ServerConfig).where(ServerConfig.guild_id.in_(configs)))).scalars()} if configs else {}
            found_q: dict[int, list[QuestView]] = {g: [] for g in quests}
            if quests:
                for r in (await s.execute(select(Quest).where(Quest.guild_id.in_(quests), Quest.active == true())
                                          .order_by(Quest.id))).scalars():
                    found_q[r.guild_id].append(QuestView.of(r))
            found_a: dict[int, list[AchievementView]] = {g: [] for g in achievements}
            if achievements:
                for r in (await s.execute(select(Achievement).where(Achievement.guild_id.in_(achievements)).order_by(
                        Achievement.requirement_type, Achievement.requirement_value))).scalars():
                    found_a[r.guild_id].append(AchievementView.of(r))
        if epoch != cache.epoch:  # a write raced the load: let each key load on its own
            return
        for g in configs:
            cache.set(("config", g), found_cfg.get(g) or ServerConfigView(guild_id=g))
        for g, rows in found_q.items():
            cache.set(("active_quests", g), rows)
        for g, rows in found_a.items():
            cache.set(("achievements", g), rows)

    async def recent_message_times_in(self, guild_ids: Sequence[int], since: datetime
                                      ) -> dict[tuple[int, int], datetime]:
        """`recent_message_times` for many servers in one query: {(guild, member): last XP message}."""
        if not guild_ids:
            return {}
        async with self.db.session(read_only=True) as s:
            rows = await s.execute(select(Level.guild_id, Level.user_id, Level.last_message_time).where(
                Level.guild_id.in_(sorted(set(guild_ids))), Level.last_message_time > since))
            return {(g, u): t for g, u, t in rows.all()}

    async def get_guild_active_quests(self, guild_id: int, quest_type: str | None = None) -> list[QuestView]:
        """Active, unexpired quests of the server (cached; invalidated when quests change)."""

        async def load() -> list[QuestView]:
            async with self.db.session(read_only=True) as s:
                rows = (await s.execute(select(Quest).where(Quest.guild_id == guild_id, Quest.active == true())
                                        .order_by(Quest.id))).scalars()
                return [QuestView.of(r) for r in rows]

        now = utcnow()
        quests = await self.cache.get_or_load(("active_quests", guild_id), load)
        return [q for q in quests if (q.expires_at is None or q.expires_at > now)
                and (quest_type is None or q.quest_type == quest_type)]

    async def get_user_active_quests(self, guild_id: int, user_id: int) -> list[UserQuestView]:
        quests = await self.get_guild_active_quests(guild_id)
        if not quests:
            return []
        async with self.db.session(read_only=True) as s:
            rows = {r.quest_id: r for r in (await s.execute(select(UserQuest).where(
                UserQuest.guild_id == guild_id, UserQuest.user_id == user_id,
                UserQuest.quest_id.in_([q.id for q in quests])))).scalars()}
        return [
            UserQuestView(q, rows[q.id].progress, rows[q.id].quest_specific_progress, rows[q.id].completed,
                          rows[q.id].completed_at) if q.id in rows else UserQuestView(q, 0, 0, False, None)
            for q in quests
        ]

    async def check_quest_progress(self, guild_id: int, user_id: int, counter_type: str, counter_value: int,
                                   session_value: int | None = None) -> list[QuestView]:
        """Advance the member's active quests on ``counter_type`` by ``session_value`` (default 1) and
        return the quests this completed (their rewards are paid in the same unit of work)."""
        outcome = await self.update_activity_counter_db(guild_id, user_id, counter_type,
                                                        1 if session_value is None else session_value)
        del counter_value  # the stored counter is authoritative; kept for the seed's signature
        return [q for uid, q in outcome.quests_completed if uid == user_id]

    async def award_quest_rewards(self, guild_id: int, user_id: int, quest_id: int) -> bool:
        """Pay a quest whose requirement is met, once: True if this call paid it."""
        quest = await self.get_quest(guild_id, quest_id)
        cfg = await self.get_server_config(guild_id)

        async def work(s: AsyncSession) -> bool:
            now = utcnow()
            if not await self._complete(s, guild_id, quest, [user_id], now):
                return False
            level = (await s.execute(select(Level).where(Level.guild_id == guild_id, Level.user_id == user_id)
                                     .with_for_update())).scalar_one()
            level.xp += quest.reward_xp
            level.level = cfg.curve_rule.level_for_xp(level.xp)
            if quest.reward_multiplier > 1 and quest.multiplier_minutes > 0:
                level.xp_multiplier = quest.reward_multiplier
                level.multiplier_expires_at = now + timedelta(minutes=quest.multiplier_minutes)
            return True

        return await self.db.run(work)

    async def end_quest(self, guild_id: int, quest_id: int) -> QuestView:
        if not 0 < quest_id < 2**63:
            raise NotFoundError("There is no quest with that id here.")
        async with self.db.session() as s:
            row = (await s.execute(select(Quest).where(Quest.guild_id == guild_id, Quest.id == quest_id))
                   ).scalar_one_or_none()
            if row is None:
                raise NotFoundError("There is no quest with that id here.")
            row.active = False
            view = QuestView.of(row)
        self.cache.invalidate(("active_quests", guild_id))
        self.cache.invalidate(("quest", guild_id, quest_id))
        return view

    async def mark_quests_inactive(self, guild_id: int, quest_type: str | None = None,
                                   now: datetime | None = None) -> int:
        """Deactivate every active quest of ``quest_type``, or (no type) every active quest that has expired."""
        now = now or utcnow()
        cond = [Quest.guild_id == guild_id, Quest.active == true()]
        if quest_type is not None:
            cond.append(Quest.quest_type == quest_type)
        else:
            cond.extend([Quest.expires_at.is_not(None), Quest.expires_at <= now])
        async with self.db.session() as s:
            done = await s.execute(update(Quest).where(*cond).values(active=False))
        self.cache.invalidate_guild(guild_id)
        return done.rowcount

    async def reset_quests(self, guild_id: int, now: datetime | None = None,
                           templates: Sequence[rules.QuestTemplate] = rules.QUEST_TEMPLATES) -> list[QuestView]:
        """Run the server's quest reset: expire old quests, create this period's daily and weekly quests from
        the templates (once per period even if several processes run it; not when the server turned
        ``quests_enabled`` off) and restart refreshing custom quests."""
        now = now or utcnow()
        cfg = await self.get_server_config(guild_id)
        hour, day = cfg.quest_reset_hour, cfg.quest_reset_day
        templates = templates if cfg.quests_enabled else ()
        await self.mark_quests_inactive(guild_id, now=now)
        created: list[QuestView] = []

        async def work(s: AsyncSession) -> list[QuestView]:
            created.clear()
            await ensure_guild(s, guild_id)
            for t in templates:
                start = rules.period_start(t.quest_type, now, hour, day)
                ins = insert_for(s, Quest).values(
                    guild_id=guild_id, name=t.name, description=t.description.format(n=t.requirement_value),
                    quest_type=t.quest_type, requirement_type=t.requirement_type,
                    requirement_value=t.requirement_value, reward_xp=t.reward_xp,
                    reward_multiplier=t.reward_multiplier, multiplier_minutes=t.multiplier_minutes, active=True,
                    refresh_cycle=t.quest_type, difficulty=t.difficulty, template_key=t.key, period_start=start,
                    expires_at=rules.next_reset(t.quest_type, now, hour, day), created_at=now,
                ).on_conflict_do_nothing(index_elements=["guild_id", "template_key", "period_start"])
                new_id = (await s.execute(ins.returning(Quest.id))).scalar_one_or_none()
                if new_id is not None:
                    created.append(QuestView.of(await s.get_one(Quest, new_id)))
            await self._refresh_custom_quests(s, guild_id, now, hour, day)
            return list(created)

        try:
            return await self.db.run(work)
        finally:
            self.cache.invalidate_guild(guild_id)

    async def _refresh_custom_quests(self, s: AsyncSession, guild_id: int, now: datetime, hour: int,
                                     day: int) -> None:
        """Custom quests with a refresh cycle restart their members' progress once per period."""
        rows = (await s.execute(select(Quest.id, Quest.refresh_cycle).where(
            Quest.guild_id == guild_id, Quest.active == true(), Quest.template_key.is_(None),
            Quest.refresh_cycle != "once"))).all()
        for quest_id, cycle in rows:
            start = rules.period_start(cycle, now, hour, day)
            won = await s.execute(update(Quest).where(
                Quest.id == quest_id, or_(Quest.period_start.is_(None), Quest.period_start < start))
                .values(period_start=start).returning(Quest.id))
            if won.scalar_one_or_none() is not None:
                await s.execute(delete(UserQuest).where(UserQuest.guild_id == guild_id,
                                                        UserQuest.quest_id == quest_id))

    # ------------------------------------------------------------------------------ achievements

    async def create_achievement(  # noqa: PLR0917 - the seed's signature
        self, guild_id: int, name: str, description: str, requirement_type: str, requirement_value: int,
        reward_xp: int = 0, badge_url: str | None = None,
    ) -> AchievementView:
        name = clean_text(name, "The achievement name", max_length=100)
        description = clean_text(description or "", "The description", max_length=1000, min_length=0,
                                 multiline=True)
        _choice("The requirement", rules.ACHIEVEMENT_REQUIREMENTS)(requirement_type)
        _int_in("The requirement", 1, 10**12)(requirement_value)
        _int_in("The reward", 0, 10**7)(reward_xp)
        badge_url = rules.validate_url(badge_url) if badge_url else None

        async def work(s: AsyncSession) -> AchievementView:
            await ensure_guild(s, guild_id)
            row = Achievement(guild_id=guild_id, name=name, description=description,
                              requirement_type=requirement_type, requirement_value=requirement_value,
                              reward_xp=reward_xp, badge_url=badge_url, created_at=utcnow())
            s.add(row)
            await s.flush()
            return AchievementView.of(row)

        try:
            return await self.db.run(work)
        finally:
            self.cache.invalidate(("achievements", guild_id))

    async def list_achievements(self, guild_id: int) -> list[AchievementView]:
        """The server's achievements (cached; invalidated when one is created)."""

        async def load() -> list[AchievementView]:
            async with self.db.session(read_only=True) as s:
                rows = (await s.execute(select(Achievement).where(Achievement.guild_id == guild_id).order_by(
                    Achievement.requirement_type, Achievement.requirement_value))).scalars()
                return [AchievementView.of(r) for r in rows]

        return list(await self.cache.get_or_load(("achievements", guild_id), load))

    async def get_user_achievements(self, guild_id: int, user_id: int) -> list[AchievementView]:
        async with self.db.session(read_only=True) as s:
            rows = (await s.execute(
                select(Achievement, UserAchievement.earned_at)
                .join(UserAchievement, UserAchievement.achievement_id == Achievement.id)
                .where(UserAchievement.guild_id == guild_id, UserAchievement.user_id == user_id)
                .order_by(UserAchievement.earned_at)
            )).all()
            return [AchievementView.of(a, earned) for a, earned in rows]

    async def check_achievement_progress(self, guild_id: int, user_id: int, counter_type: str | None = None,
                                         value: int | None = None) -> list[AchievementView]:
        """Grant (and pay, once) every achievement the member's stored stats now meet."""
        del counter_type, value  # the stored counters are authoritative; kept for the seed's signature
        outcome = await self.apply_activity(guild_id, [ActivityDelta(user_id)])
        return [a for uid, a in outcome.achievements_earned if uid == user_id]

    # ------------------------------------------------------------------------------------- cards

    async def get_card(self, guild_id: int, user_id: int) -> CardView:
        async with self.db.session(read_only=True) as s:
            row = await s.get(Card, (guild_id, user_id))
            if row is None:
                return CardView()
            return CardView(**{f.name: getattr(row, f.name) for f in fields(CardView)})

    async def update_card(self, guild_id: int, user_id: int, **changes: str | None) -> CardView:
        """Change rank-card settings; colours are hex codes, the background an http(s) image URL, '' resets."""
        values: dict[str, str | None] = {}
        for name, value in changes.items():
            if name not in {f.name for f in fields(CardView)}:
                raise ValidationError(f"Unknown card setting “{echo(name)}”.")
            if value in (None, ""):
                values[name] = "default" if name == "card_style" else None
            elif name in CARD_COLOURS:
                values[name] = rules.normalize_hex_colour(value)
            elif name == "background_url":
                values[name] = rules.validate_url(value)
            else:
                values[name] = _choice("The card style", rules.CARD_STYLES)(value)

        async def work(s: AsyncSession) -> None:
            await ensure_guild(s, guild_id)
            await _ensure_users(s, {user_id: None})
            ins = insert_for(s, Card).values(guild_id=guild_id, user_id=user_id, card_style="default")
            await s.execute(ins.on_conflict_do_nothing(index_elements=["guild_id", "user_id"]))
            if values:
                await s.execute(update(Card).where(Card.guild_id == guild_id, Card.user_id == user_id)
                                .values(**values))

        await self.db.run(work)
        return await self.get_card(guild_id, user_id)

    # ------------------------------------------------------------------------------------ import

    async def import_mee6(self, guild_id: int, players: Sequence[Mapping[str, Any]], *,
                          progress: Callable[[int, int], None] | None = None) -> ImportReport:
        """Upsert a MEE6 leaderboard (``id``, ``xp``, optional ``level``/``username``): total XP is kept, the
        level is derived from this server's curve. Running it twice changes nothing the second time.

        An entry whose id is not a Discord id or whose xp is not a whole number (``1.9``, ``true``) is skipped with
        the reason. Every statement handles at most ``IMPORT_CHUNK`` players, so any number of players fits the
        drivers' parameter limits (asyncpg: 32,767 per statement); the import is still one transaction.
        ``progress(done, total)`` is called after each chunk.
        """
        if isinstance(guild_id, bool) or not isinstance(guild_id, int) or not 0 < guild_id < 2**63:
            raise ValidationError("The server id must be a Discord id (1 to 9223372036854775807).")
        report = ImportReport()
        wanted: dict[int, tuple[int, str | None]] = {}
        for i, p in enumerate(players):
            label = str(p.get("id", f"#{i + 1}")) if isinstance(p, Mapping) else f"#{i + 1}"
            if not isinstance(p, Mapping):
                report.skipped.append((label, "not an object"))
                continue
            uid = _whole_number(p.get("id"))
            xp = _whole_number(p.get("xp"))
            if uid is None or not 0 < uid < 2**63:
                report.skipped.append((label, "id must be a Discord user id (a whole number from 1 to 2^63-1)"))
            elif xp is None:
                report.skipped.append((label, f"xp must be a whole number (got {_json_text(p.get('xp'))})"))
            elif not 0 <= xp <= MAX_ADMIN_XP:
                report.skipped.append((label, "xp out of range"))
            elif uid in wanted:
                report.skipped.append((label, "listed twice; the first entry was used"))
            else:
                wanted[uid] = (xp, p.get("username") if isinstance(p.get("username"), str) else None)
        curve = (await self.get_server_config(guild_id)).curve_rule
        ids = sorted(wanted)

        async def work(s: AsyncSession) -> ImportReport:
            out = ImportReport(skipped=list(report.skipped))
            await ensure_guild(s, guild_id)
            now = utcnow()
            if progress is not None:
                progress(0, len(ids))
            for start in range(0, len(ids), IMPORT_CHUNK):
                chunk = ids[start:start + IMPORT_CHUNK]
                await _ensure_users(s, {u: wanted[u][1] for u in chunk})
                existing = dict((await s.execute(select(Level.user_id, Level.xp).where(
                    Level.guild_id == guild_id, Level.user_id.in_(chunk)))).all())
                rows = []
                for uid in chunk:
                    xp = wanted[uid][0]
                    if uid not in existing:
                        out.imported += 1
                    elif existing[uid] == xp:
                        out.unchanged += 1
                        continue
                    else:
                        out.updated += 1
                    rows.append({"guild_id": guild_id, "user_id": uid, "xp": xp, "level": curve.level_for_xp(xp),
                                 "created_at": now, "updated_at": now})
                if rows:
                    ins = insert_for(s, Level)
                    ins = ins.on_conflict_do_update(index_elements=["guild_id", "user_id"], set_={
                        "xp": ins.excluded.xp, "level": ins.excluded.level, "updated_at": ins.excluded.updated_at})
                    await s.execute(ins, rows)
                if progress is not None:
                    progress(start + len(chunk), len(ids))
            return out

        try:
            return await self.db.run(work)
        finally:
            self._xp_changed(guild_id)
