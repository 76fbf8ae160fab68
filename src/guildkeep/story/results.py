"""What the story service returns: frozen dataclasses (and the frozen pydantic shapes of `rules`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from guildkeep.story.rules import StoryState, WorldEvent, WorldLocation

__all__ = ["CastMember", "LineInfo", "NarrationContext", "RelationshipInfo", "StoryInfo", "TurnResult",
           "WorldEvent", "WorldInfo", "WorldLocation"]


@dataclass(frozen=True, slots=True)
class WorldInfo:
    id: int
    guild_id: int
    name: str
    description: str
    locations: tuple[WorldLocation, ...]
    created_by: int
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class CastMember:
    """A character of a story as this server shows it (name and avatar with the server's override)."""

    character_id: int
    name: str
    avatar_url: str | None
    description: str


@dataclass(frozen=True, slots=True)
class StoryInfo:
    id: int
    guild_id: int
    channel_id: int
    world_id: int
    world_name: str
    started_by: int
    status: str
    state: StoryState
    cast: tuple[CastMember, ...]
    summaries: tuple[str, ...]
    outlines: tuple[str, ...]
    event_log: tuple[dict[str, object], ...]
    message_count: int
    since_summary: int
    summary_every: int
    no_model_notice: bool
    version: int
    created_at: datetime
    updated_at: datetime

    @property
    def running(self) -> bool:
        return self.status != "ended"


@dataclass(frozen=True, slots=True)
class RelationshipInfo:
    story_id: int
    user_id: int
    character_id: int
    character_name: str
    description: str
    score: int
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class LineInfo:
    speaker: str
    text: str


@dataclass(frozen=True, slots=True)
class NarrationContext:
    """Everything a narrator prompt needs, read in one unit of work (the model is called after it closed)."""

    story: StoryInfo
    world: WorldInfo
    recent: tuple[LineInfo, ...]
    relationships: tuple[RelationshipInfo, ...]


@dataclass(frozen=True, slots=True)
class TurnResult:
    story: StoryInfo
    relationships_changed: tuple[RelationshipInfo, ...] = field(default=())
    summary_due: bool = False

