"""The scheduler on both databases: schedule, claim, run, recurrence, retry, lease, shards, cancel."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

import pytest

from guildkeep.db import Database
from guildkeep.scheduler import rules
from guildkeep.scheduler.errors import JobNotFoundError, JobStateError, JobValidationError
from guildkeep.scheduler.results import JobInfo
from guildkeep.scheduler.service import SchedulerService, ShardFilter
from guildkeep.scheduler.worker import Scheduler

NOW = datetime(2027, 3, 1, 12, 0, tzinfo=UTC)
GUILD = 1234567890123456789


def at(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


class Recorder:
    """A handler that records the jobs it ran (and raises while ``failing`` is set)."""

    def __init__(self) -> None:
        self.runs: list[JobInfo] = []
        self.failing: str | None = None

    async def __call__(self, job: JobInfo) -> None:
        self.runs.append(job)
        if self.failing:
            raise RuntimeError(self.failing)


def make(db: Database, clock: Clock, kind: str = "test.job", **kwargs: object) -> tuple[Scheduler, Recorder]:
    scheduler = Scheduler(db, clock=clock, worker_id=kwargs.pop("worker_id", "w1"), **kwargs)  # type: ignore[arg-type]
    recorder = Recorder()
    scheduler.register(kind, recorder)
    return scheduler, recorder


async def test_schedule_claim_run(db: Database) -> None:
    clock = Clock(NOW)
    scheduler, rec = make(db, clock)
    svc = scheduler.service
    result = await svc.schedule("test.job", NOW + timedelta(minutes=1), now=NOW, guild_id=GUILD,
                                payload={"channel": 5, "text": "hi"})
    assert result.created
    assert result.job.status == rules.PENDING
    assert await scheduler.run_due() == 0  # not due yet
    assert rec.runs == []
    clock.now = NOW + timedelta(minutes=2)
    assert await scheduler.run_due() == 1
    [ran] = rec.runs
    assert (ran.id, ran.guild_id, ran.payload, ran.attempts, ran.status) == (
        result.job.id, GUILD, {"channel": 5, "text": "hi"}, 1, rules.RUNNING)
    done = await svc.get(result.job.id)
    assert (done.status, done.locked_by, done.locked_until) == (rules.DONE, None, None)
    assert await scheduler.run_due() == 0  # done jobs never run again


async def test_only_registered_kinds_are_claimed(db: Database) -> None:
    clock = Clock(NOW)
    scheduler, rec = make(db, clock, kind="test.mine")
    await scheduler.service.schedule("test.other", NOW, now=NOW)
    await scheduler.service.schedule("test.mine", NOW, now=NOW)
    assert await scheduler.run_until_idle() == 1
    assert [j.kind for j in rec.runs] == ["test.mine"]
    assert [j.status for j in await scheduler.service.list_jobs(kind="test.other")] == [rules.PENDING]


async def test_schedule_is_idempotent_by_dedup_key(db: Database) -> None:
    svc = SchedulerService(db)
    first = await svc.schedule("test.job", NOW, now=NOW, dedup_key="reminder:1")
    again = await svc.schedule("test.job", NOW + timedelta(hours=5), now=NOW, dedup_key="reminder:1")
    assert first.created
    assert not again.created
    assert again.job.id == first.job.id
    assert again.job.run_at == NOW  # unchanged
    other_kind = await svc.schedule("test.other", NOW, now=NOW, dedup_key="reminder:1")
    assert other_kind.created  # the key is unique per kind
    assert await svc.count() == 2

    # a one-off that already ran keeps its key: scheduling it again does not run it twice
    scheduler, rec = make(db, Clock(NOW))
    await scheduler.run_until_idle()
    assert len(rec.runs) == 1
    after_done = await svc.schedule("test.job", NOW, now=NOW, dedup_key="reminder:1")
    assert not after_done.created
    assert after_done.job.status == rules.DONE

    # a cancelled job gives its key up to the next schedule
    await svc.schedule("test.job", NOW, now=NOW, dedup_key="reminder:2")
    cancelled = await svc.cancel_key("test.job", "reminder:2", now=NOW)
    assert cancelled is not None
    renewed = await svc.schedule("test.job", NOW, now=NOW, dedup_key="reminder:2")
    assert renewed.created
    assert renewed.job.id != cancelled.id
    assert (await svc.get(cancelled.id)).dedup_key is None


async def test_concurrent_schedules_with_one_key_make_one_job(db: Database, database_url: str) -> None:
    other = Database(database_url)
    try:
        results = await asyncio.gather(*[
            SchedulerService(d).schedule("test.job", NOW, now=NOW, dedup_key="once")
            for d in (db, other) * 5
        ])
    finally:
        await other.dispose()
    assert sum(r.created for r in results) == 1
    assert {r.job.id for r in results} == {results[0].job.id}
    assert await SchedulerService(db).count() == 1


@pytest.mark.parametrize(
    ("recurrence", "first", "expected"),
    [
        (rules.DAILY, at(2027, 3, 1, 6), [at(2027, 3, 2, 6), at(2027, 3, 3, 6), at(2027, 3, 4, 6)]),
        (rules.WEEKLY, at(2027, 3, 1, 6), [at(2027, 3, 8, 6), at(2027, 3, 15, 6), at(2027, 3, 22, 6)]),
        (rules.MONTHLY, at(2027, 1, 31, 6), [at(2027, 2, 28, 6), at(2027, 3, 31, 6), at(2027, 4, 30, 6)]),
        (rules.MONTHLY, at(2028, 1, 31, 6), [at(2028, 2, 29, 6), at(2028, 3, 31, 6), at(2028, 4, 30, 6)]),
        (rules.YEARLY, at(2028, 2, 29, 6), [at(2029, 2, 28, 6), at(2030, 2, 28, 6), at(2031, 2, 28, 6)]),
    ],
)
async def test_recurring_job_schedules_its_next_occurrence(
    db: Database, recurrence: str, first: datetime, expected: list[datetime]
) -> None:
    clock = Clock(first)
    scheduler, rec = make(db, clock)
    svc = scheduler.service
    job = (await svc.schedule("test.job", first, now=first, recurrence=recurrence, dedup_key="series",
                              payload={"n": 1})).job
    for when in expected:
        clock.now += timedelta(seconds=5)  # runs a little late
        assert await scheduler.run_until_idle() == 1
        live = await svc.find("test.job", "series")
        assert live is not None
        assert (live.status, live.run_at, live.anchor_at, live.payload) == (rules.PENDING, when, first, {"n": 1})
        clock.now = when
    assert [r.run_at for r in rec.runs] == [first, *expected[:-1]]
    finished = await svc.list_jobs(status=rules.DONE)
    assert len(finished) == len(expected)
    assert all(j.dedup_key is None for j in finished)  # the key moved on to the live occurrence
    assert (await svc.get(job.id)).status == rules.DONE


async def test_yearly_feb_29_comes_back_in_the_next_leap_year(db: Database) -> None:
    first = at(2028, 2, 29)
    clock = Clock(first)
    scheduler, rec = make(db, clock)
    await scheduler.service.schedule("test.job", first, now=first, recurrence=rules.YEARLY)
    for _ in range(4):
        await scheduler.run_until_idle()
        [live] = await scheduler.service.list_jobs(status=rules.PENDING)
        clock.now = live.run_at
    assert [r.run_at for r in rec.runs] == [at(2028, 2, 29), at(2029, 2, 28), at(2030, 2, 28), at(2031, 2, 28)]
    assert live.run_at == at(2032, 2, 29)


async def test_missed_occurrences_are_skipped_not_replayed(db: Database) -> None:
    clock = Clock(at(2027, 3, 1))
    scheduler, rec = make(db, clock)
    await scheduler.service.schedule("test.job", at(2027, 3, 1), now=clock.now, recurrence=rules.DAILY)
    clock.now = at(2027, 3, 5, 10)  # the bot was down for four days
    assert await scheduler.run_until_idle() == 1
    [live] = await scheduler.service.list_jobs(status=rules.PENDING)
    assert live.run_at == at(2027, 3, 6)
    assert len(rec.runs) == 1


async def test_next_occurrence_is_written_in_the_same_transaction(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = Clock(NOW)
    scheduler, _rec = make(db, clock)
    svc = scheduler.service
    job = (await svc.schedule("test.job", NOW, now=NOW, recurrence=rules.DAILY, dedup_key="d")).job
    [claimed] = await svc.claim(worker="w1", now=NOW, kinds=["test.job"])

    def broken(*_args: object, **_kwargs: object) -> datetime:
        raise RuntimeError("disk full")

    monkeypatch.setattr(rules, "next_occurrence", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        await svc.complete(claimed, worker="w1", now=NOW)
    after = await svc.get(job.id)
    assert (after.status, after.dedup_key) == (rules.RUNNING, "d")  # "done" was rolled back with it
    assert await svc.count() == 1
    monkeypatch.undo()
    result = await svc.complete(claimed, worker="w1", now=NOW)
    assert result.status == rules.DONE
    assert result.next_job is not None
    assert result.next_job.run_at == NOW + timedelta(days=1)


async def test_failure_retries_with_backoff_then_parks(db: Database) -> None:
    clock = Clock(NOW)
    scheduler, rec = make(db, clock, backoff_base=10, backoff_cap=1000)
    svc = scheduler.service
    rec.failing = "boom"
    job = (await svc.schedule("test.job", NOW, now=NOW, max_attempts=3)).job

    assert await scheduler.run_due() == 1
    state = await svc.get(job.id)
    assert (state.status, state.attempts, state.run_at, state.last_error) == (
        rules.PENDING, 1, NOW + timedelta(seconds=10), "RuntimeError: boom")
    clock.now = NOW + timedelta(seconds=9)
    assert await scheduler.run_due() == 0  # still backing off
    clock.now = NOW + timedelta(seconds=10)
    assert await scheduler.run_due() == 1
    state = await svc.get(job.id)
    assert (state.attempts, state.run_at) == (2, clock.now + timedelta(seconds=20))
    clock.now = state.run_at
    rec.failing = "still broken"
    assert await scheduler.run_due() == 1
    parked = await svc.get(job.id)
    assert (parked.status, parked.attempts, parked.last_error) == (rules.FAILED, 3, "RuntimeError: still broken")
    clock.now += timedelta(days=1)
    assert await scheduler.run_due() == 0  # parked jobs stay parked
    assert len(rec.runs) == 3

    # an operator retries it once the cause is fixed
    rec.failing = None
    retried = await svc.retry(job.id, now=clock.now)
    assert (retried.status, retried.attempts, retried.run_at) == (rules.PENDING, 0, clock.now)
    assert await scheduler.run_due() == 1
    assert (await svc.get(job.id)).status == rules.DONE
    with pytest.raises(JobStateError, match="only a failed job"):
        await svc.retry(job.id, now=clock.now)


async def test_parked_occurrence_of_a_recurring_job_keeps_the_series_going(db: Database) -> None:
    clock = Clock(NOW)
    scheduler, rec = make(db, clock)
    svc = scheduler.service
    rec.failing = "nope"
    job = (await svc.schedule("test.job", NOW, now=NOW, recurrence=rules.DAILY, max_attempts=1,
                              dedup_key="daily")).job
    assert await scheduler.run_due() == 1
    parked = await svc.get(job.id)
    assert (parked.status, parked.last_error, parked.dedup_key) == (rules.FAILED, "RuntimeError: nope", None)
    live = await svc.find("test.job", "daily")
    assert live is not None
    assert (live.status, live.run_at) == (rules.PENDING, NOW + timedelta(days=1))
    # retrying the parked occurrence runs it once, without starting a second series
    rec.failing = None
    await svc.retry(job.id, now=clock.now)
    assert await scheduler.run_until_idle() == 1
    assert await svc.count(status=rules.PENDING) == 1


async def test_expired_lease_is_claimed_again(db: Database) -> None:
    svc = SchedulerService(db)
    job = (await svc.schedule("test.job", NOW, now=NOW)).job
    [dead] = await svc.claim(worker="dead", now=NOW, kinds=["test.job"], lease_seconds=60)
    assert dead.locked_until == NOW + timedelta(seconds=60)
    clock = Clock(NOW + timedelta(seconds=30))
    scheduler, rec = make(db, clock, worker_id="alive")
    assert await scheduler.run_due() == 0  # the lease still holds
    clock.now = NOW + timedelta(seconds=61)
    assert await scheduler.run_due() == 1
    assert [(r.id, r.attempts, r.locked_by) for r in rec.runs] == [(job.id, 2, "alive")]
    assert (await svc.get(job.id)).status == rules.DONE
    # the first worker wakes up late: its outcome is ignored
    late = await svc.complete(dead, worker="dead", now=clock.now)
    assert late.status is None
    assert (await svc.fail(dead, worker="dead", now=clock.now, error="x")).status is None


async def test_a_job_whose_worker_keeps_dying_is_parked(db: Database) -> None:
    svc = SchedulerService(db)
    job = (await svc.schedule("test.job", NOW, now=NOW, max_attempts=2)).job
    when = NOW
    for _ in range(2):
        await svc.claim(worker="crashy", now=when, kinds=["test.job"], lease_seconds=10)
        when += timedelta(seconds=11)
    scheduler, rec = make(db, Clock(when))
    assert await scheduler.run_due() == 1
    assert rec.runs == []  # not run a third time
    parked = await svc.get(job.id)
    assert parked.status == rules.FAILED
    assert "lease expired" in (parked.last_error or "")


async def test_renewed_lease_is_not_reclaimed(db: Database) -> None:
    svc = SchedulerService(db)
    job = (await svc.schedule("test.job", NOW, now=NOW)).job
    await svc.claim(worker="slow", now=NOW, kinds=["test.job"], lease_seconds=60)
    assert await svc.renew(job.id, worker="slow", now=NOW + timedelta(seconds=50), lease_seconds=60)
    assert not await svc.renew(job.id, worker="other", now=NOW + timedelta(seconds=50))
    assert await svc.claim(worker="other", now=NOW + timedelta(seconds=70), kinds=["test.job"]) == []
    assert len(await svc.claim(worker="other", now=NOW + timedelta(seconds=111), kinds=["test.job"])) == 1


def guild_on_shard(shard: int, count: int, salt: int = 0) -> int:
    return (((1000 + salt) * count + shard) << 22) | 4242


async def test_claim_only_takes_this_shards_guilds(db: Database) -> None:
    svc = SchedulerService(db)
    g0, g1, g2 = guild_on_shard(0, 3), guild_on_shard(1, 3), guild_on_shard(2, 3, salt=7)
    assert [rules.shard_of(g, 3) for g in (g0, g1, g2)] == [0, 1, 2]
    ids = {}
    for name, guild in (("g0", g0), ("g1", g1), ("g2", g2), ("none", None)):
        ids[name] = (await svc.schedule("test.job", NOW, now=NOW, guild_id=guild)).job.id

    async def runs(shard_ids: list[int]) -> set[int]:
        scheduler, rec = make(db, Clock(NOW), shard_ids=shard_ids, shard_count=3, worker_id=f"s{shard_ids}")
        await scheduler.run_until_idle()
        return {r.id for r in rec.runs}

    assert await runs([1]) == {ids["g1"]}
    assert await runs([0]) == {ids["g0"], ids["none"]}  # jobs without a guild run on shard 0
    assert await runs([1, 2]) == {ids["g2"]}
    assert await svc.count(status=rules.DONE) == 4
    assert ShardFilter.of([2], 3).owns(g2)
    assert not ShardFilter.of([2], 3).owns(None)
    with pytest.raises(JobValidationError):
        ShardFilter.of([3], 3)


async def test_workers_on_two_databases_run_each_job_exactly_once(db: Database, database_url: str) -> None:
    svc = SchedulerService(db)
    total = 120
    for i in range(total):
        await svc.schedule("test.job", NOW - timedelta(seconds=i % 7), now=NOW, guild_id=GUILD + i,
                           payload={"i": i})
    runs: Counter[int] = Counter()
    by_worker: Counter[str] = Counter()

    def handler(worker: str) -> Callable[[JobInfo], Awaitable[None]]:
        async def run(job: JobInfo) -> None:
            runs[job.id] += 1
            by_worker[worker] += 1
            await asyncio.sleep(0.001)

        return run

    other_db = Database(database_url, pool_size=5)
    try:
        workers = []  # two workers on each of two connection pools
        for name, database in (("a1", db), ("b1", other_db), ("a2", db), ("b2", other_db)):
            worker = Scheduler(database, clock=Clock(NOW), worker_id=name, batch=5)
            worker.register("test.job", handler(name))
            workers.append(worker)
        await asyncio.gather(*(w.run_until_idle() for w in workers))
    finally:
        await other_db.dispose()
    assert len(runs) == total
    assert set(runs.values()) == {1}
    assert await svc.count(status=rules.DONE) == total
    assert sum(by_worker.values()) == total


async def test_cancel(db: Database) -> None:
    clock = Clock(NOW)
    scheduler, rec = make(db, clock)
    svc = scheduler.service
    a = (await svc.schedule("test.job", NOW, now=NOW)).job
    b = (await svc.schedule("test.job", NOW, now=NOW, dedup_key="b")).job
    cancelled = await svc.cancel(a.id, now=NOW)
    assert cancelled.status == rules.CANCELLED
    assert (await svc.cancel_key("test.job", "b", now=NOW)).id == b.id  # type: ignore[union-attr]
    assert await svc.cancel_key("test.job", "nothing", now=NOW) is None
    assert await scheduler.run_until_idle() == 0
    assert rec.runs == []
    with pytest.raises(JobStateError, match="is cancelled"):
        await svc.cancel(a.id, now=NOW)
    with pytest.raises(JobNotFoundError):
        await svc.cancel(999_999, now=NOW)


async def test_cancelling_a_running_recurring_job_ends_its_series(db: Database) -> None:
    svc = SchedulerService(db)
    job = (await svc.schedule("test.job", NOW, now=NOW, recurrence=rules.WEEKLY)).job
    [claimed] = await svc.claim(worker="w", now=NOW, kinds=["test.job"])
    await svc.cancel(job.id, now=NOW)
    result = await svc.complete(claimed, worker="w", now=NOW)
    assert result.status is None
    assert result.next_job is None
    assert await svc.count() == 1
    assert (await svc.get(job.id)).status == rules.CANCELLED


async def test_bad_schedules_are_refused_and_change_nothing(db: Database) -> None:
    svc = SchedulerService(db)
    naive = datetime(2027, 1, 1)  # noqa: DTZ001 - the point of the test
    cases = [
        ({"kind": "test.job", "run_at": naive}, "timezone-aware"),
        ({"kind": "Bad Kind", "run_at": NOW}, "job kind"),
        ({"kind": "test.job", "run_at": NOW, "payload": {"x": object()}}, "plain JSON"),
        ({"kind": "test.job", "run_at": NOW, "recurrence": rules.INTERVAL}, "interval_seconds"),
        ({"kind": "test.job", "run_at": NOW, "recurrence": "hourly"}, "Unknown recurrence"),
        ({"kind": "test.job", "run_at": NOW, "max_attempts": 0}, "max_attempts"),
        ({"kind": "test.job", "run_at": NOW, "dedup_key": "k" * 201}, "dedup key"),
    ]
    for kwargs, message in cases:
        with pytest.raises(JobValidationError, match=message):
            await svc.schedule(now=NOW, **kwargs)  # type: ignore[arg-type]
    assert await svc.count() == 0
    with pytest.raises(JobValidationError, match="Unknown status"):
        await svc.list_jobs(status="weird")


async def test_interval_job_and_reschedule(db: Database) -> None:
    clock = Clock(NOW)
    scheduler, _rec = make(db, clock)
    svc = scheduler.service
    job = (await svc.schedule("test.job", NOW + timedelta(hours=1), now=NOW, recurrence=rules.INTERVAL,
                              interval_seconds=3600, dedup_key="tick")).job
    moved = await svc.reschedule(job.id, NOW + timedelta(hours=6), now=NOW, recurrence=rules.INTERVAL,
                                 interval_seconds=6 * 3600)
    assert (moved.run_at, moved.interval_seconds) == (NOW + timedelta(hours=6), 6 * 3600)
    clock.now = NOW + timedelta(hours=6, seconds=1)
    assert await scheduler.run_until_idle() == 1
    live = await svc.find("test.job", "tick")
    assert live is not None
    assert live.run_at == NOW + timedelta(hours=12)
    with pytest.raises(JobStateError):
        await svc.reschedule(job.id, NOW, now=NOW)
