"""Web: leaderboard page server time at 100,000 members, against the bare keyset SQL query in the same run.

Requests go through the whole ASGI app in-process (routing, session middleware, queries, the server's config,
Jinja2 rendering), without a network in between, at the top, the middle and the end of the board. The
baseline is the page's row SELECT (the same keyset condition, 51 rows) on its own; the page adds two counts
(members, and rows ahead of the cursor for the ranks), the server's config and the rendering. Results are in
pages per second (higher is better): the ratio says what the page costs above its query; the "within 200 ms"
line is 200 ms divided by the slowest p99 of the three, which must stay at or above 1.
"""

from __future__ import annotations

import random
import statistics
import time

import httpx
from sqlalchemy import select

from benchmarks.common import Result
from guildkeep.config import load_settings
from guildkeep.db import Database
from guildkeep.db.dialect import insert_for
from guildkeep.identity.models import Guild, User
from guildkeep.leveling.models import Level
from guildkeep.leveling.queries import Cursor, after_clause
from guildkeep.leveling.rules import Curve
from guildkeep.leveling.service import LevelingService
from guildkeep.web.app import WebContext, create_app

MEMBERS = 100_000
GUILD = 42
REQUESTS = 60
CHUNK = 5_000
BUDGET_MS = 200.0


async def _seed(db: Database) -> list[tuple[int, int]]:
    rng = random.Random(16)
    curve = Curve("mee6")
    members = [(1_000_000 + i, rng.choice((0, rng.randrange(0, 2_000_000)))) for i in range(MEMBERS)]
    async with db.session() as s:
        await s.execute(insert_for(s, Guild).values(id=GUILD, name="Benchmark Server"))
    for start in range(0, MEMBERS, CHUNK):
        part = members[start:start + CHUNK]
        async with db.session() as s:
            await s.execute(insert_for(s, User), [{"id": uid, "username": f"member{uid}"} for uid, _xp in part])
            await s.execute(insert_for(s, Level), [{"guild_id": GUILD, "user_id": uid, "xp": xp,
                                                    "level": curve.level_for_xp(xp)} for uid, xp in part])
    return sorted(members, key=lambda m: (-m[1], m[0]))


def _percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]


async def run(db: Database) -> list[Result]:
    order = await _seed(db)
    settings = load_settings(database_url=str(db.engine.url.render_as_string(hide_password=False)),
                             web_session_secret="bench")
    app = create_app(WebContext(db, settings, LevelingService(db)))
    cursors = {"top": None, "middle": Cursor(order[MEMBERS // 2][1], order[MEMBERS // 2][0]),
               "end": Cursor(order[-30][1], order[-30][0])}
    results: list[Result] = []
    worst_p99 = 0.0
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://bench") as client:
        for where, cursor in cursors.items():
            url = f"/guilds/{GUILD}" + (f"?after={cursor}" if cursor else "")
            assert (await client.get(url)).status_code == 200  # warm up
            page_ms, sql_ms = [], []
            for _ in range(REQUESTS):
                start = time.perf_counter()
                resp = await client.get(url)
                page_ms.append((time.perf_counter() - start) * 1000)
                assert resp.status_code == 200
                start = time.perf_counter()
                await _bare_query(db, cursor)
                sql_ms.append((time.perf_counter() - start) * 1000)
            p50, p99 = _percentiles(page_ms)
            q50, q99 = _percentiles(sql_ms)
            worst_p99 = max(worst_p99, p99)
            print(f"  web leaderboard {where:<6} page p50 {p50:7.1f} ms  p99 {p99:7.1f} ms   "
                  f"bare query p50 {q50:6.1f} ms  p99 {q99:6.1f} ms")
            results.append(Result(f"leaderboard page ({where}) p50, pages/s vs query/s", "pages/s",
                                  1000 / p50, 1000 / q50))
    results.append(Result("leaderboard p99 within 200 ms (200/p99)", "ratio", BUDGET_MS / worst_p99, 1.0,
                          target=1.0))
    return results


async def _bare_query(db: Database, cursor: Cursor | None) -> None:
    stmt = select(Level.user_id, Level.xp, Level.level, User.username).join(User, User.id == Level.user_id) \
        .where(Level.guild_id == GUILD)
    if cursor is not None:
        stmt = stmt.where(after_clause(cursor))
    async with db.session(read_only=True) as s:
        (await s.execute(stmt.order_by(Level.xp.desc(), Level.user_id).limit(51))).all()
