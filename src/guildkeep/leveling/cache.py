"""A small TTL cache for per-server reads (server config, active quests), invalidated on write."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Hashable
from typing import Any, TypeVar

T = TypeVar("T")


class TTLCache:
    """Values expire ``ttl`` seconds after they were stored; `invalidate` drops them at once.

    Keys are tuples whose first items name what is cached and for which server, e.g.
    ``("config", guild_id)``; `invalidate_guild` drops every key of one server.
    """

    def __init__(self, ttl: float = 60.0, *, clock: Callable[[], float] = time.monotonic, max_items: int = 10_000):
        self.ttl = ttl
        self._clock = clock
        self._max = max_items
        self._items: dict[Hashable, tuple[float, Any]] = {}
        self.hits = 0
        self.misses = 0
        self._epoch = 0  # bumped by every invalidation, so a load that raced a write is not cached

    def get(self, key: Hashable) -> Any | None:
        item = self._items.get(key)
        if item is None or item[0] <= self._clock():
            self._items.pop(key, None)
            self.misses += 1
            return None
        self.hits += 1
        return item[1]

    def set(self, key: Hashable, value: Any) -> None:
        if len(self._items) >= self._max:
            now = self._clock()
            for k in [k for k, (exp, _) in self._items.items() if exp <= now] or list(self._items)[: self._max // 10]:
                self._items.pop(k, None)
        self._items[key] = (self._clock() + self.ttl, value)

    async def get_or_load(self, key: Hashable, loader: Callable[[], Awaitable[T]]) -> T:
        value = self.get(key)
        if value is None:
            epoch = self._epoch
            value = await loader()
            if epoch == self._epoch:  # a write invalidated meanwhile: what was loaded may predate it
                self.set(key, value)
        return value

    def invalidate(self, key: Hashable) -> None:
        self._epoch += 1
        self._items.pop(key, None)

    def invalidate_guild(self, guild_id: int) -> None:
        self._epoch += 1
        for key in [k for k in self._items if isinstance(k, tuple) and len(k) > 1 and k[1] == guild_id]:
            self._items.pop(key, None)

    def clear(self) -> None:
        self._epoch += 1
        self._items.clear()

    def __len__(self) -> int:
        return len(self._items)
