"""An in-memory, ordered leaderboard of one server, kept current by the write-behind ingestor.

`GuildBoard` holds every member of a server that has XP (stored, or pending in this process) in one
`sortedcontainers.SortedList` of integer keys ordered by XP descending, then user id ascending (the order of the
stored leaderboard). A key packs both numbers into one int, ``(MAX_XP - xp) << 64 | user_id``, so a member costs
one small int in the sorted list plus one entry in each of two dicts, and comparisons are integer comparisons:

* a member's rank is one ``bisect`` (O(log n));
* the top of the board is a slice;
* a member's XP changing is a remove and an add (O(log n)).

The board separates what the database holds (``base``: the stored XP as of the last load or flush) from what
the process added since (activity not flushed yet): the key always reflects ``base + pending``.
"""

from __future__ import annotations

from collections.abc import Iterable

from sortedcontainers import SortedList  # type: ignore[import-untyped]

from guildkeep.leveling.rules import MAX_XP

_USER_BITS = 64
_USER_MASK = (1 << _USER_BITS) - 1


def board_key(xp: int, user_id: int) -> int:
    """The sort key of a member: smaller keys rank higher (more XP first, then the smaller user id)."""
    return ((MAX_XP - xp) << _USER_BITS) | user_id


def split_key(key: int) -> tuple[int, int]:
    """``(user_id, xp)`` of a key."""
    return key & _USER_MASK, MAX_XP - (key >> _USER_BITS)


class GuildBoard:
    """One server's members ordered by XP, with the stored XP of each (see the module's docstring)."""

    __slots__ = ("base", "changes", "checked_at", "keys", "loaded_at", "names", "total", "used_at")

    def __init__(self, stored: Iterable[tuple[int, int]], now: float = 0.0) -> None:
        """Build the board from ``(user_id, stored xp)`` pairs (one read of the server's rows)."""
        self.base: dict[int, int] = dict(stored)
        self.total: dict[int, int] = dict(self.base)
        self.keys: SortedList = SortedList(board_key(x, u) for u, x in self.base.items())
        self.names: dict[int, str] = {}
        self.loaded_at = now
        self.checked_at = now
        self.used_at = now
        self.changes = 0  # the service's count of XP changes made outside the ingestor when this was loaded

    def __len__(self) -> int:
        return len(self.total)

    def __contains__(self, user_id: int) -> bool:
        return user_id in self.total

    def xp_of(self, user_id: int) -> int | None:
        """The member's XP with pending activity, or None for a member not on the board."""
        return self.total.get(user_id)

    def set_total(self, user_id: int, xp: int) -> None:
        """Move the member to ``xp`` (stored plus pending)."""
        xp = min(max(xp, 0), MAX_XP)
        old = self.total.get(user_id)
        if old == xp:
            return
        keys = self.keys
        if old is not None:
            keys.remove(board_key(old, user_id))
        self.total[user_id] = xp
        keys.add(board_key(xp, user_id))

    def set_base(self, user_id: int, stored: int, pending: int) -> None:
        """The database holds ``stored`` for the member and ``pending`` more is not flushed yet."""
        self.base[user_id] = stored
        self.set_total(user_id, stored + pending)

    def discard(self, user_id: int) -> None:
        """Take the member off the board (their row was deleted)."""
        old = self.total.pop(user_id, None)
        self.base.pop(user_id, None)
        if old is not None:
            self.keys.remove(board_key(old, user_id))

    def rank(self, user_id: int) -> int | None:
        """1-based position of the member, or None if not on the board."""
        xp = self.total.get(user_id)
        if xp is None:
            return None
        return int(self.keys.bisect_left(board_key(xp, user_id))) + 1

    def top(self, offset: int, limit: int) -> list[tuple[int, int]]:
        """``(user_id, xp)`` of positions ``offset+1 .. offset+limit``."""
        return [split_key(k) for k in self.keys.islice(offset, offset + limit)]
