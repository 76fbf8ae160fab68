"""Per-process TTL caches and the cross-process invalidation bus that keeps them in step across shards.

A `TTLCache` drops an entry when the service writes (``invalidate``) and otherwise after ``ttl`` seconds. With
several processes on one database (one shard each), a write in one process must also drop the entry in the
others: give every cache the process's `InvalidationBus`. With ``GUILDKEEP_REDIS_URL`` set, the bus publishes
each invalidation on a Redis pub/sub channel as JSON ``{"origin", "namespace", "guild_id", "key"}`` and drops
the matching entries of every other process's caches of the same namespace. Without Redis (unset, unreachable,
or dropped) invalidations stay in-process and other processes see a change when its TTL expires; the bus logs
one warning per outage and reconnects with backoff in the background, never blocking a caller.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Hashable
from typing import Any, TypeVar

from redis import asyncio as aioredis
from redis.exceptions import RedisError

log = logging.getLogger(__name__)

T = TypeVar("T")
DEFAULT_CHANNEL = "guildkeep:invalidate"

# handler(guild_id, key): key None means "every entry of that guild"
Handler = Callable[[int | None, Hashable | None], None]


def _as_key(value: Any) -> Hashable:
    """JSON turns tuple keys into lists; turn them back."""
    return tuple(_as_key(v) for v in value) if isinstance(value, list) else value


def _redacted(url: str) -> str:
    scheme, sep, rest = url.partition("://")
    return f"{scheme}{sep}***@{rest.rpartition('@')[2]}" if "@" in rest else url


class InvalidationBus:
    """Fans cache invalidations out to the caches of this process and, with Redis, of every other process.

    ``url`` None: local only. Otherwise `start` runs a background task that subscribes to ``channel`` and
    publishes queued invalidations; `publish` never waits on Redis.
    """

    def __init__(self, url: str | None = None, *, channel: str = DEFAULT_CHANNEL, max_backoff: float = 30.0,
                 queue_size: int = 10_000) -> None:
        self.url = url
        self.channel = channel
        self.origin = uuid.uuid4().hex
        self.max_backoff = max_backoff
        self._handlers: dict[str, list[Handler]] = {}
        self._outbox: asyncio.Queue[str] = asyncio.Queue(queue_size)
        self._task: asyncio.Task[None] | None = None
        self._connected = asyncio.Event()
        self.received = 0  # messages applied from other processes
        self.subscriptions = 0  # how many times the bus (re)subscribed

    @property
    def enabled(self) -> bool:
        return self.url is not None

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    def register(self, namespace: str, handler: Handler) -> None:
        self._handlers.setdefault(namespace, []).append(handler)

    def unregister(self, namespace: str, handler: Handler) -> None:
        with contextlib.suppress(ValueError):
            self._handlers.get(namespace, []).remove(handler)

    def publish(self, namespace: str, guild_id: int | None, key: Hashable | None, *,
                source: Handler | None = None) -> None:
        """Tell the other caches of ``namespace`` (not ``source``) here and in other processes to drop an entry."""
        for handler in list(self._handlers.get(namespace, ())):
            if handler is not source:
                handler(guild_id, key)
        if self._task is None or not self.connected:
            return  # Redis unset or down: other processes rely on the TTL
        try:
            message = json.dumps({"origin": self.origin, "namespace": namespace, "guild_id": guild_id, "key": key})
            self._outbox.put_nowait(message)
        except (TypeError, ValueError):
            log.warning("cache key %r of %s cannot be sent to other processes (not JSON)", key, namespace)
        except asyncio.QueueFull:
            log.debug("invalidation outbox full; dropping one for %s", namespace)

    def deliver(self, raw: str | bytes) -> None:
        """Apply one message from the channel (messages of this process are ignored)."""
        try:
            message = json.loads(raw)
            if message["origin"] == self.origin:
                return
            namespace, guild_id, key = message["namespace"], message.get("guild_id"), message.get("key")
        except (ValueError, KeyError, TypeError):
            log.warning("ignoring a malformed cache invalidation on %s: %r", self.channel, raw)
            return
        self.received += 1
        for handler in list(self._handlers.get(namespace, ())):
            handler(guild_id, None if key is None else _as_key(key))

    async def start(self) -> None:
        """Start the background connection (returns at once; no-op without a URL)."""
        if self.url is not None and self._task is None:
            self._task = asyncio.create_task(self._run(self.url), name="guildkeep-invalidation-bus")

    async def wait_connected(self) -> None:
        """Return once subscribed to the channel (wrap in ``asyncio.timeout`` to bound it)."""
        await self._connected.wait()

    async def close(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._connected.clear()

    async def _run(self, url: str) -> None:
        backoff, warned = 0.5, False
        while True:
            before = self.subscriptions
            try:
                await self._session(url)
            except (RedisError, OSError) as exc:
                if self.subscriptions != before:  # it was up: a new outage
                    backoff, warned = 0.5, False
                if not warned:
                    warned = True
                    log.warning("Redis at %s is unreachable (%s); caches fall back to TTL-only expiry across "
                                "processes until it is back (retrying in the background)", _redacted(url), exc)
                else:
                    log.debug("Redis still unreachable: %s", exc)
            except Exception:  # a bug must not end the bus for the process's lifetime
                log.exception("cache invalidation bus failed; restarting it")
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, self.max_backoff)

    async def _session(self, url: str) -> None:
        """Subscribe, then read and publish until the connection fails (raises)."""
        client = aioredis.from_url(url, socket_connect_timeout=2, socket_timeout=5,
                                   client_name=f"guildkeep-bus-{self.origin}")
        pubsub = client.pubsub()
        tasks: list[asyncio.Task[None]] = []
        try:
            await pubsub.subscribe(self.channel)
            while (msg := await pubsub.get_message(timeout=5)) is None or msg["type"] != "subscribe":
                pass
            while not self._outbox.empty():  # queued before the (re)connect: the TTL covers those
                self._outbox.get_nowait()
            self.subscriptions += 1
            self._connected.set()
            log.info("cache invalidation bus subscribed to %s on %s", self.channel, _redacted(url))
            tasks = [asyncio.create_task(self._read(pubsub)), asyncio.create_task(self._write(client))]
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
            for task in done:
                task.result()  # re-raises the connection error
        finally:
            self._connected.clear()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            with contextlib.suppress(RedisError, OSError):
                await pubsub.aclose()
            with contextlib.suppress(RedisError, OSError):
                await client.aclose()

    async def _read(self, pubsub: aioredis.client.PubSub) -> None:
        while True:
            msg = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
            if msg is not None and msg["type"] == "message":
                self.deliver(msg["data"])

    async def _write(self, client: aioredis.Redis) -> None:
        while True:
            message = await self._outbox.get()
            await client.publish(self.channel, message)


class TTLCache:
    """Values expire ``ttl`` seconds after they were stored; `invalidate` drops them at once.

    Keys are tuples whose first items name what is cached and for which server, e.g.
    ``("config", guild_id)``; `invalidate_guild` drops every key of one server. With a ``bus``, every
    invalidation is also sent to the other caches of ``namespace`` (other processes through Redis).
    Keys must then be JSON-friendly (tuples of str/int).
    """

    def __init__(self, ttl: float = 60.0, *, clock: Callable[[], float] = time.monotonic, max_items: int = 10_000,
                 bus: InvalidationBus | None = None, namespace: str = "default"):
        self.ttl = ttl
        self._clock = clock
        self._max = max_items
        self._items: dict[Hashable, tuple[float, Any]] = {}
        self.hits = 0
        self.misses = 0
        self._epoch = 0  # bumped by every invalidation (here or remote), so a load that raced a write is not cached
        self.bus = bus
        self.namespace = namespace
        if bus is not None:
            bus.register(namespace, self._on_remote)

    @property
    def epoch(self) -> int:
        """Bumped by every invalidation: a bulk loader compares it before and after to drop a raced load."""
        return self._epoch

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
        if self.bus is not None:
            guild_id = key[1] if isinstance(key, tuple) and len(key) > 1 and isinstance(key[1], int) else None
            self.bus.publish(self.namespace, guild_id, key, source=self._on_remote)

    def invalidate_guild(self, guild_id: int) -> None:
        self._drop_guild(guild_id)
        if self.bus is not None:
            self.bus.publish(self.namespace, guild_id, None, source=self._on_remote)

    def _drop_guild(self, guild_id: int) -> None:
        self._epoch += 1
        for key in [k for k in self._items if isinstance(k, tuple) and len(k) > 1 and k[1] == guild_id]:
            self._items.pop(key, None)

    def _on_remote(self, guild_id: int | None, key: Hashable | None) -> None:
        if key is None:
            if guild_id is not None:
                self._drop_guild(guild_id)
        else:
            self._epoch += 1
            self._items.pop(key, None)

    def detach(self) -> None:
        """Stop receiving invalidations from the bus (the cache keeps working locally)."""
        if self.bus is not None:
            self.bus.unregister(self.namespace, self._on_remote)

    def clear(self) -> None:
        self._epoch += 1
        self._items.clear()

    def __len__(self) -> int:
        return len(self._items)
