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
from dataclasses import dataclass, fields, replace
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import BigInteger, Table, bindparam, delete, false, func, or_, select, text, true, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession

from guildkeep.cache import InvalidationBus, TTLCache
from guildkeep.db import Database, utcnow
from guildkeep.db.dialect import insert_for
from guildkeep.errors import ConflictError
from guildkeep.identity.models import User
from guildkeep.identity.service import ensure_guild
from guildkeep.leveling import rules
from guildkeep.leveling import settings as config
from guildkeep.leveling.errors import (
    CounterError,
    LevelingValidationError,
    NotALevelRoleError,
    NoTargetError,
    OneTargetError,
    QuestNotFoundError,
)
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
from guildkeep.leveling.results import (
    CARD_COLOURS,
    COUNTERS,
    AchievementInfo,
    ActivityResult,
    CardInfo,
    ImportResult,
    LeaderboardEntryInfo,
    LevelChangeResult,
    LevelInfo,
    QuestInfo,
    QuestResetResult,
    ServerConfigInfo,
    UserQuestInfo,
)
from guildkeep.leveling.rules import Curve, LevelRole
from guildkeep.results import Page
from guildkeep.scheduler import rules as jobs_rules
from guildkeep.scheduler.errors import JobStateError
from guildkeep.scheduler.results import JobInfo
from guildkeep.scheduler.service import SchedulerService
from guildkeep.text import clean_text, echo, strip_control

MAX_ADMIN_XP = 10**12
QUEST_RESET_JOB = "leveling.quest_reset"
QUEST_RESET_MAX_ATTEMPTS = 3
IMPORT_CHUNK = 2_000  # players per statement: 7 columns x 2,000 stays far below asyncpg's 32,767 arguments


LEVELS = cast(Table, Level.__table__)
USER_QUESTS = cast(Table, UserQuest.__table__)
_PERIOD_COLUMNS = tuple(f"{p}_{c}" for p in rules.PERIODS for c in ("period", *rules.PERIOD_COUNTERS.values()))


def _by_period(quest: QuestInfo) -> bool:
    """A generated daily or weekly quest: its progress is the member's period counter (`rules.PERIOD_COUNTERS`)."""
    return rules.counts_by_period(quest.quest_type, quest.template_key, quest.period_start)


def _moved_periods(row: Any, delta: ActivityDelta, periods: Mapping[str, int]) -> dict[str, int | None]:
    """A member's period counters after ``delta`` (``row`` holds them as read, locked).

    A later period starts them from zero, the current one adds, a server with no quest of a kind leaves its
    counters alone.
    """
    out: dict[str, int | None] = {}
    for kind in rules.PERIODS:
        stored = getattr(row, f"{kind}_period")
        values = {c: getattr(row, f"{kind}_{c}") for c in rules.PERIOD_COUNTERS.values()}
        key = periods.get(kind)
        if key is not None and (stored is None or key > stored):
            stored, values = key, dict.fromkeys(values, 0)
        if key is not None and key == stored:
            for requirement, c in rules.PERIOD_COUNTERS.items():
                values[c] += delta.quest_increment(requirement)
        out[f"{kind}_period"] = stored
        out.update({f"{kind}_{c}": v for c, v in values.items()})
    return out


def _rowcount(result: Any) -> int:
    """Rows a DELETE or UPDATE matched (``CursorResult.rowcount``; ``execute`` is typed as returning ``Result``)."""
    return int(result.rowcount)


def quest_reset_key(guild_id: int) -> str:
    """The dedup key of a server's quest reset job."""
    return f"guild:{guild_id}"


# ------------------------------------------------------------------------------------------ input


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
        """How far this activity moves quests counting ``requirement_type``."""
        if self.quest is None:
            return int(getattr(self, requirement_type))
        return self.quest.get(requirement_type, 0)

    def merge(self, other: ActivityDelta) -> None:
        """Add ``other`` (the same member's later activity) to this one."""
        if self.quest is not None or other.quest is not None:
            mine = {t: self.quest_increment(t) for t in rules.QUEST_REQUIREMENTS}
            self.quest = {t: mine[t] + other.quest_increment(t) for t in rules.QUEST_REQUIREMENTS}
        self.xp += other.xp
        for name in COUNTERS:
            setattr(self, name, getattr(self, name) + getattr(other, name))
        if other.last_message_time and (not self.last_message_time or other.last_message_time > self.last_message_time):
            self.last_message_time = other.last_message_time
        self.username = other.username or self.username



# ------------------------------------------------------------------------------------- config fields


def _int_in(name: str, lo: int, hi: int) -> Callable[[Any], int]:
    def check(value: Any) -> int:
        try:
            number = int(value)
        except (TypeError, ValueError):
            raise LevelingValidationError(f"{name} must be a whole number.") from None
        if not lo <= number <= hi:
            raise LevelingValidationError(f"{name} must be between {lo:,} and {hi:,}.")
        return number

    return check


def _float_in(name: str, lo: float, hi: float) -> Callable[[Any], float]:
    def check(value: Any) -> float:
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise LevelingValidationError(f"{name} must be a number.") from None
        if not math.isfinite(number) or not lo <= number <= hi:
            raise LevelingValidationError(f"{name} must be between {lo:,g} and {hi:,g}.")
        return number

    return check


def _choice(name: str, options: Sequence[str]) -> Callable[[Any], str]:
    def check(value: Any) -> str:
        if value not in options:
            raise LevelingValidationError(f"{name} must be one of: {', '.join(options)}.")
        return str(value)

    return check


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


def _level_view(row: Level, curve: Curve) -> LevelInfo:
    level, into, span = curve.progress(row.xp)
    return LevelInfo(
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
        """Serve leveling on ``db``; configs, quests and achievements are cached for ``cache_ttl`` s."""
        self.db = db
        self.cache = TTLCache(cache_ttl, bus=bus, namespace="leveling")
        self.jobs = SchedulerService(db)
        self.xp_changes: dict[int, int] = {}  # guild -> XP changes made here outside the ingestor (its boards reload)

    def _xp_changed(self, guild_id: int) -> None:
        self.xp_changes[guild_id] = self.xp_changes.get(guild_id, 0) + 1

    # ------------------------------------------------------------------------------------ config

    async def get_server_config(self, guild_id: int) -> ServerConfigInfo:
        """Server configuration, cached; a server with no row gets every default."""

        async def load() -> ServerConfigInfo:
            async with self.db.session(read_only=True) as s:
                row = await s.get(ServerConfig, guild_id)
                return ServerConfigInfo.of(row) if row else ServerConfigInfo(guild_id=guild_id)

        return await self.cache.get_or_load(("config", guild_id), load)

    async def update_server_config(self, guild_id: int, setting: str, value: Any) -> ServerConfigInfo:
        """Change one setting (validated). Changing the curve re-derives every member's level."""
        return await self.update_server_config_values(guild_id, {setting: value})

    async def update_server_config_values(self, guild_id: int, changes: Mapping[str, Any]) -> ServerConfigInfo:
        """Change several settings at once.

        Change several settings at once, checked against their declarations in `leveling.settings` (a bad
        value raises a `SettingError` and changes nothing). Changing the curve re-derives every member's level;
        changing the quest reset hour moves the server's quest reset job.
        """
        for name, value in changes.items():  # refuse bad input before opening a transaction
            config.check(name, value)

        async def work(s: AsyncSession) -> ServerConfigInfo:
            row = await self._locked_config(s, guild_id)
            current = config.from_stored(row)
            merged = config.merge(current, changes)
            info = ServerConfigInfo(guild_id, merged)
            info.curve_rule  # noqa: B018 - validates base and exponent together
            await s.execute(update(ServerConfig).where(ServerConfig.guild_id == guild_id)
                            .values(**config.to_stored(merged), updated_at=utcnow()))
            if (current.curve, current.curve_base, current.curve_exponent) != (
                    merged.curve, merged.curve_base, merged.curve_exponent):
                await self._rederive_levels(s, guild_id, info.curve_rule)
            return info

        try:
            info = await self.db.run(work)
        finally:
            self.cache.invalidate(("config", guild_id))
        if "quest_reset_hour" in changes:
            await self.ensure_quest_reset_job(guild_id)
        return info

    @staticmethod
    async def _locked_config(s: AsyncSession, guild_id: int) -> ServerConfig:
        await ensure_guild(s, guild_id)
        await s.execute(insert_for(s, ServerConfig).values(guild_id=guild_id, **config.to_stored(config.DEFAULTS))
                        .on_conflict_do_nothing(index_elements=["guild_id"]))
        return (await s.execute(select(ServerConfig).where(ServerConfig.guild_id == guild_id)
                                .with_for_update())).scalar_one()

    async def _change_setting(self, guild_id: int, name: str,
                              change: Callable[[config.LevelingSettings], Any]) -> ServerConfigInfo:
        """Change one setting from its stored value (never a cached one) with one conditional UPDATE.

        The UPDATE only applies while the row still has the ``updated_at`` it was read with; when another
        change landed in between, nothing is written and the unit of work runs again on the new value, so
        two admins changing the same list at once both keep their change.
        """

        async def work(s: AsyncSession) -> ServerConfigInfo:
            await ensure_guild(s, guild_id)
            await s.execute(insert_for(s, ServerConfig)
                            .values(guild_id=guild_id, **config.to_stored(config.DEFAULTS))
                            .on_conflict_do_nothing(index_elements=["guild_id"]))
            row = (await s.execute(select(ServerConfig).where(ServerConfig.guild_id == guild_id)
                                   )).scalar_one()
            seen = row.updated_at
            merged = config.merge(config.from_stored(row), {name: change(config.from_stored(row))})
            now = max(utcnow(), seen + timedelta(microseconds=1))  # every write moves updated_at
            done = await s.execute(
                update(ServerConfig)
                .where(ServerConfig.guild_id == guild_id, ServerConfig.updated_at == seen)
                .values(**{name: config.to_stored(merged)[name]}, updated_at=now)
                .returning(ServerConfig.guild_id))
            if done.scalar_one_or_none() is None:
                raise ConflictError  # db.run starts the unit of work again, reading the other change
            return ServerConfigInfo(guild_id, merged)

        try:
            return await self.db.run(work, attempts=10)
        finally:
            self.cache.invalidate(("config", guild_id))

    async def set_no_xp(self, guild_id: int, *, channel_id: int | None = None, role_id: int | None = None,
                        remove: bool = False) -> ServerConfigInfo:
        """Stop XP in a channel (or category) and/or for a role, or (``remove``) give it again there."""
        if channel_id is None and role_id is None:
            raise NoTargetError
        info: ServerConfigInfo | None = None
        for name, item in (("no_xp_channels", channel_id), ("no_xp_roles", role_id)):
            if item is None:
                continue
            config.check(name, [item])

            def toggle(current: config.LevelingSettings, name: str = name, item: int = item) -> list[int]:
                have = set(getattr(current, name))
                return sorted(have - {item} if remove else have | {item})

            info = await self._change_setting(guild_id, name, toggle)
        assert info is not None
        return info

    async def set_multiplier(self, guild_id: int, value: float, *, role_id: int | None = None,
                             channel_id: int | None = None) -> ServerConfigInfo:
        """Set the XP multiplier of one role or one channel; 1 removes it."""
        if (role_id is None) == (channel_id is None):
            raise OneTargetError
        name, key = ("role_multipliers", role_id) if role_id is not None else ("channel_multipliers", channel_id)
        assert key is not None
        value = config.check(name, {key: value})[key]

        def put(current: config.LevelingSettings) -> dict[int, float]:
            updated = {k: v for k, v in getattr(current, name).items() if k != key}
            if value != 1:
                updated[key] = value
            return updated

        return await self._change_setting(guild_id, name, put)

    async def _rederive_levels(self, s: AsyncSession, guild_id: int, curve: Curve) -> None:
        rows = (await s.execute(select(Level.user_id, Level.xp, Level.level).where(Level.guild_id == guild_id))).all()
        changed = [{"g": guild_id, "u": uid, "lvl": curve.level_for_xp(xp)} for uid, xp, lvl in rows
                   if curve.level_for_xp(xp) != lvl]
        if changed:
            table = LEVELS
            stmt = update(table).where(table.c.guild_id == bindparam("g"), table.c.user_id == bindparam("u"))
            await s.execute(stmt.values(level=bindparam("lvl")), changed)

    async def get_level_up_channel(self, guild_id: int) -> int | None:
        """The channel level-ups are announced in (mode "channel"), if set."""
        return (await self.get_server_config(guild_id)).settings.level_up_channel

    async def get_quest_channel(self, guild_id: int) -> int | None:
        """The channel quest news go to, if set."""
        return (await self.get_server_config(guild_id)).settings.quest_channel

    async def get_achievement_channel(self, guild_id: int) -> int | None:
        """The channel achievement news go to, if set."""
        return (await self.get_server_config(guild_id)).settings.achievement_channel

    async def get_quest_reset_settings(self, guild_id: int) -> tuple[int, int]:
        """(reset hour UTC, weekly reset weekday with 0 = Monday)."""
        cfg = await self.get_server_config(guild_id)
        return cfg.settings.quest_reset_hour, cfg.settings.quest_reset_day

    # ------------------------------------------------------------------------------------ levels

    async def get_user_level(self, guild_id: int, user_id: int) -> LevelInfo:
        """A member's stored XP, counters and level (level 0 for a member with no XP yet)."""
        curve = (await self.get_server_config(guild_id)).curve_rule
        async with self.db.session(read_only=True) as s:
            row = (await s.execute(select(Level).where(Level.guild_id == guild_id, Level.user_id == user_id)))
            level = row.scalar_one_or_none()
        if level is None:
            return LevelInfo(guild_id, user_id, 0, 0, 0, curve.xp_for_next(0))
        return _level_view(level, curve)

    async def recent_message_times(self, guild_id: int, since: datetime) -> dict[int, datetime]:
        """Members whose last XP-earning message here is after ``since`` (the persisted message cooldowns)."""
        async with self.db.session(read_only=True) as s:
            rows = await s.execute(select(Level.user_id, Level.last_message_time).where(
                Level.guild_id == guild_id, Level.last_message_time > since))
            return {int(u): t for u, t in rows.all() if t is not None}

    async def award_xp(self, guild_id: int, user_id: int, xp_amount: int, *, boostable: bool = False,
                       username: str | None = None) -> ActivityResult:
        """Add XP (quests, achievements and the level follow)."""
        if xp_amount < 0:
            raise LevelingValidationError("Use remove_xp to take XP away.")
        return await self.apply_activity(guild_id, [ActivityDelta(user_id, xp=int(xp_amount), boostable=boostable,
                                                                  username=username)])

    async def update_activity_counter_db(self, guild_id: int, user_id: int, counter_type: str, increment: int,
                                         *, xp: int = 0) -> ActivityResult:
        """Add to one activity counter (and optional XP); quests and achievements advance with it."""
        if counter_type not in COUNTERS:
            raise LevelingValidationError(f"Unknown counter “{echo(counter_type)}”.")
        if increment < 0:
            raise CounterError
        delta = ActivityDelta(user_id, xp=xp)
        setattr(delta, counter_type, increment)
        return await self.apply_activity(guild_id, [delta])

    async def apply_activity(self, guild_id: int, deltas: Sequence[ActivityDelta],
                             now: datetime | None = None) -> ActivityResult:
        """Apply a batch of member activity in one unit of work (the ingestor's flush and single events)."""
        merged: dict[int, ActivityDelta] = {}
        for d in deltas:
            if d.user_id in merged:
                merged[d.user_id].merge(d)
            else:
                merged[d.user_id] = replace(d)
        if not merged:
            return ActivityResult(guild_id)
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
                     quests: Sequence[QuestInfo], now: datetime) -> ActivityResult:
        outcome = ActivityResult(guild_id)
        users = sorted(deltas)
        await ensure_guild(s, guild_id)
        await _ensure_users(s, {u: deltas[u].username for u in users})
        await _ensure_levels(s, guild_id, users)
        rows = {
            r.user_id: r
            for r in (await s.execute(
                select(Level.user_id, Level.xp, Level.level, Level.xp_multiplier, Level.multiplier_expires_at,
                       *(getattr(Level, c) for c in COUNTERS), *(getattr(Level, c) for c in _PERIOD_COLUMNS))
                .where(Level.guild_id == guild_id, Level.user_id.in_(users))
                .order_by(Level.user_id).with_for_update()
            )).all()
        }
        xp = {}
        stats: dict[int, dict[str, int]] = {}
        params = []
        periods = rules.current_periods(quests, now)
        for uid in users:
            d, row = deltas[uid], rows[uid]
            gain = d.xp
            if d.boostable and gain:
                gain = rules.apply_multiplier(gain, rules.active_quest_multiplier(
                    row.xp_multiplier, row.multiplier_expires_at, now))
            xp[uid] = min(row.xp + gain, rules.MAX_XP)
            stats[uid] = {c: getattr(row, c) + getattr(d, c) for c in COUNTERS}
            params.append({"g": guild_id, "u": uid, "dxp": xp[uid] - row.xp, "lmt": d.last_message_time,
                           **{f"d_{c}": getattr(d, c) for c in COUNTERS},
                           **{f"p_{c}": v for c, v in _moved_periods(row, d, periods).items()}})
        table = LEVELS
        stmt = update(table).where(table.c.guild_id == bindparam("g"), table.c.user_id == bindparam("u")).values(
            xp=table.c.xp + bindparam("dxp"),
            last_message_time=func.coalesce(bindparam("lmt", type_=Level.last_message_time.type),
                                            table.c.last_message_time),
            updated_at=now,
            **{c: table.c[c] + bindparam(f"d_{c}") for c in COUNTERS},
            **{c: bindparam(f"p_{c}") for c in _PERIOD_COLUMNS},  # the rows are locked: set from what was read
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
            if _by_period(quest):  # progress is the period counter the update above moved
                done = await self._complete(s, guild_id, quest, [uid for uid, _ in moved], now)
            else:
                done = await self._advance_quest(s, guild_id, quest, moved, stats=stats, now=now)
            for uid in done:
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
                outcome.level_changes.append(LevelChangeResult(uid, old_level, new_level, total))
        if finals:
            stmt = update(table).where(table.c.guild_id == bindparam("g"), table.c.user_id == bindparam("u"))
            await s.execute(stmt.values(xp=table.c.xp + bindparam("dxp"), level=bindparam("lvl")), finals)
        for uid, (value, until) in boosts.items():
            await s.execute(update(Level).where(Level.guild_id == guild_id, Level.user_id == uid)
                            .values(xp_multiplier=value, multiplier_expires_at=until))
        return outcome

    async def _advance_quest(self, s: AsyncSession, guild_id: int, quest: QuestInfo, moved: list[tuple[int, int]],
                             *, stats: Mapping[int, Mapping[str, int]], now: datetime) -> list[int]:
        """Add progress for members on one quest; return who completed it now (each pays once)."""
        table = USER_QUESTS
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

    async def _complete(self, s: AsyncSession, guild_id: int, quest: QuestInfo, users: Sequence[int],
                        now: datetime) -> list[int]:
        """Complete ``quest`` for the ``users`` who meet its requirement; returns who it completed now (once)."""
        if _by_period(quest) and quest.period_start is not None:
            counter = getattr(Level, rules.period_column(quest.quest_type, quest.requirement_type))
            met = (await s.execute(select(Level.user_id, getattr(Level, quest.requirement_type)).where(
                Level.guild_id == guild_id, Level.user_id.in_(users), counter >= quest.requirement_value,
                getattr(Level, f"{quest.quest_type}_period") == rules.period_key(quest.period_start),
            ).order_by(Level.user_id))).all()
            if not met:
                return []
            ins = insert_for(s, UserQuest).values([
                {"guild_id": guild_id, "user_id": uid, "quest_id": quest.id, "progress": overall,
                 "quest_specific_progress": quest.requirement_value, "completed": True, "completed_at": now,
                 "expires_at": quest.expires_at} for uid, overall in met])
            ins = ins.on_conflict_do_update(
                index_elements=["guild_id", "user_id", "quest_id"],
                set_={"completed": True, "completed_at": ins.excluded.completed_at, "progress": ins.excluded.progress,
                      "quest_specific_progress": ins.excluded.quest_specific_progress},
                where=USER_QUESTS.c.completed == false(),
            )
            return sorted((await s.execute(ins.returning(UserQuest.user_id))).scalars())
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
                                  now: datetime) -> list[tuple[int, AchievementInfo]]:
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
                    earned.append((uid, AchievementInfo.of(a, now)))
        return earned

    # ------------------------------------------------------------------------------------- admin

    async def add_xp(self, guild_id: int, user_id: int, amount: int) -> ActivityResult:
        """Give a member XP as an admin (not boosted by quest multipliers)."""
        _int_in("The amount", 1, MAX_ADMIN_XP)(amount)
        return await self.award_xp(guild_id, user_id, amount)

    async def remove_xp(self, guild_id: int, user_id: int, amount: int) -> LevelChangeResult:
        """Take XP from a member (never below 0); the level follows."""
        _int_in("The amount", 1, MAX_ADMIN_XP)(amount)
        return await self._set_xp(guild_id, user_id, lambda xp, _curve: max(0, xp - amount))

    async def set_xp(self, guild_id: int, user_id: int, xp: int) -> LevelChangeResult:
        """Set a member's total XP; the level follows."""
        _int_in("The XP", 0, MAX_ADMIN_XP)(xp)
        return await self._set_xp(guild_id, user_id, lambda _xp, _curve: xp)

    async def set_level(self, guild_id: int, user_id: int, level: int) -> LevelChangeResult:
        """Set the member's XP to the start of ``level``."""
        _int_in("The level", 0, 1000)(level)
        return await self._set_xp(guild_id, user_id, lambda _xp, curve: curve.total_for_level(level))

    async def _set_xp(self, guild_id: int, user_id: int, new_xp: Any) -> LevelChangeResult:
        curve = (await self.get_server_config(guild_id)).curve_rule

        async def work(s: AsyncSession) -> LevelChangeResult:
            await ensure_guild(s, guild_id)
            await _ensure_users(s, {user_id: None})
            await _ensure_levels(s, guild_id, [user_id])
            row = (await s.execute(select(Level).where(Level.guild_id == guild_id, Level.user_id == user_id)
                                   .with_for_update())).scalar_one()
            old = row.level
            row.xp = int(new_xp(row.xp, curve))
            row.level = curve.level_for_xp(row.xp)
            return LevelChangeResult(user_id, old, row.level, row.xp)

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
                return _rowcount(gone) > 0
        finally:
            self._xp_changed(guild_id)

    async def reset_server(self, guild_id: int) -> int:
        """Forget every member's XP, quest progress and achievements in this server; returns members reset."""
        try:
            async with self.db.session() as s:
                gone = await s.execute(delete(Level).where(Level.guild_id == guild_id))
                for model in (UserQuest, UserAchievement):
                    await s.execute(delete(model).where(model.guild_id == guild_id))
                return _rowcount(gone)
        finally:
            self._xp_changed(guild_id)

    # ------------------------------------------------------------------------------- leaderboard

    async def leaderboard(self, guild_id: int, page: int = 1, per_page: int = 10) -> Page[LeaderboardEntryInfo]:
        """One page of the leaderboard by stored XP (``page`` is clamped to the pages there are)."""
        per_page = max(1, min(per_page, 50))
        total = await self.member_count(guild_id)
        pages = max(1, math.ceil(total / per_page))
        page = max(1, min(page, pages))
        entries = await self.top_entries(guild_id, per_page, offset=(page - 1) * per_page)
        return Page(entries, page, pages, total)

    async def member_count(self, guild_id: int) -> int:
        """Members with an XP row in the server."""
        async with self.db.session(read_only=True) as s:
            return int(await s.scalar(select(func.count()).select_from(Level).where(Level.guild_id == guild_id)) or 0)

    async def top_entries(self, guild_id: int, limit: int, offset: int = 0) -> list[LeaderboardEntryInfo]:
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
            LeaderboardEntryInfo(offset + i + 1, r.user_id, r.custom_name or r.discord_display_name or r.username
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
        """Join members' pending XP to their stored rows in one statement.

        Run a read joining members' pending XP ({user: xp}) to their stored rows, in one statement: the pairs
        travel as one JSON parameter (SQLite) or two arrays (PostgreSQL), never as one bound value per member.
        """
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
        """Count the members pending XP moves past a member holding ``xp``.

        How many members with pending XP ({user: xp}) are stored behind a member holding ``xp`` but pass them
        with it (a member with no row counts from 0).
        """
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
        """Find the members whose pending XP reaches ``threshold``.

        Members with pending XP ({user: xp}) whose stored XP plus it reaches ``threshold``, and those with no row
        at all: {user: stored XP, or None for a member with no row}.
        """
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
        """Grant ``role_id`` at ``level`` (replacing the role's earlier level)."""
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
                if not _rowcount(gone):
                    raise NotALevelRoleError
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
        """Work out the level roles to give and take.

        (roles to add, roles to remove) so the member holds the level roles their level earns. Only roles
        this bot granted as level rewards are removed (see `record_level_roles`).
        """
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
        """Record the level roles given and forget the ones gone.

        Remember the level roles just given; forget grants of roles the member no longer holds (taken back
        by the bot, or removed by hand: a role they get again elsewhere is then theirs).
        """
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
    ) -> QuestInfo:
        """Create a custom quest; a daily or weekly one expires at the next reset."""
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

        async def work(s: AsyncSession) -> QuestInfo:
            await ensure_guild(s, guild_id)
            row = Quest(guild_id=guild_id, name=name, description=description, quest_type=quest_type,
                        requirement_type=requirement_type, requirement_value=requirement_value, reward_xp=reward_xp,
                        reward_multiplier=reward_multiplier, multiplier_minutes=multiplier_minutes, active=True,
                        refresh_cycle=refresh_cycle, difficulty=difficulty, template_key=template_key,
                        period_start=period_start, expires_at=expires_at, created_by=created_by, created_at=now)
            s.add(row)
            await s.flush()
            return QuestInfo.of(row)

        try:
            return await self.db.run(work)
        finally:
            self.cache.invalidate(("active_quests", guild_id))

    async def get_quest(self, guild_id: int, quest_id: int) -> QuestInfo:
        """A quest of this server by id (cached)."""

        async def load() -> QuestInfo:
            async with self.db.session(read_only=True) as s:
                row = (await s.execute(select(Quest).where(Quest.guild_id == guild_id, Quest.id == quest_id)))
                quest = row.scalar_one_or_none()
                if quest is None:
                    raise QuestNotFoundError
                return QuestInfo.of(quest)

        return await self.cache.get_or_load(("quest", guild_id, quest_id), load)

    async def warm(self, guild_ids: Iterable[int]) -> None:
        """Warm the cache for many servers at once.

        Load the config, active quests and achievements of every server in ``guild_ids`` that is not cached
        (or expired), with one query each for all of them: the write-behind path keeps its servers warm this way
        instead of one round trip per server.
        """
        wanted = sorted(set(guild_ids))
        cache = self.cache
        configs = [g for g in wanted if cache.get(("config", g)) is None]
        quests = [g for g in wanted if cache.get(("active_quests", g)) is None]
        achievements = [g for g in wanted if cache.get(("achievements", g)) is None]
        if not (configs or quests or achievements):
            return
        epoch = cache.epoch
        async with self.db.session(read_only=True) as s:
            found_cfg = {r.guild_id: ServerConfigInfo.of(r) for r in (await s.execute(
                select(ServerConfig).where(ServerConfig.guild_id.in_(configs)))).scalars()} if configs else {}
            found_q: dict[int, list[QuestInfo]] = {g: [] for g in quests}
            if quests:
                for r in (await s.execute(select(Quest).where(Quest.guild_id.in_(quests), Quest.active == true())
                                          .order_by(Quest.id))).scalars():
                    found_q[r.guild_id].append(QuestInfo.of(r))
            found_a: dict[int, list[AchievementInfo]] = {g: [] for g in achievements}
            if achievements:
                for a in (await s.execute(select(Achievement).where(Achievement.guild_id.in_(achievements)).order_by(
                        Achievement.requirement_type, Achievement.requirement_value))).scalars():
                    found_a[a.guild_id].append(AchievementInfo.of(a))
        if epoch != cache.epoch:  # a write raced the load: let each key load on its own
            return
        for g in configs:
            cache.set(("config", g), found_cfg.get(g) or ServerConfigInfo(guild_id=g))
        for g, quest_list in found_q.items():
            cache.set(("active_quests", g), quest_list)
        for g, achievement_list in found_a.items():
            cache.set(("achievements", g), achievement_list)

    async def recent_message_times_in(self, guild_ids: Sequence[int], since: datetime
                                      ) -> dict[tuple[int, int], datetime]:
        """`recent_message_times` for many servers in one query: {(guild, member): last XP message}."""
        if not guild_ids:
            return {}
        async with self.db.session(read_only=True) as s:
            rows = await s.execute(select(Level.guild_id, Level.user_id, Level.last_message_time).where(
                Level.guild_id.in_(sorted(set(guild_ids))), Level.last_message_time > since))
            return {(int(g), int(u)): t for g, u, t in rows.all() if t is not None}

    async def get_guild_active_quests(self, guild_id: int, quest_type: str | None = None) -> list[QuestInfo]:
        """Active, unexpired quests of the server (cached; invalidated when quests change)."""

        async def load() -> list[QuestInfo]:
            async with self.db.session(read_only=True) as s:
                rows = (await s.execute(select(Quest).where(Quest.guild_id == guild_id, Quest.active == true())
                                        .order_by(Quest.id))).scalars()
                return [QuestInfo.of(r) for r in rows]

        now = utcnow()
        quests = await self.cache.get_or_load(("active_quests", guild_id), load)
        return [q for q in quests if (q.expires_at is None or q.expires_at > now)
                and (quest_type is None or q.quest_type == quest_type)]

    async def get_user_active_quests(self, guild_id: int, user_id: int) -> list[UserQuestInfo]:
        """The server's active quests with the member's progress on each."""
        quests = await self.get_guild_active_quests(guild_id)
        if not quests:
            return []
        async with self.db.session(read_only=True) as s:
            rows = {r.quest_id: r for r in (await s.execute(select(UserQuest).where(
                UserQuest.guild_id == guild_id, UserQuest.user_id == user_id,
                UserQuest.quest_id.in_([q.id for q in quests])))).scalars()}
            level = None
            if any(_by_period(q) for q in quests):
                level = (await s.execute(select(Level).where(Level.guild_id == guild_id,
                                                             Level.user_id == user_id))).scalar_one_or_none()
        out = []
        for q in quests:
            row = rows.get(q.id)
            if _by_period(q) and q.period_start is not None and not (row is not None and row.completed):
                value = 0 if level is None else rules.period_progress(
                    q.period_start, getattr(level, f"{q.quest_type}_period"),
                    getattr(level, rules.period_column(q.quest_type, q.requirement_type)))
                overall = 0 if level is None else getattr(level, q.requirement_type)
                out.append(UserQuestInfo(q, overall, value, False, None))
            elif row is not None:
                out.append(UserQuestInfo(q, row.progress, row.quest_specific_progress, row.completed,
                                         row.completed_at))
            else:
                out.append(UserQuestInfo(q, 0, 0, False, None))
        return out

    async def check_quest_progress(self, guild_id: int, user_id: int, counter_type: str, counter_value: int,
                                   session_value: int | None = None) -> list[QuestInfo]:
        """Advance the member's quests and return the ones completed.

        Advance the member's active quests on ``counter_type`` by ``session_value`` (default 1) and
        return the quests this completed (their rewards are paid in the same unit of work).
        """
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

    async def end_quest(self, guild_id: int, quest_id: int) -> QuestInfo:
        """End a quest now (members keep what it paid)."""
        if not 0 < quest_id < 2**63:
            raise QuestNotFoundError
        async with self.db.session() as s:
            row = (await s.execute(select(Quest).where(Quest.guild_id == guild_id, Quest.id == quest_id))
                   ).scalar_one_or_none()
            if row is None:
                raise QuestNotFoundError
            row.active = False
            view = QuestInfo.of(row)
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
        return _rowcount(done)

    async def reset_quests(self, guild_id: int, now: datetime | None = None,
                           templates: Sequence[rules.QuestTemplate] = rules.QUEST_TEMPLATES) -> list[QuestInfo]:
        """Run the server's quest reset.

        Run the server's quest reset: expire old quests, create this period's daily and weekly quests from
        the templates (once per period even if several processes run it; not when the server turned
        ``quests_enabled`` off) and restart refreshing custom quests.
        """
        now = now or utcnow()
        cfg = await self.get_server_config(guild_id)
        hour, day = cfg.settings.quest_reset_hour, cfg.settings.quest_reset_day
        templates = templates if cfg.settings.quests_enabled else ()
        await self.mark_quests_inactive(guild_id, now=now)
        created: list[QuestInfo] = []

        async def work(s: AsyncSession) -> list[QuestInfo]:
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
                    created.append(QuestInfo.of(await s.get_one(Quest, new_id)))
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

    # ------------------------------------------------------------------------ quest reset job

    async def ensure_quest_reset_job(self, guild_id: int, *, now: datetime | None = None) -> JobInfo:
        """Make sure the server's quest reset runs on the scheduler.

        Make sure the server's quest reset runs on the scheduler: one daily ``leveling.quest_reset`` job per
        server (its dedup key), at the server's reset hour. A new job's first occurrence is the latest reset
        time, so it runs at once and catches up the current period. When the reset hour changed, the pending
        job moves to the new hour (and runs at once too; a reset is idempotent per period). Any process may call
        this any number of times: the job exists once.
        """
        now = now or utcnow()
        hour = (await self.get_server_config(guild_id)).settings.quest_reset_hour
        anchor = rules.period_start("daily", now, hour)
        result = await self.jobs.schedule(QUEST_RESET_JOB, anchor, now=now, guild_id=guild_id,
                                          recurrence=jobs_rules.DAILY, dedup_key=quest_reset_key(guild_id),
                                          max_attempts=QUEST_RESET_MAX_ATTEMPTS)
        job = result.job
        if not result.created and job.status == jobs_rules.PENDING and job.anchor_at.hour != hour:
            try:
                job = await self.jobs.reschedule(job.id, anchor, now=now)
            except JobStateError:  # claimed meanwhile: the finished run hands its series on at the old hour
                return job
        return job

    async def run_quest_reset(self, job: JobInfo, *, now: datetime | None = None) -> QuestResetResult:
        """The ``leveling.quest_reset`` job's work for one server: `reset_quests`, and where to announce it."""
        if job.guild_id is None:
            raise LevelingValidationError("A quest reset job needs a server.")
        created = await self.reset_quests(job.guild_id, now=now)
        cfg = await self.get_server_config(job.guild_id)
        return QuestResetResult(job.guild_id, created, cfg.settings.quest_channel)

    # ------------------------------------------------------------------------------ achievements

    async def create_achievement(  # noqa: PLR0917 - the seed's signature
        self, guild_id: int, name: str, description: str, requirement_type: str, requirement_value: int,
        reward_xp: int = 0, badge_url: str | None = None,
    ) -> AchievementInfo:
        """Create an achievement, paid once to each member who meets it."""
        name = clean_text(name, "The achievement name", max_length=100)
        description = clean_text(description or "", "The description", max_length=1000, min_length=0,
                                 multiline=True)
        _choice("The requirement", rules.ACHIEVEMENT_REQUIREMENTS)(requirement_type)
        _int_in("The requirement", 1, 10**12)(requirement_value)
        _int_in("The reward", 0, 10**7)(reward_xp)
        badge_url = rules.validate_url(badge_url) if badge_url else None

        async def work(s: AsyncSession) -> AchievementInfo:
            await ensure_guild(s, guild_id)
            row = Achievement(guild_id=guild_id, name=name, description=description,
                              requirement_type=requirement_type, requirement_value=requirement_value,
                              reward_xp=reward_xp, badge_url=badge_url, created_at=utcnow())
            s.add(row)
            await s.flush()
            return AchievementInfo.of(row)

        try:
            return await self.db.run(work)
        finally:
            self.cache.invalidate(("achievements", guild_id))

    async def list_achievements(self, guild_id: int) -> list[AchievementInfo]:
        """The server's achievements (cached; invalidated when one is created)."""

        async def load() -> list[AchievementInfo]:
            async with self.db.session(read_only=True) as s:
                rows = (await s.execute(select(Achievement).where(Achievement.guild_id == guild_id).order_by(
                    Achievement.requirement_type, Achievement.requirement_value))).scalars()
                return [AchievementInfo.of(r) for r in rows]

        return list(await self.cache.get_or_load(("achievements", guild_id), load))

    async def get_user_achievements(self, guild_id: int, user_id: int) -> list[AchievementInfo]:
        """The achievements a member earned here, oldest first."""
        async with self.db.session(read_only=True) as s:
            rows = (await s.execute(
                select(Achievement, UserAchievement.earned_at)
                .join(UserAchievement, UserAchievement.achievement_id == Achievement.id)
                .where(UserAchievement.guild_id == guild_id, UserAchievement.user_id == user_id)
                .order_by(UserAchievement.earned_at)
            )).all()
            return [AchievementInfo.of(a, earned) for a, earned in rows]

    async def check_achievement_progress(self, guild_id: int, user_id: int, counter_type: str | None = None,
                                         value: int | None = None) -> list[AchievementInfo]:
        """Grant (and pay, once) every achievement the member's stored stats now meet."""
        del counter_type, value  # the stored counters are authoritative; kept for the seed's signature
        outcome = await self.apply_activity(guild_id, [ActivityDelta(user_id)])
        return [a for uid, a in outcome.achievements_earned if uid == user_id]

    # ------------------------------------------------------------------------------------- cards

    async def get_card(self, guild_id: int, user_id: int) -> CardInfo:
        """A member's rank-card look (the default look when never changed)."""
        async with self.db.session(read_only=True) as s:
            row = await s.get(Card, (guild_id, user_id))
            if row is None:
                return CardInfo()
            return CardInfo(**{f.name: getattr(row, f.name) for f in fields(CardInfo)})

    async def update_card(self, guild_id: int, user_id: int, **changes: str | None) -> CardInfo:
        """Change rank-card settings; colours are hex codes, the background an http(s) image URL, '' resets."""
        values: dict[str, str | None] = {}
        for name, value in changes.items():
            if name not in {f.name for f in fields(CardInfo)}:
                raise LevelingValidationError(f"Unknown card setting “{echo(name)}”.")
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
                          progress: Callable[[int, int], None] | None = None) -> ImportResult:
        """Import a MEE6 leaderboard.

        Upsert a MEE6 leaderboard (``id``, ``xp``, optional ``level``/``username``): total XP is kept, the
        level is derived from this server's curve. Running it twice changes nothing the second time.

        An entry whose id is not a Discord id or whose xp is not a whole number (``1.9``, ``true``) is skipped with
        the reason. Every statement handles at most ``IMPORT_CHUNK`` players, so any number of players fits the
        drivers' parameter limits (asyncpg: 32,767 per statement); the import is still one transaction.
        ``progress(done, total)`` is called after each chunk.
        """
        if isinstance(guild_id, bool) or not isinstance(guild_id, int) or not 0 < guild_id < 2**63:
            raise LevelingValidationError("The server id must be a Discord id (1 to 9223372036854775807).")
        skipped: list[tuple[str, str]] = []
        wanted: dict[int, tuple[int, str | None]] = {}
        for i, p in enumerate(players):
            label = str(p.get("id", f"#{i + 1}")) if isinstance(p, Mapping) else f"#{i + 1}"
            if not isinstance(p, Mapping):
                skipped.append((label, "not an object"))
                continue
            uid = _whole_number(p.get("id"))
            xp = _whole_number(p.get("xp"))
            if uid is None or not 0 < uid < 2**63:
                skipped.append((label, "id must be a Discord user id (a whole number from 1 to 2^63-1)"))
            elif xp is None:
                skipped.append((label, f"xp must be a whole number (got {_json_text(p.get('xp'))})"))
            elif not 0 <= xp <= MAX_ADMIN_XP:
                skipped.append((label, "xp out of range"))
            elif uid in wanted:
                skipped.append((label, "listed twice; the first entry was used"))
            else:
                wanted[uid] = (xp, p.get("username") if isinstance(p.get("username"), str) else None)
        curve = (await self.get_server_config(guild_id)).curve_rule
        ids = sorted(wanted)

        async def work(s: AsyncSession) -> ImportResult:
            counts = {"imported": 0, "updated": 0, "unchanged": 0}
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
                        counts["imported"] += 1
                    elif existing[uid] == xp:
                        counts["unchanged"] += 1
                        continue
                    else:
                        counts["updated"] += 1
                    rows.append({"guild_id": guild_id, "user_id": uid, "xp": xp, "level": curve.level_for_xp(xp),
                                 "created_at": now, "updated_at": now})
                if rows:
                    ins = insert_for(s, Level)
                    ins = ins.on_conflict_do_update(index_elements=["guild_id", "user_id"], set_={
                        "xp": ins.excluded.xp, "level": ins.excluded.level, "updated_at": ins.excluded.updated_at})
                    await s.execute(ins, rows)
                if progress is not None:
                    progress(start + len(chunk), len(ids))
            return ImportResult(counts["imported"], counts["updated"], counts["unchanged"], list(skipped))

        try:
            return await self.db.run(work)
        finally:
            self._xp_changed(guild_id)
