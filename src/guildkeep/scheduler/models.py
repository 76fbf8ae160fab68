"""The scheduler's table: one row per occurrence of a job, claimed by one worker at a time."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import CheckConstraint, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from guildkeep.db import Base, BigIntPK, PortableJSON, Snowflake, TimestampMixin, UTCDateTime
from guildkeep.scheduler.rules import (
    DEDUP_KEY_MAX,
    DEFAULT_MAX_ATTEMPTS,
    KIND_MAX,
    NONE,
    PENDING,
    RECURRENCES,
    STATUSES,
)


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class ScheduledJob(TimestampMixin, Base):
    """A job due at ``run_at``. A recurring job is a chain of rows: finishing one inserts the next.

    ``dedup_key`` is unique per kind, so "schedule unless already scheduled" is one idempotent
    insert; the key moves to the next occurrence of a recurring job. ``locked_by``/``locked_until``
    are the lease of the worker running it: a job whose worker died is claimed again after it.
    ``anchor_at`` is the first occurrence of the series, from which every later one is computed.
    """

    __tablename__ = "scheduler_jobs"
    __table_args__ = (
        UniqueConstraint("kind", "dedup_key"),
        Index("ix_scheduler_jobs_status_run_at", "status", "run_at"),
        Index("ix_scheduler_jobs_guild_id", "guild_id"),
        CheckConstraint(_in("status", STATUSES), name="status"),
        CheckConstraint(_in("recurrence", RECURRENCES), name="recurrence"),
        CheckConstraint("attempts >= 0", name="attempts_non_negative"),
        CheckConstraint("max_attempts >= 1", name="max_attempts_positive"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(KIND_MAX), nullable=False)
    guild_id: Mapped[int | None] = mapped_column(Snowflake())
    payload: Mapped[Any] = mapped_column(PortableJSON(), nullable=False, default=dict)
    run_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    anchor_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    recurrence: Mapped[str] = mapped_column(String(16), nullable=False, default=NONE)
    interval_seconds: Mapped[int | None] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), nullable=False, default=PENDING)
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=DEFAULT_MAX_ATTEMPTS)
    last_error: Mapped[str | None] = mapped_column(Text)
    locked_by: Mapped[str | None] = mapped_column(String(128))
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    dedup_key: Mapped[str | None] = mapped_column(String(DEDUP_KEY_MAX))
