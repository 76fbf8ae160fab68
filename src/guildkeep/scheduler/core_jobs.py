"""The core's own recurring jobs. Today: ``core.backup``, the automatic backup every N hours.

`install_core_jobs` registers their handlers on a `Scheduler` and makes sure each is scheduled
exactly once (by its dedup key), whichever process starts first; a change of interval in the
settings moves the pending job, and an interval of 0 cancels it.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from guildkeep.db import Database, utcnow
from guildkeep.db import backup as backups
from guildkeep.scheduler import rules
from guildkeep.scheduler.results import JobInfo
from guildkeep.scheduler.worker import Scheduler

log = logging.getLogger(__name__)

BACKUP_KIND = "core.backup"
BACKUP_KEY = "every-interval"
BACKUP_MAX_ATTEMPTS = 3


async def install_backup_job(
    scheduler: Scheduler, db: Database, settings: Any, *, now: datetime | None = None
) -> JobInfo | None:
    """Register ``core.backup`` and schedule it every ``settings.backup_interval_hours`` (first run one
    interval from now); cancel it when backups are off or the database lives in memory."""
    now = now or utcnow()
    seconds = round(float(settings.backup_interval_hours) * 3600)
    service = scheduler.service
    if seconds <= 0 or db.is_memory:
        cancelled = await service.cancel_key(BACKUP_KIND, BACKUP_KEY, now=now)
        if cancelled is not None:
            log.info("automatic backups are off; cancelled scheduled backup job %s", cancelled.id)
        return None

    async def run_backup(_job: JobInfo) -> None:
        path = await backups.run_scheduled_backup(db, settings)
        log.info("scheduled backup written to %s", path)

    scheduler.register(BACKUP_KIND, run_backup)
    first = now + timedelta(seconds=seconds)
    result = await service.schedule(
        BACKUP_KIND, first, now=now, recurrence=rules.INTERVAL, interval_seconds=seconds,
        dedup_key=BACKUP_KEY, max_attempts=BACKUP_MAX_ATTEMPTS,
    )
    job = result.job
    if not result.created and job.status == rules.PENDING and job.interval_seconds != seconds:
        job = await service.reschedule(job.id, first, now=now, recurrence=rules.INTERVAL, interval_seconds=seconds)
        log.info("backup interval changed to %.1f h; next backup at %s", seconds / 3600, job.run_at)
    return job


async def install_core_jobs(scheduler: Scheduler, db: Database, settings: Any) -> None:
    """Register and schedule every core job on ``scheduler``."""
    await install_backup_job(scheduler, db, settings)
