"""The rank-card images of the public pages, rendered once per look and kept in a bounded LRU.

A card is keyed by the server, the member and everything it shows (name, level, XP, rank, card look, avatar
URL): a change of any of them is a new key, so the next request renders anew, and the old image ages out. The
key's digest is the response's ETag, so a browser revalidating an unchanged card gets a 304 without a render.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass

MAX_CARDS = 256  # ~40 KB each: about 10 MB at most
CARD_VERSION = 1  # bump when the drawing changes, so cached and browser copies are refreshed


@dataclass(frozen=True, slots=True)
class CachedCard:
    """A rendered card and its ETag."""

    png: bytes
    etag: str


def etag_for(key: Hashable) -> str:
    """A strong ETag naming ``key`` (the data a card shows): equal data, equal tag."""
    digest = hashlib.sha256(repr((CARD_VERSION, key)).encode("utf-8")).hexdigest()[:32]
    return f'"{digest}"'


class CardCache:
    """A bounded LRU of rendered cards; ``renders`` counts the renders it asked for."""

    def __init__(self, max_entries: int = MAX_CARDS) -> None:
        """A cache holding at most ``max_entries`` cards."""
        if max_entries < 1:
            raise ValueError("a card cache holds at least one card")
        self.max_entries = max_entries
        self.renders = 0
        self._cards: OrderedDict[Hashable, CachedCard] = OrderedDict()
        self._pending: dict[Hashable, asyncio.Future[CachedCard]] = {}

    def __len__(self) -> int:
        return len(self._cards)

    async def get(self, key: Hashable, render: Callable[[], Awaitable[bytes]]) -> CachedCard:
        """The card for ``key``, rendered with ``render`` only when it is not cached (once for concurrent asks)."""
        found = self._cards.get(key)
        if found is not None:
            self._cards.move_to_end(key)
            return found
        pending = self._pending.get(key)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[CachedCard] = asyncio.get_running_loop().create_future()
        self._pending[key] = future
        try:
            self.renders += 1
            card = CachedCard(await render(), etag_for(key))
        except BaseException as exc:
            if isinstance(exc, asyncio.CancelledError):
                future.cancel()
            else:
                future.set_exception(exc)
                future.exception()  # retrieved: no "never retrieved" warning when nobody else waited
            raise
        finally:
            del self._pending[key]
        future.set_result(card)
        self._cards[key] = card
        while len(self._cards) > self.max_entries:
            self._cards.popitem(last=False)
        return card
