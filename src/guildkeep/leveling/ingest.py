"""The high-rate path: activity is scored in memory with `rules` and written behind in batches.

`XpIngestor` applies the rules per event as it arrives (cooldowns held in memory, server config from the
service's TTL cache): a message, reaction, command or stretch of voice time earns XP only when it counts (past
its cooldown, not in a no-XP place), and only what counts advances quests. Each member's activity is coalesced
in memory. Every ``flush_seconds`` (the setting ``write_behind_flush_seconds``, default 1 s), when too much is
pending, when a known member crosses a level, and on `stop`, everything pending is written in ONE transaction of
batched, additive upserts (`guildkeep.leveling.bulk`): ``xp = xp + excluded.xp`` and the counters likewise, so
two processes writing one member lose nothing. ``RETURNING`` gives each member's exact totals; levels are
derived from the server's curve and written with one conditional update (``WHERE level = <old>``), so a level-up
is announced by exactly one process. Quest progress and completion and achievement grants run in the same
transaction for the members that moved, with the service's exactly-once statements. Only what the transaction
made durable is announced (``on_outcome``), once.

Events that carry an identity (a Discord message or interaction id; a reaction's message, user and emoji; a
voice interval) are recorded in ``leveling_seen_events`` in the same transaction, so when two processes receive
the same event (a rolling deploy's overlap) it is counted once: a key already there is subtracted from the
flush. A crash loses at most the activity of the last window (``flush_seconds``); a clean stop loses nothing;
a failed flush keeps its batch for the next one. ``flush_seconds=0`` writes every event through before the
event call returns.

Reads that show a member their standing (`user_level`, `rank_position`, `leaderboard`, `user_quests`) add the
activity not written yet. Members idle for ``idle_seconds`` leave memory.

`VoiceTracker` turns voice-state changes into seconds of eligible voice time.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import hashlib
import itertools
import logging
import random
import secrets
import sys
import time
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from operator import itemgetter
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from guildkeep.db import utcnow
from guildkeep.db.dialect import insert_for
from guildkeep.db.instances import FRESH_SECONDS, BotInstance
from guildkeep.identity.models import Guild
from guildkeep.leveling import queries, rules
from guildkeep.leveling.board import GuildBoard
from guildkeep.leveling.bulk import BulkWriter, LevelRow, StoredLevel
from guildkeep.leveling.models import Level
from guildkeep.leveling.results import (
    COUNTERS,
    AchievementInfo,
    ActivityResult,
    LeaderboardEntryInfo,
    LevelChangeResult,
    LevelInfo,
    QuestInfo,
    ServerConfigInfo,
    UserQuestInfo,
)
from guildkeep.leveling.service import LevelingService
from guildkeep.results import Page
from guildkeep.runtime import collector_paused

log = logging.getLogger(__name__)

OutcomeCallback = Callable[[ActivityResult], Awaitable[None]]
DISCORD_EPOCH_MS = 1_420_070_400_000
SEEN_EVENTS_TTL = 3600  # seconds an event key is remembered (longer than any two processes overlap)
PRUNE_EVERY = 60.0  # seconds between prunes of old event keys
SYNC_SECONDS = 60.0  # longest a member's totals in memory go without being read back from the database
BACKPRESSURE = 4  # with this many times ``max_pending`` members pending, an event waits for the running flush
BOARD_CHECK_SECONDS = 5.0  # how often a leaderboard page's rows are checked against the database
BOARD_RELOAD_SECONDS = 600.0  # a server's in-memory leaderboard is rebuilt from the database this often
BOARD_IDLE_SECONDS = 1800.0  # a leaderboard nobody read for this long leaves memory
YIELD_EVERY = 4096  # members a flush's bookkeeping handles between two turns of the event loop
LRU_GRAIN = 1.0  # seconds of activity within which a member keeps its place in the least-recently-active order
_FIRST = itemgetter(0)
VOICE_CELL_SECONDS = 60  # voice time is identified per member and minute of the clock
_MASK63 = (1 << 63) - 1
MESSAGE, REACTION, COMMAND, VOICE = range(4)
_SOURCE = ("message", "reaction", "command", "voice")
_ROW_QUEST_FIELD = {"total_messages": "q_messages", "total_reactions": "q_reactions", "commands_used": "q_commands",
                    "voice_time_seconds": "q_voice_seconds"}  # the same, on `LevelRow`
_QUEST_FIELD = {"total_messages": "q_messages", "total_reactions": "q_reactions", "commands_used": "q_commands",
                "voice_time_seconds": "q_voice"}


def snowflake_time(snowflake: int) -> float:
    """POSIX time at which Discord created ``snowflake``."""
    return ((snowflake >> 22) + DISCORD_EPOCH_MS) / 1000


def event_key(*parts: object) -> int:
    """A 63-bit identity for an event that has no snowflake of its own (a reaction, a voice interval)."""
    digest = hashlib.blake2b(repr(parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") & _MASK63


class _Member:
    """What the ingestor holds for one member: the last totals the database returned (``xp is None`` until the
    first flush), cooldowns, and the activity not written yet (``p_*``, ``q_*``)."""

    __slots__ = ("achievements", "boost", "boost_until", "last_cmd", "last_msg", "last_react", "level", "next_at",
                 "p_commands", "p_last_msg", "p_messages", "p_reactions", "p_total_messages", "p_voice", "p_xp",
                 "q_commands", "q_messages", "q_reactions", "q_voice", "synced", "touched", "username", "v_seconds",
                 "xp")

    def __init__(self, now: float) -> None:
        self.xp: int | None = None
        self.level = 0
        self.next_at = 0
        self.boost = 1.0
        self.boost_until = 0.0
        self.last_msg: float | None = None
        self.last_react: float | None = None
        self.last_cmd: float | None = None
        self.touched = now
        self.username: str | None = None
        self.achievements: set[int] | None = None
        self.synced = 0.0  # when ``xp`` was last read from the database (monotonic)
        self.v_seconds = 0  # voice seconds this process credited the member (for XP without rounding loss)
        self.clear()

    def clear(self) -> None:
        self.p_xp = self.p_messages = self.p_total_messages = self.p_reactions = self.p_commands = self.p_voice = 0
        self.q_messages = self.q_reactions = self.q_commands = self.q_voice = 0
        self.p_last_msg: float | None = None

    def snapshot(self) -> _Pending:
        return _Pending(self.p_xp, self.p_messages, self.p_total_messages, self.p_reactions, self.p_commands,
                        self.p_voice, self.p_last_msg, self.q_messages, self.q_reactions, self.q_commands,
                        self.q_voice, self.username, self)

    def restore(self, p: _Pending) -> None:
        self.p_xp += p.xp
        self.p_messages += p.messages
        self.p_total_messages += p.total_messages
        self.p_reactions += p.reactions
        self.p_commands += p.commands
        self.p_voice += p.voice
        if p.last_msg is not None and (self.p_last_msg is None or p.last_msg > self.p_last_msg):
            self.p_last_msg = p.last_msg
        self.q_messages += p.q_messages
        self.q_reactions += p.q_reactions
        self.q_commands += p.q_commands
        self.q_voice += p.q_voice
        self.username = self.username or p.username


@dataclass(slots=True)
class _Pending:
    xp: int
    messages: int
    total_messages: int
    reactions: int
    commands: int
    voice: int
    last_msg: float | None
    q_messages: int
    q_reactions: int
    q_commands: int
    q_voice: int
    username: str | None
    # The member whose activity this is (a flush's snapshot): held in `XpIngestor._members` at least until the
    # flush ends (a member in flight is never evicted), so the flush reaches it without a lookup.
    member: _Member | None = None

    def quest(self, requirement_type: str) -> int:
        return getattr(self, _QUEST_FIELD[requirement_type])

    def add(self, other: _Pending) -> None:
        for name in ("xp", "messages", "total_messages", "reactions", "commands", "voice", "q_messages",
                     "q_reactions", "q_commands", "q_voice"):
            setattr(self, name, getattr(self, name) + getattr(other, name))


@dataclass(slots=True)
class _Event:
    """One identified event in the pending window, so it can be taken back if another process counted it."""

    member: tuple[int, int]
    source: int
    xp: int
    counted: bool
    seconds: int = 0
    owner: int | None = None  # voice intervals: the process that may add to the key
    at: float = 0.0  # when this process received it (POSIX time)


class _Guild:
    __slots__ = ("achievements", "cfg", "cooldowns", "curve", "epoch", "known", "levels", "plain", "quests",
                 "seeded", "settings")

    def __init__(self, cfg: ServerConfigInfo) -> None:
        self.configure(cfg)
        self.epoch = -1  # the service cache's epoch when the config was last taken from it
        self.seeded = False
        self.known = False  # the guild row exists
        self.quests: list[QuestInfo] = []
        self.achievements: list = []

    def configure(self, cfg: ServerConfigInfo) -> None:
        self.cfg = cfg
        self.settings = s = cfg.xp_settings
        self.curve = cfg.curve_rule
        self.levels = rules.thresholds(self.curve)  # total XP of each level: a level is one bisect
        self.cooldowns = tuple(s.cooldown(name) for name in _SOURCE)
        # No no-XP places and no role or channel multipliers: an event's context cannot change its XP.
        self.plain = not (s.no_xp_channels or s.no_xp_roles or s.role_multipliers or s.channel_multipliers)

    def level(self, xp: int) -> int:
        return 0 if xp <= 0 else bisect.bisect_right(self.levels, xp) - 1


class XpIngestor:
    def __init__(
        self,
        service: LevelingService,
        *,
        flush_seconds: float = 1.0,
        on_outcome: OutcomeCallback | None = None,
        max_pending: int = 50_000,
        rng: random.Random | None = None,
        before_flush: Callable[[], Awaitable[None]] | None = None,
        idle_seconds: float = 900.0,
        max_members: int = 500_000,
        instance_id: str | None = None,
    ) -> None:
        self.service = service
        self.flush_seconds = flush_seconds
        self.on_outcome = on_outcome
        self.max_pending = max_pending
        self.rng = rng or random.Random()
        self.before_flush = before_flush
        self.idle_seconds = idle_seconds
        self.max_members = max_members
        self.owner = secrets.randbits(62) + 1  # this process, for the voice intervals it claims
        # This process's row in ``bot_instances`` (the bot's heartbeat): event keys are then claimed only for events
        # another instance may also have received. Without it every event's key is claimed.
        self.instance_id = instance_id
        self._shared_until = 0.0  # events received until then (POSIX time) may reach another instance too
        self._members: OrderedDict[tuple[int, int], _Member] = OrderedDict()  # least recently active first
        self._guilds: dict[int, _Guild] = {}
        self._pending: dict[tuple[int, int], _Member] = {}
        self._events: dict[int, _Event] = {}
        self._inflight: dict[tuple[int, int], _Pending] = {}
        self._inflight_events: dict[int, _Event] = {}
        self._clock = 0.0  # latest event time seen
        self._task: asyncio.Task[None] | None = None
        self._running: asyncio.Future[list[ActivityResult]] | None = None  # the background loop's flush
        self._stopping = False
        self._announce: deque[ActivityResult] = deque()
        self._announcer: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._flush_lock = asyncio.Lock()
        self._flushing = False
        self._last_prune = 0.0
        self._stamp = 0  # the last flush's claim stamp (microseconds)
        self._boards: dict[int, GuildBoard] = {}  # servers whose leaderboard was read: every member, ordered
        self._board_loads: dict[int, asyncio.Task[GuildBoard]] = {}
        self._board_checks: dict[int, asyncio.Task[None]] = {}
        self.flushed_batches = 0
        self.events_seen = 0
        self.duplicates = 0
        self.stats = {"rows": 0, "claim_seconds": 0.0, "upsert_seconds": 0.0, "quest_seconds": 0.0,
                      "flush_seconds": 0.0, "keys_skipped": 0}

    # ------------------------------------------------------------------------------------- events

    async def message(self, guild_id: int, user_id: int, *, message_id: int | None = None,
                      channel_id: int | None = None, parent_channel_id: int | None = None,
                      role_ids: Iterable[int] = (), username: str | None = None, now: datetime | None = None) -> int:
        """Score one message; returns the XP it earned (0 on cooldown, in a no-XP place, or already seen).
        With ``message_id`` the message counts once across processes, at the time Discord created it."""
        ts = now.timestamp() if now else (snowflake_time(message_id) if message_id else time.time())
        return await self._event(MESSAGE, guild_id, user_id, channel_id, parent_channel_id, role_ids, ts,
                                 message_id, username)

    async def reaction(self, guild_id: int, user_id: int, *, message_id: int | None = None, emoji: str | None = None,
                       channel_id: int | None = None, parent_channel_id: int | None = None,
                       role_ids: Iterable[int] = (), now: datetime | None = None) -> int:
        ts = now.timestamp() if now else time.time()
        key = event_key("reaction", message_id, user_id, emoji) if message_id is not None else None
        return await self._event(REACTION, guild_id, user_id, channel_id, parent_channel_id, role_ids, ts, key, None)

    async def command(self, guild_id: int, user_id: int, *, interaction_id: int | None = None,
                      channel_id: int | None = None, parent_channel_id: int | None = None,
                      role_ids: Iterable[int] = (), now: datetime | None = None) -> int:
        ts = now.timestamp() if now else (snowflake_time(interaction_id) if interaction_id else time.time())
        return await self._event(COMMAND, guild_id, user_id, channel_id, parent_channel_id, role_ids, ts,
                                 interaction_id, None)

    async def voice(self, guild_id: int, user_id: int, seconds: int, *, channel_id: int | None = None,
                    parent_channel_id: int | None = None, role_ids: Iterable[int] = (),
                    start: datetime | None = None) -> int:
        """Credit ``seconds`` of eligible voice time. With ``start`` (when the stretch began) the time is
        identified per member and clock minute, so two processes tracking the same member credit it once."""
        if seconds <= 0:
            return 0
        g = await self._guild(guild_id)
        ctx = rules.ActivityContext(channel_id, parent_channel_id, frozenset(role_ids))
        blocked = rules.xp_blocked(g.settings, ctx)
        factor = 0.0 if blocked else rules.multiplier(g.settings, ctx)
        rate = g.settings.voice_xp_per_minute
        m = self._member(guild_id, user_id, time.time() if start is None else start.timestamp() + seconds)
        pieces = [(None, seconds)] if start is None else _cells(start.timestamp(), seconds)
        earned = 0
        for cell, secs in pieces:
            if cell is None:
                xp = rules.apply_multiplier(rate * secs // 60, factor)
            else:  # XP of the member's voice time so far: crediting it second by second loses no fraction
                before = m.v_seconds
                xp = max(0, rules.apply_multiplier(rate * (before + secs) // 60, factor)
                         - rules.apply_multiplier(rate * before // 60, factor))
                m.v_seconds = before + secs
            earned += xp
            m.p_xp += xp
            m.p_voice += secs
            if not blocked:
                m.q_voice += secs
            if cell is not None:
                key = event_key("voice", guild_id, user_id, cell)
                ev = self._events.get(key)
                if ev is None:
                    self._events[key] = _Event((guild_id, user_id), VOICE, xp, not blocked, secs, self.owner,
                                               time.time())
                else:
                    ev.xp += xp
                    ev.seconds += secs
        self._mark(guild_id, user_id, m)
        await self._after_event()
        return earned

    async def credit_voice(self, tracker: VoiceTracker,
                           roles_of: Callable[[int, int], Iterable[int]] | None = None,
                           now: datetime | None = None) -> int:
        """Credit every tracked member's eligible voice time up to ``now`` (the flush calls this through
        ``before_flush``, so voice time obeys the same window as messages); returns the XP earned."""
        earned = 0
        for guild_id, user_id, channel_id, start, seconds in tracker.checkpoint_intervals(now):
            roles = roles_of(guild_id, user_id) if roles_of else ()
            earned += await self.voice(guild_id, user_id, seconds, channel_id=channel_id, role_ids=roles, start=start)
        return earned

    async def _event(  # noqa: PLR0917 - the hot path: positional on purpose, one function
            self, source: int, guild_id: int, user_id: int, channel_id: int | None,
                     parent_channel_id: int | None, role_ids: Iterable[int], ts: float, key: int | None,
                     username: str | None) -> int:
        g = self._guilds.get(guild_id)
        if g is None or g.epoch != self.service.cache.epoch or not g.seeded:
            g = await self._guild(guild_id)
            if source == MESSAGE and not g.seeded:
                await self._seed(g, guild_id, ts)
        if key is not None and (key in self._events or key in self._inflight_events):
            self.duplicates += 1  # delivered twice to this process
            return 0
        settings = g.settings
        ctx = None
        if not g.plain:
            ctx = rules.ActivityContext(channel_id, parent_channel_id, frozenset(role_ids))
            if rules.xp_blocked(settings, ctx):
                return 0
        self.events_seen += 1
        mkey = (guild_id, user_id)
        m = self._members.get(mkey)
        if m is None:
            m = self._members[mkey] = _Member(ts)
        elif ts > m.touched:
            if ts - m.touched >= LRU_GRAIN:  # the map's order is least recently active first, to the second
                self._members.move_to_end(mkey)
            m.touched = ts
        if ts > self._clock:  # noqa: PLR1730
            self._clock = ts
        if source == MESSAGE:
            last = m.last_msg
        elif source == REACTION:
            last = m.last_react
        else:
            last = m.last_cmd
        cooldown = g.cooldowns[source]
        counted = last is None or cooldown <= 0 or ts - last >= cooldown
        xp = 0
        if counted:
            factor = settings.xp_rate if ctx is None else rules.multiplier(settings, ctx)
            xp = rules.apply_multiplier(rules.base_award(settings, _SOURCE[source], self.rng), max(0.0, factor))
        if source == MESSAGE:
            m.p_total_messages += 1
            if counted:
                m.last_msg = ts
                m.p_messages += 1
                m.q_messages += 1
                if m.p_last_msg is None or ts > m.p_last_msg:
                    m.p_last_msg = ts
            if username:
                m.username = username
        elif source == REACTION:
            m.p_reactions += 1
            if counted:
                m.last_react = ts
                m.q_reactions += 1
        else:
            m.p_commands += 1
            if counted:
                m.last_cmd = ts
                m.q_commands += 1
        m.p_xp += xp
        if key is not None:
            self._events[key] = _Event(mkey, source, xp, counted, 0, None, time.time())
        pending = self._pending
        pending[mkey] = m
        if self._boards:
            self._on_board(guild_id, user_id)
        if self.flush_seconds <= 0:
            if not self._flushing:
                await self.flush()  # write-through
        elif len(pending) >= self.max_pending:
            self._wake.set()
            if len(pending) >= BACKPRESSURE * self.max_pending and self._task is not None:
                # Events arrive faster than the database stores them: wait for the flush in progress, so memory
                # and what a crash could lose stay bounded.
                async with self._flush_lock:
                    pass
        return xp

    def _on_board(self, guild_id: int, user_id: int) -> None:
        board = self._boards.get(guild_id)
        if board is not None:
            board.set_total(user_id, board.base.get(user_id, 0) + self._pending_xp(guild_id, user_id))

    def _mark(self, guild_id: int, user_id: int, m: _Member) -> None:
        self._pending[(guild_id, user_id)] = m
        if self._boards:
            self._on_board(guild_id, user_id)

    async def _after_event(self) -> None:
        if self.flush_seconds <= 0 and not self._flushing:
            await self.flush()  # write-through
            return
        if len(self._pending) >= self.max_pending:
            self._wake.set()

    @staticmethod
    def _boosted(m: _Member, xp: int) -> int:
        if m.boost != 1.0 and m.boost_until > time.time():
            return rules.apply_multiplier(xp, m.boost)
        return xp

    async def _guild(self, guild_id: int) -> _Guild:
        """The server's rules. Events reuse them until the service's cache sees a change (its epoch moves); each
        flush also takes in copies reloaded after their TTL (a change made by another process)."""
        cache = self.service.cache
        epoch = cache.epoch
        cfg = cache.get(("config", guild_id)) or await self.service.get_server_config(guild_id)
        g = self._guilds.get(guild_id)
        if g is None:
            g = self._guilds[guild_id] = _Guild(cfg)
        elif g.cfg is not cfg:
            g.configure(cfg)
        g.epoch = epoch
        return g

    async def preload(self, guild_ids: Iterable[int]) -> None:
        """Warm the servers the bot is in (at READY): config, quests and achievements, and the stored message
        cooldowns of members still inside them, in a few queries for all servers instead of several per server."""
        ids = sorted(set(guild_ids))
        if not ids:
            return
        await self.service.warm(ids)
        guilds = {g: await self._guild(g) for g in ids}
        longest = max(g.settings.cooldown("message") for g in guilds.values())
        now = time.time()
        since = datetime.fromtimestamp(now - longest, UTC)
        for (guild_id, user_id), when in (await self.service.recent_message_times_in(ids, since)).items():
            if when is not None and when.timestamp() > now - guilds[guild_id].settings.cooldown("message"):
                m = self._member(guild_id, user_id, when.timestamp())
                if m.last_msg is None or when.timestamp() > m.last_msg:
                    m.last_msg = when.timestamp()
        for g in guilds.values():
            g.seeded = True

    async def _seed(self, g: _Guild, guild_id: int, ts: float) -> None:
        """After a restart the stored last XP messages restart the cooldowns, so none is granted twice: one query
        per server, for the members still inside the cooldown."""
        g.seeded = True
        since = datetime.fromtimestamp(ts, UTC) - timedelta(seconds=g.settings.cooldown("message"))
        for uid, when in (await self.service.recent_message_times(guild_id, since)).items():
            m = self._member(guild_id, uid, ts)
            if when is not None and (m.last_msg is None or when.timestamp() > m.last_msg):
                m.last_msg = when.timestamp()

    def _member(self, guild_id: int, user_id: int, ts: float) -> _Member:
        key = (guild_id, user_id)
        m = self._members.get(key)
        if m is None:
            m = self._members[key] = _Member(ts)
        else:
            self._members.move_to_end(key)
            m.touched = max(m.touched, ts)
        self._clock = max(self._clock, ts)
        return m

    @property
    def pending_members(self) -> int:
        return len(self._pending)

    # -------------------------------------------------------------------------------------- flush

    async def flush(self) -> list[ActivityResult]:
        """Write everything pending in one transaction, then announce what it made durable (``on_outcome``, after
        the write lock is released). A failed flush keeps its batch for the next one."""
        outcomes = await self._flush_locked()
        await self._deliver(outcomes)
        return outcomes

    async def _flush_locked(self) -> list[ActivityResult]:
        async with self._flush_lock:
            self._flushing = True
            try:
                if self.before_flush is not None:
                    try:
                        await self.before_flush()
                    except Exception:
                        log.exception("collecting activity before a flush failed")
                started = time.perf_counter()
                try:
                    with collector_paused():  # the batch's objects are freed at its end (guildkeep.runtime)
                        return await self._flush_pending()
                finally:
                    self.stats["flush_seconds"] += time.perf_counter() - started
            finally:
                self._flushing = False

    async def _deliver(self, outcomes: Iterable[ActivityResult]) -> None:
        if self.on_outcome is None:
            return
        for outcome in outcomes:
            if outcome.level_changes or outcome.quests_completed or outcome.achievements_earned:
                try:
                    await self.on_outcome(outcome)
                except Exception:
                    log.exception("level-up/quest notification failed for guild %s", outcome.guild_id)

    def _hand_over(self, outcomes: list[ActivityResult]) -> None:
        """The background flush hands its announcements to their own task: level roles and messages to Discord
        (slow, rate-limited requests) never hold up the next flush."""
        if self.on_outcome is None or not any(
                o.level_changes or o.quests_completed or o.achievements_earned for o in outcomes):
            return
        self._announce.extend(outcomes)
        if self._announcer is None or self._announcer.done():
            self._announcer = asyncio.get_running_loop().create_task(self._announce_all(), name="leveling-announce")

    async def _announce_all(self) -> None:
        while self._announce:
            await self._deliver([self._announce.popleft()])

    async def _flush_pending(self) -> list[ActivityResult]:
        if not self._pending:
            await self._maybe_prune()
            self._evict()
            return []
        members, self._pending = self._pending, {}
        events, self._events = self._events, {}
        batch = {}
        for key, m in members.items():
            batch[key] = m.snapshot()
            m.clear()
        self._inflight, self._inflight_events = batch, events
        try:
            try:
                outcomes, stored, estimated = await self._write(batch, events)
                self._inflight, self._inflight_events = {}, {}
                if self._boards:
                    self._settle_boards(stored, estimated)
            except BaseException as exc:  # rolled back (cancelled too): the batch goes back, nothing is lost
                if not isinstance(exc, Exception):
                    self._restore(batch, events)
                    raise
                log.exception("could not store activity of %d members; keeping it for the next flush", len(batch))
                self._restore(batch, events)
                return []
        finally:
            self._inflight, self._inflight_events = {}, {}

        self.flushed_batches += 1
        now_mono = time.monotonic()
        for key, gain in estimated:
            held = self._members.get(key)
            if held is not None and held.xp is not None:
                held.xp = min(held.xp + self._boosted(held, gain), rules.MAX_XP)
        for i, ((guild_id, _), row, level) in enumerate(stored):
            if not i % 2000:
                await asyncio.sleep(0)  # a large flush's bookkeeping lets reads in between
            member = row.row.member if row.row is not None else None
            if member is None:
                continue
            if member.xp is not None and row.xp < member.xp and member.achievements:
                member.achievements = None  # the member was reset meanwhile
            member.xp, member.level, member.synced = row.xp, level, now_mono
            levels = self._guilds[guild_id].levels
            member.next_at = levels[level + 1] if level + 1 < len(levels) else rules.MAX_XP
            member.boost = row.xp_multiplier
            member.boost_until = row.multiplier_expires_at.timestamp() if row.multiplier_expires_at else 0.0
        await self._maybe_prune()
        self._evict()
        return outcomes

    def _settle_boards(self, stored: list[tuple[tuple[int, int], StoredLevel, int]],
                       estimated: list[tuple[tuple[int, int], int]]) -> None:
        """Right after a flush (no await in between): what the database now holds becomes each flushed member's
        stored XP on the loaded leaderboards; what arrived during the flush stays on top."""
        boards = self._boards
        for (g, u), row, _level in stored:
            board = boards.get(g)
            if board is not None:
                board.set_base(u, row.xp, self._pending_xp(g, u))
        for (g, u), gain in estimated:
            board = boards.get(g)
            if board is not None:
                m = self._members.get((g, u))
                board.set_base(u, min(board.base.get(u, 0) + (self._boosted(m, gain) if m else gain), rules.MAX_XP),
                               self._pending_xp(g, u))

    def _restore(self, batch: dict[tuple[int, int], _Pending], events: dict[int, _Event]) -> None:
        for key, p in batch.items():
            m = self._members.get(key) or self._member(*key, self._clock)
            m.restore(p)
            self._mark(key[0], key[1], m)
        for k, ev in events.items():
            mine = self._events.get(k)
            if mine is None:
                self._events[k] = ev
            else:  # a voice interval credited again meanwhile
                mine.xp += ev.xp
                mine.seconds += ev.seconds

    async def _write(self, batch: dict[tuple[int, int], _Pending], events: dict[int, _Event]) -> tuple[
            list[ActivityResult], list[tuple[tuple[int, int], StoredLevel, int]], list[tuple[tuple[int, int], int]]]:
        """The flush's one transaction. Nothing in memory changes here, so a failure can simply be retried."""
        svc = self.service
        now = utcnow()
        guild_ids = sorted({g for g, _ in batch})
        await svc.warm(guild_ids)  # one query per kind for the servers whose cached copies expired
        quests = {g: await svc.get_guild_active_quests(g) for g in guild_ids}
        achievements = {g: await svc.list_achievements(g) for g in guild_ids}
        for g in guild_ids:
            self._guilds[g].quests, self._guilds[g].achievements = quests[g], achievements[g]
        async with svc.db.session() as s, contextlib.AsyncExitStack() as in_flight:
            writer = await BulkWriter.open(s, svc.db.backend)
            rows = dict(batch)  # copied member by member below, only where an event is taken back
            t = time.perf_counter()
            new_guilds = [g for g in guild_ids if not self._guilds[g].known]
            if new_guilds:
                await s.execute(insert_for(s, Guild).on_conflict_do_nothing(index_elements=["id"]),
                                [{"id": g, "name": ""} for g in new_guilds])
            claiming: asyncio.Future[set[int]] | None = None
            shared = await self._shared_events(s, events)
            if shared:
                self._stamp = max(self._stamp + 1, time.time_ns() // 1000)
                claiming = asyncio.ensure_future(
                    writer.claim_events([(k, ev.owner) for k, ev in shared.items()], self._stamp))
                in_flight.push_async_callback(_settle_task, claiming)
                await asyncio.sleep(0)
            periods = {g: (p.get("daily"), p.get("weekly"))
                       for g, p in ((g, rules.current_periods(quests[g])) for g in guild_ids)}

            async def rows_of(pending: dict[tuple[int, int], _Pending]) -> list[LevelRow]:
                """The level rows, in key order (one lock order for every process; what is derived from them keeps
                it, so the statements' own sorts find their input sorted): grouped by server, each server's members
                sorted by id (integers sort several times faster than (guild, user) pairs)."""
                by_server: dict[int, list[tuple[int, _Pending]]] = {}
                for (g, u), p in pending.items():
                    if p.xp or p.total_messages or p.reactions or p.commands or p.voice:
                        members = by_server.get(g)
                        if members is None:
                            by_server[g] = [(u, p)]
                        else:
                            members.append((u, p))
                out = []
                since = 0
                for g in sorted(by_server):
                    members = by_server[g]
                    members.sort(key=_FIRST)
                    daily, weekly = periods[g]
                    for u, p in members:
                        out.append(LevelRow(g, u, p.xp, p.messages, p.total_messages, p.reactions, p.commands,
                                            p.voice, p.last_msg, daily, weekly, p.q_messages, p.q_reactions,
                                            p.q_voice, p.q_commands, member=p.member))
                    since += len(members)
                    if since > YIELD_EVERY:
                        since = 0
                        await asyncio.sleep(0)  # the claim's statements go on meanwhile
                return out

            level_rows = await rows_of(rows)  # built while the event keys are claimed
            if claiming is not None:
                taken = await claiming
                if taken:  # events another process counted already come off their members' rows
                    copied = set()
                    for k in taken:
                        member = events[k].member
                        if member not in copied:
                            rows[member] = replace(rows[member])
                            copied.add(member)
                        _take_back(rows[member], events[k])
                    self.duplicates += len(taken)
                    level_rows = await rows_of(rows)
            self.stats["claim_seconds"] += time.perf_counter() - t
            # Achievements this flush's own activity meets are granted before the level write, so their XP goes into
            # it (one new version of each member's row per flush, not two); the rest are checked on the totals.
            early = await self._met_by_activity(level_rows, achievements)
            defs_by_id = {a.id: a for g in guild_ids for a in achievements[g]}
            rewards: dict[tuple[int, int], int] = {}
            early_granted: list[tuple[int, int, int]] = []
            early_held: set[tuple[int, int, int]] = set()  # early grants the members turned out to hold already
            t2 = time.perf_counter()
            mono = time.monotonic()

            def read_back(r: LevelRow) -> bool:
                """Whose totals SQLite reads: members not known, not synced for a while, in servers with quests or
                achievements, or who may reach a level. The others' totals are the last read plus what was added
                (exact with one process; re-read at least every ``SYNC_SECONDS``)."""
                m = self._members.get((r.guild_id, r.user_id))
                if m is None or m.xp is None or mono - m.synced > SYNC_SECONDS:
                    return True
                gs = self._guilds[r.guild_id]
                return bool(gs.quests or gs.achievements) or m.xp + self._boosted(m, r.xp) >= m.next_at

            # Each member's totals, as they come back, are checked at once against its server's quests and achievements
            # (`take`): PostgreSQL's level write hands over each chunk's rows while the next chunk runs.
            by_guild: dict[int, dict[int, StoredLevel]] = {}
            by_key: dict[tuple[int, int], LevelRow] = {}  # rows of members inserted (whose totals do not say)
            # The server's generated daily and weekly quests read their progress from the period counters the level
            # upsert just moved: only a member whose counter crossed a requirement in this flush is written (each
            # quest completes once: the statement skips a row already completed). Custom quests keep a row each.
            quest_rows: list[tuple[int, int, int, int, int, datetime | None, int]] = []
            period_rows: list[tuple[int, int, int, int, int, datetime | None]] = []
            quest_at: dict[int, tuple[int, QuestInfo]] = {}
            plans: dict[int, tuple[list[tuple[Any, ...]], frozenset[int], list[tuple[int, str, int]]]] = {}
            wanted_achievements: list[tuple[int, int, int]] = []
            met_by: dict[tuple[int, int], set[int]] = {}  # achievements met or granted early, by member
            learned: list[tuple[_Member | None, set[int]]] = []  # what members hold, known once this commits

            def note_early(entries: Iterable[tuple[int, int, int]]) -> None:
                """Early grants made or found held: what the check after the write takes as held."""
                for g, u, aid in entries:
                    met_by.setdefault((g, u), set()).add(aid)

            def plan_of(g: int) -> tuple[list[tuple[Any, ...]], frozenset[int], list[tuple[int, str, int]]]:
                plan = []
                for index, quest in enumerate(quests[g]):
                    quest_at[quest.id] = (index, quest)
                    period: tuple[Any, ...] = (None, None, None)
                    if quest.period_start is not None and rules.counts_by_period(
                            quest.quest_type, quest.template_key, quest.period_start):
                        period = (f"{quest.quest_type}_period", rules.period_key(quest.period_start),
                                  rules.period_column(quest.quest_type, quest.requirement_type))
                    plan.append((quest, _ROW_QUEST_FIELD[quest.requirement_type], quest.requirement_type,
                                 quest.requirement_value, *period))
                defs = achievements[g]
                checks = [(a.id, rules.ACHIEVEMENT_STAT[a.requirement_type], a.requirement_value) for a in defs]
                plans[g] = out = (plan, frozenset(a.id for a in defs), checks)
                return out

            def check(g: int, u: int, r: StoredLevel, every: frozenset[int], checks: list[tuple[int, str, int]]
                      ) -> None:
                """The achievements the member meets on its totals (with the rewards known so far) and is not known
                to hold: to grant."""
                m = r.row.member if r.row is not None else None
                held = m.achievements if m is not None else None
                granted = met_by.get((g, u))
                if granted:
                    held = granted if held is None else held | granted
                if held is not None and held >= every:
                    if granted:
                        learned.append((m, granted))
                    return  # holds them all already (the common case once a member was seen)
                met = set()
                for aid, stat, need in checks:
                    have = (self._guilds[g].level(r.xp + (rewards.get((g, u), 0) if rewards else 0)) if stat == "level"
                            else getattr(r, stat))
                    if have >= need:
                        met.add(aid)
                if met:
                    wanted_achievements.extend((g, u, a) for a in met - (held or set()))
                    met_by[(g, u)] = met = met | (granted or set())
                    learned.append((m, met))
                elif granted:
                    learned.append((m, granted))

            async def take(returned: list[StoredLevel]) -> None:
                """Quest progress and achievements met, for members whose totals came back."""
                for i, r in enumerate(returned):
                    if not i % YIELD_EVERY and i:
                        await asyncio.sleep(0)
                    g, u = r.guild_id, r.user_id
                    members = by_guild.get(g)
                    if members is None:
                        members = by_guild[g] = {}
                    members[u] = r
                    added = r.row  # what the member's flush added
                    if added is None:  # (a statement that does not say which row)
                        added = r.row = by_key[(g, u)]
                    plan, every, checks = plans.get(g) or plan_of(g)
                    if plan:
                        for quest, name, stat, need, marker, key, column in plan:
                            inc = getattr(added, name)
                            if inc <= 0:
                                continue
                            if marker is None:
                                quest_rows.append((g, u, quest.id, getattr(r, stat), inc, quest.expires_at, need))
                            elif getattr(r, marker) == key:
                                value = getattr(r, column)
                                if value - inc < need <= value:
                                    period_rows.append((g, u, quest.id, getattr(r, stat), need, quest.expires_at))
                    if checks:
                        check(g, u, r, every, checks)

            upserting: asyncio.Future[list[StoredLevel]] | None = None
            if svc.db.backend == "postgresql":
                if early:
                    early_granted = await writer.grant_achievements(early, now, known_users=True)
                    early_held = set(early).difference(early_granted)  # or the member has no user row yet
                    note_early(itertools.chain(early_granted, early_held))
                    bonus: dict[tuple[int, int], int] = {}
                    for g, u, aid in early_granted:
                        bonus[(g, u)] = bonus.get((g, u), 0) + defs_by_id[aid].reward_xp
                    if bonus:
                        for lr in level_rows:
                            lr.bonus = bonus.get((lr.guild_id, lr.user_id), 0)
                # Members with a row are updated in place (no user row to ensure); the others are inserted (an
                # upsert, still additive if another process inserted them meanwhile). The servers on the flush's
                # most common curve get their levels in the same statement.
                curves: dict[int, list[Any]] = {}  # by identity: a curve's table is one shared tuple
                for g in guild_ids:
                    levels = self._guilds[g].levels
                    curves.setdefault(id(levels), [levels, 0])[1] += 1
                thresholds = max(curves.values(), key=lambda c: c[1])[0] if curves else ()
                on_curve = {g for g in guild_ids if self._guilds[g].levels is thresholds}
                stored = await writer.update_levels(level_rows, now, thresholds, on_curve, take) if level_rows else []
                missing = []
                if len(stored) < len(level_rows):  # one row back per member found
                    found = {(r.guild_id, r.user_id) for r in stored}
                    missing = [r for r in level_rows if (r.guild_id, r.user_id) not in found]
                    early_held = {e for e in early_held if (e[0], e[1]) in found}  # a level row: a user row
                    for lr in missing:  # what was tried early for them: held only where granted
                        met_by.pop((lr.guild_id, lr.user_id), None)
                    note_early(e for e in early_granted if (e[0], e[1]) not in found)
                for lr in missing:
                    if lr.bonus:  # the upsert leaves the bonus out: added with the other rewards
                        rewards[(lr.guild_id, lr.user_id)] = rewards.get((lr.guild_id, lr.user_id), 0) + lr.bonus
                if missing:
                    await writer.ensure_users(sorted({r.user_id: (rows[(r.guild_id, r.user_id)].username or "")[:255]
                                                      for r in missing}.items()), now)
                    inserted = await writer.upsert_levels(missing, now)
                    by_key.update(((r.guild_id, r.user_id), r) for r in missing)
                    await take(inserted)
                    stored += inserted
            else:
                # SQLite has one writer at a time and this flush holds the lock: the totals read before the
                # upsert plus what it adds are exactly what RETURNING would give, and only members without a row
                # need their user row ensured.
                # Statements run on the connection's own thread while this one goes on: the upsert's parameters
                # are built while the totals are read, and the totals, quests and achievements are worked out
                # while the upsert runs (their statements queue behind it; it is awaited before the level updates).
                reads_all = {g for g in guild_ids if self._guilds[g].quests or self._guilds[g].achievements}
                wanted = [r for r in level_rows if r.guild_id in reads_all or read_back(r)]
                reading = asyncio.ensure_future(writer.read_levels([(r.guild_id, r.user_id) for r in wanted]))
                in_flight.push_async_callback(_settle_task, reading)
                await asyncio.sleep(0)
                if not early:
                    payloads = await writer.sqlite_payloads(level_rows)
                before = await reading
                new_users = {r.user_id: (rows[(r.guild_id, r.user_id)].username or "")[:255]
                             for r in wanted if (r.guild_id, r.user_id) not in before}
                if new_users:
                    await writer.ensure_users(sorted(new_users.items()), now)
                if early:
                    # The early grants run on the connection's thread while the rows of the other members are
                    # encoded; then the rewards of what was granted go into their members' rows, where no quest boost
                    # applies (the boost never multiplies a reward; the others get theirs with the later rewards).
                    # Every user row exists by now, so an achievement not granted is one the member holds.
                    granting = asyncio.ensure_future(writer.grant_achievements(early, now, known_users=True))
                    in_flight.push_async_callback(_settle_task, granting)
                    await asyncio.sleep(0)
                    earning = {(g, u) for g, u, _ in early}
                    payloads = await writer.sqlite_payloads(
                        [lr for lr in level_rows if (lr.guild_id, lr.user_id) not in earning])
                    early_granted = await granting
                    early_held = set(early).difference(early_granted)
                    note_early(itertools.chain(early_granted, early_held))
                    fold: dict[tuple[int, int], int] = {}
                    for g, u, aid in early_granted:
                        had = before.get((g, u))
                        into = fold if had is None or not _boost_active(had, now) else rewards
                        into[(g, u)] = into.get((g, u), 0) + defs_by_id[aid].reward_xp
                    earners = [lr for lr in level_rows if (lr.guild_id, lr.user_id) in earning]
                    for lr in earners:
                        lr.xp += fold.get((lr.guild_id, lr.user_id), 0)
                    payloads += await writer.sqlite_payloads(earners)
                if level_rows:
                    upserting = asyncio.ensure_future(writer.upsert_levels(level_rows, now, _never, payloads))
                    in_flight.push_async_callback(_settle_task, upserting)  # never left running past the session
                    await asyncio.sleep(0)
                stored = []
                for i, row in enumerate(wanted):
                    stored.append(_added(before.get((row.guild_id, row.user_id)), row, now))
                    if not i % YIELD_EVERY:
                        await asyncio.sleep(0)
                await take(stored)
            self.stats["upsert_seconds"] += time.perf_counter() - t2
            self.stats["rows"] += len(level_rows)
            estimated = []
            if len(stored) < len(level_rows):  # members whose totals were not read (SQLite)
                returned = {(r.guild_id, r.user_id) for r in stored}
                estimated = [((r.guild_id, r.user_id), r.xp) for r in level_rows
                             if (r.guild_id, r.user_id) not in returned]
            final: list[tuple[tuple[int, int], StoredLevel, int]] = []
            changes = []
            # Quests and achievements of every server in a few statements for the whole flush (never one per
            # server or member): progress added and completions found in one statement each, achievements met
            # inserted in one (a row already there is a no-op, so each is earned once).
            by_id = {g: ActivityResult(g) for g in sorted(by_guild)}
            boosts: dict[tuple[int, int], tuple[float, datetime]] = {}
            t3 = time.perf_counter()
            done = await writer.advance_quests(quest_rows, now) if quest_rows else []
            if period_rows:
                done += await writer.complete_period_quests(period_rows, now)
            if done:
                for g, u, qid in sorted(done, key=lambda d: (d[0], quest_at[d[2]][0], d[1])):
                    quest = quest_at[qid][1]
                    by_id[g].quests_completed.append((u, quest))
                    rewards[(g, u)] = rewards.get((g, u), 0) + quest.reward_xp
                    if quest.reward_multiplier > 1 and quest.multiplier_minutes > 0:
                        boosts[(g, u)] = (quest.reward_multiplier, now + timedelta(minutes=quest.multiplier_minutes))
                for g, u in sorted({(g, u) for g, u, _ in done}):  # a quest's reward may reach a level achievement
                    _plan, every, checks = plans[g]
                    if checks:
                        check(g, u, by_guild[g][u], every, checks)
            earned = list(early_granted)
            if wanted_achievements:
                later = await writer.grant_achievements(wanted_achievements, now)
                for g, u, aid in later:
                    rewards[(g, u)] = rewards.get((g, u), 0) + defs_by_id[aid].reward_xp
                earned += later
            earned_views: dict[int, AchievementInfo] = {}
            for g, u, aid in sorted(earned):
                view = earned_views.get(aid)
                if view is None:
                    view = earned_views[aid] = replace(defs_by_id[aid], earned_at=now)
                if g not in by_id:
                    by_id[g] = ActivityResult(g)
                by_id[g].achievements_earned.append((u, view))
            self.stats["quest_seconds"] += time.perf_counter() - t3
            if upserting is not None:
                await upserting  # before anything else changes the level rows
            for (g, u), (value, until) in sorted(boosts.items()):
                await s.execute(update(Level).where(Level.guild_id == g, Level.user_id == u)
                                .values(xp_multiplier=value, multiplier_expires_at=until))
                r = by_guild[g][u]
                r.xp_multiplier, r.multiplier_expires_at = value, until
            settle: list[tuple[int, int, int, int, int]] = []  # rewards and level changes: one statement
            moved: set[tuple[int, int]] = set()  # levels the level write moved already
            for g, members in sorted(by_guild.items()):
                gs = self._guilds[g]
                for u, r in members.items():
                    gain = rewards.get((g, u), 0) if rewards else 0
                    total = min(r.xp + gain, rules.MAX_XP)
                    level = gs.level(total)
                    start = r.level if r.level_before is None else r.level_before
                    if level != start:
                        changes.append((g, u, start, level))
                        if level == r.level:
                            moved.add((g, u))
                    if gain or level != r.level:
                        settle.append((g, u, gain, r.level, level))
                    r.xp = total
                    final.append(((g, u), r, level))
            outcomes = list(by_id.values())
            won = await writer.settle_levels(settle) if settle else set()
            for g, u, old, new in changes:
                if (g, u) in won or (g, u) in moved:
                    by_id[g].level_changes.append(LevelChangeResult(u, old, new, by_guild[g][u].xp))
        for g in guild_ids:
            self._guilds[g].known = True
        for m, holds in learned:  # once committed: a rolled-back grant is not held
            if m is not None:  # what the member holds now, met or granted (a cache only)
                m.achievements = holds if m.achievements is None else m.achievements | holds
        return outcomes, final, estimated

    async def _met_by_activity(self, level_rows: list[LevelRow], achievements: dict[int, list[AchievementInfo]]
                               ) -> list[tuple[int, int, int]]:
        """(guild, user, achievement) a member meets by this flush's own activity and is not known to hold: a count
        its increment alone reaches is met whatever was stored, since the level write adds the increment in this
        transaction and counts only grow by it (a reset meanwhile leaves at least the increment). Level
        requirements depend on the totals and are checked after the write."""
        out: list[tuple[int, int, int]] = []
        checks_of: dict[int, list[tuple[int, str, int]]] = {}
        for i, r in enumerate(level_rows):
            if not i % YIELD_EVERY:
                await asyncio.sleep(0)
            g = r.guild_id
            checks = checks_of.get(g)
            if checks is None:
                checks = checks_of[g] = sorted((a.id, rules.ACHIEVEMENT_STAT[a.requirement_type], a.requirement_value)
                                               for a in achievements.get(g, ()) if a.requirement_type != "level")
            if not checks:
                continue
            m = r.member
            held = m.achievements if m is not None else None
            for aid, stat, need in checks:
                if getattr(r, stat) >= need and (held is None or aid not in held):
                    out.append((g, r.user_id, aid))
        return out

    async def _shared_events(self, s: AsyncSession, events: dict[int, _Event]) -> dict[int, _Event]:
        """The events whose keys this flush claims: all of them, or with ``instance_id`` those received while
        another instance was running (its heartbeat fresh), when the same events may have reached it.

        Another bot process receives events only from the moment its gateway session starts, which is after its
        heartbeat row is written; this flush reads the rows after it received every event it holds. So an event
        both receive is received by this process after the other's row exists, and its key is claimed here as
        well as there. An instance that stops or dies is waited for ``FRESH_SECONDS`` after its last heartbeat:
        events it may have counted are still checked against its keys.
        """
        if not events or self.instance_id is None:
            return events
        latest = (await s.execute(select(func.max(BotInstance.heartbeat_at))
                                  .where(BotInstance.id != self.instance_id))).scalar_one_or_none()
        if latest is not None:
            self._shared_until = max(self._shared_until, latest.timestamp() + FRESH_SECONDS)
        until = self._shared_until
        shared = {k: ev for k, ev in events.items() if ev.at <= until} if until else {}
        self.stats["keys_skipped"] += len(events) - len(shared)
        return shared

    async def _maybe_prune(self) -> None:
        wall = time.monotonic()
        if wall - self._last_prune < PRUNE_EVERY:
            return
        self._last_prune = wall
        try:
            async with self.service.db.session() as s:
                writer = await BulkWriter.open(s, self.service.db.backend)
                await writer.prune_events((int(time.time()) - SEEN_EVENTS_TTL) * 1_000_000)
        except Exception:
            log.exception("could not prune old activity event keys")

    def _evict_boards(self) -> None:
        now = time.monotonic()
        for guild_id in [g for g, b in self._boards.items() if now - b.used_at > BOARD_IDLE_SECONDS]:
            del self._boards[guild_id]

    def _evict(self) -> None:
        """Members idle for ``idle_seconds`` (and past every cooldown of their server) leave memory; beyond
        ``max_members``, the least recently active past their cooldowns leave first."""
        if self._boards:
            self._evict_boards()
        members = self._members
        while members:
            key, m = next(iter(members.items()))
            idle = self._clock - m.touched
            if key in self._pending or key in self._inflight:
                break
            g = self._guilds.get(key[0])
            longest = max(g.settings.cooldowns.values(), default=60) if g else 60
            if idle < longest or (idle < self.idle_seconds and len(members) <= self.max_members):
                break
            del members[key]

    @property
    def members_held(self) -> int:
        return len(self._members)

    def bytes_per_member(self) -> int:
        """Approximate memory held per member: its state object and its entry in the LRU map."""
        sample = _Member(0.0)
        key = (2**62, 2**62)
        return sys.getsizeof(sample) + sys.getsizeof(key) + 2 * sys.getsizeof(2**62) + 100  # ~dict entry

    async def _loop(self) -> None:
        # Flushes start every ``flush_seconds`` (not that long after the previous one ended), so the window is the
        # whole configured bound and no more: the most coalescing the bound allows. Level-ups are announced by the
        # flush of their window; only too much pending activity (``max_pending``) starts one early.
        loop = asyncio.get_running_loop()
        last = loop.time()
        while not self._stopping:
            delay = last + max(self.flush_seconds, 0.05) - loop.time()
            if delay > 0:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(delay):  # (wait_for can swallow a cancel that races the wake-up)
                        await self._wake.wait()
            if self._stopping:
                return
            self._wake.clear()
            last = loop.time()
            # `stop` cancels the loop, never a flush half-way: it takes over the flush running here (and announces
            # what it stored).
            self._running = asyncio.ensure_future(self._flush_locked())
            try:
                outcomes = await asyncio.shield(self._running)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("write-behind flush failed")
                continue
            finally:
                if self._running is not None and self._running.done():
                    self._running = None
            self._hand_over(outcomes)

    def start(self) -> None:
        self._stopping = False
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._loop(), name="leveling-write-behind")

    async def stop(self) -> None:
        """Stop the loop and write what is pending (a clean stop loses nothing)."""
        if self._task is not None:
            self._stopping = True
            self._wake.set()
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        running, self._running = self._running, None
        if running is not None:  # the background flush the stop interrupted: what it stored is announced too
            try:
                self._hand_over(await running)
            except Exception:
                log.exception("write-behind flush failed")
        await self.flush()
        if self._pending:  # the last flush failed: one more try before giving up
            await self.flush()
        if self._announcer is not None:  # what earlier flushes made durable is announced before stopping
            await self._announcer
            self._announcer = None
        for task in [*self._board_checks.values(), *self._board_loads.values()]:
            with contextlib.suppress(Exception):
                await task

    # --------------------------------------------------------------------------------------- reads

    def pending_of(self, guild_id: int, user_id: int) -> _Pending | None:
        """Activity of the member not written yet (pending and in flight), or None."""
        key = (guild_id, user_id)
        out = None
        inflight = self._inflight.get(key)
        if inflight is not None:
            out = replace(inflight)
        m = self._pending.get(key)
        if m is not None:
            mine = m.snapshot()
            if out is None:
                out = mine
            else:
                out.add(mine)
        return out

    def _pending_xp(self, guild_id: int, user_id: int) -> int:
        key = (guild_id, user_id)
        xp = 0
        inflight = self._inflight.get(key)
        if inflight is not None:
            xp += inflight.xp
        m = self._members.get(key)
        if m is None:
            return xp
        if key in self._pending:
            xp += m.p_xp
        return self._boosted(m, xp) if xp else 0

    async def user_level(self, guild_id: int, user_id: int) -> LevelInfo:
        """The member's level and totals, including activity not written yet."""
        view = await self.service.get_user_level(guild_id, user_id)
        board = self._boards.get(guild_id)
        if board is not None:
            empty = not (view.xp or view.total_messages or view.messages or view.total_reactions
                         or view.commands_used or view.voice_time_seconds)  # no row, or a row of zeros
            if not empty or board.base.get(user_id):
                self._correct(guild_id, user_id, None if empty else view.xp)
        p = self.pending_of(guild_id, user_id)
        if p is None:
            return view
        xp = min(view.xp + self._pending_xp(guild_id, user_id), rules.MAX_XP)
        curve = (await self.service.get_server_config(guild_id)).curve_rule
        level, into, span = curve.progress(xp)
        return replace(view, xp=xp, level=level, xp_into_level=into, xp_for_level=span,
                       messages=view.messages + p.messages, total_messages=view.total_messages + p.total_messages,
                       total_reactions=view.total_reactions + p.reactions,
                       commands_used=view.commands_used + p.commands,
                       voice_time_seconds=view.voice_time_seconds + p.voice)

    def _pending_members(self, guild_id: int) -> set[int]:
        out = {u for g, u in self._pending if g == guild_id}
        if self._inflight:
            out.update(u for g, u in self._inflight if g == guild_id)
        return out

    async def _board(self, guild_id: int) -> GuildBoard:
        """The server's in-memory leaderboard, loaded on its first read (one query for the server's rows) and
        rebuilt in the background every ``BOARD_RELOAD_SECONDS`` (to take in XP changed outside this process)."""
        now = time.monotonic()
        board = self._boards.get(guild_id)
        if board is not None and board.changes != self.service.xp_changes.get(guild_id, 0):
            board = None  # an admin changed XP through the service (/xp, /level set, reset, import): read again
        if board is not None:
            board.used_at = now
            if now - board.loaded_at > BOARD_RELOAD_SECONDS and guild_id not in self._board_loads:
                self._board_loads[guild_id] = asyncio.get_running_loop().create_task(self._load_board(guild_id))
            return board
        task = self._board_loads.get(guild_id)
        if task is None:
            task = self._board_loads[guild_id] = asyncio.get_running_loop().create_task(self._load_board(guild_id))
        return await asyncio.shield(task)

    async def _load_board(self, guild_id: int) -> GuildBoard:
        try:
            # Under the flush lock: no flush is half-way, so the rows read plus what is pending is every member's XP.
            async with self._flush_lock:
                changes = self.service.xp_changes.get(guild_id, 0)
                stored = await queries.guild_xp(self.service.db, guild_id)
                board = GuildBoard(stored, time.monotonic())
                board.changes = changes
                old = self._boards.get(guild_id)
                if old is not None:
                    board.names = old.names
                for u in self._pending_members(guild_id):
                    board.set_total(u, board.base.get(u, 0) + self._pending_xp(guild_id, u))
                self._boards[guild_id] = board
                return board
        finally:
            self._board_loads.pop(guild_id, None)

    def _correct(self, guild_id: int, user_id: int, stored: int | None) -> None:
        """A read of the member's stored XP (``None``: no row) that differs from the board's (an admin change, another
        process) corrects the board, unless a flush of the member is in flight (the read may predate it)."""
        board = self._boards.get(guild_id)
        if board is None or (guild_id, user_id) in self._inflight or board.base.get(user_id) == stored:
            return
        pending = self._pending_xp(guild_id, user_id)
        if stored is None and not pending:
            board.discard(user_id)
        else:
            board.set_base(user_id, stored or 0, pending)

    async def standing(self, guild_id: int, user_id: int) -> Standing:
        """What ``/rank`` shows (XP, level, progress in it, rank), activity not written yet included, from the
        server's in-memory leaderboard: no database read once the server's board is loaded."""
        board = await self._board(guild_id)
        xp = board.xp_of(user_id)
        g = self._guilds.get(guild_id)
        if g is None or g.epoch != self.service.cache.epoch:
            g = await self._guild(guild_id)
        level, into, span = g.curve.progress(xp or 0)
        return Standing(guild_id, user_id, xp or 0, level, into, span, board.rank(user_id))

    async def rank_position(self, guild_id: int, user_id: int) -> int | None:
        """1-based rank by XP including activity not written yet; None for a member with no XP row nor activity.
        Served from the server's in-memory leaderboard (one bisect)."""
        board = await self._board(guild_id)
        return board.rank(user_id)

    async def leaderboard(self, guild_id: int, page: int = 1, per_page: int = 10) -> Page[LeaderboardEntryInfo]:
        """The server's leaderboard page including activity not written yet, from the in-memory leaderboard. Names
        not known yet are read at once; every ``BOARD_CHECK_SECONDS`` the page's rows are also checked against the
        database (XP another process wrote, names changed) in the background, for the next reads."""
        per_page = max(1, min(per_page, 50))
        board = await self._board(guild_id)
        pages = max(1, -(-len(board) // per_page))
        page = max(1, min(page, pages))
        start = (page - 1) * per_page
        top = board.top(start, per_page)
        users = [u for u, _ in top]
        if any(u not in board.names for u in users):
            await self._check_rows(guild_id, board, users)
            top = board.top(start, per_page)
        elif time.monotonic() - board.checked_at >= BOARD_CHECK_SECONDS and guild_id not in self._board_checks:
            board.checked_at = time.monotonic()
            task = asyncio.get_running_loop().create_task(self._check_rows_logged(guild_id, board, users))
            self._board_checks[guild_id] = task
            task.add_done_callback(lambda _t: self._board_checks.pop(guild_id, None))
        g = self._guilds.get(guild_id)
        if g is None or g.epoch != self.service.cache.epoch:
            g = await self._guild(guild_id)
        entries = [LeaderboardEntryInfo(start + i + 1, u, board.names.get(u) or str(u), xp, g.level(xp))
                   for i, (u, xp) in enumerate(top)]
        return Page(entries, page, pages, len(board))

    async def _check_rows_logged(self, guild_id: int, board: GuildBoard, users: list[int]) -> None:
        try:
            await self._check_rows(guild_id, board, users)
        except Exception:
            log.exception("could not check the leaderboard of guild %s against the database", guild_id)

    async def _check_rows(self, guild_id: int, board: GuildBoard, users: list[int]) -> None:
        """Read the stored XP and names of ``users``: names are remembered, XP that differs corrects the board."""
        found = await queries.board_rows(self.service.db, guild_id, users)
        board.checked_at = time.monotonic()
        if len(board.names) > 10_000:
            board.names.clear()
        if self._boards.get(guild_id) is not board:
            return  # reloaded meanwhile
        for u in users:
            hit = found.get(u)
            if hit is not None:
                board.names[u] = hit[1]
            self._correct(guild_id, u, None if hit is None else hit[0])
            if u not in board.names:  # pending only, no row yet
                m = self._members.get((guild_id, u))
                board.names[u] = (m.username if m and m.username else None) or str(u)

    async def user_quests(self, guild_id: int, user_id: int) -> list[UserQuestInfo]:
        """The member's active quests with the progress not written yet (never past the requirement)."""
        mine = await self.service.get_user_active_quests(guild_id, user_id)
        p = self.pending_of(guild_id, user_id)
        if p is None:
            return mine
        out = []
        for q in mine:
            if q.completed:
                out.append(q)
                continue
            progress = min(q.quest.requirement_value, q.quest_specific_progress + p.quest(q.quest.requirement_type))
            out.append(replace(q, quest_specific_progress=progress))
        return out


@dataclass(frozen=True, slots=True)
class Standing:
    """A member's place in a server: total XP, level, XP into the level and the level's span, rank (None: no XP)."""

    guild_id: int
    user_id: int
    xp: int
    level: int
    xp_into_level: int
    xp_for_level: int
    rank: int | None


def _never(_row: LevelRow) -> bool:
    return False


async def _settle_task(task: asyncio.Future[Any]) -> None:
    """A statement task of a flush that is being left (a failure elsewhere): cancelled and waited for, so nothing
    of it runs after the transaction ends."""
    if not task.done():
        task.cancel()
    with contextlib.suppress(BaseException):
        await task


def _added(old: StoredLevel | None, r: LevelRow, now: datetime) -> StoredLevel:
    """The totals the upsert leaves: what was stored plus the row (the quest boost as the statement applies it).
    ``old`` (read for this flush only) is updated in place."""
    if old is None:
        new = StoredLevel(r.guild_id, r.user_id, r.xp, 0, r.messages, r.total_messages, r.total_reactions,
                          r.commands_used, r.voice_time_seconds, 1.0, None, row=r)
        new.add_period(r)
        return new
    old.row = r
    old.add_period(r)
    gain = r.xp
    if _boost_active(old, now):
        gain = int(r.xp * old.xp_multiplier + 0.5)
    old.xp = min(old.xp + gain, rules.MAX_XP)
    old.messages += r.messages
    old.total_messages += r.total_messages
    old.total_reactions += r.total_reactions
    old.commands_used += r.commands_used
    old.voice_time_seconds += r.voice_time_seconds
    return old


def _boost_active(level: StoredLevel, now: datetime) -> bool:
    """Whether the member's quest boost multiplies what the level write adds (as the statements decide it)."""
    return (level.xp_multiplier != 1 and level.multiplier_expires_at is not None
            and level.multiplier_expires_at > now)


def _take_back(p: _Pending, ev: _Event) -> None:
    """Remove one event another process already counted from a member's flush row."""
    p.xp -= ev.xp
    if ev.source == MESSAGE:
        p.total_messages -= 1
        if ev.counted:
            p.messages -= 1
            p.q_messages -= 1
    elif ev.source == REACTION:
        p.reactions -= 1
        if ev.counted:
            p.q_reactions -= 1
    elif ev.source == COMMAND:
        p.commands -= 1
        if ev.counted:
            p.q_commands -= 1
    else:
        p.voice -= ev.seconds
        if ev.counted:
            p.q_voice -= ev.seconds


def _cells(start: float, seconds: int) -> list[tuple[int | None, int]]:
    """Split ``seconds`` of voice time from ``start`` at clock-minute boundaries: [(minute index, seconds)]."""
    out: list[tuple[int | None, int]] = []
    t, left = start, seconds
    while left > 0:
        cell = int(t // VOICE_CELL_SECONDS)
        room = max(1, round((cell + 1) * VOICE_CELL_SECONDS - t))
        secs = min(left, room)
        out.append((cell, secs))
        t += secs
        left -= secs
    return out


@dataclass(slots=True)
class _VoiceSession:
    channel_id: int
    since: datetime
    eligible: bool


class VoiceTracker:
    """Eligible voice time per member: call `update` on every state change and `checkpoint` periodically."""

    def __init__(self) -> None:
        self._sessions: dict[tuple[int, int], _VoiceSession] = {}

    def update(self, guild_id: int, user_id: int, channel_id: int | None, eligible: bool,
               now: datetime | None = None) -> int:
        """Record the member's new state; returns the eligible seconds earned since the last checkpoint."""
        now = now or utcnow()
        key = (guild_id, user_id)
        old = self._sessions.pop(key, None)
        earned = int((now - old.since).total_seconds()) if old and old.eligible else 0
        if channel_id is not None:
            self._sessions[key] = _VoiceSession(channel_id, now, eligible)
        return max(0, earned)

    def since_of(self, guild_id: int, user_id: int) -> datetime | None:
        """Start of the member's stretch not credited yet, if tracked."""
        session = self._sessions.get((guild_id, user_id))
        return session.since if session else None

    def checkpoint(self, now: datetime | None = None) -> list[tuple[int, int, int, int]]:
        """(guild, user, channel, seconds) for every eligible member since the last checkpoint."""
        return [(g, u, c, s) for g, u, c, _start, s in self.checkpoint_intervals(now)]

    def checkpoint_intervals(self, now: datetime | None = None) -> list[tuple[int, int, int, datetime, int]]:
        """(guild, user, channel, start, seconds) for every eligible member since the last checkpoint."""
        now = now or utcnow()
        out = []
        for (guild_id, user_id), session in self._sessions.items():
            if not session.eligible:
                session.since = now
                continue
            seconds = int((now - session.since).total_seconds())
            if seconds > 0:
                out.append((guild_id, user_id, session.channel_id, session.since, seconds))
                session.since += timedelta(seconds=seconds)  # the fraction of a second carries over
        return out

    def channel_of(self, guild_id: int, user_id: int) -> int | None:
        """The voice channel the member is tracked in, if any."""
        session = self._sessions.get((guild_id, user_id))
        return session.channel_id if session else None

    def members(self, guild_id: int, channel_id: int) -> list[int]:
        return [u for (g, u), s in self._sessions.items() if g == guild_id and s.channel_id == channel_id]

    def __len__(self) -> int:
        return len(self._sessions)


__all__ = ["COUNTERS", "Standing", "VoiceTracker", "XpIngestor", "event_key", "snowflake_time"]
