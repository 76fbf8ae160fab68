"""``guildkeep jobs list|cancel|retry`` on both databases."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TypeVar

from typer.testing import CliRunner

from guildkeep.cli import app
from guildkeep.db import Database
from guildkeep.scheduler import rules
from guildkeep.scheduler.service import SchedulerService

T = TypeVar("T")
runner = CliRunner()
WHEN = datetime(2027, 3, 1, 12, 0, tzinfo=UTC)


def with_service(url: str, work: Callable[[SchedulerService], Awaitable[T]]) -> T:
    async def go() -> T:
        db = Database(url)
        try:
            return await work(SchedulerService(db))
        finally:
            await db.dispose()

    return asyncio.run(go())


def test_jobs_list_cancel_retry(empty_database_url: str) -> None:
    url = empty_database_url
    env = {"GUILDKEEP_DATABASE_URL": url, "GUILDKEEP_LOG_LEVEL": "WARNING"}
    assert runner.invoke(app, ["db", "upgrade"], env=env).exit_code == 0
    empty = runner.invoke(app, ["jobs", "list"], env=env)
    assert empty.exit_code == 0
    assert "no jobs" in empty.output

    async def setup(svc: SchedulerService) -> tuple[int, int]:
        daily = await svc.schedule("demo.daily", WHEN, now=WHEN, guild_id=42, recurrence=rules.DAILY)
        broken = await svc.schedule("demo.broken", WHEN, now=WHEN, max_attempts=1)
        [claimed] = await svc.claim(worker="w", now=WHEN, kinds=["demo.broken"])
        await svc.fail(claimed, worker="w", now=WHEN, error="ValueError: " + "x" * 100)
        return daily.job.id, broken.job.id

    daily_id, broken_id = with_service(url, setup)
    listed = runner.invoke(app, ["jobs", "list"], env={**env, "COLUMNS": "200"})
    assert listed.exit_code == 0, listed.output
    assert "demo.daily" in listed.output
    assert "daily" in listed.output
    assert "demo.broken" in listed.output
    assert "ValueError: xxx" in listed.output
    failed_only = runner.invoke(app, ["jobs", "list", "--status", "failed"], env={**env, "COLUMNS": "200"})
    assert "demo.broken" in failed_only.output
    assert "demo.daily" not in failed_only.output
    bad_status = runner.invoke(app, ["jobs", "list", "--status", "sleeping"], env=env)
    assert bad_status.exit_code == 2

    cancelled = runner.invoke(app, ["jobs", "cancel", str(daily_id)], env=env)
    assert cancelled.exit_code == 0, cancelled.output
    assert f"cancelled job {daily_id} (demo.daily)" in cancelled.output
    again = runner.invoke(app, ["jobs", "cancel", str(daily_id)], env=env)
    assert again.exit_code == 1
    assert "is cancelled" in again.output
    missing = runner.invoke(app, ["jobs", "cancel", "999999"], env=env)
    assert missing.exit_code == 1
    assert "no scheduled job 999999" in missing.output

    retried = runner.invoke(app, ["jobs", "retry", str(broken_id)], env=env)
    assert retried.exit_code == 0, retried.output
    state = with_service(url, lambda svc: svc.get(broken_id))
    assert (state.status, state.attempts) == (rules.PENDING, 0)
    not_failed = runner.invoke(app, ["jobs", "retry", str(daily_id)], env=env)
    assert not_failed.exit_code == 1
    assert "only a failed job can be retried" in not_failed.output
