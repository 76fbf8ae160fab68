"""The companion's service on SQLite and PostgreSQL: every table's behaviour."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from guildkeep.companion import rules
from guildkeep.companion.errors import CompanionValidationError, FactNotFoundError
from guildkeep.companion.models import BotOpinion, MoodHistory, ScheduledEvent, UserPreference
from guildkeep.companion.service import EVENT_JOB, CompanionService
from guildkeep.db import Database
from guildkeep.errors import DuplicateError
from guildkeep.privacy import PrivacyService
from guildkeep.scheduler.results import JobInfo
from guildkeep.scheduler.worker import Scheduler
from tests.privacy.test_service import rows_naming

NOW = datetime(2026, 12, 2, 11, 0, tzinfo=UTC)
G = 111_111_111_111_111_111
U = 222_222_222_222_222_222
V = 333_333_333_333_333_333
CH = 444_444_444_444_444_444

F = rules.ExtractedFact


@pytest.fixture
def svc(db: Database) -> CompanionService:
    return CompanionService(db, clock=lambda: NOW)


async def test_preferences_are_unique_per_key(svc: CompanionService, db: Database) -> None:
    await svc.set_preference(U, "Language", "en")
    await svc.set_preference(U, "language", "fr")
    assert await svc.get_preferences(U) == {"language": "fr"}
    async with db.session(read_only=True) as s:
        assert await s.scalar(select(func.count()).select_from(UserPreference)) == 1
    with pytest.raises(CompanionValidationError):
        await svc.set_preference(U, "", "x")
    with pytest.raises(DuplicateError):
        async with db.session() as s:
            s.add(UserPreference(user_id=U, preference_key="language", preference_value="de"))


async def test_reconciliation_adds_updates_keeping_id_or_does_nothing(svc: CompanionService) -> None:
    [job] = await svc.remember(U, [F("work", "Works as nurse", 0.7)], guild_id=G, now=NOW)
    assert job.action == rules.ADD
    [same] = await svc.remember(U, [F("work", "Works as nurse")], guild_id=G, now=NOW + timedelta(minutes=1))
    assert (same.action, same.fact_id) == (rules.NOOP, job.fact_id)
    [changed] = await svc.remember(U, [F("work", "Works as teacher")], guild_id=G, now=NOW + timedelta(minutes=2))
    assert (changed.action, changed.fact_id) == (rules.UPDATE, job.fact_id)
    [hobby] = await svc.remember(U, [F("hobby", "Loves chess")], guild_id=G, now=NOW)
    assert hobby.action == rules.ADD
    assert hobby.fact_id != job.fact_id
    page = await svc.list_facts(U, now=NOW + timedelta(minutes=3))
    assert sorted(f.content for f in page.facts) == ["Loves chess", "Works as teacher"]
    fact = await svc.get_fact(job.fact_id)
    assert fact.source == "conversation"
    # Another server's facts are reconciled separately.
    [other] = await svc.remember(U, [F("work", "Works as nurse")], guild_id=G + 1, now=NOW)
    assert other.action == rules.ADD


async def test_fact_fields_and_validation(svc: CompanionService) -> None:
    [c] = await svc.remember(U, [F("family", "Sister is Ana", 0.9, 0.7, "present")], guild_id=G, source="manual",
                             message_id=555, context="my sister is Ana", now=NOW)
    fact = await svc.get_fact(c.fact_id)
    assert (fact.fact_type, fact.importance, fact.confidence, fact.temporal_relevance) == ("family", 0.9, 0.7,
                                                                                          "present")
    assert (fact.extracted_from_message_id, fact.extraction_context, fact.source) == (555, "my sister is Ana",
                                                                                      "manual")
    assert fact.learned_at == NOW
    with pytest.raises(CompanionValidationError):
        await svc.remember(U, [F("nonsense", "x")])
    with pytest.raises(CompanionValidationError):
        await svc.remember(U, [F("hobby", " ")])


async def test_expired_fact_is_hidden_not_deleted(svc: CompanionService) -> None:
    [c] = await svc.remember(U, [F("event", "Is travelling to Rome next week", 0.6, 0.8, "future")], guild_id=G,
                             expiry_date=NOW + timedelta(days=7), now=NOW)
    assert (await svc.list_facts(U, now=NOW + timedelta(days=6))).total == 1
    later = NOW + timedelta(days=8)
    assert (await svc.list_facts(U, now=later)).total == 0
    assert await svc.relevant_facts(U, G, "rome", now=later) == []
    hidden = await svc.list_facts(U, include_hidden=True, now=later)
    assert [f.id for f in hidden.facts] == [c.fact_id]
    # An expired fact does not block learning it again.
    [again] = await svc.remember(U, [F("event", "Is travelling to Rome next week")], guild_id=G, now=later)
    assert again.action == rules.ADD


async def test_ranking_and_last_referenced_kept_current(svc: CompanionService) -> None:
    old = NOW - timedelta(days=60)
    await svc.remember(U, [F("hobby", "Loves chess", 0.5)], guild_id=G, now=old)
    await svc.remember(U, [F("work", "Works as baker", 0.9)], guild_id=G, now=NOW)
    await svc.remember(U, [F("location", "Lives in Oslo", 0.5)], guild_id=G, now=NOW)
    ranked = await svc.relevant_facts(U, G, "where do I live, Oslo?", limit=2, now=NOW)
    assert [f.content for f in ranked] == ["Lives in Oslo", "Works as baker"]
    page = await svc.list_facts(U, now=NOW)
    refs = {f.content: f.last_referenced_at for f in page.facts}
    assert refs["Lives in Oslo"] == NOW
    assert refs["Works as baker"] == NOW
    assert refs["Loves chess"] is None
    assert await svc.relevant_facts(U, G + 1, "Oslo", now=NOW) == []  # another server sees nothing


async def test_conversation_split_after_sixty_minutes(svc: CompanionService) -> None:
    a = await svc.record_message(U, CH, "user", "hi", guild_id=G, now=NOW)
    b = await svc.record_message(U, CH, "assistant", "hello!", guild_id=G, now=NOW + timedelta(minutes=59))
    c = await svc.record_message(U, CH, "user", "back", guild_id=G, image_urls=["https://x/a.png"],
                                 now=NOW + timedelta(minutes=59 + 60))
    assert a.new_conversation
    assert not b.new_conversation
    assert c.new_conversation
    assert a.conversation_id == b.conversation_id != c.conversation_id
    first, second = await svc.conversations(U)
    assert (first.message_count, first.last_message_at, first.is_active) == (2, NOW + timedelta(minutes=59), False)
    assert (second.message_count, second.is_active) == (1, True)
    [msg] = await svc.messages(c.conversation_id)
    assert msg.image_urls == ("https://x/a.png",)
    assert msg.token_count == rules.estimate_tokens("back")
    assert [m.role for m in await svc.messages(a.conversation_id)] == ["user", "assistant"]
    with pytest.raises(CompanionValidationError):
        await svc.record_message(U, CH, "narrator", "x", now=NOW)


async def test_mood_moves_decays_and_records_history(svc: CompanionService, db: Database) -> None:
    happy = await svc.adjust_mood(G, sentiment=1.0, intensity=1.0, trigger_type="conversation", user_id=U,
                                  description="praise", now=NOW)
    assert happy.valence == pytest.approx(rules.MOOD_STEP)
    for _i in range(10):
        await svc.adjust_mood(G, sentiment=1.0, intensity=1.0, trigger_type="conversation", now=NOW)
    top = await svc.get_mood(G, now=NOW)
    assert top.valence == pytest.approx(1.0)
    assert top.label == "excited"
    later = await svc.get_mood(G, now=NOW + timedelta(hours=rules.MOOD_HALF_LIFE_HOURS))
    assert later.valence == pytest.approx(0.5)
    decayed = await svc.decay_mood(G, now=NOW + timedelta(days=10))
    assert abs(decayed.valence) < 0.01
    assert decayed.label == "neutral"
    history = await svc.mood_history(G, limit=100)
    assert len(history) == 12  # 11 changes + 1 decay
    assert history[0].trigger_type == "conversation"
    assert history[0].trigger_user_id == U
    assert history[-1].trigger_type == "time_decay"
    assert (await svc.get_mood(G + 1, now=NOW)).label == "neutral"  # per server
    async with db.session(read_only=True) as s:
        assert await s.scalar(select(func.count()).select_from(MoodHistory).where(MoodHistory.guild_id == G)) == 12


async def test_opinions_unique_per_server_and_topic(svc: CompanionService, db: Database) -> None:
    first = await svc.reinforce_opinion(G, "Chess", 1.0, now=NOW)
    second = await svc.reinforce_opinion(G, "chess", 0.0, reasoning="fun but slow", now=NOW + timedelta(hours=1))
    assert (first.discussion_count, second.discussion_count) == (1, 2)
    assert second.sentiment == pytest.approx(0.5)
    assert second.interest_level > first.interest_level
    assert second.formed_at == NOW
    assert second.last_reinforced_at == NOW + timedelta(hours=1)
    await svc.reinforce_opinion(G + 1, "chess", -1.0, now=NOW)
    assert [o.topic for o in await svc.opinions(G)] == ["chess"]
    with pytest.raises(DuplicateError):
        async with db.session() as s:
            s.add(BotOpinion(guild_id=G, topic="chess", sentiment=0, interest_level=0.5, discussion_count=0))


async def test_relationship_score_counts_and_levels(svc: CompanionService) -> None:
    warm = await svc.record_interaction(U, G, "thanks, you are awesome!", depth=2, now=NOW)
    assert warm.score > rules.DEFAULT_SCORE
    assert (warm.positive_interactions, warm.negative_interactions, warm.total_interactions) == (1, 0, 1)
    cold = await svc.record_interaction(U, G, "you are stupid and useless", depth=4, now=NOW)
    assert cold.score < warm.score
    assert cold.negative_interactions == 1
    assert cold.avg_message_length == pytest.approx((24 + 26) / 2)
    assert cold.conversation_depth_avg == pytest.approx(3)
    for score, level in ((20, "stranger"), (21, "acquaintance"), (60, "friend"), (61, "good_friend"),
                         (81, "close_friend")):
        info = await svc.set_relationship_score(U, G, score)
        assert info.level == level
    with pytest.raises(CompanionValidationError):
        await svc.set_relationship_score(U, G, 101)
    refs = await svc.add_shared_reference(U, G, "nicknames", "Captain")
    refs = await svc.add_shared_reference(U, G, "inside_jokes", "the cake incident")
    assert refs.shared_references == {"nicknames": ["Captain"], "inside_jokes": ["the cake incident"]}
    assert (await svc.get_relationship(U, G + 1)).total_interactions == 0


async def test_communication_style_is_learned(svc: CompanionService) -> None:
    for _ in range(3):
        await svc.learn_style(U, "lol yeah 😂😂", now=NOW)
    style = await svc.learn_style(U, "haha ok 😂", now=NOW)
    assert style.samples_collected == 4
    assert style.preferred_length == "short"
    assert style.emoji_affinity > 0.5
    assert style.humor_affinity > 0.5
    assert style.preferred_formality < 0.5
    assert style.confidence == pytest.approx(4 / rules.STYLE_FULL_CONFIDENCE_SAMPLES)


async def test_fact_associations_unique_per_pair(svc: CompanionService) -> None:
    [a] = await svc.remember(U, [F("hobby", "Loves chess")], guild_id=G, now=NOW)
    [b] = await svc.remember(V, [F("hobby", "Loves chess openings")], guild_id=G, now=NOW)
    found = await svc.associations(a.fact_id)
    assert len(found) == 1
    assert found[0].association_type == "shared_interest"
    again = await svc.associate(b.fact_id, a.fact_id, "shared_interest", 0.9)
    assert again.id == found[0].id
    assert again.strength == 0.9
    assert len(await svc.associations(b.fact_id)) == 1
    [c] = await svc.remember(U, [F("work", "Works as baker")], guild_id=G, now=NOW)
    with pytest.raises(CompanionValidationError):
        await svc.associate(a.fact_id, c.fact_id, "related", 0.5)  # same user
    with pytest.raises(FactNotFoundError):
        await svc.associate(a.fact_id, 999_999, "related", 0.5)


async def test_reminder_fires_once_and_recurring_event_schedules_next(svc: CompanionService) -> None:
    event = await svc.schedule_event(U, "reminder", "water the plants", NOW + timedelta(minutes=10), guild_id=G,
                                     channel_id=CH, recurrence="weekly", now=NOW)
    assert await svc.trigger_event(event.id, now=NOW + timedelta(minutes=5)) is None  # not due yet
    due = NOW + timedelta(minutes=10)
    fired = await svc.trigger_event(event.id, now=due)
    assert fired is not None
    assert fired.event.status == rules.TRIGGERED
    assert fired.event.triggered_at == due
    assert fired.next_event is not None
    assert fired.next_event.trigger_at == event.trigger_at + timedelta(weeks=1)
    assert await svc.trigger_event(event.id, now=due) is None  # once
    job = await svc.jobs.find(EVENT_JOB, f"event:{fired.next_event.id}")
    assert job is not None
    assert job.run_at == fired.next_event.trigger_at
    assert [e.id for e in await svc.list_events(U)] == [fired.next_event.id]
    with pytest.raises(CompanionValidationError):
        await svc.schedule_event(U, "reminder", "late", NOW - timedelta(minutes=1), now=NOW)
    with pytest.raises(CompanionValidationError):
        await svc.schedule_event(U, "party", "x", NOW + timedelta(days=1), now=NOW)
    assert await svc.cancel_events(U, event_id=fired.next_event.id, now=NOW) == 1
    assert (await svc.jobs.get(job.id)).status == "cancelled"


async def test_birthday_event_yearly(svc: CompanionService) -> None:
    event = await svc.set_birthday(U, 3, 14, guild_id=G, channel_id=CH, now=NOW)
    assert event.trigger_at == datetime(2027, 3, 14, 9, tzinfo=UTC)
    assert event.recurrence_rule == "yearly"
    facts = await svc.list_facts(U, now=NOW)
    assert [f.content for f in facts.facts] == ["Birthday is March 14"]
    moved = await svc.set_birthday(U, 3, 15, guild_id=G, channel_id=CH, now=NOW)
    assert [e.id for e in await svc.list_events(U)] == [moved.id]  # the old one is cancelled
    assert [f.content for f in (await svc.list_facts(U, now=NOW)).facts] == ["Birthday is March 15"]
    fired = await svc.trigger_event(moved.id, now=moved.trigger_at + timedelta(seconds=3))
    assert fired is not None
    assert fired.next_event is not None
    assert fired.next_event.trigger_at == datetime(2028, 3, 15, 9, tzinfo=UTC)
    with pytest.raises(CompanionValidationError):
        await svc.set_birthday(U, 2, 30, now=NOW)


async def test_two_dispatchers_racing_post_each_event_once(db: Database, database_url: str) -> None:
    """Two schedulers on two connection pools (two bot processes) run the due events: each is posted once."""
    svc = CompanionService(db, clock=lambda: NOW)
    events = [await svc.schedule_event(U, "reminder", f"thing {i}", NOW + timedelta(minutes=1), guild_id=G,
                                       channel_id=CH, now=NOW) for i in range(20)]
    other_db = Database(database_url, pool_size=5, max_overflow=5)
    posted: list[int] = []
    try:
        workers = []
        for name, database in (("a", db), ("b", other_db)):
            service = CompanionService(database)
            worker = Scheduler(database, worker_id=name, batch=3)

            async def handler(job: JobInfo, service: CompanionService = service) -> None:
                result = await service.trigger_event(job.payload["event_id"], now=job.run_at)
                if result is not None:
                    posted.append(result.event.id)
                await asyncio.sleep(0)

            worker.register(EVENT_JOB, handler)
            workers.append(worker)
        due = NOW + timedelta(minutes=2)
        await asyncio.gather(*(w.run_until_idle(due) for w in workers))
        # Racing the trigger itself: only one of many callers wins.
        extra = await svc.schedule_event(U, "reminder", "race", NOW + timedelta(minutes=1), now=NOW)
        results = await asyncio.gather(*(CompanionService(d).trigger_event(extra.id, now=due)
                                         for d in (db, other_db, db, other_db)))
    finally:
        await other_db.dispose()
    assert sorted(posted) == sorted(e.id for e in events)
    assert sum(r is not None for r in results) == 1


async def test_ensure_event_jobs_recreates_missing_jobs(svc: CompanionService) -> None:
    event = await svc.schedule_event(U, "follow_up", "how did the exam go?", NOW + timedelta(days=1), now=NOW)
    assert await svc.ensure_event_jobs(now=NOW) == 0
    job = await svc.jobs.find(EVENT_JOB, f"event:{event.id}")
    assert job is not None
    await svc.jobs.cancel(job.id, now=NOW)
    assert await svc.ensure_event_jobs(now=NOW) == 1


async def test_forgetting_a_user_removes_every_companion_row_of_theirs(svc: CompanionService) -> None:
    await svc.set_preference(U, "tone", "gentle")
    await svc.reply(U, CH, "My birthday is March 14 and I love chess!", guild_id=G, now=NOW)
    await svc.learn(U, CH, "My birthday is March 14 and I love chess!", guild_id=G, now=NOW)
    await svc.reply(V, CH, "I love chess too", guild_id=G, now=NOW)
    await svc.learn(V, CH, "I love chess too", guild_id=G, now=NOW)
    await svc.add_shared_reference(U, G, "nicknames", "Cap")
    before = await svc.count_user_rows(U)
    assert all(before[name] > 0 for name in before), before
    [fact] = list((await svc.list_facts(V, now=NOW)).facts)
    forgotten = await svc.forget_fact(U, (await svc.list_facts(U, now=NOW)).facts[0].id)
    assert forgotten.user_id == U
    with pytest.raises(FactNotFoundError):
        await svc.forget_fact(U, fact.id)  # not theirs
    pending = await svc.list_events(U)
    assert len(pending) == 1
    result = await PrivacyService(svc.db).forget_user(U)  # what /forget all runs
    assert result.total_deleted > 0
    assert await svc.count_user_rows(U) == dict.fromkeys(before, 0)
    assert (await svc.list_facts(V, now=NOW)).total == 1  # someone else's memory stays
    assert await svc.jobs.find(EVENT_JOB, f"event:{pending[0].id}") is None  # the birthday's job went with it
    assert (await svc.mood_history(G))  # the mood's history stays, without the user


async def test_the_platform_forget_removes_the_companion_rows_and_event_jobs(svc: CompanionService,
                                                                              db: Database) -> None:
    """`/forget all` runs the privacy service: every module's tables, the companion's event jobs included."""
    for user in (U, V):
        await svc.set_preference(user, "tone", "gentle")
        await svc.reply(user, CH, "My birthday is March 14 and I love chess!", guild_id=G, now=NOW)
        await svc.learn(user, CH, "My birthday is March 14 and I love chess!", guild_id=G, now=NOW)
    await svc.schedule_event(U, "reminder", "call mom", NOW + timedelta(hours=1), guild_id=G, channel_id=CH, now=NOW)
    [u_birthday, u_reminder] = sorted(await svc.list_events(U), key=lambda e: e.event_type)
    assert (await svc.jobs.find(EVENT_JOB, f"event:{u_reminder.id}")).payload["user_id"] == U  # type: ignore[union-attr]
    assert await rows_naming(db, U)
    v_before = await rows_naming(db, V)

    result = await PrivacyService(db).forget_user(U)

    assert await rows_naming(db, U) == {}
    assert await rows_naming(db, V) == v_before
    reports = {r.module: r for r in result.reports}
    assert reports["companion"].deleted["companion_user_facts"] == 2  # the birthday and chess
    assert reports["scheduler"].deleted == {"scheduler_jobs": 2}
    for event in (u_birthday, u_reminder):
        assert await svc.jobs.find(EVENT_JOB, f"event:{event.id}") is None


async def test_a_birthday_fires_once_on_the_day_with_two_dispatchers_racing(db: Database, database_url: str) -> None:
    """Two bot processes (two pools, two schedulers) share the database: the greeting is posted once, on the day,
    and next year's birthday is scheduled once."""
    svc = CompanionService(db, clock=lambda: NOW)
    birthday = await svc.set_birthday(U, 3, 14, guild_id=G, channel_id=CH, now=NOW)
    other_db = Database(database_url, pool_size=5, max_overflow=5)
    posted: list[tuple[int, datetime]] = []
    try:
        workers = []
        for name, database in (("a", db), ("b", other_db)):
            service = CompanionService(database)
            worker = Scheduler(database, worker_id=name, batch=1)

            async def handler(job: JobInfo, service: CompanionService = service) -> None:
                result = await service.trigger_event(job.payload["event_id"], now=job.run_at)
                if result is not None:
                    posted.append((result.event.id, result.event.trigger_at))
                await asyncio.sleep(0)

            worker.register(EVENT_JOB, handler)
            workers.append(worker)

        async def race(at: datetime) -> int:
            return sum(await asyncio.gather(*(w.run_until_idle(at) for w in workers for _ in range(2))))

        assert await race(birthday.trigger_at - timedelta(days=1)) == 0
        assert posted == []
        assert await race(birthday.trigger_at + timedelta(minutes=1)) == 1
        assert await race(birthday.trigger_at + timedelta(hours=5)) == 0
        assert posted == [(birthday.id, datetime(2027, 3, 14, 9, tzinfo=UTC))]
        [next_year] = await svc.list_events(U)
        assert next_year.trigger_at == datetime(2028, 3, 14, 9, tzinfo=UTC)
        job = await svc.jobs.find(EVENT_JOB, f"event:{next_year.id}")
        assert job is not None
        assert job.status == "pending"
        assert await race(next_year.trigger_at + timedelta(minutes=1)) == 1
    finally:
        await other_db.dispose()
    assert [event_id for event_id, _ in posted] == [birthday.id, next_year.id]
    async with db.session(read_only=True) as s:
        birthdays = (await s.execute(select(func.count()).select_from(ScheduledEvent)
                                     .where(ScheduledEvent.user_id == U))).scalar_one()
    assert birthdays == 3  # 2027 and 2028 triggered, 2029 pending: never a duplicate


async def test_config_is_off_until_enabled_and_two_admins_channel_changes_both_land(svc: CompanionService) -> None:
    config = await svc.get_config(G)
    assert not config.enabled
    assert not config.talks_in(CH)  # off in a server until an admin turns it on
    on = await svc.update_config(G, enabled=True)
    assert on.talks_in(CH)  # on, with no channel list: every channel
    await asyncio.gather(*(svc.update_config(G, add_channel=channel) for channel in (1, 2, 3, 4)))
    assert sorted((await svc.get_config(G)).channel_ids) == [1, 2, 3, 4]
    after = await svc.update_config(G, remove_channel=2, add_channel=5)
    assert sorted(after.channel_ids) == [1, 3, 4, 5]
    assert after.channel_ids[-1] == 5  # added last
    assert not after.talks_in(CH)
    assert after.talks_in(CH, 3)  # a thread whose parent channel is listed
    assert not after.talks_in(CH, 2)
    with pytest.raises(CompanionValidationError):
        await svc.update_config(G, add_channel=6, birthday_hour_utc=24)
    assert (await svc.get_config(G)).channel_ids == after.channel_ids  # a bad value changes nothing
    assert (await svc.update_config(G, every_channel=True)).channel_ids == ()
