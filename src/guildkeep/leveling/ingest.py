"""The high-rate path: activity is scored in memory with `rules` and written behind in batches.

`XpIngestor` applies the rules per event (cooldowns held in memory, server config from the service's TTL
cache) and accumulates one `ActivityDelta` per member. Every ``flush_seconds`` (the setting
``write_behind_flush_seconds``), when too much is pending, and on `stop`, each server's batch goes to
`LevelingService.apply_activity` in one unit of work; level-ups, quest completions and achievements come back
through ``on_outcome``. What a crash can lose is bounded by ``flush_seconds`` of activity; a clean stop loses
nothing, and a failed flush puts its batch back to be retried.

`VoiceTracker` turns voice-state changes into seconds of eligible voice time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from guildkeep.db import utcnow
from guildkeep.leveling import rules
from guildkeep.leveling.service import ActivityDelta, ActivityOutcome, LevelingService

log = logging.getLogger(__name__)

OutcomeCallback = Callable[[ActivityOutcome], Awaitable[None]]
SOURCE_COUNTER = {"message": "total_messages", "reaction": "total_reactions", "command": "commands_used"}


class XpIngestor:
    def __init__(
        self,
        service: LevelingService,
        *,
        flush_seconds: float = 5.0,
        on_outcome: OutcomeCallback | None = None,
        max_pending: int = 5_000,
        rng: random.Random | None = None,
    ) -> None:
        self.service = service
        self.flush_seconds = flush_seconds
        self.on_outcome = on_outcome
        self.max_pending = max_pending
        self.rng = rng or random.Random()
        self._pending: dict[int, dict[int, ActivityDelta]] = {}
        self._last: dict[tuple[int, int, str], datetime] = {}
        self._seeded: set[int] = set()  # servers whose stored message cooldowns were read back
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._flush_lock = asyncio.Lock()
        self.flushed_batches = 0

    # ------------------------------------------------------------------------------------- events

    async def message(self, guild_id: int, user_id: int, *, channel_id: int | None = None,
                      parent_channel_id: int | None = None, role_ids: Iterable[int] = (),
                      username: str | None = None, now: datetime | None = None) -> int:
        """Score one message; returns the XP it earned (0 on cooldown or in a no-XP place)."""
        ctx = rules.ActivityContext(channel_id, parent_channel_id, frozenset(role_ids))
        return await self._event("message", guild_id, user_id, ctx, username=username, now=now)

    async def reaction(self, guild_id: int, user_id: int, *, channel_id: int | None = None,
                       parent_channel_id: int | None = None, role_ids: Iterable[int] = (),
                       now: datetime | None = None) -> int:
        ctx = rules.ActivityContext(channel_id, parent_channel_id, frozenset(role_ids))
        return await self._event("reaction", guild_id, user_id, ctx, now=now)

    async def command(self, guild_id: int, user_id: int, *, channel_id: int | None = None,
                      parent_channel_id: int | None = None, role_ids: Iterable[int] = (),
                      now: datetime | None = None) -> int:
        ctx = rules.ActivityContext(channel_id, parent_channel_id, frozenset(role_ids))
        return await self._event("command", guild_id, user_id, ctx, now=now)

    async def voice(self, guild_id: int, user_id: int, seconds: int, *, channel_id: int | None = None,
                    parent_channel_id: int | None = None, role_ids: Iterable[int] = ()) -> int:
        """Credit ``seconds`` of eligible voice time."""
        if seconds <= 0:
            return 0
        cfg = await self.service.get_server_config(guild_id)
        ctx = rules.ActivityContext(channel_id, parent_channel_id, frozenset(role_ids))
        xp = rules.award(cfg.xp_settings, "voice", ctx, self.rng, seconds=seconds)
        self._add(guild_id, ActivityDelta(user_id, xp=xp, voice_time_seconds=seconds))
        return xp

    async def _event(self, source: str, guild_id: int, user_id: int, ctx: rules.ActivityContext, *,
                     username: str | None = None, now: datetime | None = None) -> int:
        now = now or utcnow()
        settings = (await self.service.get_server_config(guild_id)).xp_settings
        if rules.xp_blocked(settings, ctx):
            return 0
        key = (guild_id, user_id, source)
        if source == "message" and guild_id not in self._seeded:
            # After a restart the stored last XP messages restart the cooldowns, so none is granted twice:
            # one query per server, for the members still inside the cooldown.
            self._seeded.add(guild_id)
            since = now - timedelta(seconds=settings.cooldown("message"))
            for uid, when in (await self.service.recent_message_times(guild_id, since)).items():
                self._last.setdefault((guild_id, uid, "message"), when)
        xp = rules.award(settings, source, ctx, self.rng, last=self._last.get(key), now=now)
        delta = ActivityDelta(user_id, xp=xp, username=username, **{SOURCE_COUNTER[source]: 1})
        if xp:
            self._last[key] = now
            if source == "message":
                delta.messages = 1
                delta.last_message_time = now
        self._add(guild_id, delta)
        return xp

    def _add(self, guild_id: int, delta: ActivityDelta) -> None:
        members = self._pending.setdefault(guild_id, {})
        if delta.user_id in members:
            members[delta.user_id].merge(delta)
        else:
            members[delta.user_id] = delta
            if self.pending_members >= self.max_pending:
                self._wake.set()

    @property
    def pending_members(self) -> int:
        return sum(len(m) for m in self._pending.values())

    # -------------------------------------------------------------------------------------- flush

    async def flush(self) -> list[ActivityOutcome]:
        """Write everything pending, one unit of work per server. A failed server's batch is kept for later."""
        async with self._flush_lock:
            batch, self._pending = self._pending, {}
            outcomes = []
            for guild_id, members in sorted(batch.items()):
                try:
                    outcome = await self.service.apply_activity(guild_id, list(members.values()))
                except Exception:
                    log.exception("could not store XP for guild %s; keeping %d members for the next flush",
                                  guild_id, len(members))
                    for delta in members.values():
                        self._add(guild_id, delta)
                    continue
                self.flushed_batches += 1
                outcomes.append(outcome)
                if self.on_outcome and (outcome.level_changes or outcome.quests_completed
                                        or outcome.achievements_earned):
                    try:
                        await self.on_outcome(outcome)
                    except Exception:
                        log.exception("level-up/quest notification failed for guild %s", guild_id)
            self._prune_cooldowns()
            return outcomes

    def _prune_cooldowns(self) -> None:
        if len(self._last) < 50_000:
            return
        now = utcnow()
        for key in [k for k, t in self._last.items() if (now - t).total_seconds() > 3600]:
            del self._last[key]

    async def _loop(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self.flush_seconds)
            self._wake.clear()
            try:
                await self.flush()
            except Exception:
                log.exception("write-behind flush failed")

    def start(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._loop(), name="leveling-write-behind")

    async def stop(self) -> None:
        """Stop the loop and write what is pending (a clean stop loses nothing)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self.flush()


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

    def checkpoint(self, now: datetime | None = None) -> list[tuple[int, int, int, int]]:
        """(guild, user, channel, seconds) for every eligible member since the last checkpoint."""
        now = now or utcnow()
        out = []
        for (guild_id, user_id), session in self._sessions.items():
            if not session.eligible:
                session.since = now
                continue
            seconds = int((now - session.since).total_seconds())
            if seconds > 0:
                out.append((guild_id, user_id, session.channel_id, seconds))
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
