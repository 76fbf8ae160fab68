"""`Scheduler`: the worker loop a bot process runs. Handlers are registered by kind; jobs live in the database.

    scheduler = Scheduler(db, shard_ids=[0], shard_count=2)
    scheduler.register("leveling.quest_reset", handler)   # async def handler(job: JobInfo) -> None
    scheduler.start()
    ...
    await scheduler.stop()

Each poll claims a batch of due jobs of the registered kinds owned by this process's shards, runs
their handlers one after the other, and records the outcome. While a handler runs, its lease is
renewed, so only a process that died (or hung past the lease) loses its jobs to another worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import uuid
from collections.abc import Awaitable, Callable, Iterable
from datetime import datetime

from guildkeep.db import Database, utcnow
from guildkeep.scheduler import rules
from guildkeep.scheduler.results import FinishResult, JobInfo
from guildkeep.scheduler.service import DEFAULT_LEASE_SECONDS, LEASE_LOST, SchedulerService, ShardFilter

log = logging.getLogger(__name__)

Handler = Callable[[JobInfo], Awaitable[None]]
Clock = Callable[[], datetime]

DEFAULT_POLL_SECONDS = 5.0
DEFAULT_BATCH = 10


def default_worker_id() -> str:
    """Host, process and a random suffix: unique per `Scheduler`, readable in ``guildkeep jobs list``."""
    return f"{socket.gethostname()[:60]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class Scheduler:
    """Runs due jobs of the registered kinds for this process's shards until `stop` is called."""

    def __init__(
        self,
        db: Database,
        *,
        poll_seconds: float = DEFAULT_POLL_SECONDS,
        shard_ids: Iterable[int] | None = None,
        shard_count: int | None = None,
        worker_id: str | None = None,
        batch: int = DEFAULT_BATCH,
        lease_seconds: float = DEFAULT_LEASE_SECONDS,
        backoff_base: float = rules.BACKOFF_BASE_SECONDS,
        backoff_cap: float = rules.BACKOFF_CAP_SECONDS,
        clock: Clock = utcnow,
    ) -> None:
        if poll_seconds <= 0:
            raise ValueError("poll_seconds must be > 0")
        self.service = SchedulerService(db)
        self.poll_seconds = poll_seconds
        self.shards = ShardFilter.of(shard_ids, shard_count)
        self.worker_id = worker_id or default_worker_id()
        self.batch = batch
        self.lease_seconds = lease_seconds
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self.clock = clock
        self._handlers: dict[str, Handler] = {}
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()

    # ------------------------------------------------------------------------------- registration

    def register(self, kind: str, handler: Handler) -> None:
        """Run ``handler`` for jobs of ``kind``. Only registered kinds are claimed by this process."""
        if kind in self._handlers and self._handlers[kind] is not handler:
            raise ValueError(f"a handler for {kind!r} is already registered")
        self._handlers[kind] = handler

    def unregister(self, kind: str) -> None:
        """Stop claiming jobs of ``kind`` (a cog unloading)."""
        self._handlers.pop(kind, None)

    @property
    def kinds(self) -> list[str]:
        """The kinds this process has handlers for, the only ones it claims."""
        return sorted(self._handlers)

    # ------------------------------------------------------------------------------- running

    async def run_due(self, now: datetime | None = None) -> int:
        """Claim one batch of due jobs and run them; return how many were claimed."""
        now = now or self.clock()
        kinds = self.kinds
        if not await self.service.has_due(now=now, kinds=kinds, shards=self.shards):
            return 0
        jobs = await self.service.claim(
            worker=self.worker_id, now=now, kinds=kinds, limit=self.batch,
            lease_seconds=self.lease_seconds, shards=self.shards,
        )
        for index, job in enumerate(jobs):
            if self._stopping.is_set():  # stopping: hand the rest of the batch back, unrun
                for rest in jobs[index:]:
                    await self.service.release(rest, worker=self.worker_id, now=self.clock())
                return index
            await self._run_one(job, now)
        return len(jobs)

    async def run_until_idle(self, now: datetime | None = None, *, max_batches: int = 1000) -> int:
        """Run batches until nothing is due at ``now`` (or the clock); return how many jobs ran."""
        total = 0
        for _ in range(max_batches):
            ran = await self.run_due(now)
            total += ran
            if ran == 0:
                break
        return total

    async def _run_one(self, job: JobInfo, claimed_at: datetime) -> FinishResult:
        # Finished at the later of the clock and the time the job was claimed for: a run asked for a moment
        # ahead of the clock (time travel in tests) schedules a recurring job's next occurrence after that
        # moment, as the clock would have, instead of replaying every occurrence in between.
        def now() -> datetime:
            return max(self.clock(), claimed_at)

        if job.attempts > job.max_attempts:
            # Claimed again after its lease ran out more often than it may be tried: park it unrun.
            return await self._fail(job, f"{LEASE_LOST}, {job.attempts - 1} time(s)", now())
        handler = self._handlers.get(job.kind)
        if handler is None:  # unregistered between claim and run
            return await self._fail(job, f"no handler is registered for {job.kind!r}", now())
        heartbeat = asyncio.create_task(self._heartbeat(job.id), name=f"guildkeep-scheduler-lease-{job.id}")
        try:
            await handler(job)
        except Exception as exc:
            log.warning("job %s (%s) failed on attempt %d/%d: %s", job.id, job.kind, job.attempts,
                        job.max_attempts, exc, exc_info=exc)
            return await self._fail(job, f"{type(exc).__name__}: {exc}", now())
        finally:
            heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await heartbeat
        result = await self.service.complete(job, worker=self.worker_id, now=now())
        if result.status is None:
            log.warning("job %s (%s) finished after its lease was lost; its outcome was not recorded",
                        job.id, job.kind)
        return result

    async def _fail(self, job: JobInfo, error: str, now: datetime) -> FinishResult:
        result = await self.service.fail(
            job, worker=self.worker_id, now=now, error=error,
            backoff_base=self.backoff_base, backoff_cap=self.backoff_cap,
        )
        if result.status == rules.FAILED:
            log.error("job %s (%s) parked after %d attempt(s): %s", job.id, job.kind, job.attempts, error)
        return result

    async def _heartbeat(self, job_id: int) -> None:
        interval = max(self.lease_seconds / 3, 0.05)
        while True:
            await asyncio.sleep(interval)
            try:
                held = await self.service.renew(job_id, worker=self.worker_id, now=self.clock(),
                                                lease_seconds=self.lease_seconds)
            except Exception:
                log.exception("could not renew the lease on job %s", job_id)
                continue
            if not held:
                log.warning("lost the lease on job %s (cancelled or claimed by another worker)", job_id)
                return

    # ------------------------------------------------------------------------------- the loop

    @property
    def running(self) -> bool:
        """Whether the polling loop is running."""
        return self._task is not None and not self._task.done()

    def start(self) -> None:
        """Start polling in the background (idempotent)."""
        if self.running:
            return
        self._stopping = asyncio.Event()
        self._task = asyncio.create_task(self._loop(), name=f"guildkeep-scheduler-{self.worker_id}")

    async def stop(self, grace_seconds: float | None = None) -> None:
        """Stop polling. A job in progress finishes first; after ``grace_seconds`` it is abandoned
        (cancelled) and its lease lets another worker run it again."""
        self._stopping.set()
        task, self._task = self._task, None
        if task is None:
            return
        try:
            await asyncio.wait_for(asyncio.shield(task), grace_seconds)
        except TimeoutError:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            log.warning("scheduler stopped with a job in progress; its lease will expire")

    async def _loop(self) -> None:
        log.info("scheduler %s polling every %.1fs for %s", self.worker_id, self.poll_seconds,
                 ", ".join(self.kinds) or "no kinds yet")
        while not self._stopping.is_set():
            ran = 0
            try:
                ran = await self.run_due()
            except Exception:
                log.exception("scheduler poll failed; trying again in %.1fs", self.poll_seconds)
            if ran >= self.batch:
                continue  # a full batch: more may be due right now
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self.poll_seconds)
