"""What the scheduler's service returns: plain dataclasses, no ORM rows, no discord objects."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class JobInfo:
    """One job occurrence as a handler, the CLI or a test sees it."""

    id: int
    kind: str
    guild_id: int | None
    payload: Any
    run_at: datetime
    anchor_at: datetime
    recurrence: str
    interval_seconds: int | None
    status: str
    attempts: int
    max_attempts: int
    last_error: str | None
    locked_by: str | None
    locked_until: datetime | None
    dedup_key: str | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> JobInfo:
        """Build from a ``scheduler_jobs`` row mapping."""
        return cls(**{name: row[name] for name in cls.__dataclass_fields__})


@dataclass(frozen=True)
class ScheduleResult:
    """The job a `schedule` call stands for; ``created`` is False when the dedup key already held one."""

    job: JobInfo
    created: bool


@dataclass(frozen=True)
class FinishResult:
    """How an attempt ended: the job's new status (None: this worker no longer held it) and the next occurrence."""

    status: str | None
    next_job: JobInfo | None = None
    retry_at: datetime | None = None
