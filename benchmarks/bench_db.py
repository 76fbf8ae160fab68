"""Data core: batched upserts (the write-behind path) against one unit of work per row."""

from __future__ import annotations

from benchmarks.common import Result, rate
from guildkeep.db import Database, utcnow
from guildkeep.db.dialect import insert_for
from guildkeep.identity.models import User

ROWS = 2_000


async def run(db: Database) -> list[Result]:
    async def per_row() -> None:
        for i in range(ROWS):
            async with db.session() as s:
                stmt = insert_for(s, User).values(id=10_000_000 + i, username=f"u{i}")
                await s.execute(stmt.on_conflict_do_nothing(index_elements=["id"]))

    async def batched() -> None:
        now = utcnow()
        rows = [
            {"id": 20_000_000 + i, "username": f"u{i}", "first_seen_at": now, "last_seen_at": now,
             "created_at": now, "updated_at": now, "is_active": True}
            for i in range(ROWS)
        ]
        async with db.session() as s:
            stmt = insert_for(s, User)
            stmt = stmt.on_conflict_do_update(index_elements=["id"], set_={"last_seen_at": stmt.excluded.last_seen_at})
            await s.execute(stmt, rows)  # executemany: one round trip per batch of rows

    baseline = await rate(ROWS, per_row)
    value = await rate(ROWS, batched)
    return [Result("user upserts/s, batched vs one txn per row", "rows/s", value, baseline, target=10)]
