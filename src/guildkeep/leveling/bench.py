"""``guildkeep bench ingest``: chat activity at the scale of the largest bots, through guildkeep's write-behind path,
against the naive path and against the storage limit, on SQLite and PostgreSQL.

Workload (as in the project's throughput notes): 1,000 servers and 1,000,000 members, the largest server with
100,000 members and the server of rank r ≥ 2 with about 138,780/r; each event picks a server in proportion to its
size and a member by Zipf (1/rank) inside it. Message ids are real snowflakes of a simulated clock advancing
10,000 events per second, so the 60 s cooldowns apply. Every member already has a row (the table is pre-filled
with bulk inserts, then copied for each path).

Measured, in one run per database:

* **guildkeep**: events/s end to end (the first event in → the last flush committed), through `XpIngestor` with
  its default window, the event keys (deduplication) and the leaderboard index; then ``/rank`` and top-10
  ``/leaderboard`` in the 100,000-member server (p50/p99) while events keep arriving at ``read_rate`` per second
  (default 2,000: above what the largest bots see, 10²–10³ messages/s);
* **baseline**: the raw driver's batched upserts of one row per event, 10,000 per transaction (sqlite3
  ``executemany``, asyncpg ``executemany``), same table, same index;
* **naive**: a unit of work per event through the ORM (read the member, update, commit), on a sample, extrapolated.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import itertools
import json
import os
import random
import resource
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
import tracemalloc
import uuid
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
from sqlalchemy import select, text
from sqlalchemy.engine import make_url

from guildkeep.db import Database, migrate, utcnow
from guildkeep.db.instances import new_instance_id
from guildkeep.leveling.board import GuildBoard
from guildkeep.leveling.bulk import sqlite_time
from guildkeep.leveling.ingest import DISCORD_EPOCH_MS, XpIngestor, _Member, snowflake_time
from guildkeep.leveling.models import Level
from guildkeep.leveling.results import ActivityResult
from guildkeep.leveling.rules import Curve
from guildkeep.leveling.service import LevelingService

GUILD0 = 100_000_000_000_000_000  # snowflake-sized ids
USER0 = 200_000_000_000_000_000
SIM_RATE = 10_000  # simulated events per second
BASELINE_BATCH = 10_000
DEFAULT_PG = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
TARGETS = {"vs_baseline": 1.5, "vs_naive": 100.0, "leaderboard_p99_ms": 5.0, "rank_p99_ms": 10.0}


@dataclass
class Scale:
    events: int = 1_000_000
    members: int = 1_000_000
    guilds: int = 1_000
    naive_sample: int = 5_000
    seed: int = 7
    read_rate: int = 2_000  # events per second while /rank and /leaderboard are timed
    bot_config: bool = True  # every server as the bot runs it: its daily/weekly quests and two achievements
    # With ``bot_config``: members already hold the achievements their totals earned (a server where the bot has run
    # with them); ``False``: the achievements were just created, so the run grants them to every member who speaks.
    held_achievements: bool = True


@dataclass
class Workload:
    scale: Scale
    sizes: list[int]
    offsets: list[int]
    events: list[tuple[int, int, int]]  # (guild id, user id, message id)

    @property
    def members(self) -> int:
        return sum(self.sizes)

    def guild_id(self, index: int) -> int:
        return GUILD0 + index

    def user_id(self, guild_index: int, rank: int) -> int:
        return USER0 + self.offsets[guild_index] + rank


@dataclass
class BackendResult:
    backend: str
    events: int
    members: int
    guildkeep_events_per_s: float = 0.0
    baseline_events_per_s: float = 0.0
    naive_events_per_s: float = 0.0
    rows_written: int = 0
    flushes: int = 0
    seconds_in_event_keys: float = 0.0
    event_keys_skipped: int = 0
    seconds_in_upserts: float = 0.0
    seconds_in_quests: float = 0.0
    seconds_in_flushes: float = 0.0
    rank_ms: dict[str, float] = field(default_factory=dict)
    leaderboard_ms: dict[str, float] = field(default_factory=dict)
    reads: int = 0
    read_load_events_per_s: float = 0.0
    peak_rss_mib: float = 0.0
    members_held: int = 0
    bytes_per_member: float = 0.0
    board_bytes_per_member: float = 0.0
    board_members: int = 0
    announcements: dict[str, int] = field(default_factory=dict)
    prefill_seconds: float = 0.0
    preload_seconds: float = 0.0
    checks: dict[str, bool] = field(default_factory=dict)
    servers: str = ""  # how the servers are set up (`Scale.bot_config`, `Scale.held_achievements`)

    @property
    def vs_baseline(self) -> float:
        return self.guildkeep_events_per_s / self.baseline_events_per_s if self.baseline_events_per_s else 0.0

    @property
    def vs_naive(self) -> float:
        return self.guildkeep_events_per_s / self.naive_events_per_s if self.naive_events_per_s else 0.0

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["vs_baseline"] = round(self.vs_baseline, 2)
        out["vs_naive"] = round(self.vs_naive, 1)
        out["targets"] = TARGETS
        return out


# ------------------------------------------------------------------------------------------- workload


def guild_sizes(members: int, guilds: int) -> list[int]:
    largest = max(1, members // 10)
    return [largest] + [max(1, round(members * 0.13878 / r)) for r in range(2, guilds + 1)]


def make_workload(scale: Scale, t0: float | None = None) -> Workload:
    rng = random.Random(scale.seed)
    sizes = guild_sizes(scale.members, scale.guilds)
    offsets = [0, *itertools.accumulate(sizes)][:-1]
    harmonic: dict[int, list[float]] = {}
    picks = rng.choices(range(len(sizes)), cum_weights=list(itertools.accumulate(sizes)), k=scale.events)
    start = t0 if t0 is not None else time.time() - scale.events / SIM_RATE - 60
    events = []
    for i, g in enumerate(picks):
        cum = harmonic.get(g)
        if cum is None:
            cum = harmonic[g] = list(itertools.accumulate(1 / k for k in range(1, sizes[g] + 1)))
        rank = min(bisect.bisect_left(cum, rng.random() * cum[-1]), sizes[g] - 1)
        ms = int((start + i / SIM_RATE) * 1000)
        events.append((GUILD0 + g, USER0 + offsets[g] + rank, ((ms - DISCORD_EPOCH_MS) << 22) | (i & 0x3FFFFF)))
    return Workload(scale, sizes, offsets, events)


def _prefill_rows(work: Workload) -> Callable[[], Any]:
    """(guild, user, xp, level) for every member: a long-tailed XP distribution (each member has sent messages:
    about one per 20 XP, see `_messages`)."""
    rng = random.Random(work.scale.seed + 1)
    curve = Curve()

    def rows() -> Any:
        for g, size in enumerate(work.sizes):
            for rank in range(size):
                xp = min(int(50 * rng.paretovariate(1.1)), 10_000_000)
                yield GUILD0 + g, work.user_id(g, rank), xp, curve.level_for_xp(xp)

    return rows


def _messages(xp: int) -> int:
    """The messages a member with ``xp`` sent (the default 15–25 XP a message: one per 20 XP, at least one)."""
    return max(1, xp // 20)


# --------------------------------------------------------------------------------------------- prefill

_LEVEL_INDEX = "ix_leveling_levels_board"  # the leaderboard index (guild_id, xp DESC, user_id)


def prefill_sqlite(path: Path, work: Workload) -> None:
    """Bulk insert: one transaction, rows in key order, the leaderboard index built afterwards."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=OFF")
        conn.execute("PRAGMA cache_size=-262144")
        now = sqlite_time(datetime.now(UTC))
        conn.execute("BEGIN")
        conn.execute(f"DROP INDEX {_LEVEL_INDEX}")
        conn.executemany("INSERT INTO guilds (id, name, joined_at, settings, created_at, updated_at, is_active) "
                         "VALUES (?, '', ?, '{}', ?, ?, 1)",
                         [(GUILD0 + g, now, now, now) for g in range(len(work.sizes))])
        rows = _prefill_rows(work)
        conn.executemany("INSERT INTO users (id, username, first_seen_at, last_seen_at, created_at, updated_at, "
                         "is_active) VALUES (?, '', ?, ?, ?, ?, 1)", ((u, now, now, now, now) for _, u, _, _ in rows()))
        conn.executemany(
            "INSERT INTO leveling_levels (guild_id, user_id, xp, level, messages, voice_time_seconds, total_messages, "
            "total_reactions, commands_used, xp_multiplier, created_at, updated_at) "
            "VALUES (?, ?, ?, ?, ?, 0, ?, 0, 0, 1.0, ?, ?)",
            ((g, u, xp, lvl, _messages(xp), _messages(xp), now, now) for g, u, xp, lvl in rows()))
        conn.execute(f"CREATE INDEX {_LEVEL_INDEX} ON leveling_levels (guild_id, xp DESC, user_id)")
        conn.execute("COMMIT")
        conn.execute("ANALYZE")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()


async def prefill_postgres(url: str, work: Workload) -> None:
    conn = await asyncpg.connect(_dsn(url))
    try:
        now = datetime.now(UTC)
        async with conn.transaction():
            await conn.execute(f"DROP INDEX {_LEVEL_INDEX}")
            await conn.copy_records_to_table(
                "guilds", columns=["id", "name", "joined_at", "settings", "created_at", "updated_at", "is_active"],
                records=[(GUILD0 + g, "", now, "{}", now, now, True) for g in range(len(work.sizes))])
            rows = _prefill_rows(work)
            await conn.copy_records_to_table(
                "users", columns=["id", "username", "first_seen_at", "last_seen_at", "created_at", "updated_at",
                                  "is_active"],
                records=((u, "", now, now, now, now, True) for _, u, _, _ in rows()))
            await conn.copy_records_to_table(
                "leveling_levels", columns=["guild_id", "user_id", "xp", "level", "messages", "voice_time_seconds",
                                            "total_messages", "total_reactions", "commands_used", "xp_multiplier",
                                            "created_at", "updated_at"],
                records=((g, u, xp, lvl, _messages(xp), 0, _messages(xp), 0, 0, 1.0, now, now)
                         for g, u, xp, lvl in rows()))
            await conn.execute(f"CREATE INDEX {_LEVEL_INDEX} ON leveling_levels (guild_id, xp DESC, user_id)")
        await conn.execute("VACUUM ANALYZE")
    finally:
        await conn.close()


async def configure_servers(db: Database, work: Workload) -> None:
    """What the bot sets up in every server: this period's daily and weekly quests (the quest reset at start-up)
    and two achievements, so each flush does the quest and achievement work of the real bot. With
    ``held_achievements`` the members hold what their totals earned, as in a server where the bot has run with
    them (one statement)."""
    service = LevelingService(db)
    for g in range(len(work.sizes)):
        guild_id = work.guild_id(g)
        await service.reset_quests(guild_id)
        await service.create_achievement(guild_id, "First words", "Send a message.", "messages", 1, 10)
        await service.create_achievement(guild_id, "Regular", "Reach level 5.", "level", 5, 50)
    if work.scale.held_achievements:
        now = utcnow()
        async with db.session() as s:
            await s.execute(text(_HELD), {"now": sqlite_time(now) if db.backend == "sqlite" else now})


_HELD = """
INSERT INTO leveling_user_achievements (guild_id, user_id, achievement_id, earned_at)
SELECT l.guild_id, l.user_id, a.id, :now
FROM leveling_achievements AS a JOIN leveling_levels AS l ON l.guild_id = a.guild_id
WHERE (a.requirement_type = 'messages' AND l.total_messages >= a.requirement_value)
   OR (a.requirement_type = 'level' AND l.level >= a.requirement_value)
ORDER BY l.guild_id, l.user_id, a.id
"""


def _dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


# ----------------------------------------------------------------------------------------------- paths

_SQLITE_BASELINE = (
    "INSERT INTO leveling_levels (guild_id, user_id, xp, level, messages, total_messages, total_reactions, "
    "commands_used, voice_time_seconds, last_message_time, xp_multiplier, created_at, updated_at) "
    "VALUES (?, ?, ?, 0, ?, 1, 0, 0, 0, ?, 1.0, ?, ?) ON CONFLICT (guild_id, user_id) DO UPDATE SET "
    "xp = xp + excluded.xp, messages = messages + excluded.messages, total_messages = total_messages + 1, "
    "last_message_time = coalesce(excluded.last_message_time, last_message_time), updated_at = excluded.updated_at")
_PG_BASELINE = (
    "INSERT INTO leveling_levels AS l (guild_id, user_id, xp, level, messages, total_messages, total_reactions, "
    "commands_used, voice_time_seconds, last_message_time, xp_multiplier, created_at, updated_at) "
    "VALUES ($1, $2, $3, 0, $4, 1, 0, 0, 0, $5, 1.0, $6, $6) ON CONFLICT (guild_id, user_id) DO UPDATE SET "
    "xp = l.xp + excluded.xp, messages = l.messages + excluded.messages, total_messages = l.total_messages + 1, "
    "last_message_time = coalesce(excluded.last_message_time, l.last_message_time), updated_at = excluded.updated_at")


def _baseline_rows(chunk: Sequence[tuple[int, int, int]], last: dict[tuple[int, int], float], rng: random.Random,
                   stamp: Callable[[float], Any]) -> list[tuple[Any, ...]]:
    """One row per event with the in-memory cooldown applied (the same rows guildkeep stores, uncoalesced)."""
    rows = []
    for g, u, mid in chunk:
        ts = snowflake_time(mid)
        before = last.get((g, u))
        if before is None or ts - before >= 60:
            last[(g, u)] = ts
            rows.append((g, u, rng.randint(15, 25), 1, stamp(ts)))
        else:
            rows.append((g, u, 0, 0, None))
    return rows


def baseline_sqlite(path: Path, events: Sequence[tuple[int, int, int]]) -> float:
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "foreign_keys=ON"):  # as `Database` sets them
            conn.execute(f"PRAGMA {pragma}")
        rng, last = random.Random(1), dict[tuple[int, int], float]()
        start = time.perf_counter()
        for i in range(0, len(events), BASELINE_BATCH):
            now = sqlite_time(datetime.now(UTC))
            rows = [(*r, now, now) for r in _baseline_rows(
                events[i:i + BASELINE_BATCH], last, rng, lambda ts: sqlite_time(datetime.fromtimestamp(ts, UTC)))]
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany(_SQLITE_BASELINE, rows)
            conn.execute("COMMIT")
        return len(events) / (time.perf_counter() - start)
    finally:
        conn.close()


async def baseline_postgres(url: str, events: Sequence[tuple[int, int, int]]) -> float:
    conn = await asyncpg.connect(_dsn(url))
    try:
        rng, last = random.Random(1), dict[tuple[int, int], float]()
        start = time.perf_counter()
        for i in range(0, len(events), BASELINE_BATCH):
            now = datetime.now(UTC)
            rows = [(*r, now) for r in _baseline_rows(events[i:i + BASELINE_BATCH], last, rng,
                                                      lambda ts: datetime.fromtimestamp(ts, UTC))]
            async with conn.transaction():
                await conn.executemany(_PG_BASELINE, rows)
        return len(events) / (time.perf_counter() - start)
    finally:
        await conn.close()


async def naive(db: Database, events: Sequence[tuple[int, int, int]]) -> float:
    """A unit of work per event through the ORM: read the member, apply the cooldown and XP, commit."""
    rng, curve = random.Random(2), Curve()
    start = time.perf_counter()
    for g, u, mid in events:
        now = datetime.fromtimestamp(snowflake_time(mid), UTC)
        async with db.session() as s:
            row = (await s.execute(select(Level).where(Level.guild_id == g, Level.user_id == u))).scalar_one()
            row.total_messages += 1
            if row.last_message_time is None or (now - row.last_message_time).total_seconds() >= 60:
                row.xp += rng.randint(15, 25)
                row.messages += 1
                row.last_message_time = now
                row.level = curve.level_for_xp(row.xp)
    return len(events) / (time.perf_counter() - start)


async def _sums(db: Database) -> tuple[int, int]:
    from sqlalchemy import func

    async with db.session(read_only=True) as s:
        total, xp = (await s.execute(select(func.coalesce(func.sum(Level.total_messages), 0),
                                            func.coalesce(func.sum(Level.xp), 0)))).one()
        return int(total), int(xp)


def _pct(values: list[float]) -> dict[str, float]:
    if not values:
        return {"p50": 0.0, "p99": 0.0, "n": 0}
    ordered = sorted(values)
    return {"p50": round(statistics.median(ordered), 3),
            "p99": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))], 3), "n": len(ordered)}


async def guildkeep_path(db: Database, work: Workload, result: BackendResult, *, reads: bool = True) -> None:
    """Events in → rows durable through `XpIngestor` as fast as they can be fed (throughput); then, on the same
    ingestor, ``/rank`` and top-10 ``/leaderboard`` in the largest server while events keep arriving at the
    simulated clock's rate, 10,000 per second (latency under load)."""
    service = LevelingService(db)
    counts = result.announcements = {"level_ups": 0, "quests_completed": 0, "achievements_earned": 0}

    async def announce(outcome: ActivityResult) -> None:  # the bot sends these to Discord from its own task
        counts["level_ups"] += len(outcome.level_ups)
        counts["quests_completed"] += len(outcome.quests_completed)
        counts["achievements_earned"] += len(outcome.achievements_earned)

    ingestor = XpIngestor(service, on_outcome=announce, instance_id=new_instance_id())  # as one bot process
    before_total, _ = await _sums(db)
    t = time.perf_counter()
    await ingestor.preload(work.guild_id(g) for g in range(len(work.sizes)))  # what the bot does at READY
    result.preload_seconds = round(time.perf_counter() - t, 2)
    ingestor.start()
    start = time.perf_counter()
    message = ingestor.message
    for i, (g, u, mid) in enumerate(work.events):
        await message(g, u, message_id=mid)
        if not i & 63:
            await asyncio.sleep(0)  # a gateway delivers events one read at a time: let the loop run its tasks
    await ingestor.stop()
    elapsed = time.perf_counter() - start
    result.guildkeep_events_per_s = len(work.events) / elapsed
    result.flushes = ingestor.flushed_batches
    result.rows_written = int(ingestor.stats["rows"])
    result.seconds_in_event_keys = round(ingestor.stats["claim_seconds"], 3)
    result.event_keys_skipped = int(ingestor.stats["keys_skipped"])
    result.seconds_in_upserts = round(ingestor.stats["upsert_seconds"], 3)
    result.seconds_in_quests = round(ingestor.stats["quest_seconds"], 3)
    result.seconds_in_flushes = round(ingestor.stats["flush_seconds"], 3)
    result.members_held = ingestor.members_held
    after_total, _ = await _sums(db)
    result.checks["every event stored once"] = after_total - before_total == len(work.events)
    if reads:
        await _reads_under_load(ingestor, work, result)


async def _reads_under_load(ingestor: XpIngestor, work: Workload, result: BackendResult,
                            seconds: float = 8.0) -> None:
    big = work.guild_id(0)
    rate = work.scale.read_rate
    more = make_workload(replace(work.scale, events=int(seconds * rate), seed=work.scale.seed + 10),
                         t0=snowflake_time(work.events[-1][2]) + 1 if work.events else None)
    rng = random.Random(3)
    rank_ms: list[float] = []
    board_ms: list[float] = []
    done = asyncio.Event()

    async def reader() -> None:
        while not done.is_set():
            user = work.user_id(0, rng.randrange(work.sizes[0]))
            t = time.perf_counter()
            await ingestor.standing(big, user)  # what /rank shows
            rank_ms.append((time.perf_counter() - t) * 1000)
            t = time.perf_counter()
            await ingestor.leaderboard(big, 1, 10)
            board_ms.append((time.perf_counter() - t) * 1000)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(done.wait(), 0.01)

    ingestor.start()
    reading = asyncio.create_task(reader())
    loop = asyncio.get_running_loop()
    begin = loop.time()
    for i, (g, u, mid) in enumerate(more.events):
        await ingestor.message(g, u, message_id=mid)
        if not i % 20:  # paced at ``read_rate`` events per second of wall time
            await asyncio.sleep(max(0.0, begin + i / rate - loop.time()))
    done.set()
    await reading
    await ingestor.stop()
    result.rank_ms, result.leaderboard_ms = _pct(rank_ms), _pct(board_ms)
    result.reads = len(rank_ms) + len(board_ms)
    result.read_load_events_per_s = round(len(more.events) / max(loop.time() - begin, 1e-9))
    board = ingestor._boards.get(big)
    if board is not None:
        result.board_members = len(board)
        result.board_bytes_per_member = round(board_bytes_per_member(list(board.base.items())), 1)


def board_bytes_per_member(stored: list[tuple[int, int]]) -> float:
    """Memory an in-memory leaderboard holds per member (sorted key, stored XP, XP with pending), measured by
    building one from the same rows."""
    if not stored:
        return 0.0
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    board = GuildBoard(stored)
    used = tracemalloc.get_traced_memory()[0] - base
    tracemalloc.stop()
    del board
    return used / len(stored)


def bytes_per_member(sample: int = 50_000) -> float:
    """Memory the ingestor holds per member (its state object and its place in the LRU map), measured."""
    from collections import OrderedDict

    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    members: OrderedDict[tuple[int, int], _Member] = OrderedDict()
    for i in range(sample):
        m = _Member(1.7e9 + i)
        m.xp, m.level, m.next_at, m.last_msg = 123_456 + i, 40, 130_000 + i, 1.7e9 + i
        members[(GUILD0 + i % 1000, USER0 + i)] = m
    used = tracemalloc.get_traced_memory()[0] - base
    tracemalloc.stop()
    del members
    return used / sample


# ---------------------------------------------------------------------------------------------- runner


async def _pg_admin(admin_url: str, sql: str) -> None:
    conn = await asyncpg.connect(_dsn(admin_url))
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def run_backend(backend: str, scale: Scale, *, pg_url: str = DEFAULT_PG,
                      log: Callable[[str], None] = lambda _m: None) -> BackendResult:
    work = make_workload(scale)
    result = BackendResult(backend, len(work.events), work.members)
    result.servers = ("no (bare)" if not scale.bot_config
                      else "yes, held" if scale.held_achievements else "yes, new achievements")
    sample = work.events[:scale.naive_sample]
    if backend == "sqlite":
        with tempfile.TemporaryDirectory(prefix="gk-bench-") as tmp:
            template = Path(tmp) / "template.db"
            db = Database(f"sqlite+aiosqlite:///{template}")
            try:
                await migrate.upgrade(db)
            finally:
                await db.dispose()
            t = time.perf_counter()
            await asyncio.to_thread(prefill_sqlite, template, work)
            result.prefill_seconds = round(time.perf_counter() - t, 1)
            log(f"sqlite: {work.members:,} members pre-filled in {result.prefill_seconds} s")
            if scale.bot_config:
                db = Database(f"sqlite+aiosqlite:///{template}")
                try:
                    await configure_servers(db, work)
                finally:
                    await db.dispose()
            copies = {}
            for name in ("baseline", "guildkeep"):
                copies[name] = Path(tmp) / f"{name}.db"
                shutil.copyfile(template, copies[name])
            result.baseline_events_per_s = baseline_sqlite(copies["baseline"], work.events)
            log(f"sqlite: baseline {result.baseline_events_per_s:,.0f} events/s")
            db = Database(f"sqlite+aiosqlite:///{copies['baseline']}")
            try:
                result.naive_events_per_s = await naive(db, sample)
            finally:
                await db.dispose()
            log(f"sqlite: naive {result.naive_events_per_s:,.0f} events/s")
            db = Database(f"sqlite+aiosqlite:///{copies['guildkeep']}", pool_size=10, max_overflow=10)
            try:
                await guildkeep_path(db, work, result)
            finally:
                await db.dispose()
    else:
        suffix = uuid.uuid4().hex[:8]
        names = {k: f"gk_bench_{k}_{suffix}" for k in ("template", "baseline", "guildkeep")}
        urls = {k: make_url(pg_url).set(database=v).render_as_string(hide_password=False) for k, v in names.items()}
        try:
            await _pg_admin(pg_url, f'CREATE DATABASE "{names["template"]}"')
            db = Database(urls["template"])
            try:
                await migrate.upgrade(db)
            finally:
                await db.dispose()
            t = time.perf_counter()
            await prefill_postgres(urls["template"], work)
            result.prefill_seconds = round(time.perf_counter() - t, 1)
            log(f"postgresql: {work.members:,} members pre-filled in {result.prefill_seconds} s")
            if scale.bot_config:
                db = Database(urls["template"])
                try:
                    await configure_servers(db, work)
                finally:
                    await db.dispose()
            for name in ("baseline", "guildkeep"):
                await _pg_admin(pg_url, f'CREATE DATABASE "{names[name]}" TEMPLATE "{names["template"]}"')
            result.baseline_events_per_s = await baseline_postgres(urls["baseline"], work.events)
            log(f"postgresql: baseline {result.baseline_events_per_s:,.0f} events/s")
            db = Database(urls["baseline"])
            try:
                result.naive_events_per_s = await naive(db, sample)
            finally:
                await db.dispose()
            log(f"postgresql: naive {result.naive_events_per_s:,.0f} events/s")
            db = Database(urls["guildkeep"], pool_size=10, max_overflow=10)
            try:
                await guildkeep_path(db, work, result)
            finally:
                await db.dispose()
        finally:
            for name in names.values():
                with contextlib.suppress(Exception):
                    await _pg_admin(pg_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    result.peak_rss_mib = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    result.bytes_per_member = round(bytes_per_member(), 1)
    log(f"{backend}: guildkeep {result.guildkeep_events_per_s:,.0f} events/s")
    return result


def table(results: Sequence[BackendResult]) -> str:
    """The results as a plain-text table."""
    lines = [f"{'':<34}" + "".join(f"{r.backend:>22}" for r in results)]

    def row(label: str, fn: Callable[[BackendResult], str]) -> None:
        lines.append(f"{label:<34}" + "".join(f"{fn(r):>22}" for r in results))

    row("events / members", lambda r: f"{r.events:,}/{r.members:,}")
    row("servers' quests + achievements", lambda r: r.servers)
    row("guildkeep events/s (end to end)", lambda r: f"{r.guildkeep_events_per_s:,.0f}")
    row("baseline events/s (raw, 10k/txn)", lambda r: f"{r.baseline_events_per_s:,.0f}")
    row("naive events/s (ORM per event)", lambda r: f"{r.naive_events_per_s:,.0f}")
    row(f"guildkeep / baseline (>= {TARGETS['vs_baseline']})", lambda r: f"{r.vs_baseline:.2f}x")
    row(f"guildkeep / naive (>= {TARGETS['vs_naive']:.0f})", lambda r: f"{r.vs_naive:,.0f}x")
    row("rows written / flushes", lambda r: f"{r.rows_written:,}/{r.flushes}")
    row("event keys not needed (one process)", lambda r: f"{r.event_keys_skipped:,}")
    row("s in event keys / in upserts", lambda r: f"{r.seconds_in_event_keys}/{r.seconds_in_upserts}")
    row("s in quests+achievements / flushes", lambda r: f"{r.seconds_in_quests}/{r.seconds_in_flushes}")
    row("reads under events/s", lambda r: f"{r.read_load_events_per_s:,.0f}")
    row(f"/rank p50/p99 ms (p99 <= {TARGETS['rank_p99_ms']:.0f})",
        lambda r: f"{r.rank_ms.get('p50', 0):.2f}/{r.rank_ms.get('p99', 0):.2f}")
    row(f"/leaderboard p50/p99 ms (<= {TARGETS['leaderboard_p99_ms']:.0f})",
        lambda r: f"{r.leaderboard_ms.get('p50', 0):.2f}/{r.leaderboard_ms.get('p99', 0):.2f}")
    row("peak RSS MiB", lambda r: f"{r.peak_rss_mib:,.0f}")
    row("members held / bytes per member", lambda r: f"{r.members_held:,}/{r.bytes_per_member:.0f}")
    row("leaderboard members / bytes each", lambda r: f"{r.board_members:,}/{r.board_bytes_per_member:.0f}")
    row("level-ups/quests/achievements", lambda r: "/".join(f"{v:,}" for v in r.announcements.values()) or "-")
    row("pre-fill s / preload at READY s", lambda r: f"{r.prefill_seconds}/{r.preload_seconds}")
    row("checks", lambda r: "ok" if all(r.checks.values()) else "FAILED")
    return "\n".join(lines)


def to_json(results: Sequence[BackendResult]) -> str:
    return json.dumps([r.as_dict() for r in results], indent=2)


async def run(backends: Sequence[str], scale: Scale, *, pg_url: str | None = None,
              log: Callable[[str], None] = lambda _m: None) -> list[BackendResult]:
    pg = pg_url or os.environ.get("GUILDKEEP_TEST_POSTGRES_URL", DEFAULT_PG)
    return [await run_backend(b, scale, pg_url=pg, log=log) for b in backends]


if __name__ == "__main__":  # pragma: no cover - `guildkeep bench ingest` is the entry point
    sys.exit("use: guildkeep bench ingest")
