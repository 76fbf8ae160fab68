"""Per-server web settings: whether a server's public pages are shown. Plain ids in, plain values out."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select

from guildkeep.db import Database, utcnow
from guildkeep.db.dialect import insert_for
from guildkeep.errors import NotFoundError
from guildkeep.identity.models import Guild
from guildkeep.identity.service import ensure_guild
from guildkeep.web.models import WebSettings


class UnknownServerError(NotFoundError):
    """No such server, or its public pages are off: the web answers 404 either way."""

    def __init__(self) -> None:
        super().__init__("There is no public page for that server.")


class WebService:
    """What the web pages read and change: which servers show public pages."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def public_guild(self, guild_id: int) -> str:
        """The server's name when its public pages are on; UnknownServerError when unknown, turned off, or left."""
        async with self.db.session(read_only=True) as s:
            row = (await s.execute(
                select(Guild.name, Guild.is_active, WebSettings.public_pages)
                .outerjoin(WebSettings, WebSettings.guild_id == Guild.id)
                .where(Guild.id == guild_id)
            )).first()
        if row is None or row.public_pages is False or not row.is_active:
            raise UnknownServerError()
        return row.name or str(guild_id)

    async def known_guilds(self, guild_ids: Iterable[int]) -> dict[int, str]:
        """Of these ids, the servers the bot knows, with their names."""
        ids = sorted(set(guild_ids))
        if not ids:
            return {}
        async with self.db.session(read_only=True) as s:
            rows = (await s.execute(select(Guild.id, Guild.name).where(Guild.id.in_(ids)))).all()
        return {r.id: r.name or str(r.id) for r in rows}

    async def public_pages(self, guild_id: int) -> bool:
        """Whether the server's public pages are on (they are unless turned off)."""
        async with self.db.session(read_only=True) as s:
            value = await s.scalar(select(WebSettings.public_pages).where(WebSettings.guild_id == guild_id))
        return True if value is None else bool(value)

    async def set_public_pages(self, guild_id: int, public: bool) -> bool:
        """Turn the server's public pages on or off; returns the new value."""
        async with self.db.session() as s:
            await ensure_guild(s, guild_id)
            stmt = insert_for(s, WebSettings).values(guild_id=guild_id, public_pages=public)
            await s.execute(stmt.on_conflict_do_update(index_elements=["guild_id"],
                                                       set_={"public_pages": public, "updated_at": utcnow()}))
        return public
