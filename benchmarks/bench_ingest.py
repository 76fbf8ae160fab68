"""Chat activity at scale through the write-behind path, against the raw driver's batched upserts (the storage
limit) and the ORM's unit of work per event: `guildkeep.leveling.bench` (also ``guildkeep bench ingest``).

Full scale by default (1,000,000 events over 1,000,000 members in 1,000 servers); set
``GUILDKEEP_BENCH_INGEST_EVENTS`` / ``GUILDKEEP_BENCH_INGEST_MEMBERS`` for a quicker run.
"""

from __future__ import annotations

import os
import sys

from sqlalchemy.engine import make_url

from benchmarks.common import Result
from guildkeep.db import Database
from guildkeep.leveling import bench


async def run(db: Database) -> list[Result]:
    scale = bench.Scale(events=int(os.environ.get("GUILDKEEP_BENCH_INGEST_EVENTS", "1000000")),
                        members=int(os.environ.get("GUILDKEEP_BENCH_INGEST_MEMBERS", "1000000")))
    pg_url = make_url(str(db.url.render_as_string(hide_password=False))).set(database="postgres")
    r = await bench.run_backend(db.backend, scale, pg_url=pg_url.render_as_string(hide_password=False),
                                log=lambda m: sys.stderr.write(m + "\n"))
    sys.stderr.write(bench.table([r]) + "\n")
    assert all(r.checks.values()), r.checks
    return [
        Result("events/s end to end vs raw upserts 10k/txn", "events/s", r.guildkeep_events_per_s,
               r.baseline_events_per_s, target=bench.TARGETS["vs_baseline"]),
        Result("events/s end to end vs ORM txn per event", "events/s", r.guildkeep_events_per_s,
               r.naive_events_per_s, target=bench.TARGETS["vs_naive"]),
    ]
