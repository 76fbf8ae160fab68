"""Pure rules for stories (no I/O).

Names, texts, the shape of a world's locations and events, the story state, relationship scores.

A world's locations (each with its events) are stored as one JSON value; these pydantic models are the
only way in or out, so what is stored always has this shape whichever path wrote it.
"""

from __future__ import annotations

import unicodedata
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from pydantic import ValidationError as PydanticError

from guildkeep.story.errors import StoryInputError
from guildkeep.text import clean_text

WORLD_NAME_MAX = 100
LOCATION_NAME_MAX = 100
EVENT_NAME_MAX = 100
DESCRIPTION_MAX = 1000
WORLD_DESCRIPTION_MAX = 2000
LOCATIONS_MAX = 25  # a world's locations (an autocomplete shows them all)
EVENTS_MAX = 25  # per location
CAST_MAX = 10  # characters in one story
OUTLINE_MAX = 1000
OUTLINES_MAX = 20
SUMMARY_MAX = 1500
SUMMARIES_KEPT = 50  # older summaries are dropped
SUMMARIES_IN_PROMPT = 5
RECENT_KEPT = 20  # the last lines of play kept for the narrator's context
LINE_MAX = 2000
SCORE_MIN, SCORE_MAX = -100, 100
SCORE_STEP_MAX = 20  # the most one narrator turn may move a relationship
RELATIONSHIP_TEXT_MAX = 500
SUMMARY_EVERY_DEFAULT = 10
SUMMARY_EVERY_MIN, SUMMARY_EVERY_MAX = 2, 200
SCENE_MAX = 500
NOTES_MAX = 1000

STATUS_ACTIVE = "active"
STATUS_PAUSED = "paused"
STATUS_ENDED = "ended"


def key(name: str) -> str:
    """The form two names are compared in (``Rivendell`` = ``RIVENDELL``)."""
    return unicodedata.normalize("NFKC", " ".join(name.split())).casefold()


def clean_name(raw: object, what: str, max_length: int) -> str:
    """A name checked as player text (``what`` names it in errors), its inner spaces collapsed."""
    return " ".join(clean_text(raw, what, max_length=max_length).split())


def clean_description(raw: object, what: str = "The description", max_length: int = DESCRIPTION_MAX) -> str:
    """A description checked as player text (several lines allowed); empty when none is given."""
    if raw is None:
        return ""
    return clean_text(raw, what, max_length=max_length, min_length=0, multiline=True)


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)


class WorldEvent(_Frozen):
    """Something that can happen at a location."""

    name: str = Field(min_length=1, max_length=EVENT_NAME_MAX)
    description: str = Field(default="", max_length=DESCRIPTION_MAX)


class WorldLocation(_Frozen):
    """A place in a world, with its events."""

    name: str = Field(min_length=1, max_length=LOCATION_NAME_MAX)
    description: str = Field(default="", max_length=DESCRIPTION_MAX)
    events: tuple[WorldEvent, ...] = Field(default=(), max_length=EVENTS_MAX)


class Locations(_Frozen):
    """A world's locations as stored: a list, names unique (whatever the letter case)."""

    items: tuple[WorldLocation, ...] = Field(default=(), max_length=LOCATIONS_MAX)


class StoryState(_Frozen):
    """Where the story stands: the narrator (or a command) updates it."""

    location: str | None = Field(default=None, max_length=LOCATION_NAME_MAX)
    scene: str = Field(default="", max_length=SCENE_MAX)
    notes: str = Field(default="", max_length=NOTES_MAX)


def load_locations(raw: Any) -> tuple[WorldLocation, ...]:
    """Stored JSON -> validated locations (a stored value that breaks the shape is a bug, not player input)."""
    return Locations.model_validate({"items": raw or []}).items


def dump_locations(locations: tuple[WorldLocation, ...] | list[WorldLocation]) -> list[dict[str, Any]]:
    """Locations as the JSON value stored."""
    return [loc.model_dump(mode="json") for loc in locations]


def load_state(raw: Any) -> StoryState:
    """The stored story state; a fresh one when what is stored does not fit the shape."""
    try:
        return StoryState.model_validate(raw or {})
    except PydanticError:
        return StoryState()


def find_location(locations: tuple[WorldLocation, ...], name: str) -> int | None:
    """The index of the location of that name (whatever the letter case), or None."""
    wanted = key(name)
    return next((i for i, loc in enumerate(locations) if key(loc.name) == wanted), None)


def add_location(locations: tuple[WorldLocation, ...], name: str, description: str) -> tuple[WorldLocation, ...]:
    """The locations with a new one added; refused when the name is taken or the world is full."""
    clean = clean_name(name, "A location's name", LOCATION_NAME_MAX)
    text = clean_description(description, "A location's description")
    if find_location(locations, clean) is not None:
        raise StoryInputError(f"This world already has a location called **{clean}**.")
    if len(locations) >= LOCATIONS_MAX:
        raise StoryInputError(f"A world can have at most {LOCATIONS_MAX} locations; remove one first.")
    return (*locations, WorldLocation(name=clean, description=text))


def remove_location(locations: tuple[WorldLocation, ...], index: int) -> tuple[WorldLocation, ...]:
    """The locations without the one at ``index``."""
    return tuple(loc for i, loc in enumerate(locations) if i != index)


def find_event(location: WorldLocation, name: str) -> int | None:
    """The index of the location's event of that name (whatever the letter case), or None."""
    wanted = key(name)
    return next((i for i, ev in enumerate(location.events) if key(ev.name) == wanted), None)


def add_event(location: WorldLocation, name: str, description: str) -> WorldLocation:
    """The location with a new event; refused when the name is taken or the location is full."""
    clean = clean_name(name, "An event's name", EVENT_NAME_MAX)
    text = clean_description(description, "An event's description")
    if find_event(location, clean) is not None:
        raise StoryInputError(f"**{location.name}** already has an event called **{clean}**.")
    if len(location.events) >= EVENTS_MAX:
        raise StoryInputError(f"A location can have at most {EVENTS_MAX} events; remove one first.")
    return location.model_copy(update={"events": (*location.events, WorldEvent(name=clean, description=text))})


def remove_event(location: WorldLocation, index: int) -> WorldLocation:
    """The location without its event at ``index``."""
    return location.model_copy(update={"events": tuple(e for i, e in enumerate(location.events) if i != index)})


def clamp_score(score: int) -> int:
    """A relationship score kept within its bounds."""
    return max(SCORE_MIN, min(SCORE_MAX, int(score)))


def check_score(score: int) -> int:
    """A relationship score a player set; refused outside its bounds."""
    if not SCORE_MIN <= score <= SCORE_MAX:
        raise StoryInputError(f"A relationship score goes from {SCORE_MIN} to {SCORE_MAX}.")
    return int(score)


def step(score: int, change: int) -> int:
    """A narrator's change: at most ``SCORE_STEP_MAX`` either way, and the result stays within bounds."""
    change = max(-SCORE_STEP_MAX, min(SCORE_STEP_MAX, int(change)))
    return clamp_score(score + change)


def band(score: int) -> str:
    """A word for a score, for people reading it."""
    if score <= -60:
        return "hostile"
    if score <= -20:
        return "wary"
    if score < 20:
        return "neutral"
    if score < 60:
        return "friendly"
    return "close"


def check_summary_every(value: int) -> int:
    """How many messages between summaries; refused outside its bounds."""
    if not SUMMARY_EVERY_MIN <= value <= SUMMARY_EVERY_MAX:
        raise StoryInputError(
            f"A summary can be written every {SUMMARY_EVERY_MIN} to {SUMMARY_EVERY_MAX} messages.")
    return int(value)


def clip(text: str, limit: int) -> str:
    """The text trimmed, cut to ``limit`` characters with an ellipsis when longer."""
    text = text.strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"


def keep_last(items: list[Any], limit: int) -> list[Any]:
    """The last ``limit`` items."""
    return items[-limit:] if len(items) > limit else items
