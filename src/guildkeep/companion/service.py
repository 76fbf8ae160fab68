"""The companion's operations: async, plain ids and values in, frozen dataclasses out, own transactions.

A model is never awaited inside a unit of work: `reply` reads and records in one transaction, calls the
model with no session open, then records the answer; `learn` calls the model first and writes the facts
it returned afterwards (a reply that does not parse writes nothing).

Scheduled events are posted through the platform's scheduler: each pending event has one job of kind
``companion.event`` with the dedup key ``event:<id>``; `trigger_event` moves the event from pending to
triggered with one conditional statement, so however many dispatchers race, one of them posts it.

The per-server reply counter (``companion_bot_states.total_messages_sent``, one row per server) is counted through
the core's write-behind `Tally` (``self.tally``) instead of a locked read-modify-write of that hot row in every
reply: `start` flushes it every ``flush_seconds``, `stop` stores what is left, reads (`status`, `replies_sent`) add
what is pending. With ``flush_seconds=0`` (or before `start`) every reply stores its count before it returns.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from datetime import date, datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, and_, delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from guildkeep.companion import rules
from guildkeep.companion.errors import CompanionValidationError, EventNotFoundError, FactNotFoundError
from guildkeep.companion.models import (
    BotOpinion,
    BotState,
    Conversation,
    FactAssociation,
    Message,
    MoodHistory,
    ScheduledEvent,
    UserCommunicationStyle,
    UserFact,
    UserPreference,
    UserRelationship,
)
from guildkeep.companion.results import (
    AssociationInfo,
    ChatContextInfo,
    ConversationInfo,
    EventInfo,
    FactChangeResult,
    FactInfo,
    FactPageInfo,
    LearnResult,
    MessageInfo,
    MoodHistoryInfo,
    MoodInfo,
    OpinionInfo,
    RelationshipInfo,
    ReplyResult,
    StatusInfo,
    StyleInfo,
    TriggerResult,
)
from guildkeep.companion.settings import CompanionConfig, parse_config
from guildkeep.db import Database, utcnow
from guildkeep.db.dialect import insert_for
from guildkeep.db.tally import Tally
from guildkeep.identity.models import User
from guildkeep.identity.service import ensure_guild, ensure_user
from guildkeep.llm import ChatMessage, LLMBadReply, LLMClient
from guildkeep.scheduler.service import SchedulerService

log = logging.getLogger(__name__)

EVENT_JOB = "companion.event"
STATES = cast(Table, BotState.__table__)
NO_MODEL_REPLY = (
    "No language model is set up for me yet, so I can't chat — but I'm still listening and remembering "
    "what you tell me (see `/memory`)."
)
FACTS_PER_PAGE = 10
MAX_PREF_KEY = 100
MAX_PREF_VALUE = 2000
MAX_REFERENCE = 100
MAX_REFERENCES_PER_KIND = 25
REFERENCE_KINDS = ("nicknames", "inside_jokes")
MOOD_EPSILON = 0.01

FACT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "facts": {
            "type": "array",
            "maxItems": 10,
            "items": {
                "type": "object",
                "properties": {
                    "type": {"type": "string", "enum": list(rules.FACT_TYPES)},
                    "content": {"type": "string", "minLength": 1, "maxLength": rules.MAX_FACT_LENGTH},
                    "importance": {"type": "number", "minimum": 0, "maximum": 1},
                    "confidence": {"type": "number", "minimum": 0, "maximum": 1},
                    "temporal": {"type": "string", "enum": list(rules.TEMPORAL)},
                    "birthday": {"type": ["string", "null"], "description": "month and day, e.g. March 14"},
                },
                "required": ["type", "content", "importance", "confidence", "temporal", "birthday"],
                "additionalProperties": False,
            },
        }
    },
    "required": ["facts"],
    "additionalProperties": False,
}
EXTRACTION_PROMPT = (
    "Extract lasting personal facts the user states about themselves in their last message (hobbies, work, "
    "family, preferences, where they live, life events, relationships). Write each fact as a short third-person "
    "sentence without the user's name. Set birthday to the month and day only when the fact is their birthday. "
    "Return an empty list when there is none."
)

TABLES: dict[str, Any] = {
    "preferences": UserPreference,
    "facts": UserFact,
    "conversations": Conversation,
    "messages": Message,
    "relationships": UserRelationship,
    "communication_styles": UserCommunicationStyle,
    "scheduled_events": ScheduledEvent,
}


def _aware(value: datetime, name: str) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware (UTC)")
    return value


def _scope(guild_id: int | None) -> int:
    return rules.GLOBAL_GUILD if guild_id is None else int(guild_id)


def _fact_info(row: UserFact) -> FactInfo:
    return FactInfo(
        id=row.id, user_id=row.user_id, guild_id=row.guild_id, fact_type=row.fact_type, content=row.fact_content,
        confidence=row.confidence, importance=row.importance, temporal_relevance=row.temporal_relevance,
        source=row.source, learned_at=row.learned_at, last_referenced_at=row.last_referenced_at,
        expiry_date=row.expiry_date, is_active=row.is_active,
        extracted_from_message_id=row.extracted_from_message_id, extraction_context=row.extraction_context,
    )


def _message_info(row: Message, new_conversation: bool = False) -> MessageInfo:
    return MessageInfo(row.id, row.conversation_id, row.role, row.content, row.token_count,
                       tuple(row.image_urls or ()), row.created_at, new_conversation)


def _conversation_info(row: Conversation) -> ConversationInfo:
    return ConversationInfo(row.id, row.user_id, row.guild_id, row.channel_id, row.started_at,
                            row.last_message_at, row.message_count, row.is_active)


def _relationship_info(row: UserRelationship | None, user_id: int, guild_id: int) -> RelationshipInfo:
    if row is None:
        level = rules.relationship_level(rules.DEFAULT_SCORE)
        return RelationshipInfo(user_id, guild_id, rules.DEFAULT_SCORE, level, rules.level_name(level), 0, 0, 0,
                                0.0, 0.0, {})
    level = rules.relationship_level(row.relationship_score)
    return RelationshipInfo(
        row.user_id, row.guild_id, row.relationship_score, level, rules.level_name(level), row.total_interactions,
        row.positive_interactions, row.negative_interactions, row.avg_message_length, row.conversation_depth_avg,
        dict(row.shared_references or {}),
    )


def _style_info(row: UserCommunicationStyle | None, user_id: int) -> StyleInfo:
    if row is None:
        return StyleInfo(user_id, "medium", 0.5, 0.5, 0.5, 0.5, 0, 0.0)
    return StyleInfo(row.user_id, row.preferred_length, row.preferred_formality, row.emoji_affinity,
                     row.humor_affinity, row.detail_preference, row.samples_collected, row.confidence)


def _event_info(row: ScheduledEvent) -> EventInfo:
    return EventInfo(row.id, row.user_id, row.guild_id, row.channel_id, row.event_type, row.title, row.trigger_at,
                     row.is_recurring, row.recurrence_rule, row.status, row.triggered_at, dict(row.context or {}))


def _opinion_info(row: BotOpinion) -> OpinionInfo:
    return OpinionInfo(row.guild_id, row.topic, row.sentiment, row.interest_level, row.discussion_count,
                       row.reasoning, row.formed_at, row.last_reinforced_at)


def _visible(now: datetime) -> Any:
    """Active and not expired: an expired fact is hidden, not deleted."""
    return and_(UserFact.is_active.is_(True), or_(UserFact.expiry_date.is_(None), UserFact.expiry_date > now))


def _rowcount(result: Any) -> int:
    return int(getattr(result, "rowcount", 0) or 0)


async def forget_user_rows(s: AsyncSession, user_id: int, *, now: datetime) -> dict[str, int]:
    """Inside the caller's unit of work: delete every companion row about the user (rows per table).

    Mood history rows the user caused keep their numbers with the user and description cleared. The
    scheduler jobs of the deleted events name the user in their payload: the scheduler's privacy provider
    removes them in the same forget (a job that still ran would find no event and post nothing).
    """
    removed: dict[str, int] = {}
    fact_ids = select(UserFact.id).where(UserFact.user_id == user_id).scalar_subquery()
    result = await s.execute(delete(FactAssociation).where(
        or_(FactAssociation.fact_id_1.in_(fact_ids), FactAssociation.fact_id_2.in_(fact_ids))))
    removed["fact_associations"] = _rowcount(result)
    result = await s.execute(delete(Message).where(or_(
        Message.user_id == user_id,
        Message.conversation_id.in_(select(Conversation.id).where(Conversation.user_id == user_id)))))
    removed["messages"] = _rowcount(result)
    for name, model in TABLES.items():
        if name == "messages":
            continue
        result = await s.execute(delete(model).where(model.user_id == user_id))
        removed[name] = _rowcount(result)
    result = await s.execute(update(MoodHistory).where(MoodHistory.trigger_user_id == user_id)
                             .values(trigger_user_id=None, trigger_description=None, updated_at=now))
    removed["mood_history_links"] = _rowcount(result)
    return removed


def _job_payload(event: EventInfo) -> dict[str, int]:
    """An event job's payload; it names the user, so the platform's privacy forget removes the job too."""
    return {"event_id": event.id, "user_id": event.user_id}


class CompanionService:
    """The companion's memory, mood, relationships, styles, opinions, events and chat."""

    def __init__(self, db: Database, *, llm: LLMClient | None = None,
                 clock: Callable[[], datetime] = utcnow, flush_seconds: float = 0.0) -> None:
        self.db = db
        self.llm = llm
        self.clock = clock
        self.jobs = SchedulerService(db)
        self.tally = Tally(db)  # the per-server reply counter, written behind
        self.flush_seconds = flush_seconds

    def start(self) -> None:
        """Write the reply counter behind, every ``flush_seconds`` (0: every reply stores its count itself)."""
        if self.flush_seconds > 0:
            self.tally.start(self.flush_seconds)

    async def stop(self) -> None:
        """Store the counts not written yet (a clean stop loses none)."""
        await self.tally.stop()

    @property
    def model_configured(self) -> bool:
        """Whether a language model is configured (without one, replies come from the rules)."""
        return self.llm is not None and self.llm.configured

    def _now(self, now: datetime | None) -> datetime:
        return _aware(now, "now") if now is not None else self.clock()

    # ------------------------------------------------------------------------------ server config

    async def _state(self, s: AsyncSession, guild_id: int, now: datetime, *, lock: bool = False) -> BotState:
        await self._ensure_state(s, guild_id, now)
        stmt = select(BotState).where(BotState.guild_id == guild_id)
        if lock:
            stmt = stmt.with_for_update()
        return (await s.execute(stmt)).scalar_one()

    async def _ensure_state(self, s: AsyncSession, guild_id: int, now: datetime) -> None:
        """The server's state row exists (created with defaults if not; an existing row is neither read nor locked)."""
        await s.execute(insert_for(s, BotState).values(
            guild_id=guild_id, mood_valence=0.0, mood_arousal=0.0, mood_updated_at=now, total_messages_sent=0,
            total_facts_learned=0, total_users_known=0, first_activated_at=now, preferences={},
            created_at=now, updated_at=now,
        ).on_conflict_do_nothing(index_elements=["guild_id"]))

    async def get_config(self, guild_id: int | None) -> CompanionConfig:
        """The server's companion settings (defaults where none were set: off until an admin turns it on)."""
        async with self.db.session(read_only=True) as s:
            prefs = await s.scalar(select(BotState.preferences).where(BotState.guild_id == _scope(guild_id)))
        return parse_config(prefs)

    async def update_config(self, guild_id: int, *, add_channel: int | None = None, remove_channel: int | None = None,
                            every_channel: bool = False, now: datetime | None = None,
                            **changes: Any) -> CompanionConfig:
        """Change the server's settings; a bad value raises before anything is written.

        ``every_channel`` clears the channel list, then ``add_channel`` and ``remove_channel`` change it: all
        against the stored list, in the same locked unit of work, so two admins' changes never overwrite
        each other.
        """
        now = self._now(now)
        async with self.db.session() as s:
            state = await self._state(s, _scope(guild_id), now, lock=True)
            current = parse_config(state.preferences)
            if every_channel or add_channel is not None or remove_channel is not None:
                channels = [] if every_channel else list(current.channel_ids)
                if add_channel is not None and add_channel not in channels:
                    channels.append(add_channel)
                channels = [c for c in channels if c != remove_channel]
                changes["channel_ids"] = tuple(channels)
            config = current.merged(**changes)
            state.preferences = config.model_dump(mode="json")
            state.updated_at = now
            return config

    # ------------------------------------------------------------------------------ preferences

    async def set_preference(self, user_id: int, key: str, value: str) -> None:
        """Set one of the user's preferences (a short name and value), replacing its value."""
        key = key.strip().lower()
        if not 1 <= len(key) <= MAX_PREF_KEY:
            raise CompanionValidationError(f"A preference name is 1-{MAX_PREF_KEY} characters.")
        if len(value) > MAX_PREF_VALUE:
            raise CompanionValidationError(f"A preference value is at most {MAX_PREF_VALUE} characters.")
        now = self.clock()
        async with self.db.session() as s:
            await ensure_user(s, user_id)
            stmt = insert_for(s, UserPreference).values(
                user_id=user_id, preference_key=key, preference_value=value, created_at=now, updated_at=now)
            await s.execute(stmt.on_conflict_do_update(
                index_elements=["user_id", "preference_key"],
                set_={"preference_value": value, "updated_at": now}))

    async def get_preferences(self, user_id: int) -> dict[str, str]:
        """The user's preferences, by name."""
        async with self.db.session(read_only=True) as s:
            rows = (await s.execute(select(UserPreference.preference_key, UserPreference.preference_value)
                                    .where(UserPreference.user_id == user_id))).all()
        return dict(rows)

    async def delete_preference(self, user_id: int, key: str) -> bool:
        """Remove one of the user's preferences; False when there was none of that name."""
        async with self.db.session() as s:
            result = await s.execute(delete(UserPreference).where(
                UserPreference.user_id == user_id, UserPreference.preference_key == key.strip().lower()))
        return _rowcount(result) > 0

    # ------------------------------------------------------------------------------ facts

    async def remember(
        self,
        user_id: int,
        facts: Sequence[rules.ExtractedFact],
        *,
        guild_id: int | None = None,
        source: str = "conversation",
        message_id: int | None = None,
        context: str | None = None,
        expiry_date: datetime | None = None,
        now: datetime | None = None,
    ) -> list[FactChangeResult]:
        """Store facts, each reconciled against the user's similar visible facts in the same scope.

        Each is added, updated in place (same id) or left alone.
        """
        now = self._now(now)
        if source not in rules.FACT_SOURCES:
            raise CompanionValidationError(f"A fact's source is one of {', '.join(rules.FACT_SOURCES)}.")
        clean: list[rules.ExtractedFact] = []
        for fact in facts:
            content = " ".join(fact.content.split())
            if fact.fact_type not in rules.FACT_TYPES:
                raise CompanionValidationError(f"A fact's type is one of {', '.join(rules.FACT_TYPES)}.")
            if fact.temporal_relevance not in rules.TEMPORAL:
                raise CompanionValidationError(f"A fact's time is one of {', '.join(rules.TEMPORAL)}.")
            if not 1 <= len(content) <= rules.MAX_FACT_LENGTH:
                raise CompanionValidationError(f"A fact is 1-{rules.MAX_FACT_LENGTH} characters.")
            clean.append(rules.ExtractedFact(
                fact.fact_type, content, rules.clamp(fact.importance, 0, 1), rules.clamp(fact.confidence, 0, 1),
                fact.temporal_relevance, fact.birthday))
        if not clean:
            return []
        scope = _scope(guild_id)
        ctx = context[:1000] if context else None
        changes: list[FactChangeResult] = []
        async with self.db.session() as s:
            await ensure_user(s, user_id)
            if scope != rules.GLOBAL_GUILD:
                await ensure_guild(s, scope)
            # One writer per user at a time, so two messages cannot both add the same fact (PostgreSQL).
            await s.execute(select(User.id).where(User.id == user_id).with_for_update())
            rows = list((await s.execute(select(UserFact).where(
                UserFact.user_id == user_id, UserFact.guild_id == scope, _visible(now)))).scalars())
            by_id = {r.id: r for r in rows}
            added = 0
            for fact in clean:
                existing = [rules.ExistingFact(r.id, r.fact_type, r.fact_content) for r in by_id.values()]
                action, target = rules.reconcile(fact.fact_type, fact.content, existing)
                if action == rules.NOOP and target is not None:
                    row = by_id[target]
                    row.confidence = max(row.confidence, fact.confidence)
                    row.last_referenced_at = now
                    changes.append(FactChangeResult(rules.NOOP, row.id, row.fact_content, row.fact_type))
                    continue
                if action == rules.UPDATE and target is not None:
                    row = by_id[target]
                    row.fact_type = row.category = fact.fact_type
                    row.fact_content = fact.content
                    row.confidence = fact.confidence
                    row.importance = max(row.importance, fact.importance)
                    row.temporal_relevance = fact.temporal_relevance
                    row.learned_at = now
                    row.source = source
                    row.extracted_from_message_id = message_id
                    row.extraction_context = ctx
                    row.expiry_date = expiry_date
                    changes.append(FactChangeResult(rules.UPDATE, row.id, row.fact_content, row.fact_type))
                    continue
                row = UserFact(
                    user_id=user_id, guild_id=scope, fact_type=fact.fact_type, category=fact.fact_type,
                    fact_content=fact.content, confidence=fact.confidence, importance=fact.importance,
                    temporal_relevance=fact.temporal_relevance, source=source, learned_at=now,
                    last_referenced_at=None, expiry_date=expiry_date, extracted_from_message_id=message_id,
                    extraction_context=ctx, is_active=True, created_at=now, updated_at=now,
                )
                s.add(row)
                await s.flush()
                by_id[row.id] = row
                added += 1
                changes.append(FactChangeResult(rules.ADD, row.id, row.fact_content, row.fact_type))
            if added:
                state = await self._state(s, scope, now, lock=True)
                state.total_facts_learned += added
            await s.flush()
            for change in changes:
                if change.action != rules.NOOP:
                    await self._associate(s, by_id[change.fact_id], now)
        return changes

    async def _associate(self, s: AsyncSession, fact: UserFact, now: datetime) -> None:
        """Link a fact to similar visible facts of other users in the same server (shared interest, same place)."""
        others = (await s.execute(select(UserFact).where(
            UserFact.user_id != fact.user_id, UserFact.guild_id == fact.guild_id,
            UserFact.fact_type == fact.fact_type, _visible(now)).limit(500))).scalars()
        kind = {"location": "same_location", "work": "same_work", "hobby": "shared_interest",
                "preference": "shared_interest"}.get(fact.fact_type, "related")
        for other in others:
            strength = rules.similarity(fact.fact_content, other.fact_content)
            if strength < rules.UPDATE_SIMILARITY:
                continue
            await self._upsert_association(s, fact.id, other.id, kind=kind, strength=strength, now=now)

    async def _upsert_association(self, s: AsyncSession, a: int, b: int, *, kind: str, strength: float,
                                  now: datetime) -> None:
        first, second = sorted((a, b))
        stmt = insert_for(s, FactAssociation).values(
            fact_id_1=first, fact_id_2=second, association_type=kind, strength=rules.clamp(strength, 0, 1),
            discovered_at=now, created_at=now)
        await s.execute(stmt.on_conflict_do_update(
            index_elements=["fact_id_1", "fact_id_2"],
            set_={"association_type": kind, "strength": rules.clamp(strength, 0, 1)}))

    async def associate(self, fact_a: int, fact_b: int, association_type: str, strength: float) -> AssociationInfo:
        """Link two facts of different users (idempotent per pair: a second call updates the link)."""
        if association_type not in rules.ASSOCIATION_TYPES:
            raise CompanionValidationError(f"An association is one of {', '.join(rules.ASSOCIATION_TYPES)}.")
        if not 0 <= strength <= 1:
            raise CompanionValidationError("An association's strength is between 0 and 1.")
        if fact_a == fact_b:
            raise CompanionValidationError("A fact cannot be associated with itself.")
        now = self.clock()
        async with self.db.session() as s:
            owners = dict((await s.execute(select(UserFact.id, UserFact.user_id)
                                           .where(UserFact.id.in_((fact_a, fact_b))))).all())
            if len(owners) != 2:
                raise FactNotFoundError()
            if owners[fact_a] == owners[fact_b]:
                raise CompanionValidationError("Associations link facts of different users.")
            await self._upsert_association(s, fact_a, fact_b, kind=association_type, strength=strength, now=now)
            first, second = sorted((fact_a, fact_b))
            row = (await s.execute(select(FactAssociation).where(
                FactAssociation.fact_id_1 == first, FactAssociation.fact_id_2 == second))).scalar_one()
            return AssociationInfo(row.id, row.fact_id_1, row.fact_id_2, row.association_type, row.strength)

    async def associations(self, fact_id: int) -> list[AssociationInfo]:
        """The associations that link this fact to others, oldest first."""
        async with self.db.session(read_only=True) as s:
            rows = (await s.execute(select(FactAssociation).where(
                or_(FactAssociation.fact_id_1 == fact_id, FactAssociation.fact_id_2 == fact_id))
                .order_by(FactAssociation.id))).scalars()
            return [AssociationInfo(r.id, r.fact_id_1, r.fact_id_2, r.association_type, r.strength) for r in rows]

    async def list_facts(self, user_id: int, *, page: int = 1, per_page: int = FACTS_PER_PAGE,
                         include_hidden: bool = False, now: datetime | None = None) -> FactPageInfo:
        """The user's facts, newest first, a page at a time; expired and retracted ones only when asked."""
        now = self._now(now)
        where = [UserFact.user_id == user_id]
        if not include_hidden:
            where.append(_visible(now))
        async with self.db.session(read_only=True) as s:
            total = int(await s.scalar(select(func.count()).select_from(UserFact).where(*where)) or 0)
            pages = max(1, math.ceil(total / per_page))
            page = min(max(1, page), pages)
            rows = (await s.execute(select(UserFact).where(*where)
                                    .order_by(UserFact.learned_at.desc(), UserFact.id.desc())
                                    .offset((page - 1) * per_page).limit(per_page))).scalars()
            return FactPageInfo(tuple(_fact_info(r) for r in rows), page, pages, total)

    async def get_fact(self, fact_id: int) -> FactInfo:
        """One fact by id; `FactNotFoundError` when there is none."""
        async with self.db.session(read_only=True) as s:
            row = await s.get(UserFact, fact_id)
            if row is None:
                raise FactNotFoundError()
            return _fact_info(row)

    async def search_facts(self, user_id: int, typed: str, *, limit: int = 25,
                           now: datetime | None = None) -> list[FactInfo]:
        """The user's visible facts containing ``typed`` (for autocomplete), at most ``limit`` (<= 25)."""
        now = self._now(now)
        limit = max(0, min(limit, 25))
        async with self.db.session(read_only=True) as s:
            stmt = select(UserFact).where(UserFact.user_id == user_id, _visible(now))
            if typed.strip():
                stmt = stmt.where(func.lower(UserFact.fact_content).contains(typed.strip().lower()))
            rows = (await s.execute(stmt.order_by(UserFact.learned_at.desc(), UserFact.id.desc())
                                    .limit(limit))).scalars()
            return [_fact_info(r) for r in rows]

    async def relevant_facts(self, user_id: int, guild_id: int | None, query: str, *, limit: int = 8,
                             now: datetime | None = None) -> list[FactInfo]:
        """The user's visible facts of this scope ranked by recency x importance x relevance.

        The ones returned are marked as referenced now.
        """
        now = self._now(now)
        async with self.db.session() as s:
            return await self._relevant(s, user_id, _scope(guild_id), query, limit=limit, now=now)

    async def _relevant(self, s: AsyncSession, user_id: int, scope: int, query: str, *, limit: int,
                        now: datetime) -> list[FactInfo]:
        rows = list((await s.execute(select(UserFact).where(
            UserFact.user_id == user_id, UserFact.guild_id == scope, _visible(now)))).scalars())
        ranked = sorted(rows, key=lambda r: (-rules.fact_score(
            importance=r.importance, last_used=r.last_referenced_at or r.learned_at, now=now,
            content=r.fact_content, query=query), -r.id))[:limit]
        if ranked:
            await s.execute(update(UserFact).where(UserFact.id.in_([r.id for r in ranked]))
                            .values(last_referenced_at=now))
        return [_fact_info(r) for r in ranked]

    async def set_fact_expiry(self, user_id: int, fact_id: int, expiry: datetime | None) -> FactInfo:
        """Set (or clear, with ``None``) when one of the user's facts expires; `FactNotFoundError` otherwise."""
        async with self.db.session() as s:
            row = (await s.execute(select(UserFact).where(UserFact.id == fact_id, UserFact.user_id == user_id)
                                   .with_for_update())).scalar_one_or_none()
            if row is None:
                raise FactNotFoundError()
            row.expiry_date = _aware(expiry, "expiry") if expiry is not None else None
            await s.flush()
            return _fact_info(row)

    async def forget_fact(self, user_id: int, fact_id: int) -> FactInfo:
        """Delete one of the user's facts (and its associations) for good."""
        async with self.db.session() as s:
            row = (await s.execute(select(UserFact).where(UserFact.id == fact_id, UserFact.user_id == user_id)
                                   )).scalar_one_or_none()
            if row is None:
                raise FactNotFoundError()
            info = _fact_info(row)
            await s.execute(delete(FactAssociation).where(
                or_(FactAssociation.fact_id_1 == fact_id, FactAssociation.fact_id_2 == fact_id)))
            await s.execute(delete(UserFact).where(UserFact.id == fact_id))
            return info

    async def count_user_rows(self, user_id: int) -> dict[str, int]:
        """How many rows of each companion table refer to the user (privacy checks and tests)."""
        async with self.db.session(read_only=True) as s:
            counts = {}
            for name, model in TABLES.items():
                counts[name] = int(await s.scalar(select(func.count()).select_from(model)
                                                  .where(model.user_id == user_id)) or 0)
            fact_ids = select(UserFact.id).where(UserFact.user_id == user_id).scalar_subquery()
            counts["fact_associations"] = int(await s.scalar(select(func.count()).select_from(FactAssociation).where(
                or_(FactAssociation.fact_id_1.in_(fact_ids), FactAssociation.fact_id_2.in_(fact_ids)))) or 0)
            counts["mood_history"] = int(await s.scalar(select(func.count()).select_from(MoodHistory)
                                                        .where(MoodHistory.trigger_user_id == user_id)) or 0)
            return counts

    # ------------------------------------------------------------------------------ conversations

    async def _record(self, s: AsyncSession, *, user_id: int, guild_id: int | None, channel_id: int, role: str,
                      content: str, now: datetime, discord_message_id: int | None = None,
                      image_urls: Sequence[str] = ()) -> MessageInfo:
        if role not in rules.ROLES:
            raise CompanionValidationError(f"A message's role is one of {', '.join(rules.ROLES)}.")
        content = content[: rules.MAX_MESSAGE_LENGTH]
        conv = (await s.execute(select(Conversation).where(
            Conversation.user_id == user_id, Conversation.channel_id == channel_id, Conversation.is_active.is_(True))
            .order_by(Conversation.last_message_at.desc(), Conversation.id.desc()).limit(1)
            .with_for_update())).scalar_one_or_none()
        new = conv is None or rules.starts_new_conversation(conv.last_message_at, now)
        if conv is not None and new:
            conv.is_active = False
        if new:
            conv = Conversation(user_id=user_id, guild_id=guild_id, channel_id=channel_id, started_at=now,
                                last_message_at=now, message_count=0, is_active=True, created_at=now, updated_at=now)
            s.add(conv)
            await s.flush()
        assert conv is not None
        conv.message_count += 1
        conv.last_message_at = max(conv.last_message_at, now)
        conv.updated_at = now
        urls = [str(u)[:2000] for u in image_urls][:10]
        msg = Message(conversation_id=conv.id, user_id=user_id, discord_message_id=discord_message_id, role=role,
                      content=content, has_images=bool(urls), image_urls=urls,
                      token_count=rules.estimate_tokens(content), created_at=now, updated_at=now)
        s.add(msg)
        await s.flush()
        return _message_info(msg, new)

    async def record_message(self, user_id: int, channel_id: int, role: str, content: str, *,
                             guild_id: int | None = None, discord_message_id: int | None = None,
                             image_urls: Sequence[str] = (), now: datetime | None = None) -> MessageInfo:
        """Store one message; a new conversation starts after 60 minutes without one in that channel."""
        now = self._now(now)
        async with self.db.session() as s:
            await ensure_user(s, user_id)
            return await self._record(s, user_id=user_id, guild_id=guild_id, channel_id=channel_id, role=role,
                                      content=content, now=now, discord_message_id=discord_message_id,
                                      image_urls=image_urls)

    async def conversations(self, user_id: int) -> list[ConversationInfo]:
        """The user's conversations, oldest first."""
        async with self.db.session(read_only=True) as s:
            rows = (await s.execute(select(Conversation).where(Conversation.user_id == user_id)
                                    .order_by(Conversation.started_at, Conversation.id))).scalars()
            return [_conversation_info(r) for r in rows]

    async def messages(self, conversation_id: int, *, limit: int = 50) -> list[MessageInfo]:
        """The newest ``limit`` messages of a conversation, oldest first."""
        async with self.db.session(read_only=True) as s:
            return await self._recent(s, conversation_id, limit)

    async def _recent(self, s: AsyncSession, conversation_id: int, limit: int) -> list[MessageInfo]:
        rows = list((await s.execute(select(Message).where(Message.conversation_id == conversation_id)
                                     .order_by(Message.created_at.desc(), Message.id.desc()).limit(limit))).scalars())
        return [_message_info(r) for r in reversed(rows)]

    # ------------------------------------------------------------------------------ mood

    async def get_mood(self, guild_id: int | None, *, now: datetime | None = None) -> MoodInfo:
        """The mood as it is now: the stored one decayed for the time since it last changed (not written)."""
        now = self._now(now)
        scope = _scope(guild_id)
        async with self.db.session(read_only=True) as s:
            row = (await s.execute(select(BotState).where(BotState.guild_id == scope))).scalar_one_or_none()
        if row is None:
            return MoodInfo(scope, 0.0, 0.0, rules.mood_label(0, 0), now)
        v, a = rules.decay_mood(row.mood_valence, row.mood_arousal, now - row.mood_updated_at)
        return MoodInfo(scope, v, a, rules.mood_label(v, a), now)

    async def _change_mood(self, s: AsyncSession, scope: int, now: datetime, *, sentiment: float | None,
                           intensity: float, trigger_type: str, user_id: int | None,
                           description: str | None) -> MoodInfo:
        state = await self._state(s, scope, now, lock=True)
        v0, a0 = state.mood_valence, state.mood_arousal
        v, a = rules.decay_mood(v0, a0, now - state.mood_updated_at)
        if abs(v - v0) >= MOOD_EPSILON or abs(a - a0) >= MOOD_EPSILON:
            s.add(MoodHistory(guild_id=scope, valence=v, arousal=a, trigger_type="time_decay", trigger_user_id=None,
                              trigger_description="drifted toward neutral", recorded_at=now, created_at=now,
                              updated_at=now))
        if sentiment is not None:
            v, a = rules.nudge_mood(v, a, sentiment, intensity)
            s.add(MoodHistory(guild_id=scope, valence=v, arousal=a, trigger_type=trigger_type,
                              trigger_user_id=user_id, trigger_description=description, recorded_at=now,
                              created_at=now, updated_at=now))
        state.mood_valence, state.mood_arousal = v, a
        state.mood_updated_at = now
        state.updated_at = now
        return MoodInfo(scope, v, a, rules.mood_label(v, a), now)

    async def adjust_mood(self, guild_id: int | None, *, sentiment: float, intensity: float = 0.0,
                          trigger_type: str = "event", user_id: int | None = None,
                          description: str | None = None, now: datetime | None = None) -> MoodInfo:
        """Move the mood (after decaying it to now); each change gets a history row with its trigger."""
        if trigger_type not in rules.TRIGGER_TYPES:
            raise CompanionValidationError(f"A mood trigger is one of {', '.join(rules.TRIGGER_TYPES)}.")
        now = self._now(now)
        async with self.db.session() as s:
            if user_id is not None:
                await ensure_user(s, user_id)
            return await self._change_mood(s, _scope(guild_id), now, sentiment=sentiment, intensity=intensity,
                                           trigger_type=trigger_type, user_id=user_id, description=description)

    async def decay_mood(self, guild_id: int | None, *, now: datetime | None = None) -> MoodInfo:
        """Write the decay since the last change (one ``time_decay`` history row if it moved)."""
        now = self._now(now)
        async with self.db.session() as s:
            return await self._change_mood(s, _scope(guild_id), now, sentiment=None, intensity=0.0,
                                           trigger_type="time_decay", user_id=None, description=None)

    async def mood_history(self, guild_id: int | None, *, limit: int = 50) -> list[MoodHistoryInfo]:
        """How the mood of a server (``None``: direct messages) changed, oldest first, at most ``limit``."""
        async with self.db.session(read_only=True) as s:
            rows = (await s.execute(select(MoodHistory).where(MoodHistory.guild_id == _scope(guild_id))
                                    .order_by(MoodHistory.recorded_at, MoodHistory.id).limit(limit))).scalars()
            return [MoodHistoryInfo(r.valence, r.arousal, r.trigger_type, r.trigger_user_id, r.trigger_description,
                                    r.recorded_at) for r in rows]

    # ------------------------------------------------------------------------------ opinions

    async def _reinforce(self, s: AsyncSession, scope: int, topic: str, *, sentiment: float, now: datetime,
                         reasoning: str | None) -> None:
        topic = " ".join(topic.lower().split())[: rules.MAX_TOPIC]
        if not topic:
            raise CompanionValidationError("An opinion needs a topic.")
        sentiment = rules.clamp(sentiment, -1, 1)
        await s.execute(insert_for(s, BotOpinion).values(
            guild_id=scope, topic=topic, sentiment=0.0, interest_level=0.5, discussion_count=0, reasoning=None,
            formed_at=now, last_reinforced_at=now, created_at=now, updated_at=now,
        ).on_conflict_do_nothing(index_elements=["guild_id", "topic"]))
        row = (await s.execute(select(BotOpinion).where(BotOpinion.guild_id == scope, BotOpinion.topic == topic)
                               .with_for_update())).scalar_one()
        n = row.discussion_count
        row.sentiment = rules.clamp(rules.running_average(row.sentiment, n, sentiment), -1, 1)
        row.interest_level = rules.clamp(row.interest_level + 0.05, 0, 1)
        row.discussion_count = n + 1
        row.last_reinforced_at = now
        row.updated_at = now
        if reasoning:
            row.reasoning = reasoning[:2000]

    async def reinforce_opinion(self, guild_id: int | None, topic: str, sentiment: float, *,
                                reasoning: str | None = None, now: datetime | None = None) -> OpinionInfo:
        """Form an opinion on first discussion, then move its sentiment toward what is said and raise interest."""
        now = self._now(now)
        scope = _scope(guild_id)
        async with self.db.session() as s:
            await self._reinforce(s, scope, topic, sentiment=sentiment, now=now, reasoning=reasoning)
            row = (await s.execute(select(BotOpinion).where(
                BotOpinion.guild_id == scope, BotOpinion.topic == " ".join(topic.lower().split())[:255]))).scalar_one()
            return _opinion_info(row)

    async def opinions(self, guild_id: int | None) -> list[OpinionInfo]:
        """The companion's opinions in a server (``None``: direct messages), most discussed first."""
        async with self.db.session(read_only=True) as s:
            rows = (await s.execute(select(BotOpinion).where(BotOpinion.guild_id == _scope(guild_id))
                                    .order_by(BotOpinion.discussion_count.desc(), BotOpinion.topic))).scalars()
            return [_opinion_info(r) for r in rows]

    # ------------------------------------------------------------------------------ relationships

    async def _interact(self, s: AsyncSession, user_id: int, scope: int, text: str, *, depth: int,
                        now: datetime) -> RelationshipInfo:
        ins = insert_for(s, UserRelationship).values(
            user_id=user_id, guild_id=scope, relationship_score=rules.DEFAULT_SCORE, total_interactions=0,
            positive_interactions=0, negative_interactions=0, avg_message_length=0.0, conversation_depth_avg=0.0,
            shared_references={}, first_interaction_at=now, last_interaction_at=now, created_at=now, updated_at=now)
        result = await s.execute(ins.on_conflict_do_nothing(index_elements=["user_id", "guild_id"]))
        if _rowcount(result):
            state = await self._state(s, scope, now, lock=True)
            state.total_users_known += 1
        row = (await s.execute(select(UserRelationship).where(
            UserRelationship.user_id == user_id, UserRelationship.guild_id == scope).with_for_update())).scalar_one()
        mood = rules.sentiment(text)
        n = row.total_interactions
        row.relationship_score = rules.clamp(row.relationship_score + rules.relationship_delta(mood, len(text)),
                                             0.0, 100.0)
        row.total_interactions = n + 1
        if mood > 0.1:
            row.positive_interactions += 1
        elif mood < -0.1:
            row.negative_interactions += 1
        row.avg_message_length = rules.running_average(row.avg_message_length, n, float(len(text)))
        row.conversation_depth_avg = rules.running_average(row.conversation_depth_avg, n, float(depth))
        row.last_interaction_at = now
        row.updated_at = now
        return _relationship_info(row, user_id, scope)

    async def record_interaction(self, user_id: int, guild_id: int | None, text: str, *, depth: int = 1,
                                 now: datetime | None = None) -> RelationshipInfo:
        """One message from the user: the score moves by its warmth and length, counts and averages follow."""
        now = self._now(now)
        async with self.db.session() as s:
            await ensure_user(s, user_id)
            return await self._interact(s, user_id, _scope(guild_id), text, depth=depth, now=now)

    async def set_relationship_score(self, user_id: int, guild_id: int | None, score: float) -> RelationshipInfo:
        """Set the score (admin tools, tests); it must lie in 0-100."""
        if not 0 <= score <= 100:
            raise CompanionValidationError("A relationship score is between 0 and 100.")
        now = self.clock()
        scope = _scope(guild_id)
        async with self.db.session() as s:
            await ensure_user(s, user_id)
            await self._interact(s, user_id, scope, "", depth=0, now=now)
            row = (await s.execute(select(UserRelationship).where(
                UserRelationship.user_id == user_id, UserRelationship.guild_id == scope))).scalar_one()
            row.relationship_score = score
            return _relationship_info(row, user_id, scope)

    async def get_relationship(self, user_id: int, guild_id: int | None) -> RelationshipInfo:
        """The user's relationship with the companion in a server (``None``: DMs); defaults when none is stored."""
        scope = _scope(guild_id)
        async with self.db.session(read_only=True) as s:
            row = (await s.execute(select(UserRelationship).where(
                UserRelationship.user_id == user_id, UserRelationship.guild_id == scope))).scalar_one_or_none()
            return _relationship_info(row, user_id, scope)

    async def add_shared_reference(self, user_id: int, guild_id: int | None, kind: str,
                                   value: str) -> RelationshipInfo:
        """Remember a nickname or inside joke shared with the user (each kind keeps the latest 25)."""
        if kind not in REFERENCE_KINDS:
            raise CompanionValidationError(f"A shared reference is one of {', '.join(REFERENCE_KINDS)}.")
        value = " ".join(value.split())
        if not 1 <= len(value) <= MAX_REFERENCE:
            raise CompanionValidationError(f"A shared reference is 1-{MAX_REFERENCE} characters.")
        now = self.clock()
        scope = _scope(guild_id)
        async with self.db.session() as s:
            await ensure_user(s, user_id)
            await s.execute(insert_for(s, UserRelationship).values(
                user_id=user_id, guild_id=scope, relationship_score=rules.DEFAULT_SCORE, total_interactions=0,
                positive_interactions=0, negative_interactions=0, avg_message_length=0.0,
                conversation_depth_avg=0.0, shared_references={}, first_interaction_at=now, last_interaction_at=now,
                created_at=now, updated_at=now).on_conflict_do_nothing(index_elements=["user_id", "guild_id"]))
            row = (await s.execute(select(UserRelationship).where(
                UserRelationship.user_id == user_id, UserRelationship.guild_id == scope)
                .with_for_update())).scalar_one()
            refs = {k: list(v) for k, v in (row.shared_references or {}).items()}
            items = [x for x in refs.get(kind, []) if x.lower() != value.lower()] + [value]
            refs[kind] = items[-MAX_REFERENCES_PER_KIND:]
            row.shared_references = refs
            row.updated_at = now
            return _relationship_info(row, user_id, scope)

    # ------------------------------------------------------------------------------ styles

    async def _learn_style(self, s: AsyncSession, user_id: int, text: str, now: datetime) -> StyleInfo:
        await s.execute(insert_for(s, UserCommunicationStyle).values(
            user_id=user_id, preferred_length="medium", preferred_formality=0.5, emoji_affinity=0.5,
            humor_affinity=0.5, detail_preference=0.5, engagement_signals={}, samples_collected=0, confidence=0.0,
            created_at=now, updated_at=now).on_conflict_do_nothing(index_elements=["user_id"]))
        row = (await s.execute(select(UserCommunicationStyle).where(UserCommunicationStyle.user_id == user_id)
                               .with_for_update())).scalar_one()
        sample = rules.style_sample(text)
        n = row.samples_collected
        signals = dict(row.engagement_signals or {})
        avg_len = rules.running_average(float(signals.get("avg_length", 0.0)), n, float(sample.length))
        signals["avg_length"] = avg_len
        signals["questions"] = int(signals.get("questions", 0)) + text.count("?")
        row.engagement_signals = signals
        if n == 0:  # the first sample replaces the neutral defaults
            row.preferred_formality, row.emoji_affinity = sample.formality, sample.emoji
            row.humor_affinity, row.detail_preference = sample.humor, sample.detail
        else:
            row.preferred_formality = rules.running_average(row.preferred_formality, n, sample.formality)
            row.emoji_affinity = rules.running_average(row.emoji_affinity, n, sample.emoji)
            row.humor_affinity = rules.running_average(row.humor_affinity, n, sample.humor)
            row.detail_preference = rules.running_average(row.detail_preference, n, sample.detail)
        row.preferred_length = rules.preferred_length(avg_len)
        row.samples_collected = n + 1
        row.confidence = rules.style_confidence(n + 1)
        row.updated_at = now
        return _style_info(row, user_id)

    async def learn_style(self, user_id: int, text: str, *, now: datetime | None = None) -> StyleInfo:
        """Fold one message into the user's style: length, formality, emoji, humour, detail; confidence grows."""
        now = self._now(now)
        async with self.db.session() as s:
            await ensure_user(s, user_id)
            return await self._learn_style(s, user_id, text, now)

    async def get_style(self, user_id: int) -> StyleInfo:
        """How the user likes to talk, as learnt so far (defaults when nothing is)."""
        async with self.db.session(read_only=True) as s:
            row = (await s.execute(select(UserCommunicationStyle).where(
                UserCommunicationStyle.user_id == user_id))).scalar_one_or_none()
            return _style_info(row, user_id)

    # ------------------------------------------------------------------------------ events

    async def schedule_event(
        self,
        user_id: int,
        event_type: str,
        title: str,
        trigger_at: datetime,
        *,
        guild_id: int | None = None,
        channel_id: int | None = None,
        recurrence: str | None = None,
        context: dict[str, Any] | None = None,
        now: datetime | None = None,
    ) -> EventInfo:
        """Store a pending event and schedule the job that posts it (idempotent per event)."""
        now = self._now(now)
        _aware(trigger_at, "trigger_at")
        if event_type not in rules.EVENT_TYPES:
            raise CompanionValidationError(f"An event is one of {', '.join(rules.EVENT_TYPES)}.")
        if recurrence is not None and recurrence not in rules.RECURRENCES:
            raise CompanionValidationError(f"An event recurs {', '.join(rules.RECURRENCES)} or not at all.")
        title = " ".join(title.split())
        if not 1 <= len(title) <= rules.MAX_TITLE:
            raise CompanionValidationError(f"What to remind you of is 1-{rules.MAX_TITLE} characters.")
        if trigger_at <= now:
            raise CompanionValidationError("That time is already past; pick a time in the future.")
        async with self.db.session() as s:
            await ensure_user(s, user_id)
            row = ScheduledEvent(user_id=user_id, guild_id=guild_id, channel_id=channel_id, event_type=event_type,
                                 trigger_at=trigger_at, title=title, context=dict(context or {}),
                                 is_recurring=recurrence is not None, recurrence_rule=recurrence,
                                 status=rules.PENDING, created_at=now, updated_at=now)
            s.add(row)
            await s.flush()
            info = _event_info(row)
        await self._schedule_job(info, now)
        return info

    async def _schedule_job(self, event: EventInfo, now: datetime) -> None:
        await self.jobs.schedule(EVENT_JOB, event.trigger_at, now=now, guild_id=event.guild_id,
                                 payload=_job_payload(event), dedup_key=f"event:{event.id}")

    async def set_birthday(self, user_id: int, month: int, day: int, *, guild_id: int | None = None,
                           channel_id: int | None = None, now: datetime | None = None) -> EventInfo:
        """The user's yearly birthday event (one per user: a new date replaces the pending one) and fact."""
        now = self._now(now)
        try:
            date(2000, month, day)
        except ValueError as exc:
            raise CompanionValidationError("That is not a date: give a month (1-12) and a day that exists.") from exc
        hour = (await self.get_config(guild_id)).birthday_hour_utc
        await self.remember(user_id, [rules.ExtractedFact(
            "event", f"Birthday is {date(2000, month, day):%B} {day}", 0.9, 1.0, "timeless", (month, day))],
            guild_id=guild_id, source="manual", now=now)
        await self.cancel_events(user_id, event_type="birthday", now=now)
        return await self.schedule_event(
            user_id, "birthday", "Birthday", rules.next_yearly(month, day, now, hour), guild_id=guild_id,
            channel_id=channel_id, recurrence="yearly", context={"month": month, "day": day, "hour": hour}, now=now)

    async def cancel_events(self, user_id: int, *, event_type: str | None = None, event_id: int | None = None,
                            now: datetime | None = None) -> int:
        """Cancel the user's pending events (of a type, or one by id) and their jobs."""
        now = self._now(now)
        where = [ScheduledEvent.user_id == user_id, ScheduledEvent.status == rules.PENDING]
        if event_type is not None:
            where.append(ScheduledEvent.event_type == event_type)
        if event_id is not None:
            where.append(ScheduledEvent.id == event_id)
        async with self.db.session() as s:
            ids = list((await s.execute(update(ScheduledEvent).where(*where)
                                        .values(status=rules.CANCELLED, updated_at=now)
                                        .returning(ScheduledEvent.id))).scalars())
        for eid in ids:
            await self.jobs.cancel_key(EVENT_JOB, f"event:{eid}", now=now)
        if event_id is not None and not ids:
            raise EventNotFoundError()
        return len(ids)

    async def list_events(self, user_id: int, *, status: str | None = rules.PENDING) -> list[EventInfo]:
        """The user's scheduled events by due time, of one status (``None``: every status)."""
        async with self.db.session(read_only=True) as s:
            stmt = select(ScheduledEvent).where(ScheduledEvent.user_id == user_id)
            if status is not None:
                stmt = stmt.where(ScheduledEvent.status == status)
            rows = (await s.execute(stmt.order_by(ScheduledEvent.trigger_at, ScheduledEvent.id))).scalars()
            return [_event_info(r) for r in rows]

    async def trigger_event(self, event_id: int, *, now: datetime | None = None) -> TriggerResult | None:
        """Move a due pending event to triggered, once: a second caller (or a cancelled event) gets None.

        A recurring event gets its next occurrence as a new pending row in the same transaction; its job
        is scheduled afterwards (and `ensure_event_jobs` re-creates it should the process stop in between).
        """
        now = self._now(now)
        events = cast(Table, ScheduledEvent.__table__)
        async with self.db.session() as s:
            row = (await s.execute(update(events).where(
                events.c.id == event_id, events.c.status == rules.PENDING, events.c.trigger_at <= now,
            ).values(status=rules.TRIGGERED, triggered_at=now, updated_at=now).returning(*events.c))).first()
            if row is None:
                return None
            fired = EventInfo(row.id, row.user_id, row.guild_id, row.channel_id, row.event_type, row.title,
                              row.trigger_at, row.is_recurring, row.recurrence_rule, row.status, row.triggered_at,
                              dict(row.context or {}))
            next_info: EventInfo | None = None
            if fired.is_recurring and fired.recurrence_rule:
                ctx = fired.context
                if fired.event_type == "birthday" and "month" in ctx and "day" in ctx:
                    when = rules.next_yearly(int(ctx["month"]), int(ctx["day"]), max(now, fired.trigger_at),
                                             int(ctx.get("hour", 9)))
                else:
                    anchor = datetime.fromisoformat(ctx["anchor"]) if "anchor" in ctx else fired.trigger_at
                    when = rules.next_occurrence(anchor, fired.recurrence_rule, max(now, fired.trigger_at))
                    ctx = {**ctx, "anchor": anchor.isoformat()}
                nxt = ScheduledEvent(user_id=fired.user_id, guild_id=fired.guild_id, channel_id=fired.channel_id,
                                     event_type=fired.event_type, trigger_at=when, title=fired.title, context=ctx,
                                     is_recurring=True, recurrence_rule=fired.recurrence_rule,
                                     status=rules.PENDING, created_at=now, updated_at=now)
                s.add(nxt)
                await s.flush()
                next_info = _event_info(nxt)
        if next_info is not None:
            await self._schedule_job(next_info, now)
        return TriggerResult(fired, next_info)

    async def ensure_event_jobs(self, *, now: datetime | None = None) -> int:
        """Schedule the job of every pending event that has none (idempotent); return how many were created."""
        now = self._now(now)
        async with self.db.session(read_only=True) as s:
            rows = (await s.execute(select(ScheduledEvent).where(ScheduledEvent.status == rules.PENDING))).scalars()
            pending = [_event_info(r) for r in rows]
        created = 0
        for event in pending:
            result = await self.jobs.schedule(EVENT_JOB, event.trigger_at, now=now, guild_id=event.guild_id,
                                              payload=_job_payload(event), dedup_key=f"event:{event.id}")
            created += int(result.created)
        return created

    # ------------------------------------------------------------------------------ talking

    async def observe(self, user_id: int, channel_id: int, content: str, *, guild_id: int | None = None,
                      username: str | None = None, display_name: str | None = None,
                      discord_message_id: int | None = None, image_urls: Sequence[str] = (),
                      now: datetime | None = None) -> ChatContextInfo:
        """Record a message to the companion, then read the context a reply is written from.

        Everything the message changes (conversation, relationship, style, mood, opinions) is written in
        the same transaction.
        """
        now = self._now(now)
        scope = _scope(guild_id)
        async with self.db.session() as s:
            await ensure_user(s, user_id, username)
            if guild_id is not None:
                await ensure_guild(s, guild_id)
            msg = await self._record(s, user_id=user_id, guild_id=guild_id, channel_id=channel_id, role="user",
                                     content=content, now=now, discord_message_id=discord_message_id,
                                     image_urls=image_urls)
            conv = await s.get(Conversation, msg.conversation_id)
            depth = conv.message_count if conv is not None else 1
            relationship = await self._interact(s, user_id, scope, content, depth=depth, now=now)
            style = await self._learn_style(s, user_id, content, now)
            feeling = rules.sentiment(content)
            mood = await self._change_mood(s, scope, now, sentiment=feeling, intensity=rules.intensity(content),
                                           trigger_type="conversation", user_id=user_id,
                                           description="a message in conversation")
            for topic in rules.topics(content):
                await self._reinforce(s, scope, topic, sentiment=feeling, now=now, reasoning=None)
            state = await self._state(s, scope, now)
            config = parse_config(state.preferences)
            facts = await self._relevant(s, user_id, scope, content, limit=config.context_facts, now=now)
            recent = await self._recent(s, msg.conversation_id, config.context_messages)
        return ChatContextInfo(
            user_id=user_id, guild_id=scope, channel_id=channel_id, conversation_id=msg.conversation_id,
            persona=config.persona, display_name=display_name or username or str(user_id),
            relationship=relationship, mood=mood, style=style, facts=tuple(facts), recent=tuple(recent),
            message=content,
        )

    async def reply(self, user_id: int, channel_id: int, content: str, *, guild_id: int | None = None,
                    username: str | None = None, display_name: str | None = None,
                    discord_message_id: int | None = None, image_urls: Sequence[str] = (),
                    now: datetime | None = None) -> ReplyResult:
        """Answer a message: record it, ask the model with no session open, record the answer.

        Without a model the answer says plainly that none is set; memory, mood and relationships still move.
        """
        now = self._now(now)
        context = await self.observe(user_id, channel_id, content, guild_id=guild_id, username=username,
                                     display_name=display_name, discord_message_id=discord_message_id,
                                     image_urls=image_urls, now=now)
        if self.model_configured:
            assert self.llm is not None
            answer = await self.llm.chat(build_prompt(context), guild_id=guild_id)
            text = answer.content.strip() or "…"
        else:
            text = NO_MODEL_REPLY
        async with self.db.session() as s:
            await self._record(s, user_id=user_id, guild_id=guild_id, channel_id=channel_id, role="assistant",
                               content=text, now=now + timedelta(microseconds=1))
            # the row the tally increments exists; nothing else of it changes here, so it is not locked
            await self._ensure_state(s, context.guild_id, now)
        await self._count_reply(context.guild_id)
        return ReplyResult(text[:2000], self.model_configured, context.conversation_id, context)

    async def _count_reply(self, scope: int) -> None:
        """Count a stored reply into the server's counter: in memory, or stored at once when not written behind."""
        self.tally.add(STATES, {"guild_id": scope}, "total_messages_sent")
        if self.tally.running:
            return
        try:
            await self.tally.flush()
        except Exception:  # the reply is stored: its count stays pending for the next flush (or `stop`)
            log.exception("storing the companion's reply count failed; it is kept for the next flush")

    async def replies_sent(self, guild_id: int | None) -> int:
        """How many replies the companion has sent in the server (0: DMs), those not stored yet included."""
        scope = _scope(guild_id)
        async with self.db.session(read_only=True) as s:
            stored = await s.scalar(select(BotState.total_messages_sent).where(BotState.guild_id == scope))
        return int(stored or 0) + self.tally.pending(STATES, {"guild_id": scope}, "total_messages_sent")

    async def extract(self, content: str, *, guild_id: int | None = None) -> tuple[list[rules.ExtractedFact], str]:
        """Facts in a message: from the model (JSON-schema request) when one is set, else from the rules.

        A model reply that does not parse or breaks the schema gives no facts (``"none"``).
        """
        if not self.model_configured:
            return rules.extract_facts(content), "rules"
        assert self.llm is not None
        try:
            reply = await self.llm.structured(
                [ChatMessage.system(EXTRACTION_PROMPT), ChatMessage.user(content[: rules.MAX_MESSAGE_LENGTH])],
                FACT_SCHEMA, name="user_facts", guild_id=guild_id)
        except LLMBadReply:
            log.info("fact extraction: the model's reply did not parse; nothing learned")
            return [], "none"
        facts = []
        for item in reply.data["facts"]:
            birthday = rules.parse_month_day(item["birthday"]) if item.get("birthday") else None
            text = " ".join(str(item["content"]).split())
            if not text:
                continue
            facts.append(rules.ExtractedFact(item["type"], text[: rules.MAX_FACT_LENGTH], float(item["importance"]),
                                             float(item["confidence"]), item["temporal"], birthday))
        return facts, "model"

    async def learn(self, user_id: int, channel_id: int, content: str, *, guild_id: int | None = None,
                    discord_message_id: int | None = None, now: datetime | None = None) -> LearnResult:
        """After a reply: extract facts (model or rules), reconcile and store them.

        A birthday among them schedules the yearly birthday event.
        """
        now = self._now(now)
        facts, extractor = await self.extract(content, guild_id=guild_id)  # no session is open here
        changes = await self.remember(user_id, facts, guild_id=guild_id, source="auto_extraction",
                                      message_id=discord_message_id, context=content, now=now)
        events: list[EventInfo] = []
        for fact, change in zip(facts, changes, strict=True):
            if fact.birthday is not None and change.action != rules.NOOP:
                month, day = fact.birthday
                await self.cancel_events(user_id, event_type="birthday", now=now)
                hour = (await self.get_config(guild_id)).birthday_hour_utc
                events.append(await self.schedule_event(
                    user_id, "birthday", "Birthday", rules.next_yearly(month, day, now, hour), guild_id=guild_id,
                    channel_id=channel_id, recurrence="yearly", context={"month": month, "day": day, "hour": hour},
                    now=now))
        return LearnResult(tuple(changes), tuple(events), extractor)

    async def status(self, user_id: int, guild_id: int | None, *, now: datetime | None = None) -> StatusInfo:
        """What the companion knows of the user: mood, relationship, how many facts and pending events."""
        now = self._now(now)
        mood = await self.get_mood(guild_id, now=now)
        relationship = await self.get_relationship(user_id, guild_id)
        async with self.db.session(read_only=True) as s:
            facts = int(await s.scalar(select(func.count()).select_from(UserFact)
                                       .where(UserFact.user_id == user_id, _visible(now))) or 0)
            events = int(await s.scalar(select(func.count()).select_from(ScheduledEvent).where(
                ScheduledEvent.user_id == user_id, ScheduledEvent.status == rules.PENDING)) or 0)
        return StatusInfo(mood, relationship, facts, events, await self.replies_sent(guild_id))


def build_prompt(context: ChatContextInfo) -> list[ChatMessage]:
    """The messages a reply is asked with: persona, relationship, mood, style, ranked facts, recent turns."""
    style = context.style
    lines = [
        context.persona,
        "",
        f"You are talking with {context.display_name}. Your relationship: {context.relationship.level_name} "
        f"({context.relationship.score:.0f}/100).",
        f"Your mood: {context.mood.label} (valence {context.mood.valence:+.2f}, arousal {context.mood.arousal:+.2f}).",
        f"They prefer {style.preferred_length} replies; formality {style.preferred_formality:.1f}, emoji "
        f"{style.emoji_affinity:.1f}, humour {style.humor_affinity:.1f}, detail {style.detail_preference:.1f} "
        f"(0-1, confidence {style.confidence:.1f}).",
    ]
    refs = context.relationship.shared_references
    if refs.get("nicknames"):
        lines.append("Nicknames you share: " + ", ".join(refs["nicknames"][-5:]) + ".")
    if refs.get("inside_jokes"):
        lines.append("Inside jokes: " + "; ".join(refs["inside_jokes"][-5:]) + ".")
    if context.facts:
        lines.append("What you remember about them (most relevant first):")
        lines.extend(f"- {f.content}" for f in context.facts)
    messages = [ChatMessage.system("\n".join(lines))]
    for m in context.recent:
        if m.role == "user":
            messages.append(ChatMessage.user(m.content))
        elif m.role == "assistant":
            messages.append(ChatMessage.assistant(m.content))
    if not context.recent or context.recent[-1].content != context.message[: rules.MAX_MESSAGE_LENGTH]:
        messages.append(ChatMessage.user(context.message))
    return messages
