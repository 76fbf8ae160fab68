"""Per-server companion settings, declared once: defaults and bounds. Stored in the server's bot state."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from guildkeep.companion.errors import CompanionValidationError

DEFAULT_PERSONA = (
    "You are Guildkeep, a warm, curious companion who lives in this Discord server. You remember what people "
    "tell you and bring it up naturally. Keep replies short and friendly."
)
MAX_PERSONA = 1500
MAX_CHANNELS = 25


class CompanionConfig(BaseModel):
    """What a server's admins may change with ``/companion config``.

    Off until an admin turns it on (every answer may cost a model request). ``channel_ids`` empty: once on,
    the companion answers mentions in every channel; otherwise only in those. Direct messages are always answered.
    """

    model_config = ConfigDict(frozen=True, extra="ignore")

    persona: str = Field(DEFAULT_PERSONA, min_length=1, max_length=MAX_PERSONA)
    channel_ids: tuple[int, ...] = Field((), max_length=MAX_CHANNELS)
    enabled: bool = False
    birthday_hour_utc: int = Field(9, ge=0, le=23)
    context_facts: int = Field(8, ge=0, le=25)
    context_messages: int = Field(12, ge=0, le=50)

    @field_validator("persona")
    @classmethod
    def _strip(cls, value: str) -> str:
        value = value.strip()
        if not value:
            raise ValueError("the persona cannot be empty")
        return value

    @field_validator("channel_ids")
    @classmethod
    def _unique(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        return tuple(dict.fromkeys(int(v) for v in value))

    def talks_in(self, *channel_ids: int) -> bool:
        """Whether the companion talks in a channel, given as the channel's id then, for a thread, its parent's."""
        if not self.enabled:
            return False
        return not self.channel_ids or any(c in self.channel_ids for c in channel_ids)

    def merged(self, **changes: Any) -> CompanionConfig:
        """A copy with ``changes`` applied and checked; bad values raise a player-readable error."""
        data = self.model_dump()
        data.update({k: v for k, v in changes.items() if v is not None})
        return parse_config(data)


def parse_config(data: dict[str, Any] | None) -> CompanionConfig:
    try:
        return CompanionConfig.model_validate(data or {})
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or "setting"
        raise CompanionValidationError(f"Companion setting `{field}`: {first['msg']}.") from exc
