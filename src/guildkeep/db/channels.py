"""Finding what belongs to a channel when asked from a thread: the thread's own first, then its channel's.

The Discord layer says where to look (``guildkeep.discord.checks.channels_of``: the channel itself, then, in
a thread or forum post, its parent channel); services take that as `Channels` and pick with `nearest`, so a
thread of a campaign's or a story's channel counts as that channel.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import TypeVar

Channels = int | Sequence[int]
"""Where to look: one channel id, or ids to try in order (a thread, then its parent channel)."""

T = TypeVar("T")


def channel_ids(channels: Channels) -> tuple[int, ...]:
    """The ids to look in, in order (no repeats)."""
    if isinstance(channels, int):
        return (channels,)
    return tuple(dict.fromkeys(channels))


def nearest(rows: Iterable[T], channel_of: Callable[[T], int | None], channels: Channels) -> T | None:
    """Of ``rows`` found in ``channels``, the one of the first channel that has one (None when none)."""
    order = {channel_id: i for i, channel_id in enumerate(channel_ids(channels))}
    found = [row for row in rows if channel_of(row) in order]
    return min(found, key=lambda row: order[channel_of(row) or 0], default=None)
