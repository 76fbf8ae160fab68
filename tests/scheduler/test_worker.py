"""The worker loop: it polls, runs what comes due, and stops cleanly."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from guildkeep.db import Database
from guildkeep.scheduler import rules
from guildkeep.scheduler.results import JobInfo
from guildkeep.scheduler.service import SchedulerService
from guildkeep.scheduler.worker import Scheduler
from tests.conftest import eventually

NOW = datetime(2027, 3, 1, 12, 0, tzinfo=UTC)
WAIT = 15.0


async def test_the_loop_picks_up_jobs_scheduled_after_it_started(db: Database) -> None:
    ran: list[int] = []

    async def handler(job: JobInfo) -> None:
        ran.append(job.payload["n"])

    scheduler = Scheduler(db, poll_seconds=0.02, clock=lambda: NOW)
    scheduler.register("test.job", handler)
    scheduler.start()
    try:
        assert scheduler.running
        for n in range(3):
            await scheduler.service.schedule("test.job", NOW, now=NOW, payload={"n": n})
        await eventually(lambda: len(ran) == 3)
    finally:
        await scheduler.stop()
    assert not scheduler.running
    assert sorted(ran) == [0, 1, 2]
    assert await scheduler.service.count(status=rules.DONE) == 3


async def test_stop_lets_the_job_in_progress_finish(db: Database) -> None:
    started, release = asyncio.Event(), asyncio.Event()

    async def slow(job: JobInfo) -> None:
        started.set()
        await release.wait()

    scheduler = Scheduler(db, poll_seconds=0.02, clock=lambda: NOW)
    scheduler.register("test.job", slow)
    job = (await scheduler.service.schedule("test.job", NOW, now=NOW)).job
    scheduler.start()
    await asyncio.wait_for(started.wait(), WAIT)
    stopping = asyncio.create_task(scheduler.stop())
    await asyncio.sleep(0.1)
    assert not stopping.done()  # waits for the handler
    release.set()
    await asyncio.wait_for(stopping, WAIT)
    assert (await scheduler.service.get(job.id)).status == rules.DONE


async def test_stop_after_grace_abandons_the_job_to_its_lease(db: Database) -> None:
    started = asyncio.Event()

    async def stuck(job: JobInfo) -> None:
        started.set()
        await asyncio.Event().wait()

    scheduler = Scheduler(db, poll_seconds=0.02, clock=lambda: NOW, lease_seconds=60, worker_id="gone")
    scheduler.register("test.job", stuck)
    job = (await scheduler.service.schedule("test.job", NOW, now=NOW)).job
    scheduler.start()
    await asyncio.wait_for(started.wait(), WAIT)
    await scheduler.stop(grace_seconds=0.05)
    held = await scheduler.service.get(job.id)
    assert (held.status, held.locked_by) == (rules.RUNNING, "gone")  # neither done nor failed

    ran: list[int] = []

    async def record(j: JobInfo) -> None:
        ran.append(j.id)

    other = Scheduler(db, clock=lambda: NOW + timedelta(seconds=61), worker_id="next")
    other.register("test.job", record)
    assert await other.run_until_idle() == 1
    assert ran == [job.id]


async def test_stopping_hands_the_rest_of_the_batch_back(db: Database) -> None:
    scheduler = Scheduler(db, clock=lambda: NOW, batch=5, worker_id="w")
    svc: SchedulerService = scheduler.service
    ran: list[int] = []

    async def handler(job: JobInfo) -> None:
        ran.append(job.id)
        scheduler._stopping.set()  # a stop request arrives while the first job runs

    scheduler.register("test.job", handler)
    for _ in range(5):
        await svc.schedule("test.job", NOW, now=NOW)
    assert await scheduler.run_due() == 1
    assert len(ran) == 1
    pending = await svc.list_jobs(status=rules.PENDING)
    assert len(pending) == 4
    assert {(j.attempts, j.locked_by) for j in pending} == {(0, None)}


async def test_a_failing_poll_does_not_stop_the_loop(db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    scheduler = Scheduler(db, poll_seconds=0.02, clock=lambda: NOW)
    ran: list[int] = []

    async def handler(job: JobInfo) -> None:
        ran.append(job.id)

    scheduler.register("test.job", handler)
    real = scheduler.service.has_due
    calls = 0

    async def flaky(**kwargs: object) -> bool:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise OSError("database went away")
        return await real(**kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(scheduler.service, "has_due", flaky)
    await scheduler.service.schedule("test.job", NOW, now=NOW)
    scheduler.start()
    try:
        await eventually(lambda: len(ran) == 1)
    finally:
        await scheduler.stop()
    assert calls >= 2


def test_register_refuses_a_second_handler_for_a_kind(db: Database) -> None:
    scheduler = Scheduler(db)

    async def one(job: JobInfo) -> None: ...

    async def two(job: JobInfo) -> None: ...

    scheduler.register("test.job", one)
    scheduler.register("test.job", one)  # the same one again is fine
    with pytest.raises(ValueError, match="already registered"):
        scheduler.register("test.job", two)
    assert scheduler.kinds == ["test.job"]
