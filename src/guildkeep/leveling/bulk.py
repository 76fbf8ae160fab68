"""The write-behind flush's batched statements, one spelling per database, on the unit of work's own connection.

Each statement handles a whole flush (chunked when huge) and is additive, so two processes writing the same
member never lose each other's updates:

* PostgreSQL: one ``INSERT … SELECT FROM unnest($1::bigint[], …) ON CONFLICT DO UPDATE … RETURNING`` per
  statement (asyncpg sends each column as one array parameter).
* SQLite: the same statement reading its rows from one JSON parameter with ``json_each`` (no limit on bound
  variables, rows parsed in C), with ``RETURNING``.

Values go to the driver directly (the statements are fixed text, never built from input), inside the
transaction the caller's `Database.session` opened.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Container, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from operator import attrgetter
from typing import Any

import orjson
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from guildkeep.leveling.rules import MAX_XP

MEMBER_KEY = attrgetter("guild_id", "user_id")  # rows in key order: one lock order for every process
CHUNK = 20_000  # rows per statement: bounds the size of one parameter and of one RETURNING set


@dataclass(slots=True)
class LevelRow:
    """One member's coalesced activity in a flush (the additive part of the upsert)."""

    guild_id: int
    user_id: int
    xp: int
    messages: int
    total_messages: int
    total_reactions: int
    commands_used: int
    voice_time_seconds: int
    last_message_time: float | None  # POSIX time
    # What counts for quests (`rules.PERIOD_COUNTERS`): added to the period counters of the server's current daily
    # and weekly quest periods (``None``: the server has no such quests; the counters are left alone).
    daily_period: int | None = None
    weekly_period: int | None = None
    q_messages: int = 0
    q_reactions: int = 0
    q_voice_seconds: int = 0
    q_commands: int = 0
    # XP added as it is, never multiplied by the quest boost: the rewards of achievements this flush granted before
    # its level write (PostgreSQL's update adds it; no other statement reads it).
    bonus: int = 0
    # The caller's own state for the member, carried along so a flush need not look it up again (never written).
    member: Any = None


@dataclass(slots=True)
class StoredLevel:
    """A member's totals as the upsert left them (the server's numbers, including other processes' writes)."""

    guild_id: int
    user_id: int
    xp: int
    level: int
    messages: int
    total_messages: int
    total_reactions: int
    commands_used: int
    voice_time_seconds: int
    xp_multiplier: float
    multiplier_expires_at: datetime | None
    daily_period: int | None = None
    daily_messages: int = 0
    daily_reactions: int = 0
    daily_voice_seconds: int = 0
    daily_commands: int = 0
    weekly_period: int | None = None
    weekly_messages: int = 0
    weekly_reactions: int = 0
    weekly_voice_seconds: int = 0
    weekly_commands: int = 0
    # The level before the statement that returned this row, where that statement also set the level from the
    # server's curve (PostgreSQL's update); ``None`` where the level was left as it was.
    level_before: int | None = None
    # The flush row whose activity the statement added, where the statement says which (PostgreSQL's update and
    # SQLite's totals; never read from the database).
    row: LevelRow | None = None

    def add_period(self, r: LevelRow) -> None:
        """The period counters after adding ``r`` (as the upsert's statement does)."""
        if r.daily_period is not None:
            if self.daily_period is None or r.daily_period > self.daily_period:
                self.daily_period = r.daily_period
                self.daily_messages = self.daily_reactions = self.daily_voice_seconds = self.daily_commands = 0
            if r.daily_period == self.daily_period:
                self.daily_messages += r.q_messages
                self.daily_reactions += r.q_reactions
                self.daily_voice_seconds += r.q_voice_seconds
                self.daily_commands += r.q_commands
        if r.weekly_period is not None:
            if self.weekly_period is None or r.weekly_period > self.weekly_period:
                self.weekly_period = r.weekly_period
                self.weekly_messages = self.weekly_reactions = self.weekly_voice_seconds = self.weekly_commands = 0
            if r.weekly_period == self.weekly_period:
                self.weekly_messages += r.q_messages
                self.weekly_reactions += r.q_reactions
                self.weekly_voice_seconds += r.q_voice_seconds
                self.weekly_commands += r.q_commands

    @property
    def stats(self) -> dict[str, int]:
        return {"messages": self.messages, "total_messages": self.total_messages,
                "total_reactions": self.total_reactions, "commands_used": self.commands_used,
                "voice_time_seconds": self.voice_time_seconds}


_PERIOD = ("daily_period, daily_messages, daily_reactions, daily_voice_seconds, daily_commands, weekly_period, "
           "weekly_messages, weekly_reactions, weekly_voice_seconds, weekly_commands")
_RETURNING = ("guild_id, user_id, xp, level, messages, total_messages, total_reactions, commands_used, "
              "voice_time_seconds, xp_multiplier, multiplier_expires_at, " + _PERIOD)
_COLUMNS = ("guild_id, user_id, xp, level, messages, total_messages, total_reactions, commands_used, "
            "voice_time_seconds, last_message_time, xp_multiplier, created_at, updated_at, " + _PERIOD)
_COUNTED = ("messages", "reactions", "voice_seconds", "commands")


def _period_set(row: str, new: str, names: dict[str, str]) -> str:
    """SET clauses of the period counters: a row's period later than the stored one starts the counters again, the
    same period adds to them, an earlier one (a process behind the quest reset) leaves them alone. ``row`` is the
    stored row's prefix, ``new`` the incoming row's; ``names`` maps counter to the incoming expression."""
    out = []
    for period in ("daily", "weekly"):
        p, np = f"{row}{period}_period", f"{new}{period}_period" if new else names[f"{period}_period"]
        for c in _COUNTED:
            col, inc = f"{period}_{c}", names[c] if not new else f"{new}{period}_{c}"
            out.append(f"{col} = CASE WHEN {np} IS NULL THEN {row}{col} "
                       f"WHEN {p} IS NULL OR {np} > {p} THEN {inc} "
                       f"WHEN {np} = {p} THEN {row}{col} + {inc} ELSE {row}{col} END")
        out.append(f"{period}_period = CASE WHEN {np} IS NOT NULL AND ({p} IS NULL OR {np} > {p}) THEN {np} "
                   f"ELSE {p} END")
    return ",\n  ".join(out)


# The times of last messages go as POSIX seconds (``float8``, ``to_timestamp``): the driver encodes a float about
# four times faster than a ``timestamptz``, and no datetime is built per row.
_PG_UPSERT = f"""
INSERT INTO leveling_levels AS l ({_COLUMNS})
SELECT t.g, t.u, t.x, 0, t.m, t.tm, t.tr, t.c, t.v, to_timestamp(t.lmt), 1.0, $10, $10,
       t.dp, t.qm, t.qr, t.qv, t.qc, t.wp, t.qm, t.qr, t.qv, t.qc
FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::int[], $5::int[], $6::int[], $7::int[], $8::bigint[],
            $9::float8[], $11::bigint[], $12::bigint[], $13::bigint[], $14::bigint[], $15::bigint[],
            $16::bigint[]) AS t(g, u, x, m, tm, tr, c, v, lmt, dp, wp, qm, qr, qv, qc)
ON CONFLICT (guild_id, user_id) DO UPDATE SET
  xp = LEAST(l.xp + CASE WHEN l.xp_multiplier <> 1 AND l.multiplier_expires_at > $10
                         THEN floor(excluded.xp * l.xp_multiplier + 0.5)::bigint ELSE excluded.xp END, {MAX_XP}),
  messages = l.messages + excluded.messages,
  total_messages = l.total_messages + excluded.total_messages,
  total_reactions = l.total_reactions + excluded.total_reactions,
  commands_used = l.commands_used + excluded.commands_used,
  voice_time_seconds = l.voice_time_seconds + excluded.voice_time_seconds,
  last_message_time = GREATEST(l.last_message_time, excluded.last_message_time),
  updated_at = excluded.updated_at,
  {_period_set("l.", "excluded.", {})}
RETURNING {_RETURNING}
"""

# Members who already have a row (nearly all, in a running bot): one UPDATE joined to the arrays, no user row to
# ensure; the rows it did not find go through the upsert. Rows whose server's curve is ``$18`` (the total XP of
# each level; ``t.d``) get their level from it in the same statement (``width_bucket`` is a binary search): the
# level before is worked out from the XP before (the new XP less what this statement added), so a level-up is
# found and announced by the one statement that crossed it, even with another process writing the same member.
_PG_GAIN = ("CASE WHEN l.xp_multiplier <> 1 AND l.multiplier_expires_at > $10 "
            "THEN floor(t.x * l.xp_multiplier + 0.5)::bigint ELSE t.x END + t.b")
_PG_UPDATE = f"""
UPDATE leveling_levels AS l SET
  xp = LEAST(l.xp + {_PG_GAIN}, {MAX_XP}),
  level = CASE WHEN t.d THEN width_bucket(LEAST(l.xp + {_PG_GAIN}, {MAX_XP}), $18::bigint[]) - 1 ELSE l.level END,
  messages = l.messages + t.m,
  total_messages = l.total_messages + t.tm,
  total_reactions = l.total_reactions + t.tr,
  commands_used = l.commands_used + t.c,
  voice_time_seconds = l.voice_time_seconds + t.v,
  last_message_time = GREATEST(l.last_message_time, to_timestamp(t.lmt)),
  updated_at = $10,
  {_period_set("l.", "", {"daily_period": "t.dp", "weekly_period": "t.wp", "messages": "t.qm",
                           "reactions": "t.qr", "voice_seconds": "t.qv", "commands": "t.qc"})}
FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::int[], $5::int[], $6::int[], $7::int[], $8::bigint[],
            $9::float8[], $11::bigint[], $12::bigint[], $13::bigint[], $14::bigint[], $15::bigint[],
            $16::bigint[], $17::bigint[], $19::bool[]) WITH ORDINALITY
     AS t(g, u, x, m, tm, tr, c, v, lmt, dp, wp, qm, qr, qv, qc, b, d, i)
WHERE l.guild_id = t.g AND l.user_id = t.u
RETURNING {', '.join('l.' + c.strip() for c in _RETURNING.split(','))},
  CASE WHEN t.d THEN width_bucket(l.xp - ({_PG_GAIN}), $18::bigint[]) - 1 END, t.i
"""

_SQLITE_UPSERT = f"""
INSERT INTO leveling_levels ({_COLUMNS})
SELECT value->>0, value->>1, value->>2, 0, value->>3, value->>4, value->>5, value->>6, value->>7, value->>8, 1.0,
       ?1, ?1, value->>9, value->>11, value->>12, value->>13, value->>14, value->>10, value->>11, value->>12,
       value->>13, value->>14
FROM json_each(?2) WHERE true
ON CONFLICT (guild_id, user_id) DO UPDATE SET
  xp = min(xp + CASE WHEN xp_multiplier <> 1 AND multiplier_expires_at > ?1
                     THEN CAST(excluded.xp * xp_multiplier + 0.5 AS INTEGER) ELSE excluded.xp END, {MAX_XP}),
  messages = messages + excluded.messages,
  total_messages = total_messages + excluded.total_messages,
  total_reactions = total_reactions + excluded.total_reactions,
  commands_used = commands_used + excluded.commands_used,
  voice_time_seconds = voice_time_seconds + excluded.voice_time_seconds,
  last_message_time = CASE WHEN excluded.last_message_time IS NULL THEN last_message_time
                           WHEN last_message_time IS NULL OR excluded.last_message_time > last_message_time
                           THEN excluded.last_message_time ELSE last_message_time END,
  updated_at = excluded.updated_at,
  {_period_set("", "excluded.", {})}
"""
# SQLite hands RETURNING rows over one step at a time, each taking the GIL back from the event loop's thread (a
# convoy under load); the totals come back instead as ONE row of JSON, built in C while the GIL is released.
_SQLITE_TOTALS = """
SELECT json_group_array(json_array(l.guild_id, l.user_id, l.xp, l.level, l.messages, l.total_messages,
                                   l.total_reactions, l.commands_used, l.voice_time_seconds, l.xp_multiplier,
                                   l.multiplier_expires_at, l.daily_period, l.daily_messages, l.daily_reactions,
                                   l.daily_voice_seconds, l.daily_commands, l.weekly_period, l.weekly_messages,
                                   l.weekly_reactions, l.weekly_voice_seconds, l.weekly_commands))
FROM json_each(?1) AS j JOIN leveling_levels AS l ON l.guild_id = j.value->>0 AND l.user_id = j.value->>1
"""

_PG_READ = f"""
SELECT {', '.join('l.' + c.strip() for c in _RETURNING.split(','))}
FROM unnest($1::bigint[], $2::bigint[]) AS t(g, u) JOIN leveling_levels AS l ON l.guild_id = t.g AND l.user_id = t.u
"""

_PG_USERS = """
INSERT INTO users (id, username, first_seen_at, last_seen_at, created_at, updated_at, is_active)
SELECT t.i, t.n, $3, $3, $3, $3, true FROM unnest($1::bigint[], $2::text[]) AS t(i, n)
ON CONFLICT (id) DO NOTHING
"""
_SQLITE_USERS = """
INSERT INTO users (id, username, first_seen_at, last_seen_at, created_at, updated_at, is_active)
SELECT value->>0, value->>1, ?1, ?1, ?1, ?1, 1 FROM json_each(?2) WHERE true
ON CONFLICT (id) DO NOTHING
"""

# The claim of event keys: a key nobody holds is inserted; a voice interval key (owner set) may be claimed again by
# the process that owns it. Each flush stamps what it claims with its own ``seen_at`` (microseconds), so when fewer
# rows changed than keys were sent, the keys another process (or an earlier flush) already counted are the ones
# whose stamp is not this flush's. Usually every key is new and the claim is one appending insert.
_PG_CLAIM = """
INSERT INTO leveling_seen_events AS s (key, owner, seen_at)
SELECT t.key, t.owner, $3 FROM unnest($1::bigint[], $2::bigint[]) AS t(key, owner) ORDER BY t.key
ON CONFLICT (key) DO UPDATE SET seen_at = excluded.seen_at WHERE s.owner = excluded.owner
"""
_PG_TAKEN = """
SELECT s.key FROM unnest($1::bigint[]) AS t(key) JOIN leveling_seen_events AS s ON s.key = t.key
WHERE s.seen_at <> $2
"""
_SQLITE_CLAIM = """
INSERT INTO leveling_seen_events (key, owner, seen_at) SELECT value->>0, value->>1, ?1 FROM json_each(?2) WHERE true
ON CONFLICT (key) DO UPDATE SET seen_at = excluded.seen_at WHERE owner = excluded.owner
"""
_SQLITE_TAKEN = """
SELECT json_group_array(s.key) FROM json_each(?2) AS j JOIN leveling_seen_events AS s ON s.key = j.value->>0
WHERE s.seen_at <> ?1
"""

# What a flush adds after its level write (quest and achievement rewards) and the levels it moves, in one statement
# per chunk (one more version of each row, not two). A level is set only where it is still the old one; the flush
# holds these rows' locks since its level write, so it always is (the condition guards any other caller).
_PG_SETTLE = f"""
WITH settled AS (
  UPDATE leveling_levels AS l
  SET xp = LEAST(l.xp + t.x, {MAX_XP}), level = CASE WHEN l.level = t.o THEN t.n ELSE l.level END
  FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::int[], $5::int[]) AS t(g, u, x, o, n)
  WHERE l.guild_id = t.g AND l.user_id = t.u
  RETURNING l.guild_id, l.user_id, t.o <> t.n AND l.level = t.n AS moved
)
SELECT guild_id, user_id FROM settled WHERE moved
"""
_SQLITE_SETTLE = f"""
UPDATE leveling_levels SET xp = min(xp + j.value->>2, {MAX_XP}),
  level = CASE WHEN level = j.value->>3 THEN j.value->>4 ELSE level END
FROM json_each(?1) AS j
WHERE guild_id = j.value->>0 AND user_id = j.value->>1
"""
_SQLITE_LEVELS_AT = """
SELECT json_group_array(json_array(l.guild_id, l.user_id)) FROM json_each(?1) AS j
JOIN leveling_levels AS l ON l.guild_id = j.value->>0 AND l.user_id = j.value->>1 AND l.level = j.value->>3
"""


# Quest progress of a whole flush (every server, every quest) in one statement; completions in one more. A
# completed quest takes no more progress (``WHERE NOT completed``), and ``completed`` flips false → true once.
_PG_QUESTS = """
INSERT INTO leveling_user_quests AS q (guild_id, user_id, quest_id, progress, quest_specific_progress, completed,
                                       expires_at)
SELECT t.g, t.u, t.q, t.p, t.i, false, t.e
FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::bigint[], $5::bigint[], $6::timestamptz[])
     AS t(g, u, q, p, i, e)
ON CONFLICT (guild_id, user_id, quest_id) DO UPDATE SET
  quest_specific_progress = q.quest_specific_progress + excluded.quest_specific_progress,
  progress = excluded.progress
WHERE NOT q.completed
"""
_PG_COMPLETE = """
UPDATE leveling_user_quests AS q SET completed = true, completed_at = $5
FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::bigint[]) AS t(g, u, q, r)
WHERE q.guild_id = t.g AND q.user_id = t.u AND q.quest_id = t.q AND NOT q.completed
  AND q.quest_specific_progress >= t.r
RETURNING q.guild_id, q.user_id, q.quest_id
"""
_SQLITE_QUESTS = """
INSERT INTO leveling_user_quests (guild_id, user_id, quest_id, progress, quest_specific_progress, completed,
                                  expires_at)
SELECT value->>0, value->>1, value->>2, value->>3, value->>4, 0, value->>5 FROM json_each(?1) WHERE true
ON CONFLICT (guild_id, user_id, quest_id) DO UPDATE SET
  quest_specific_progress = quest_specific_progress + excluded.quest_specific_progress,
  progress = excluded.progress
WHERE NOT completed
"""
# SQLite: the flush holds the write lock, so the rows found completable are the ones the update completes.
_SQLITE_COMPLETABLE = """
SELECT json_group_array(json_array(q.guild_id, q.user_id, q.quest_id)) FROM json_each(?1) AS j
JOIN leveling_user_quests AS q ON q.guild_id = j.value->>0 AND q.user_id = j.value->>1 AND q.quest_id = j.value->>2
WHERE NOT q.completed AND q.quest_specific_progress >= j.value->>3
"""
_SQLITE_COMPLETE = """
UPDATE leveling_user_quests SET completed = 1, completed_at = ?1 FROM json_each(?2) AS j
WHERE guild_id = j.value->>0 AND user_id = j.value->>1 AND quest_id = j.value->>2 AND NOT completed
"""
# Period quests met (their progress is the member's period counter): the member's row of the quest is written
# completed, once (``WHERE NOT completed``); only the rows this statement completed come back.
_PG_PERIOD_DONE = """
INSERT INTO leveling_user_quests AS q (guild_id, user_id, quest_id, progress, quest_specific_progress, completed,
                                       completed_at, expires_at)
SELECT t.g, t.u, t.q, t.p, t.r, true, $6, t.e
FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::bigint[], $5::bigint[], $7::timestamptz[])
     AS t(g, u, q, p, r, e) ORDER BY 1, 2, 3
ON CONFLICT (guild_id, user_id, quest_id) DO UPDATE SET completed = true, completed_at = excluded.completed_at,
  progress = excluded.progress, quest_specific_progress = excluded.quest_specific_progress
WHERE NOT q.completed
RETURNING q.guild_id, q.user_id, q.quest_id
"""
_SQLITE_PERIOD_DONE = """
INSERT INTO leveling_user_quests (guild_id, user_id, quest_id, progress, quest_specific_progress, completed,
                                  completed_at, expires_at)
SELECT value->>0, value->>1, value->>2, value->>3, value->>4, 1, ?1, value->>5 FROM json_each(?2) WHERE true
ON CONFLICT (guild_id, user_id, quest_id) DO UPDATE SET completed = 1, completed_at = excluded.completed_at,
  progress = excluded.progress, quest_specific_progress = excluded.quest_specific_progress
WHERE NOT completed
RETURNING guild_id, user_id, quest_id
"""
# Achievements met: one insert for the whole flush; a row already there is a no-op, so each is earned once.
# ``known_users``: joined to ``users``, so a member without a user row yet is left out rather than refused.
_PG_GRANT = """
INSERT INTO leveling_user_achievements (guild_id, user_id, achievement_id, earned_at)
SELECT t.g, t.u, t.a, $4 FROM unnest($1::bigint[], $2::bigint[], $3::bigint[]) AS t(g, u, a)
{join}ORDER BY 1, 2, 3
ON CONFLICT (guild_id, user_id, achievement_id) DO NOTHING
RETURNING guild_id, user_id, achievement_id
"""
_PG_ACHIEVEMENTS = _PG_GRANT.format(join="")
_PG_KNOWN_ACHIEVEMENTS = _PG_GRANT.format(join="JOIN users ON users.id = t.u\n")
_SQLITE_GRANT = """
INSERT INTO leveling_user_achievements (guild_id, user_id, achievement_id, earned_at)
SELECT j.value->>0, j.value->>1, j.value->>2, ?1 FROM json_each(?2) AS j {join}WHERE true
ON CONFLICT (guild_id, user_id, achievement_id) DO NOTHING
RETURNING guild_id, user_id, achievement_id
"""
_SQLITE_ACHIEVEMENTS = _SQLITE_GRANT.format(join="")
_SQLITE_KNOWN_ACHIEVEMENTS = _SQLITE_GRANT.format(join="JOIN users ON users.id = j.value->>1 ")


def sqlite_time(value: datetime) -> str:
    """The text SQLAlchemy's SQLite DateTime stores (UTC, no offset), so raw and ORM writes compare equal."""
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def _dumps(value: Any) -> str:
    """JSON text of a flush's rows (orjson: in C, several times faster than the standard library's encoder)."""
    return orjson.dumps(value).decode()


_SECONDS: dict[int, str] = {}


def _sqlite_ts(ts: float) -> str:
    """`sqlite_time` of a POSIX time (the whole seconds of a flush's events repeat: their text is kept)."""
    whole = int(ts // 1)
    micros = round((ts - whole) * 1_000_000)
    if micros >= 1_000_000:
        whole, micros = whole + 1, micros - 1_000_000
    head = _SECONDS.get(whole)
    if head is None:
        if len(_SECONDS) > 4096:
            _SECONDS.clear()
        head = _SECONDS[whole] = datetime.fromtimestamp(whole, UTC).strftime("%Y-%m-%d %H:%M:%S")
    return f"{head}.{micros:06d}"


def _parse_time(value: Any) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    return datetime.fromisoformat(str(value)).replace(tzinfo=UTC)


def _stored(r: Sequence[Any]) -> StoredLevel:
    """A `StoredLevel` from a row of ``_RETURNING``'s columns (a driver record or a JSON array)."""
    level = StoredLevel(*r)
    if r[10] is not None:
        level.multiplier_expires_at = _parse_time(r[10])
    return level


def _chunks(rows: Sequence[Any], size: int = CHUNK) -> list[Sequence[Any]]:
    return [rows[i:i + size] for i in range(0, len(rows), size)]


def _period_arrays(rows: Sequence[LevelRow]) -> tuple[list[Any], ...]:
    return ([r.daily_period for r in rows], [r.weekly_period for r in rows], [r.q_messages for r in rows],
            [r.q_reactions for r in rows], [r.q_voice_seconds for r in rows], [r.q_commands for r in rows])


class BulkWriter:
    """The flush's statements on the raw driver connection of ``session`` (which must already be in a transaction)."""

    def __init__(self, session: AsyncSession, driver: Any, backend: str) -> None:
        self.session = session
        self.driver = driver
        self.pg = backend == "postgresql"

    @classmethod
    async def open(cls, session: AsyncSession, backend: str) -> BulkWriter:
        conn = await session.connection()
        await conn.execute(text("SELECT 1"))  # starts the transaction on the driver connection (asyncpg is lazy)
        raw = await conn.get_raw_connection()
        return cls(session, raw.driver_connection, backend)

    async def _fetch(self, sql: str, *args: Any) -> list[Any]:
        if self.pg:
            return list(await self.driver.fetch(sql, *args))
        return list(await self.driver.execute_fetchall(sql, args))

    async def _execute(self, sql: str, *args: Any) -> None:
        if self.pg:
            await self.driver.execute(sql, *args)
        else:
            await self.driver.execute_fetchall(sql, args)

    # ------------------------------------------------------------------------------------------ events

    async def claim_events(self, keys: Sequence[tuple[int, int | None]], stamp: int) -> set[int]:
        """Record event keys as counted, stamped ``stamp`` (microseconds, unique to this flush); return the ones
        already counted elsewhere (to subtract from this flush)."""
        taken: set[int] = set()
        for chunk in _chunks(sorted(keys)):
            if self.pg:
                status = await self.driver.execute(_PG_CLAIM, [k for k, _ in chunk], [o for _, o in chunk], stamp)
                if int(status.rsplit(" ", 1)[-1]) < len(chunk):
                    rows = await self._fetch(_PG_TAKEN, [k for k, _ in chunk], stamp)
                    taken.update(r[0] for r in rows)
            else:
                payload = _dumps(chunk)
                await self._execute(_SQLITE_CLAIM, stamp, payload)
                changed = (await self._fetch("SELECT changes()"))[0][0]
                if changed < len(chunk):
                    taken.update(orjson.loads((await self._fetch(_SQLITE_TAKEN, stamp, payload))[0][0]))
        return taken

    async def prune_events(self, before_us: int) -> None:
        await self.session.execute(text("DELETE FROM leveling_seen_events WHERE seen_at < :t"), {"t": before_us})

    # ------------------------------------------------------------------------------------------ levels

    async def ensure_users(self, users: Sequence[tuple[int, str]], now: datetime) -> None:
        for chunk in _chunks(sorted(users)):
            if self.pg:
                await self._execute(_PG_USERS, [u for u, _ in chunk], [n for _, n in chunk], now)
            else:
                await self._execute(_SQLITE_USERS, sqlite_time(now), _dumps(chunk))

    async def read_levels(self, keys: Sequence[tuple[int, int]]) -> dict[tuple[int, int], StoredLevel]:
        """Members' stored totals, in one statement (one row of JSON)."""
        out: dict[tuple[int, int], StoredLevel] = {}
        for chunk in _chunks(keys):
            if self.pg:
                rows = await self._fetch(_PG_READ, [g for g, _ in chunk], [u for _, u in chunk])
            else:
                rows = orjson.loads((await self._fetch(_SQLITE_TOTALS, _dumps(chunk)))[0][0])
            for r in rows:
                out[(r[0], r[1])] = _stored(r)
        return out

    async def update_levels(self, rows: Sequence[LevelRow], now: datetime, thresholds: Sequence[int] = (),
                            on_curve: Container[int] = (),
                            on_rows: Callable[[list[StoredLevel]], Awaitable[None]] | None = None,
                            ) -> list[StoredLevel]:
        """PostgreSQL: add each row's activity to members that have a row; returns their totals (the rows not
        returned have none yet: `upsert_levels` them). Rows of the servers in ``on_curve`` also get their level
        from ``thresholds`` (the total XP of each level of their curve) and return the one they had
        (``level_before``). One chunk's parameters are built, and the last one's rows read and handed to
        ``on_rows``, while a chunk runs."""
        out: list[StoredLevel] = []
        levels = list(thresholds) or [0]
        running: asyncio.Future[list[Any]] | None = None
        sent: Sequence[LevelRow] = ()
        try:
            for chunk in _chunks(sorted(rows, key=MEMBER_KEY)):
                args = ([r.guild_id for r in chunk], [r.user_id for r in chunk], [r.xp for r in chunk],
                        [r.messages for r in chunk], [r.total_messages for r in chunk],
                        [r.total_reactions for r in chunk], [r.commands_used for r in chunk],
                        [r.voice_time_seconds for r in chunk], [r.last_message_time for r in chunk], now,
                        *_period_arrays(chunk), [r.bonus for r in chunk], levels,
                        [r.guild_id in on_curve for r in chunk])
                done = await running if running is not None else None
                running = asyncio.ensure_future(self._fetch(_PG_UPDATE, *args))
                await asyncio.sleep(0)  # sent before the rows before are read
                if done is not None:
                    await self._returned(done, sent, out, on_rows)
                sent = chunk
            if running is not None:
                await self._returned(await running, sent, out, on_rows)
        except BaseException:
            if running is not None and not running.done():
                running.cancel()
                with contextlib.suppress(BaseException):
                    await running
            raise
        return out

    @staticmethod
    async def _returned(records: list[Any], sent: Sequence[LevelRow], out: list[StoredLevel],
                        on_rows: Callable[[list[StoredLevel]], Awaitable[None]] | None) -> None:
        """The update's rows: each names (ordinality, last column) the row of ``sent`` it added."""
        chunk = []
        for r in records:
            level = _stored(r)  # the ordinality lands in `row`, the field after `level_before`
            level.row = sent[r[-1] - 1]
            chunk.append(level)
        out.extend(chunk)
        if on_rows is not None:
            await on_rows(chunk)

    async def upsert_levels(self, rows: Sequence[LevelRow], now: datetime,
                            read_back: Callable[[LevelRow], bool] | None = None,
                            payloads: Sequence[str] | None = None) -> list[StoredLevel]:
        """Add each row's activity to its member (creating the member's row); returns the resulting totals: of
        every row on PostgreSQL (``RETURNING``), of the rows ``read_back`` selects on SQLite (a second pass).
        SQLite may take the statements' parameters built beforehand (`sqlite_payloads`): then no totals are read."""
        if payloads is not None and not self.pg:
            stamp = sqlite_time(now)
            for payload in payloads:
                await self._execute(_SQLITE_UPSERT, stamp, payload)
            return []
        out: list[StoredLevel] = []
        ordered = sorted(rows, key=MEMBER_KEY)  # one lock order for every process
        for chunk in _chunks(ordered):
            if self.pg:
                result = await self._fetch(
                    _PG_UPSERT, [r.guild_id for r in chunk], [r.user_id for r in chunk], [r.xp for r in chunk],
                    [r.messages for r in chunk], [r.total_messages for r in chunk],
                    [r.total_reactions for r in chunk], [r.commands_used for r in chunk],
                    [r.voice_time_seconds for r in chunk], [r.last_message_time for r in chunk], now,
                    *_period_arrays(chunk))
            else:
                payload = _dumps([
                    (r.guild_id, r.user_id, r.xp, r.messages, r.total_messages, r.total_reactions, r.commands_used,
                     r.voice_time_seconds, None if r.last_message_time is None else _sqlite_ts(r.last_message_time),
                     r.daily_period, r.weekly_period, r.q_messages, r.q_reactions, r.q_voice_seconds, r.q_commands)
                    for r in chunk])
                await self._execute(_SQLITE_UPSERT, sqlite_time(now), payload)
                wanted = chunk if read_back is None else [r for r in chunk if read_back(r)]
                result = orjson.loads((await self._fetch(
                    _SQLITE_TOTALS, _dumps([(r.guild_id, r.user_id) for r in wanted])))[0][0]) if wanted else []
            out.extend(_stored(r) for r in result)
        return out

    @staticmethod
    async def sqlite_payloads(rows: Sequence[LevelRow]) -> list[str]:
        """SQLite: the upsert's parameters for ``rows``, one JSON text per statement, built a chunk at a time with
        a turn of the event loop in between (the flush builds them while its read runs on the connection's
        thread)."""
        out = []
        for chunk in _chunks(sorted(rows, key=MEMBER_KEY)):
            out.append(_dumps([
                (r.guild_id, r.user_id, r.xp, r.messages, r.total_messages, r.total_reactions, r.commands_used,
                 r.voice_time_seconds, None if r.last_message_time is None else _sqlite_ts(r.last_message_time),
                 r.daily_period, r.weekly_period, r.q_messages, r.q_reactions, r.q_voice_seconds, r.q_commands)
                for r in chunk]))
            await asyncio.sleep(0)
        return out

    async def settle_levels(self, rows: Sequence[tuple[int, int, int, int, int]]) -> set[tuple[int, int]]:
        """(guild, user, xp to add, old level, new level): add the rewards and set each level where it still is the
        old one, one statement per chunk; returns the members whose level this call changed (another process that
        got there first announces the others)."""
        won: set[tuple[int, int]] = set()
        for chunk in _chunks(sorted(rows)):
            if self.pg:
                found = await self._fetch(_PG_SETTLE, [c[0] for c in chunk], [c[1] for c in chunk],
                                          [c[2] for c in chunk], [c[3] for c in chunk], [c[4] for c in chunk])
                won.update((r[0], r[1]) for r in found)
            else:
                # The writer holds the database's write lock for the whole flush, so the levels it read are still
                # there; which rows moved is read back in one row.
                await self._execute(_SQLITE_SETTLE, _dumps(chunk))
                moved = [(g, u, o, n) for g, u, _, o, n in chunk if o != n]
                if moved:
                    found = orjson.loads((await self._fetch(_SQLITE_LEVELS_AT, _dumps(moved)))[0][0])
                    won.update((r[0], r[1]) for r in found)
        return won

    # ------------------------------------------------------------------------------------- quests, achievements

    async def advance_quests(self, rows: Sequence[tuple[int, int, int, int, int, datetime | None, int]],
                             now: datetime) -> list[tuple[int, int, int]]:
        """(guild, user, quest, member's counter, progress to add, quest expiry, requirement) for every member and
        quest a flush moved, in every server: add the progress and complete the quests that reach their
        requirement; returns the (guild, user, quest) completed by this call (each completes once)."""
        done: list[tuple[int, int, int]] = []
        for chunk in _chunks(sorted(rows)):
            if self.pg:
                await self._execute(_PG_QUESTS, [r[0] for r in chunk], [r[1] for r in chunk], [r[2] for r in chunk],
                                    [r[3] for r in chunk], [r[4] for r in chunk], [r[5] for r in chunk])
                found = await self._fetch(_PG_COMPLETE, [r[0] for r in chunk], [r[1] for r in chunk],
                                          [r[2] for r in chunk], [r[6] for r in chunk], now)
                done.extend((r[0], r[1], r[2]) for r in found)
            else:
                expiry = {e: None if e is None else sqlite_time(e) for e in {r[5] for r in chunk}}
                await self._execute(_SQLITE_QUESTS, _dumps(
                    [(g, u, q, p, i, expiry[e]) for g, u, q, p, i, e, _ in chunk]))
                payload = _dumps([(g, u, q, req) for g, u, q, _p, _i, _e, req in chunk])
                found = orjson.loads((await self._fetch(_SQLITE_COMPLETABLE, payload))[0][0])
                if found:
                    await self._execute(_SQLITE_COMPLETE, sqlite_time(now), _dumps(found))
                done.extend((r[0], r[1], r[2]) for r in found)
        return done

    async def complete_period_quests(self, rows: Sequence[tuple[int, int, int, int, int, datetime | None]],
                                     now: datetime) -> list[tuple[int, int, int]]:
        """(guild, user, quest, member's counter, requirement, expiry) of period quests whose requirement the
        member's period counter meets: mark each completed; returns the ones this call completed (each once)."""
        done: list[tuple[int, int, int]] = []
        for chunk in _chunks(sorted(rows)):
            if self.pg:
                found = await self._fetch(_PG_PERIOD_DONE, [r[0] for r in chunk], [r[1] for r in chunk],
                                          [r[2] for r in chunk], [r[3] for r in chunk], [r[4] for r in chunk], now,
                                          [r[5] for r in chunk])
            else:
                found = await self._fetch(_SQLITE_PERIOD_DONE, sqlite_time(now), _dumps(
                    [(g, u, q, p, req, None if e is None else sqlite_time(e)) for g, u, q, p, req, e in chunk]))
            done.extend((r[0], r[1], r[2]) for r in found)
        return done

    async def grant_achievements(self, rows: Sequence[tuple[int, int, int]], now: datetime, *,
                                 known_users: bool = False) -> list[tuple[int, int, int]]:
        """Record (guild, user, achievement) as earned; returns the ones this call earned (not held before).
        ``known_users``: only for users that have a row already (the others are left out, not refused). ``rows``
        holds no repeats."""
        out: list[tuple[int, int, int]] = []
        for chunk in _chunks(sorted(rows)):
            if self.pg:
                found = await self._fetch(_PG_KNOWN_ACHIEVEMENTS if known_users else _PG_ACHIEVEMENTS,
                                          [r[0] for r in chunk], [r[1] for r in chunk], [r[2] for r in chunk], now)
            else:
                found = await self._fetch(_SQLITE_KNOWN_ACHIEVEMENTS if known_users else _SQLITE_ACHIEVEMENTS,
                                          sqlite_time(now), _dumps(chunk))
            out.extend((r[0], r[1], r[2]) for r in found)
        return out
