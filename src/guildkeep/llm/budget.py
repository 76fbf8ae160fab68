"""Per-server request budget: at most N model requests per server in any 60-second window.

The window slides (the last 60 s, not the calendar minute) and lives in this process's memory.
That is exact for a sharded bot because each server belongs to exactly one shard, so one
process sees all of a server's requests; a restart forgets the window, which lets a server
spend at most one extra minute's budget. A request counts once however many HTTP attempts its
retries take, and a refused request does not count.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

from guildkeep.llm.errors import LLMBudgetExceeded

WINDOW_SECONDS = 60.0


class RequestBudget:
    """Counts each server's requests in a sliding minute; `acquire` refuses once the limit is used."""

    def __init__(self, per_minute: int, *, clock: Callable[[], float] = time.monotonic) -> None:
        if per_minute < 0:
            raise ValueError("per_minute must be 0 (no limit) or more")
        self.per_minute = per_minute
        self._clock = clock
        self._used: dict[int, deque[float]] = {}

    @property
    def unlimited(self) -> bool:
        return self.per_minute == 0

    def _window(self, guild_id: int, now: float) -> deque[float]:
        stamps = self._used.get(guild_id)
        if stamps is None:
            stamps = self._used[guild_id] = deque()
        while stamps and stamps[0] <= now - WINDOW_SECONDS:
            stamps.popleft()
        return stamps

    def remaining(self, guild_id: int) -> int | None:
        """Requests the server may still make now (``None``: no limit)."""
        if self.unlimited:
            return None
        return max(0, self.per_minute - len(self._window(guild_id, self._clock())))

    def acquire(self, guild_id: int) -> None:
        """Count one request for the server, or raise `LLMBudgetExceeded` (with the wait) and count nothing."""
        if self.unlimited:
            return
        now = self._clock()
        stamps = self._window(guild_id, now)
        if len(stamps) >= self.per_minute:
            raise LLMBudgetExceeded(self.per_minute, stamps[0] + WINDOW_SECONDS - now)
        stamps.append(now)
        if len(self._used) > 4096:  # drop servers whose window emptied, so memory follows active servers
            for gid in [g for g, s in self._used.items() if not s or s[-1] <= now - WINDOW_SECONDS]:
                del self._used[gid]
