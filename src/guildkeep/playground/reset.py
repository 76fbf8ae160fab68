"""Forget what the bot stored about the playground's servers and members (``:reset``)."""

from __future__ import annotations

import logging

from sqlalchemy import delete, or_

from guildkeep.db import Database
from guildkeep.db.registry import load_models

log = logging.getLogger(__name__)


async def forget(db: Database, guild_ids: set[int], user_ids: set[int]) -> int:
    """Delete everything the bot stored about these servers and users, in one transaction; returns rows.

    Every table is covered without naming it: rows whose ``guild_id`` (or a foreign key to ``guilds``)
    is one of the servers, or whose foreign key to ``users`` is one of the users; children first.
    """
    metadata = load_models()
    removed = 0
    async with db.engine.begin() as conn:
        for table in reversed(metadata.sorted_tables):
            conditions = []
            if table.name == "guilds" and guild_ids:
                conditions.append(table.c.id.in_(guild_ids))
            if table.name == "users" and user_ids:
                conditions.append(table.c.id.in_(user_ids))
            if "guild_id" in table.c and guild_ids:
                conditions.append(table.c.guild_id.in_(guild_ids))
            for fk in table.foreign_keys:
                target = fk.column.table.name
                if target == "guilds" and guild_ids and fk.parent.name != "guild_id":
                    conditions.append(fk.parent.in_(guild_ids))
                elif target == "users" and user_ids:
                    conditions.append(fk.parent.in_(user_ids))
            if conditions:
                result = await conn.execute(delete(table).where(or_(*conditions)))
                removed += result.rowcount or 0
    log.info("forgot %d row(s) of %d server(s) and %d user(s)", removed, len(guild_ids), len(user_ids))
    return removed


__all__ = ["forget"]
