"""Two worker processes on one database run each due job exactly once."""

from __future__ import annotations

import asyncio
import os
import sys
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

from guildkeep.db import Database
from guildkeep.scheduler import rules
from guildkeep.scheduler.service import SchedulerService

NOW = datetime(2027, 6, 1, 8, 0, tzinfo=UTC)
ROOT = Path(__file__).resolve().parents[2]


async def test_two_processes_run_each_job_exactly_once(db: Database, database_url: str, tmp_path: Path) -> None:
    svc = SchedulerService(db)
    total = 200
    for i in range(total):
        await svc.schedule("test.job", NOW - timedelta(seconds=i % 11), now=NOW, payload={"i": i})
    names = ("p1", "p2")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = [
        await asyncio.create_subprocess_exec(
            sys.executable, "-m", "tests.scheduler.worker_process", database_url, str(tmp_path), name,
            NOW.isoformat(), cwd=ROOT, env=env, stderr=asyncio.subprocess.PIPE,
        )
        for name in names
    ]
    async with asyncio.timeout(90):
        while not all((tmp_path / f"{n}.ready").exists() for n in names):
            for proc in procs:
                assert proc.returncode is None, (await proc.stderr.read()).decode()  # type: ignore[union-attr]
            await asyncio.sleep(0.05)
        (tmp_path / "go").touch()
        outcomes = [await proc.wait() for proc in procs]
    errors = [(await p.stderr.read()).decode() for p in procs]  # type: ignore[union-attr]
    assert outcomes == [0, 0], errors
    runs: Counter[int] = Counter()
    per_process = {}
    for name in names:
        ids = [int(line) for line in (tmp_path / f"{name}.runs").read_text().split()]
        per_process[name] = len(ids)
        runs.update(ids)
    assert len(runs) == total
    assert set(runs.values()) == {1}, [job for job, n in runs.items() if n > 1]
    assert sum(per_process.values()) == total
    assert all(n > 0 for n in per_process.values()), per_process  # both really raced
    assert await svc.count(status=rules.DONE) == total
