"""Automatic backups run as the scheduler's recurring ``core.backup`` job."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from guildkeep.config import load_settings
from guildkeep.db import Database
from guildkeep.db.backup import list_backups
from guildkeep.scheduler import rules
from guildkeep.scheduler.core_jobs import BACKUP_KEY, BACKUP_KIND, install_backup_job
from guildkeep.scheduler.worker import Scheduler

NOW = datetime(2027, 3, 1, 12, 0, tzinfo=UTC)


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


async def test_backup_job_runs_every_interval_and_prunes(db: Database, database_url: str, tmp_path: Path) -> None:
    settings = load_settings(database_url=database_url, backup_dir=tmp_path / "backups", backup_interval_hours=6,
                             backup_keep=1)
    clock = Clock(NOW)
    scheduler = Scheduler(db, clock=clock)
    job = await install_backup_job(scheduler, db, settings, now=NOW)
    assert job is not None
    assert (job.kind, job.dedup_key, job.recurrence, job.interval_seconds, job.run_at) == (
        BACKUP_KIND, BACKUP_KEY, rules.INTERVAL, 6 * 3600, NOW + timedelta(hours=6))
    assert scheduler.kinds == [BACKUP_KIND]
    # a second process (or a restart) finds the job already scheduled
    again = await install_backup_job(Scheduler(db), db, settings, now=NOW + timedelta(hours=1))
    assert again is not None
    assert again.id == job.id
    assert await scheduler.service.count() == 1

    assert await scheduler.run_until_idle() == 0
    assert list_backups(settings.backup_dir) == []
    clock.now = NOW + timedelta(hours=6, seconds=2)
    assert await scheduler.run_until_idle() == 1
    assert len(list_backups(settings.backup_dir)) == 1
    nxt = await scheduler.service.find(BACKUP_KIND, BACKUP_KEY)
    assert nxt is not None
    assert (nxt.status, nxt.run_at) == (rules.PENDING, NOW + timedelta(hours=12))
    clock.now = NOW + timedelta(hours=12, seconds=2)
    assert await scheduler.run_until_idle() == 1
    assert len(list_backups(settings.backup_dir)) == 1  # keep=1: the older one was pruned
    assert (await scheduler.service.get(job.id)).status == rules.DONE


async def test_changing_the_interval_moves_the_job_and_zero_cancels_it(db: Database, database_url: str,
                                                                        tmp_path: Path) -> None:
    base = {"database_url": database_url, "backup_dir": tmp_path}
    job = await install_backup_job(Scheduler(db), db, load_settings(**base, backup_interval_hours=24), now=NOW)
    assert job is not None
    later = NOW + timedelta(hours=2)
    moved = await install_backup_job(Scheduler(db), db, load_settings(**base, backup_interval_hours=1), now=later)
    assert moved is not None
    assert (moved.id, moved.interval_seconds, moved.run_at) == (job.id, 3600, later + timedelta(hours=1))
    off = Scheduler(db)
    assert await install_backup_job(off, db, load_settings(**base, backup_interval_hours=0), now=later) is None
    assert off.kinds == []
    assert (await off.service.get(job.id)).status == rules.CANCELLED
    back = await install_backup_job(Scheduler(db), db, load_settings(**base, backup_interval_hours=2), now=later)
    assert back is not None
    assert back.id != job.id
    assert back.status == rules.PENDING


async def test_a_failing_backup_is_retried_then_parked_and_the_series_goes_on(
    db: Database, database_url: str, tmp_path: Path
) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("x")  # the backup directory cannot be created: every attempt fails
    settings = load_settings(database_url=database_url, backup_dir=blocker / "backups", backup_interval_hours=1)
    clock = Clock(NOW)
    scheduler = Scheduler(db, clock=clock, backoff_base=10)
    job = await install_backup_job(scheduler, db, settings, now=NOW)
    assert job is not None
    clock.now = NOW + timedelta(hours=1)
    for _ in range(3):
        assert await scheduler.run_until_idle() == 1
        clock.now += timedelta(minutes=5)
    parked = await scheduler.service.get(job.id)
    assert parked.status == rules.FAILED
    assert parked.attempts == 3
    assert "Error" in (parked.last_error or "")
    nxt = await scheduler.service.find(BACKUP_KIND, BACKUP_KEY)
    assert nxt is not None
    assert nxt.status == rules.PENDING
    assert nxt.run_at == NOW + timedelta(hours=2)


async def test_in_memory_database_has_no_backup_job(tmp_path: Path) -> None:
    from guildkeep.db import migrate

    db = Database("sqlite+aiosqlite:///:memory:")
    try:
        await migrate.upgrade(db)
        scheduler = Scheduler(db)
        settings = load_settings(database_url="sqlite+aiosqlite:///:memory:", backup_dir=tmp_path)
        assert await install_backup_job(scheduler, db, settings) is None
        assert scheduler.kinds == []
        assert await scheduler.service.count() == 0
    finally:
        await db.dispose()
