"""A scheduler worker in its own process, for the multi-process test.

``python -m tests.scheduler.worker_process URL DIR NAME NOW``: registers ``test.job``, writes
``DIR/NAME.ready``, waits for ``DIR/go``, runs every due job and appends each job id it ran to
``DIR/NAME.runs``.
"""

from __future__ import annotations

import asyncio
import sys
import time
from datetime import datetime
from pathlib import Path

from guildkeep.db import Database
from guildkeep.scheduler.results import JobInfo
from guildkeep.scheduler.worker import Scheduler


async def main(url: str, folder: Path, name: str, now: datetime) -> None:
    db = Database(url)
    out = (folder / f"{name}.runs").open("a", encoding="utf-8")

    async def record(job: JobInfo) -> None:
        out.write(f"{job.id}\n")
        out.flush()
        await asyncio.sleep(0.02)  # long enough that a process started a little late still gets jobs to race for

    try:
        scheduler = Scheduler(db, clock=lambda: now, worker_id=name, batch=4)
        scheduler.register("test.job", record)
        await scheduler.service.has_due(now=now, kinds=["test.job"])  # connect before the start line
        (folder / f"{name}.ready").touch()
        deadline = time.monotonic() + 60
        while not (folder / "go").exists():
            if time.monotonic() > deadline:
                raise TimeoutError("no go signal")
            await asyncio.sleep(0.01)
        await scheduler.run_until_idle()
    finally:
        out.close()
        await db.dispose()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], Path(sys.argv[2]), sys.argv[3], datetime.fromisoformat(sys.argv[4])))
