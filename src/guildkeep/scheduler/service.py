"""The scheduler's transactions: schedule, claim, finish (done / retry / park), renew, cancel, retry, list.

Every state change is one conditional statement (``UPDATE … WHERE status = 'running' AND
locked_by = :worker``), so two workers, two processes or a worker whose lease ran out can never
both finish the same occurrence. Claiming is a single ``UPDATE … WHERE id IN (SELECT … FOR UPDATE
SKIP LOCKED LIMIT n) RETURNING …``: on PostgreSQL concurrent claimers skip each other's rows; on
SQLite the write transaction (``BEGIN IMMEDIATE``) makes the same statement the only writer.

Time is always a parameter (``now``); this module never reads a clock.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import ColumnElement, Table, and_, exists, func, literal_column, or_, select, true, update
from sqlalchemy.ext.asyncio import AsyncSession

from guildkeep.db import Database
from guildkeep.db.dialect import insert_for
from guildkeep.scheduler import rules
from guildkeep.scheduler.errors import JobNotFoundError, JobStateError, JobValidationError
from guildkeep.scheduler.models import ScheduledJob
from guildkeep.scheduler.results import FinishResult, JobInfo, ScheduleResult

JOBS = cast(Table, ScheduledJob.__table__)
KIND_RE = re.compile(r"^[a-z0-9][a-z0-9_.:-]*$")
DEFAULT_LEASE_SECONDS = 300.0
LIST_LIMIT_MAX = 500
LEASE_LOST = "the worker running it stopped before it finished (its lease expired)"


@dataclass(frozen=True)
class ShardFilter:
    """The guilds this process handles: Discord routes guild ``g`` to shard ``(g >> 22) % shard_count``.

    Jobs without a guild run on shard 0 only. ``shard_count`` None means one process runs everything.
    """

    shard_ids: tuple[int, ...] = ()
    shard_count: int | None = None

    @classmethod
    def of(cls, shard_ids: Iterable[int] | None, shard_count: int | None) -> ShardFilter:
        """The filter for a process running ``shard_ids`` of ``shard_count`` (no ids: all of them)."""
        if shard_count is None:
            return cls()
        if shard_count < 1:
            raise JobValidationError("The shard count must be at least 1.")
        ids = tuple(sorted(set(shard_ids))) if shard_ids else tuple(range(shard_count))
        if any(not 0 <= i < shard_count for i in ids):
            raise JobValidationError(f"Shard ids must be between 0 and {shard_count - 1}.")
        return cls(ids, shard_count)

    def owns(self, guild_id: int | None) -> bool:
        """Whether this process runs the jobs of ``guild_id`` (None: jobs without a guild)."""
        return self.shard_count is None or rules.shard_of(guild_id, self.shard_count) in self.shard_ids

    def clause(self) -> ColumnElement[bool]:
        """The same test as SQL on ``scheduler_jobs.guild_id``."""
        if self.shard_count is None:
            return true()
        guild = JOBS.c.guild_id
        shard = guild.op(">>")(literal_column(str(rules.SHARD_SHIFT))).op("%")(
            literal_column(str(int(self.shard_count)))
        )
        owned = and_(guild.is_not(None), shard.in_([literal_column(str(int(i))) for i in self.shard_ids]))
        if 0 in self.shard_ids:
            return or_(guild.is_(None), owned)
        return owned


ALL_SHARDS = ShardFilter()


def _require_aware(value: datetime, name: str) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise JobValidationError(f"{name} must be a timezone-aware (UTC) time.")
    return value


def _check_kind(kind: str) -> str:
    if not isinstance(kind, str) or not KIND_RE.match(kind) or len(kind) > rules.KIND_MAX:
        raise JobValidationError(
            f"A job kind is 1-{rules.KIND_MAX} lowercase letters, digits and . _ : - (got {kind!r})."
        )
    return kind


def _info(row: Any) -> JobInfo:
    return JobInfo.from_row(row._mapping)


def _rowcount(result: Any) -> int:
    """Rows an UPDATE matched (``CursorResult.rowcount``; the session's ``execute`` is typed as ``Result``)."""
    return int(result.rowcount)


def _error_text(error: str) -> str:
    text = error.strip() or "failed without a message"
    return text if len(text) <= rules.ERROR_MAX else text[: rules.ERROR_MAX - 1] + "…"


class SchedulerService:
    """Durable jobs on the database. Methods take plain values and own their transactions."""

    def __init__(self, db: Database) -> None:
        self.db = db

    # ------------------------------------------------------------------------------- scheduling

    async def schedule(
        self,
        kind: str,
        run_at: datetime,
        *,
        now: datetime,
        guild_id: int | None = None,
        payload: Any = None,
        recurrence: str = rules.NONE,
        interval_seconds: int | None = None,
        dedup_key: str | None = None,
        max_attempts: int = rules.DEFAULT_MAX_ATTEMPTS,
    ) -> ScheduleResult:
        """Schedule ``kind`` at ``run_at``; with a ``dedup_key``, only if that key holds no job yet.

        A key stays with its job while it is pending, running or done (a one-off that already ran
        is not run again); a cancelled or parked job gives its key up to the new one. The first
        occurrence of a recurring job is ``run_at``; later ones are computed from it.
        """
        _check_kind(kind)
        _require_aware(run_at, "run_at")
        _require_aware(now, "now")
        try:
            rules.validate_recurrence(recurrence, interval_seconds)
        except ValueError as exc:
            raise JobValidationError(str(exc).capitalize() + ".") from exc
        if not 1 <= max_attempts <= rules.MAX_ATTEMPTS_LIMIT:
            raise JobValidationError(f"max_attempts must be between 1 and {rules.MAX_ATTEMPTS_LIMIT}.")
        if dedup_key is not None and not 1 <= len(dedup_key) <= rules.DEDUP_KEY_MAX:
            raise JobValidationError(f"A dedup key is 1-{rules.DEDUP_KEY_MAX} characters.")
        payload = {} if payload is None else payload
        try:
            json.dumps(payload)
        except (TypeError, ValueError) as exc:
            raise JobValidationError(f"The job's payload must be plain JSON: {exc}") from exc

        async def work(s: AsyncSession) -> ScheduleResult:
            if dedup_key is not None:
                await s.execute(
                    update(JOBS)
                    .where(JOBS.c.kind == kind, JOBS.c.dedup_key == dedup_key,
                           JOBS.c.status.in_((rules.CANCELLED, rules.FAILED)))
                    .values(dedup_key=None, updated_at=now)
                )
            stmt = insert_for(s, ScheduledJob).values(
                kind=kind, guild_id=guild_id, payload=payload, run_at=run_at, anchor_at=run_at,
                recurrence=recurrence, interval_seconds=interval_seconds, status=rules.PENDING, attempts=0,
                max_attempts=max_attempts, dedup_key=dedup_key, created_at=now, updated_at=now,
            )
            if dedup_key is not None:
                stmt = stmt.on_conflict_do_nothing(index_elements=["kind", "dedup_key"])
            row = (await s.execute(stmt.returning(*JOBS.c))).first()
            if row is not None:
                return ScheduleResult(_info(row), True)
            existing = (await s.execute(
                select(*JOBS.c).where(JOBS.c.kind == kind, JOBS.c.dedup_key == dedup_key)
            )).one()
            return ScheduleResult(_info(existing), False)

        return await self.db.run(work)

    async def reschedule(
        self,
        job_id: int,
        run_at: datetime,
        *,
        now: datetime,
        recurrence: str | None = None,
        interval_seconds: int | None = None,
    ) -> JobInfo:
        """Move a pending job (and, for a recurring one, its series) to start at ``run_at``."""
        _require_aware(run_at, "run_at")
        values: dict[str, Any] = {"run_at": run_at, "anchor_at": run_at, "updated_at": now}
        if recurrence is not None:
            try:
                rules.validate_recurrence(recurrence, interval_seconds)
            except ValueError as exc:
                raise JobValidationError(str(exc).capitalize() + ".") from exc
            values.update(recurrence=recurrence, interval_seconds=interval_seconds)

        async def work(s: AsyncSession) -> JobInfo:
            row = (await s.execute(
                update(JOBS).where(JOBS.c.id == job_id, JOBS.c.status == rules.PENDING)
                .values(**values).returning(*JOBS.c)
            )).first()
            if row is None:
                raise await self._why_not(s, job_id, "rescheduled", "pending")
            return _info(row)

        return await self.db.run(work)

    # ------------------------------------------------------------------------------- claiming

    async def has_due(
        self, *, now: datetime, kinds: Sequence[str], shards: ShardFilter = ALL_SHARDS
    ) -> bool:
        """Whether `claim` would find anything (a read, so an idle poll takes no write lock)."""
        if not kinds:
            return False
        async with self.db.session(read_only=True) as s:
            return bool(await s.scalar(select(exists().where(self._claimable(now, kinds, shards)))))

    @staticmethod
    def _claimable(now: datetime, kinds: Sequence[str], shards: ShardFilter) -> ColumnElement[bool]:
        due = or_(
            and_(JOBS.c.status == rules.PENDING, JOBS.c.run_at <= now),
            and_(JOBS.c.status == rules.RUNNING, JOBS.c.locked_until < now),  # its worker died: lease over
        )
        return and_(JOBS.c.kind.in_(list(kinds)), due, shards.clause())

    async def claim(
        self,
        *,
        worker: str,
        now: datetime,
        kinds: Sequence[str],
        limit: int = 10,
        lease_seconds: float = DEFAULT_LEASE_SECONDS,
        shards: ShardFilter = ALL_SHARDS,
    ) -> list[JobInfo]:
        """Take up to ``limit`` due jobs of ``kinds`` for ``worker`` (one conditional UPDATE … RETURNING).

        A claimed job is ``running``, its ``attempts`` counts this try, and ``locked_until`` is the
        lease: past it, any worker may claim the job again.
        """
        _require_aware(now, "now")
        if not kinds or limit < 1:
            return []
        claimable = self._claimable(now, kinds, shards)
        picked = (
            select(JOBS.c.id).where(claimable).order_by(JOBS.c.run_at, JOBS.c.id).limit(limit)
            .with_for_update(skip_locked=True)  # PostgreSQL; SQLite has no FOR UPDATE and needs none
        )
        stmt = (
            update(JOBS)
            .where(JOBS.c.id.in_(picked.scalar_subquery()), claimable)
            .values(status=rules.RUNNING, attempts=JOBS.c.attempts + 1, locked_by=worker,
                    locked_until=now + timedelta(seconds=lease_seconds), updated_at=now)
            .returning(*JOBS.c)
        )

        async def work(s: AsyncSession) -> list[JobInfo]:
            rows = (await s.execute(stmt)).all()
            return sorted((_info(r) for r in rows), key=lambda j: (j.run_at, j.id))

        return await self.db.run(work)

    async def renew(self, job_id: int, *, worker: str, now: datetime,
                    lease_seconds: float = DEFAULT_LEASE_SECONDS) -> bool:
        """Extend ``worker``'s lease on a running job; False when the worker no longer holds it."""
        async with self.db.session() as s:
            result = await s.execute(
                update(JOBS)
                .where(JOBS.c.id == job_id, JOBS.c.status == rules.RUNNING, JOBS.c.locked_by == worker)
                .values(locked_until=now + timedelta(seconds=lease_seconds), updated_at=now)
            )
            return _rowcount(result) == 1

    async def release(self, job: JobInfo, *, worker: str, now: datetime) -> bool:
        """Give a claimed job back unrun (the worker is stopping): pending again, this attempt not counted."""
        async with self.db.session() as s:
            result = await s.execute(
                update(JOBS)
                .where(JOBS.c.id == job.id, JOBS.c.status == rules.RUNNING, JOBS.c.locked_by == worker)
                .values(status=rules.PENDING, attempts=JOBS.c.attempts - 1, locked_by=None, locked_until=None,
                        updated_at=now)
            )
            return _rowcount(result) == 1

    # ------------------------------------------------------------------------------- finishing

    async def complete(self, job: JobInfo, *, worker: str, now: datetime) -> FinishResult:
        """Mark a claimed job done and, for a recurring job, insert its next occurrence in the same transaction."""

        async def work(s: AsyncSession) -> FinishResult:
            return await self._finish(s, job, worker=worker, now=now, status=rules.DONE, error=None)

        return await self.db.run(work)

    async def fail(
        self,
        job: JobInfo,
        *,
        worker: str,
        now: datetime,
        error: str,
        backoff_base: float = rules.BACKOFF_BASE_SECONDS,
        backoff_cap: float = rules.BACKOFF_CAP_SECONDS,
    ) -> FinishResult:
        """Record a failed attempt: back to ``pending`` after a backoff, or parked as ``failed`` after the last.

        A recurring job's series goes on when one occurrence is parked: its next occurrence is
        scheduled in the same transaction.
        """
        error = _error_text(error)

        async def work(s: AsyncSession) -> FinishResult:
            if job.attempts < job.max_attempts:
                retry_at = now + rules.backoff_delay(job.attempts, base=backoff_base, cap=backoff_cap)
                result = await s.execute(
                    update(JOBS)
                    .where(JOBS.c.id == job.id, JOBS.c.status == rules.RUNNING, JOBS.c.locked_by == worker)
                    .values(status=rules.PENDING, run_at=retry_at, last_error=error, locked_by=None,
                            locked_until=None, updated_at=now)
                )
                if _rowcount(result) != 1:
                    return FinishResult(None)
                return FinishResult(rules.PENDING, retry_at=retry_at)
            return await self._finish(s, job, worker=worker, now=now, status=rules.FAILED, error=error)

        return await self.db.run(work)

    async def _finish(
        self, s: AsyncSession, job: JobInfo, *, worker: str, now: datetime, status: str, error: str | None
    ) -> FinishResult:
        recurring = job.recurrence != rules.NONE
        values: dict[str, Any] = {"status": status, "locked_by": None, "locked_until": None, "updated_at": now}
        if error is not None:
            values["last_error"] = error
        if recurring:
            values["dedup_key"] = None  # the key moves to the next occurrence
        result = await s.execute(
            update(JOBS)
            .where(JOBS.c.id == job.id, JOBS.c.status == rules.RUNNING, JOBS.c.locked_by == worker)
            .values(**values)
        )
        if _rowcount(result) != 1:
            return FinishResult(None)  # lease lost (another worker has it) or cancelled meanwhile
        if not recurring:
            return FinishResult(status)
        next_at = rules.next_occurrence(job.anchor_at, job.recurrence, max(job.run_at, now), job.interval_seconds)
        assert next_at is not None
        row = (await s.execute(
            insert_for(s, ScheduledJob).values(
                kind=job.kind, guild_id=job.guild_id, payload=job.payload, run_at=next_at, anchor_at=job.anchor_at,
                recurrence=job.recurrence, interval_seconds=job.interval_seconds, status=rules.PENDING,
                attempts=0, max_attempts=job.max_attempts, dedup_key=job.dedup_key, created_at=now,
                updated_at=now,
            ).returning(*JOBS.c)
        )).one()
        return FinishResult(status, next_job=_info(row))

    # ------------------------------------------------------------------------------- administration

    async def _why_not(self, s: AsyncSession, job_id: int, verb: str, allowed: str) -> Exception:
        status = await s.scalar(select(JOBS.c.status).where(JOBS.c.id == job_id))
        if status is None:
            return JobNotFoundError(f"There is no scheduled job {job_id}.")
        return JobStateError(f"Job {job_id} is {status}; only a {allowed} job can be {verb}.")

    async def cancel(self, job_id: int, *, now: datetime) -> JobInfo:
        """Cancel a pending, running or parked job; a recurring job's series stops with it."""

        async def work(s: AsyncSession) -> JobInfo:
            row = (await s.execute(
                update(JOBS)
                .where(JOBS.c.id == job_id, JOBS.c.status.in_((rules.PENDING, rules.RUNNING, rules.FAILED)))
                .values(status=rules.CANCELLED, locked_by=None, locked_until=None, updated_at=now)
                .returning(*JOBS.c)
            )).first()
            if row is None:
                raise await self._why_not(s, job_id, "cancelled", "pending, running or failed")
            return _info(row)

        return await self.db.run(work)

    async def cancel_key(self, kind: str, dedup_key: str, *, now: datetime) -> JobInfo | None:
        """Cancel the live job holding ``dedup_key`` for ``kind``; None when there is none."""

        async def work(s: AsyncSession) -> JobInfo | None:
            row = (await s.execute(
                update(JOBS)
                .where(JOBS.c.kind == kind, JOBS.c.dedup_key == dedup_key,
                       JOBS.c.status.in_((rules.PENDING, rules.RUNNING, rules.FAILED)))
                .values(status=rules.CANCELLED, locked_by=None, locked_until=None, updated_at=now)
                .returning(*JOBS.c)
            )).first()
            return None if row is None else _info(row)

        return await self.db.run(work)

    async def retry(self, job_id: int, *, now: datetime) -> JobInfo:
        """Put a parked (failed) job back to run now with fresh attempts.

        A parked occurrence of a recurring job has already handed the series on to its next
        occurrence, so it is retried once, as a one-off.
        """

        async def work(s: AsyncSession) -> JobInfo:
            row = (await s.execute(
                update(JOBS)
                .where(JOBS.c.id == job_id, JOBS.c.status == rules.FAILED)
                .values(status=rules.PENDING, attempts=0, run_at=now, locked_by=None, locked_until=None,
                        recurrence=rules.NONE, interval_seconds=None, updated_at=now)
                .returning(*JOBS.c)
            )).first()
            if row is None:
                raise await self._why_not(s, job_id, "retried", "failed")
            return _info(row)

        return await self.db.run(work)

    async def get(self, job_id: int) -> JobInfo:
        """One job by id."""
        async with self.db.session(read_only=True) as s:
            row = (await s.execute(select(*JOBS.c).where(JOBS.c.id == job_id))).first()
        if row is None:
            raise JobNotFoundError(f"There is no scheduled job {job_id}.")
        return _info(row)

    async def find(self, kind: str, dedup_key: str) -> JobInfo | None:
        """The job currently holding ``dedup_key`` for ``kind``, if any."""
        async with self.db.session(read_only=True) as s:
            row = (await s.execute(
                select(*JOBS.c).where(JOBS.c.kind == kind, JOBS.c.dedup_key == dedup_key)
            )).first()
        return None if row is None else _info(row)

    async def list_jobs(
        self,
        *,
        status: str | None = None,
        kind: str | None = None,
        guild_id: int | None = None,
        limit: int = 50,
    ) -> list[JobInfo]:
        """Jobs in the order they are (or were) due, filtered by status, kind or guild."""
        if status is not None and status not in rules.STATUSES:
            raise JobValidationError(f"Unknown status {status!r}; use one of {', '.join(rules.STATUSES)}.")
        limit = max(1, min(limit, LIST_LIMIT_MAX))
        query = select(*JOBS.c)
        if status is not None:
            query = query.where(JOBS.c.status == status)
        if kind is not None:
            query = query.where(JOBS.c.kind == kind)
        if guild_id is not None:
            query = query.where(JOBS.c.guild_id == guild_id)
        async with self.db.session(read_only=True) as s:
            rows = (await s.execute(query.order_by(JOBS.c.run_at, JOBS.c.id).limit(limit))).all()
        return [_info(r) for r in rows]

    async def count(self, *, status: str | None = None) -> int:
        """How many jobs (of ``status``) there are."""
        query = select(func.count()).select_from(JOBS)
        if status is not None:
            query = query.where(JOBS.c.status == status)
        async with self.db.session(read_only=True) as s:
            return int(await s.scalar(query) or 0)

