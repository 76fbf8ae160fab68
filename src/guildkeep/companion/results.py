"""What the companion's service returns: frozen dataclasses, never ORM rows or discord objects."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class FactInfo:
    id: int
    user_id: int
    guild_id: int
    fact_type: str
    content: str
    confidence: float
    importance: float
    temporal_relevance: str
    source: str
    learned_at: datetime
    last_referenced_at: datetime | None
    expiry_date: datetime | None
    is_active: bool
    extracted_from_message_id: int | None = None
    extraction_context: str | None = None


@dataclass(frozen=True)
class FactChangeResult:
    """What remembering one fact did: ``add`` (a new id), ``update`` (same id, new content) or ``none``."""

    action: str
    fact_id: int
    content: str
    fact_type: str


@dataclass(frozen=True)
class FactPageInfo:
    facts: tuple[FactInfo, ...]
    page: int
    pages: int
    total: int


@dataclass(frozen=True)
class MessageInfo:
    id: int
    conversation_id: int
    role: str
    content: str
    token_count: int
    image_urls: tuple[str, ...]
    created_at: datetime
    new_conversation: bool = False


@dataclass(frozen=True)
class ConversationInfo:
    id: int
    user_id: int
    guild_id: int | None
    channel_id: int
    started_at: datetime
    last_message_at: datetime
    message_count: int
    is_active: bool


@dataclass(frozen=True)
class MoodInfo:
    guild_id: int
    valence: float
    arousal: float
    label: str
    updated_at: datetime


@dataclass(frozen=True)
class MoodHistoryInfo:
    valence: float
    arousal: float
    trigger_type: str
    trigger_user_id: int | None
    trigger_description: str | None
    recorded_at: datetime


@dataclass(frozen=True)
class OpinionInfo:
    guild_id: int
    topic: str
    sentiment: float
    interest_level: float
    discussion_count: int
    reasoning: str | None
    formed_at: datetime
    last_reinforced_at: datetime


@dataclass(frozen=True)
class RelationshipInfo:
    user_id: int
    guild_id: int
    score: float
    level: str
    level_name: str
    total_interactions: int
    positive_interactions: int
    negative_interactions: int
    avg_message_length: float
    conversation_depth_avg: float
    shared_references: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class StyleInfo:
    user_id: int
    preferred_length: str
    preferred_formality: float
    emoji_affinity: float
    humor_affinity: float
    detail_preference: float
    samples_collected: int
    confidence: float


@dataclass(frozen=True)
class EventInfo:
    id: int
    user_id: int
    guild_id: int | None
    channel_id: int | None
    event_type: str
    title: str
    trigger_at: datetime
    is_recurring: bool
    recurrence_rule: str | None
    status: str
    triggered_at: datetime | None
    context: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TriggerResult:
    """An event that this call moved from pending to triggered, and its next occurrence if it recurs."""

    event: EventInfo
    next_event: EventInfo | None


@dataclass(frozen=True)
class AssociationInfo:
    id: int
    fact_id_1: int
    fact_id_2: int
    association_type: str
    strength: float


@dataclass(frozen=True)
class ChatContextInfo:
    """Everything a reply is written from."""

    user_id: int
    guild_id: int
    channel_id: int
    conversation_id: int
    persona: str
    display_name: str
    relationship: RelationshipInfo
    mood: MoodInfo
    style: StyleInfo
    facts: tuple[FactInfo, ...]
    recent: tuple[MessageInfo, ...]
    message: str


@dataclass(frozen=True)
class ReplyResult:
    text: str
    model_used: bool
    conversation_id: int
    context: ChatContextInfo


@dataclass(frozen=True)
class LearnResult:
    changes: tuple[FactChangeResult, ...]
    events: tuple[EventInfo, ...]
    extractor: str  # "model", "rules" or "none" (the model's reply did not parse)


@dataclass(frozen=True)
class StatusInfo:
    mood: MoodInfo
    relationship: RelationshipInfo
    facts_known: int
    pending_events: int
    replies_sent: int = 0  # the companion's replies in this server (0: DMs), counts not stored yet included

