"""The narrator: the prompt built from a story's context, the structured reply it must give, and what that
reply may change. Talks to the model only through `guildkeep.llm`; never inside a unit of work.

A reply is JSON valid against `NARRATION_SCHEMA` (checked by the LLM client; a reply that is not raises
`LLMBadReply` and the caller writes nothing), then read into `Narration`: who speaks (the narrator or a
character of the story's cast, by name), what is said, and the changes it asks for. A speaker that is not in
the cast speaks as the narrator; a location the world does not have is ignored; a relationship change is at
most ±20 and only for cast characters.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pydantic import BaseModel, ConfigDict, Field
from pydantic import ValidationError as PydanticError

from guildkeep.llm import ChatMessage, LLMBadReply, LLMClient
from guildkeep.story import rules
from guildkeep.story.results import CastMember, LineInfo, NarrationContext
from guildkeep.story.service import RelationshipChange

NARRATOR = "narrator"
REPLY_MAX = 1800  # what one reply may say (Discord's 2000 with room)
SUMMARY_PROMPT_LINES = 40

NARRATION_SCHEMA: dict[str, object] = {
    "type": "object",
    "properties": {
        "speaker": {"type": "string", "minLength": 1, "maxLength": 80,
                    "description": "'narrator', or the exact name of one of the story's characters"},
        "text": {"type": "string", "minLength": 1, "maxLength": REPLY_MAX},
        "location": {"type": ["string", "null"], "maxLength": rules.LOCATION_NAME_MAX,
                     "description": "the location the story moves to, or null"},
        "scene": {"type": ["string", "null"], "maxLength": rules.SCENE_MAX,
                  "description": "a short description of the scene now, or null"},
        "event": {"type": ["string", "null"], "maxLength": 300,
                  "description": "a notable event to log, or null"},
        "relationships": {
            "type": "array",
            "maxItems": 5,
            "items": {
                "type": "object",
                "properties": {
                    "character": {"type": "string", "minLength": 1, "maxLength": 80},
                    "change": {"type": "integer", "minimum": -rules.SCORE_STEP_MAX, "maximum": rules.SCORE_STEP_MAX},
                    "description": {"type": ["string", "null"], "maxLength": rules.RELATIONSHIP_TEXT_MAX},
                },
                "required": ["character", "change", "description"],
                "additionalProperties": False,
            },
        },
    },
    "required": ["speaker", "text", "location", "scene", "event", "relationships"],
    "additionalProperties": False,
}


class _RelationshipReply(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    character: str = Field(min_length=1, max_length=80)
    change: int = Field(ge=-rules.SCORE_STEP_MAX, le=rules.SCORE_STEP_MAX)
    description: str | None = Field(default=None, max_length=rules.RELATIONSHIP_TEXT_MAX)


class NarrationReply(BaseModel):
    """The model's reply, as the schema describes it."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)
    speaker: str = Field(min_length=1, max_length=80)
    text: str = Field(min_length=1, max_length=REPLY_MAX)
    location: str | None = Field(default=None, max_length=rules.LOCATION_NAME_MAX)
    scene: str | None = Field(default=None, max_length=rules.SCENE_MAX)
    event: str | None = Field(default=None, max_length=300)
    relationships: tuple[_RelationshipReply, ...] = Field(default=(), max_length=5)


@dataclass(frozen=True, slots=True)
class Narration:
    """What one narrator turn says and changes, checked against the story."""

    text: str
    speaker: CastMember | None  # None: the narrator speaks
    state: rules.StoryState | None
    relationships: tuple[RelationshipChange, ...] = field(default=())
    event: str | None = None


def _cast_by_name(context: NarrationContext) -> dict[str, CastMember]:
    return {rules.key(c.name): c for c in context.story.cast}


def system_prompt(context: NarrationContext, player_name: str) -> str:
    world, story = context.world, context.story
    parts = [
        "You are the narrator of a collaborative role-playing story on a Discord server. Players write what "
        "their characters do; you answer in a few vivid sentences, either as the narrator or as one of the "
        "story's characters speaking in their own voice. Never speak for the players.",
        f"World: {world.name}. {world.description}".strip(),
    ]
    if world.locations:
        lines = []
        for loc in world.locations:
            events = "; ".join(f"{e.name}: {e.description}".strip(": ") for e in loc.events)
            lines.append(f"- {loc.name}: {loc.description}" + (f" (events: {events})" if events else ""))
        parts.append("Locations:\n" + "\n".join(lines))
    if story.cast:
        parts.append("Characters you may speak as:\n" + "\n".join(
            f"- {c.name}: {c.description}".rstrip(": ") for c in story.cast))
    if story.outlines:
        parts.append("Outline:\n" + "\n".join(f"- {o}" for o in story.outlines))
    if story.summaries:
        parts.append("The story so far:\n" + "\n".join(
            f"- {s}" for s in story.summaries[-rules.SUMMARIES_IN_PROMPT:]))
    state = story.state
    parts.append(f"Now: location {state.location or 'unknown'}. {state.scene}".strip())
    if context.relationships:
        parts.append(f"How the characters feel about {player_name}:\n" + "\n".join(
            f"- {r.character_name}: {r.score} ({rules.band(r.score)}) {r.description}".rstrip()
            for r in context.relationships))
    parts.append(
        'Reply with JSON only: {"speaker": "narrator" or a character\'s exact name, "text": what is said, '
        '"location": a location name if the story moves there else null, "scene": the scene now or null, '
        '"event": a notable event or null, "relationships": [{"character": name, "change": -20..20, '
        f'"description": how they now see {player_name} or null}}]}}.')
    return "\n\n".join(parts)


def build_messages(context: NarrationContext, player_name: str, text: str) -> list[ChatMessage]:
    messages = [ChatMessage.system(system_prompt(context, player_name))]
    players = {rules.key(c.name) for c in context.story.cast} | {NARRATOR}
    for line in context.recent:
        if rules.key(line.speaker) in players:
            messages.append(ChatMessage.assistant(f"{line.speaker}: {line.text}"))
        else:
            messages.append(ChatMessage.user(f"{line.speaker}: {line.text}"))
    messages.append(ChatMessage.user(f"{player_name}: {text}"))
    return messages


def read_reply(data: object, context: NarrationContext, player_id: int) -> Narration:
    """The schema-valid reply checked against the story: what it may say and change."""
    try:
        reply = NarrationReply.model_validate(data)
    except PydanticError as exc:
        raise LLMBadReply(f"the narration does not fit: {exc.errors()[0]['msg']}") from exc
    cast = _cast_by_name(context)
    speaker = cast.get(rules.key(reply.speaker))
    state = context.story.state
    location = state.location
    if reply.location:
        index = rules.find_location(context.world.locations, reply.location)
        if index is not None:
            location = context.world.locations[index].name
    new_state = rules.StoryState(location=location, scene=reply.scene if reply.scene is not None else state.scene,
                                 notes=state.notes)
    changes = tuple(
        RelationshipChange(player_id, cast[rules.key(r.character)].character_id, r.change,
                           r.description.strip() if r.description else None)
        for r in reply.relationships if rules.key(r.character) in cast)
    return Narration(text=reply.text, speaker=speaker, state=new_state if new_state != state else None,
                     relationships=changes, event=reply.event or None)


async def narrate(llm: LLMClient, context: NarrationContext, *, player_id: int, player_name: str,
                  text: str) -> Narration:
    """Ask the model for the next turn (raises an `LLMError` the player may read; nothing is written here)."""
    reply = await llm.structured(build_messages(context, player_name, text), NARRATION_SCHEMA, name="narration",
                                 guild_id=context.story.guild_id)
    return read_reply(reply.data, context, player_id)


async def summarize(llm: LLMClient, context: NarrationContext, lines: tuple[LineInfo, ...]) -> str:
    """A short summary of the latest lines of play, for the story's memory."""
    transcript = "\n".join(f"{x.speaker}: {x.text}" for x in lines[-SUMMARY_PROMPT_LINES:])
    messages = [
        ChatMessage.system(f"You keep the chronicle of a role-playing story set in {context.world.name}. Summarise "
                           "what happened in the lines below in at most five sentences, in the past tense."),
        ChatMessage.user(transcript or "(nothing happened)"),
    ]
    reply = await llm.chat(messages, guild_id=context.story.guild_id)
    text = reply.content.strip()
    if not text:
        raise LLMBadReply("the summary is empty")
    return rules.clip(text, rules.SUMMARY_MAX)
