"""Identity operations. Each is race-safe: two callers creating the same row get one row."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import case, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from guildkeep.db import Database, utcnow
from guildkeep.db.dialect import insert_for
from guildkeep.errors import NotFoundError
from guildkeep.identity.models import Guild, GuildMember, User
from guildkeep.text import clean_text, strip_control

MAX_NAME = 255
GUILD_BATCH = 500  # rows per upsert: SQLite allows 32,766 bound parameters, seven per row


def display_name(custom_name: str | None, discord_display_name: str | None, username: str | None) -> str:
    """Custom name, else Discord display name, else username."""
    return custom_name or discord_display_name or username or ""


@dataclass(frozen=True, slots=True)
class UserView:
    """A user as the bot knows them: names, first and last seen."""

    id: int
    username: str
    discord_display_name: str | None
    custom_name: str | None
    first_seen_at: datetime
    last_seen_at: datetime
    is_active: bool

    @property
    def display_name(self) -> str:
        """The name to show: custom name, else Discord display name, else username, else the id."""
        return display_name(self.custom_name, self.discord_display_name, self.username) or str(self.id)

    @classmethod
    def of(cls, row: User) -> UserView:
        """The view of a stored user row."""
        return cls(
            row.id,
            row.username,
            row.discord_display_name,
            row.custom_name,
            row.first_seen_at,
            row.last_seen_at,
            row.is_active,
        )


async def ensure_guild(session: AsyncSession, guild_id: int, name: str | None = None) -> None:
    """Insert the guild row if missing (inside the caller's unit of work)."""
    stmt = insert_for(session, Guild).values(id=guild_id, name=strip_control(name)[:100])
    await session.execute(stmt.on_conflict_do_nothing(index_elements=["id"]))


async def ensure_user(session: AsyncSession, user_id: int, username: str | None = None) -> None:
    """Insert the user row if missing (inside the caller's unit of work)."""
    stmt = insert_for(session, User).values(id=user_id, username=strip_control(username)[:MAX_NAME])
    await session.execute(stmt.on_conflict_do_nothing(index_elements=["id"]))


async def ensure_member(session: AsyncSession, guild_id: int, user_id: int) -> None:
    """Guild, user and membership rows exist afterwards (inside the caller's unit of work)."""
    await ensure_guild(session, guild_id)
    await ensure_user(session, user_id)
    stmt = insert_for(session, GuildMember).values(guild_id=guild_id, user_id=user_id, roles=[])
    await session.execute(stmt.on_conflict_do_nothing(index_elements=["guild_id", "user_id"]))


class IdentityService:
    """Servers, users and memberships: the rows every module's data hangs from."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def get_or_create_guild(self, guild_id: int, name: str | None = None) -> Guild:
        """The server's row, created on first sight; its name refreshed and it marked active again."""
        name = strip_control(name) or None
        async with self.db.session() as s:
            await ensure_guild(s, guild_id, name)
            guild = (await s.execute(select(Guild).where(Guild.id == guild_id))).scalar_one()
            if name and guild.name != name[:100]:
                guild.name = name[:100]
            if not guild.is_active:
                guild.is_active = True
                guild.joined_at = utcnow()
            return guild

    async def sync_guilds(self, guilds: Iterable[tuple[int, str | None]], *, now: datetime | None = None) -> int:
        """Record the servers the bot is in (on connect and on joining one); return how many.

        Each row is created or updated in place, with its current name, active again (``joined_at`` reset
        when it had left). One upsert per batch, so two processes (shards) doing it at once never conflict.
        """
        now = now or utcnow()
        rows = {gid: {"id": gid, "name": strip_control(name)[:100], "joined_at": now, "is_active": True,
                      "settings": {}, "created_at": now, "updated_at": now}
                for gid, name in guilds}
        table = Guild.__table__
        items = list(rows.values())
        async with self.db.session() as s:
            for start in range(0, len(items), GUILD_BATCH):
                stmt = insert_for(s, table).values(items[start:start + GUILD_BATCH])
                await s.execute(stmt.on_conflict_do_update(index_elements=["id"], set_={
                    "name": stmt.excluded.name,
                    "joined_at": case((table.c.is_active.is_(True), table.c.joined_at), else_=stmt.excluded.joined_at),
                    "is_active": True,
                    "updated_at": now,
                }))
        return len(items)

    async def mark_guild_left(self, guild_id: int) -> None:
        """Mark the server inactive (the bot left it); its data stays."""
        async with self.db.session() as s:
            await s.execute(update(Guild).where(Guild.id == guild_id).values(is_active=False))

    async def get_guild_settings(self, guild_id: int) -> dict[str, Any]:
        """The server's stored settings (empty when none or unknown)."""
        async with self.db.session(read_only=True) as s:
            settings = await s.scalar(select(Guild.settings).where(Guild.id == guild_id))
            return dict(settings or {})

    async def update_guild_settings(self, guild_id: int, **changes: Any) -> dict[str, Any]:
        """Merge ``changes`` into the server's settings in one locked update; returns them all."""
        async with self.db.session() as s:
            await ensure_guild(s, guild_id)
            guild = (
                await s.execute(select(Guild).where(Guild.id == guild_id).with_for_update())
            ).scalar_one()
            merged = {**(guild.settings or {}), **changes}
            guild.settings = merged
            return merged

    async def get_or_create_user(
        self, user_id: int, username: str | None = None, display_name: str | None = None
    ) -> UserView:
        """Create the user on first sight; afterwards refresh names and `last_seen_at`."""
        now = utcnow()
        username, display_name = strip_control(username) or None, strip_control(display_name) or None
        async with self.db.session() as s:
            await ensure_user(s, user_id, username)
            values: dict[str, Any] = {"last_seen_at": now, "is_active": True}
            if username:
                values["username"] = username[:MAX_NAME]
            if display_name:
                values["discord_display_name"] = display_name[:MAX_NAME]
            await s.execute(update(User).where(User.id == user_id).values(**values))
            row = (await s.execute(select(User).where(User.id == user_id))).scalar_one()
            return UserView.of(row)

    async def get_user(self, user_id: int) -> UserView:
        """A user the bot has met; `NotFoundError` otherwise."""
        async with self.db.session(read_only=True) as s:
            row = await s.get(User, user_id)
            if row is None:
                raise NotFoundError("I have not met that user yet.")
            return UserView.of(row)

    async def set_custom_name(self, user_id: int, name: str | None) -> UserView:
        """Set (or clear, with ``None`` or an empty name) the name the bot calls the user by."""
        if name is not None:
            name = clean_text(name, "A custom name", max_length=32, min_length=0) or None
        async with self.db.session() as s:
            await ensure_user(s, user_id)
            await s.execute(update(User).where(User.id == user_id).values(custom_name=name))
            row = (await s.execute(select(User).where(User.id == user_id))).scalar_one()
            return UserView.of(row)

    async def upsert_member(
        self,
        guild_id: int,
        user_id: int,
        *,
        username: str | None = None,
        nickname: str | None = None,
        roles: Iterable[int] = (),
        joined_at: datetime | None = None,
    ) -> GuildMember:
        """Record a member of a server (nickname, roles, joined at), creating or replacing the row."""
        async with self.db.session() as s:
            await ensure_guild(s, guild_id)
            await ensure_user(s, user_id, username)
            ins = insert_for(s, GuildMember).values(
                guild_id=guild_id, user_id=user_id, nickname=strip_control(nickname) or None,
                roles=sorted(set(roles)), joined_at=joined_at, created_at=utcnow(), updated_at=utcnow(),
            )
            ins = ins.on_conflict_do_update(
                index_elements=["guild_id", "user_id"],
                set_={
                    "nickname": ins.excluded.nickname,
                    "roles": ins.excluded.roles,
                    "joined_at": ins.excluded.joined_at,
                    "updated_at": ins.excluded.updated_at,
                },
            )
            await s.execute(ins)
            return (
                await s.execute(
                    select(GuildMember).where(GuildMember.guild_id == guild_id, GuildMember.user_id == user_id)
                )
            ).scalar_one()

    async def remove_member(self, guild_id: int, user_id: int) -> bool:
        """Forget a membership; False when there was none."""
        async with self.db.session() as s:
            row = (
                await s.execute(
                    select(GuildMember).where(GuildMember.guild_id == guild_id, GuildMember.user_id == user_id)
                )
            ).scalar_one_or_none()
            if row is None:
                return False
            await s.delete(row)
            return True

    async def get_member(self, guild_id: int, user_id: int) -> GuildMember | None:
        """The membership row of a user in a server, or None."""
        async with self.db.session(read_only=True) as s:
            return (
                await s.execute(
                    select(GuildMember).where(GuildMember.guild_id == guild_id, GuildMember.user_id == user_id)
                )
            ).scalar_one_or_none()
