"""The scheduler's part of an export and a forget: jobs whose payload names the user.

No job kind stores a user today (``core.backup`` carries no payload). The rule for the kinds to
come: a job about a person puts their id in its payload as ``"user_id"`` (or in a ``"user_ids"``
list); such jobs are exported, and deleted when that person is forgotten, whatever their status (a
recurring job's chain ends with it). Jobs that name a user any other way are not found.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from guildkeep.privacy.registry import ForgetReport, row_dict
from guildkeep.scheduler.models import ScheduledJob

BATCH = 1000


def names_user(payload: Any, user_id: int) -> bool:
    """True when a job's payload names ``user_id`` under ``user_id`` or in ``user_ids``."""
    if not isinstance(payload, dict):
        return False

    def same(value: Any) -> bool:
        return not isinstance(value, bool) and isinstance(value, int | str) and str(value) == str(user_id)

    listed = payload.get("user_ids")
    return same(payload.get("user_id")) or (isinstance(listed, list) and any(same(v) for v in listed))


async def _job_ids(session: AsyncSession, user_id: int) -> list[int]:
    """The jobs naming the user.

    Payloads are JSON on SQLite and JSONB on PostgreSQL, so they are read in batches and matched
    here rather than by a dialect-specific JSON query.
    """
    found: list[int] = []
    last = 0
    while True:
        rows = (
            await session.execute(
                select(ScheduledJob.id, ScheduledJob.payload)
                .where(ScheduledJob.id > last).order_by(ScheduledJob.id).limit(BATCH)
            )
        ).all()
        if not rows:
            return found
        found += [job_id for job_id, payload in rows if names_user(payload, user_id)]
        last = rows[-1][0]


class SchedulerPrivacy:
    """Scheduled jobs about the user."""

    name = "scheduler"
    tables = ("scheduler_jobs",)
    order = 100

    async def export_user(self, session: AsyncSession, user_id: int) -> dict[str, Any]:
        """The jobs whose payload names the user."""
        ids = await _job_ids(session, user_id)
        jobs = (
            (await session.execute(select(ScheduledJob).where(ScheduledJob.id.in_(ids)).order_by(ScheduledJob.id)))
            .scalars().all() if ids else []
        )
        return {"jobs": [row_dict(j, exclude=("locked_by", "locked_until")) for j in jobs]}

    async def forget_user(self, session: AsyncSession, user_id: int) -> ForgetReport:
        """Delete the jobs whose payload names the user."""
        report = ForgetReport(self.name)
        ids = await _job_ids(session, user_id)
        if ids:
            result = await session.execute(delete(ScheduledJob).where(ScheduledJob.id.in_(ids)))
            report.removed("scheduler_jobs", result)
        return report


PROVIDER = SchedulerPrivacy()
