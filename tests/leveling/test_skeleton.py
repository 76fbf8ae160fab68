"""Leveling on the module skeleton: settings declared once, no-XP and multiplier changes as one conditional
UPDATE (two admins at once both keep theirs), and the quest reset as a scheduler job (once, also with two
processes)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from guildkeep.db import Database
from guildkeep.errors import ValidationError
from guildkeep.leveling import rules
from guildkeep.leveling import settings as config
from guildkeep.leveling.errors import NoTargetError, OneTargetError, SettingError
from guildkeep.leveling.models import Quest, ServerConfig
from guildkeep.leveling.service import QUEST_RESET_JOB, LevelingService, quest_reset_key
from guildkeep.scheduler import rules as jobs_rules
from guildkeep.scheduler.results import JobInfo
from guildkeep.scheduler.worker import Scheduler

G = 1001
# A Tuesday, 09:30 UTC: the default reset hour (0) is 9.5 hours behind.
NOW = datetime(2026, 3, 10, 9, 30, tzinfo=UTC)
DAILY_TEMPLATES = sum(t.quest_type == "daily" for t in rules.QUEST_TEMPLATES)


@pytest.fixture
def svc(db: Database) -> LevelingService:
    return LevelingService(db)


# ------------------------------------------------------------------------------------------------ settings


def test_every_setting_is_declared_once_and_the_table_follows() -> None:
    columns = ServerConfig.__table__.c
    for name in ("xp_rate", "message_xp_min", "message_xp_max", "voice_xp_per_minute", "reaction_xp", "command_xp",
                 "curve", "curve_base", "curve_exponent", "quest_reset_hour", "quest_reset_day", "level_up_mode",
                 "quests_enabled"):
        assert columns[name].default.arg == getattr(config.DEFAULTS, name), name
    assert set(config.NAMES) == {c.name for c in columns} - {"guild_id", "updated_at"}
    assert config.bounds("message_xp_min") == (0, 1000)
    assert config.describe("message_xp_min") == "Least XP per message"


def test_bad_values_are_refused_in_words() -> None:
    cases = [("xp_rate", "fast", "The XP rate must be a number."),
             ("xp_rate", 11, "The XP rate must be between 0 and 10."),
             ("message_xp_min", 2.5, "Message XP must be a whole number."),
             ("quest_reset_hour", 24, "The reset hour must be between 0 and 23."),
             ("curve", "cubic", "The curve must be one of: mee6, linear, power."),
             ("cooldowns", {"typing": 3}, "Cooldowns exist for: message, voice, reaction, command."),
             ("role_multipliers", {5: 12}, "A multiplier must be between 0 and 10."),
             ("no_xp_channels", [0], "An id must be between 1 and 9,223,372,036,854,775,807.")]
    for name, value, message in cases:
        with pytest.raises(SettingError) as caught:
            config.check(name, value)
        assert caught.value.message == message, name
    with pytest.raises(SettingError, match="minimum message XP cannot be above"):
        config.merge(config.DEFAULTS, {"message_xp_min": 30})
    merged = config.merge(config.DEFAULTS, {"cooldowns": {"message": 5}})
    assert merged.cooldowns == {"message": 5, "reaction": 60, "command": 60}  # merged, not replaced


# --------------------------------------------------------------------------------------- no XP, multipliers


async def test_two_admins_adding_no_xp_channels_at_once_both_keep_theirs(
        svc: LevelingService, db: Database, database_url: str) -> None:
    """Two processes (two connection pools) add different no-XP channels at the same moment: both stay."""
    await svc.get_server_config(G)  # both read the same (cached) config first, as the old cog did
    other_db = Database(database_url, pool_size=5, max_overflow=5)
    try:
        other = LevelingService(other_db)
        await other.get_server_config(G)
        channels = list(range(500, 520))
        await asyncio.gather(*(
            (svc if i % 2 else other).set_no_xp(G, channel_id=c) for i, c in enumerate(channels)))
        await asyncio.gather(svc.set_no_xp(G, role_id=77), other.set_no_xp(G, role_id=78))
        await asyncio.gather(svc.set_multiplier(G, 2.0, role_id=7), other.set_multiplier(G, 1.5, role_id=8),
                             svc.set_multiplier(G, 3.0, channel_id=9), other.set_multiplier(G, 0.5, channel_id=10))
    finally:
        await other_db.dispose()
    stored = (await LevelingService(db).get_server_config(G)).settings
    assert stored.no_xp_channels == tuple(channels)
    assert stored.no_xp_roles == (77, 78)
    assert stored.role_multipliers == {7: 2.0, 8: 1.5}
    assert stored.channel_multipliers == {9: 3.0, 10: 0.5}


async def test_no_xp_and_multiplier_changes_and_refusals(svc: LevelingService) -> None:
    cfg = await svc.set_no_xp(G, channel_id=5, role_id=6)
    assert (cfg.settings.no_xp_channels, cfg.settings.no_xp_roles) == ((5,), (6,))
    cfg = await svc.set_no_xp(G, channel_id=5, remove=True)
    assert (cfg.settings.no_xp_channels, cfg.settings.no_xp_roles) == ((), (6,))
    await svc.set_multiplier(G, 2.5, role_id=7)
    cfg = await svc.set_multiplier(G, 1, role_id=7)  # 1 removes it
    assert cfg.settings.role_multipliers == {}
    with pytest.raises(NoTargetError, match=r"Pick a channel or a role\."):
        await svc.set_no_xp(G)
    with pytest.raises(OneTargetError):
        await svc.set_multiplier(G, 2, role_id=1, channel_id=2)
    with pytest.raises(ValidationError, match=r"A multiplier must be between 0 and 10\."):
        await svc.set_multiplier(G, 11, role_id=7)
    with pytest.raises(ValidationError, match="An id must be between"):
        await svc.set_no_xp(G, channel_id=-4)
    assert (await svc.get_server_config(G)).settings == cfg.settings  # refusals changed nothing


# ----------------------------------------------------------------------------------------- quest reset job


class Clock:
    """The time both the scheduler and the handler read (a test's stand-in for the moving clock)."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def _worker(db: Database, svc: LevelingService, ran: list[int], clock: Clock, name: str = "a") -> Scheduler:
    worker = Scheduler(db, worker_id=name, clock=clock)

    async def handler(job: JobInfo) -> None:
        done = await svc.run_quest_reset(job, now=clock())
        ran.append(len(done.created))

    worker.register(QUEST_RESET_JOB, handler)
    return worker


async def _template_quests(db: Database) -> int:
    async with db.session(read_only=True) as s:
        return int(await s.scalar(select(func.count()).select_from(Quest).where(
            Quest.guild_id == G, Quest.template_key.is_not(None))) or 0)


async def test_quest_reset_job_fires_once_per_day_at_the_reset_hour(svc: LevelingService, db: Database) -> None:
    job = await svc.ensure_quest_reset_job(G, now=NOW)
    again = await svc.ensure_quest_reset_job(G, now=NOW + timedelta(minutes=5))  # any process, any number of times
    assert again.id == job.id
    assert (job.kind, job.guild_id, job.recurrence, job.dedup_key) == (
        QUEST_RESET_JOB, G, jobs_rules.DAILY, quest_reset_key(G))
    assert job.run_at == datetime(2026, 3, 10, 0, tzinfo=UTC)  # the latest reset time: due at once
    ran: list[int] = []
    clock = Clock(NOW)
    worker = _worker(db, svc, ran, clock)
    assert await worker.run_until_idle() == 1
    assert ran == [len(rules.QUEST_TEMPLATES)]  # this period's daily and weekly quests
    clock.now = NOW + timedelta(hours=14)
    assert await worker.run_until_idle() == 0  # not due again the same day
    following = await svc.jobs.find(QUEST_RESET_JOB, quest_reset_key(G))
    assert following is not None
    assert following.run_at == datetime(2026, 3, 11, 0, tzinfo=UTC)
    clock.now = datetime(2026, 3, 11, 0, 1, tzinfo=UTC)
    assert await worker.run_until_idle() == 1
    assert ran[-1] == DAILY_TEMPLATES  # a new day: new daily quests, the week's stay
    assert await _template_quests(db) == len(rules.QUEST_TEMPLATES) + DAILY_TEMPLATES


async def test_changing_the_reset_hour_moves_the_job(svc: LevelingService) -> None:
    await svc.ensure_quest_reset_job(G, now=NOW)
    await svc.update_server_config(G, "quest_reset_hour", 6)
    job = await svc.jobs.find(QUEST_RESET_JOB, quest_reset_key(G))
    assert job is not None
    assert job.status == jobs_rules.PENDING
    assert (job.anchor_at.hour, job.recurrence) == (6, jobs_rules.DAILY)


async def test_two_processes_reset_quests_once(svc: LevelingService, db: Database, database_url: str) -> None:
    other_db = Database(database_url, pool_size=5, max_overflow=5)
    ran: list[int] = []
    try:
        other = LevelingService(other_db)
        await asyncio.gather(svc.ensure_quest_reset_job(G, now=NOW), other.ensure_quest_reset_job(G, now=NOW))
        clock = Clock(NOW)
        workers = [_worker(db, svc, ran, clock, "a"), _worker(other_db, other, ran, clock, "b")]
        counts = await asyncio.gather(*(w.run_until_idle() for w in workers))
    finally:
        await other_db.dispose()
    assert sum(counts) == 1
    assert ran == [len(rules.QUEST_TEMPLATES)]
    assert len(await svc.jobs.list_jobs(kind=QUEST_RESET_JOB)) == 2  # the one that ran and the next day's
    assert await _template_quests(db) == len(rules.QUEST_TEMPLATES)
