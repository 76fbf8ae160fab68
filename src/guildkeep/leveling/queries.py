"""Read-only leveling queries for pages that walk a whole server: the leaderboard by keyset.

A page is found by the last row of the previous one, ``(xp, user_id)``, never by OFFSET, so page 2,000
of a 100,000-member server costs what page 1 costs, and a member gaining XP between two page loads never
shows twice or goes missing across the page boundary. Order: XP descending, ties by user id ascending
(the order of ``LevelingService.leaderboard`` and ``rank_position``).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import ColumnElement, and_, func, or_, select

from guildkeep.db import Database
from guildkeep.errors import ValidationError
from guildkeep.identity.models import User
from guildkeep.leveling.models import Level

MAX_PAGE = 100


@dataclass(frozen=True, slots=True)
class Cursor:
    xp: int
    user_id: int

    def __str__(self) -> str:
        return f"{self.xp}:{self.user_id}"

    @classmethod
    def parse(cls, text: str | None) -> Cursor | None:
        """``"<xp>:<user_id>"`` (both whole numbers) or nothing; anything else is a ValidationError."""
        if not text:
            return None
        xp, sep, user = text.partition(":")
        if not sep or not xp.isdigit() or not user.isdigit() or len(xp) > 19 or len(user) > 19:
            raise ValidationError("The page cursor must look like <xp>:<user id>.")
        return cls(int(xp), int(user))


@dataclass(frozen=True, slots=True)
class Row:
    rank: int
    user_id: int
    name: str
    xp: int
    level: int


@dataclass(frozen=True, slots=True)
class KeysetPage:
    rows: list[Row]
    total: int
    next: Cursor | None  # the cursor of the following page, None on the last


def after_clause(cursor: Cursor) -> ColumnElement[bool]:
    # ``xp <= X`` first: it bounds the index range; the OR then only filters the rows tied at X.
    return and_(Level.xp <= cursor.xp, or_(Level.xp < cursor.xp, Level.user_id > cursor.user_id))


async def leaderboard_after(db: Database, guild_id: int, after: Cursor | None = None, *,
                            limit: int = 50) -> KeysetPage:
    """One page of the server's leaderboard following ``after`` (from the top without it)."""
    limit = max(1, min(limit, MAX_PAGE))
    where = [Level.guild_id == guild_id]
    if after is not None:
        where.append(after_clause(after))
    async with db.session(read_only=True) as s:
        rows = (await s.execute(
            select(Level.user_id, Level.xp, Level.level, User.username, User.custom_name, User.discord_display_name)
            .join(User, User.id == Level.user_id)
            .where(*where)
            .order_by(Level.xp.desc(), Level.user_id)
            .limit(limit + 1)
        )).all()
        total = await s.scalar(select(func.count()).select_from(Level).where(Level.guild_id == guild_id)) or 0
        ahead = 0
        if after is not None and rows:
            ahead = await s.scalar(select(func.count()).select_from(Level).where(
                Level.guild_id == guild_id,
                or_(Level.xp > after.xp, and_(Level.xp == after.xp, Level.user_id <= after.user_id)),
            )) or 0
    more = len(rows) > limit
    rows = rows[:limit]
    out = [Row(ahead + i + 1, r.user_id, r.custom_name or r.discord_display_name or r.username or str(r.user_id),
               r.xp, r.level) for i, r in enumerate(rows)]
    nxt = Cursor(out[-1].xp, out[-1].user_id) if more and out else None
    return KeysetPage(out, int(total), nxt)


async def member_row(db: Database, guild_id: int, user_id: int) -> Row | None:
    """One member's leaderboard row (with rank), or None if they have no XP row in that server."""
    async with db.session(read_only=True) as s:
        r = (await s.execute(
            select(Level.user_id, Level.xp, Level.level, User.username, User.custom_name, User.discord_display_name)
            .join(User, User.id == Level.user_id)
            .where(Level.guild_id == guild_id, Level.user_id == user_id)
        )).first()
        if r is None:
            return None
        ahead = await s.scalar(select(func.count()).select_from(Level).where(
            Level.guild_id == guild_id, _after_not(r.xp, r.user_id))) or 0
    return Row(int(ahead) + 1, r.user_id, r.custom_name or r.discord_display_name or r.username or str(r.user_id),
               r.xp, r.level)


def _after_not(xp: int, user_id: int) -> ColumnElement[bool]:
    return or_(Level.xp > xp, and_(Level.xp == xp, Level.user_id < user_id))


async def guild_xp(db: Database, guild_id: int) -> list[tuple[int, int]]:
    """``(user_id, xp)`` of every member with a row in the server (what an in-memory leaderboard is built from)."""
    async with db.session(read_only=True) as s:
        rows = await s.execute(select(Level.user_id, Level.xp).where(Level.guild_id == guild_id))
        return [(int(u), int(x)) for u, x in rows.all()]


async def board_rows(db: Database, guild_id: int, user_ids: list[int]) -> dict[int, tuple[int, str]]:
    """``{user: (stored xp, display name)}`` of the members listed that have a row in the server."""
    if not user_ids:
        return {}
    async with db.session(read_only=True) as s:
        rows = (await s.execute(
            select(Level.user_id, Level.xp, User.username, User.custom_name, User.discord_display_name)
            .join(User, User.id == Level.user_id)
            .where(Level.guild_id == guild_id, Level.user_id.in_(sorted(set(user_ids))))
        )).all()
    return {int(r.user_id): (int(r.xp), r.custom_name or r.discord_display_name or r.username or str(r.user_id))
            for r in rows}
