"""What the characters service returns: frozen dataclasses, never ORM rows."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class OverrideInfo:
    """One server's override of a character (only ever returned to a request from that server)."""

    guild_id: int
    nickname: str | None
    avatar_url: str | None
    hidden: bool


@dataclass(frozen=True, slots=True)
class CharacterInfo:
    id: int
    owner_id: int
    name: str
    avatar_url: str | None
    description: str
    is_public: bool
    created_at: datetime
    updated_at: datetime
    override: OverrideInfo | None = None  # the override of the server the request came from

    @property
    def display_name(self) -> str:
        """The name it speaks under on the requesting server."""
        return (self.override.nickname if self.override and self.override.nickname else None) or self.name

    @property
    def display_avatar_url(self) -> str | None:
        return (self.override.avatar_url if self.override and self.override.avatar_url else None) or self.avatar_url

    @property
    def hidden(self) -> bool:
        return bool(self.override and self.override.hidden)


@dataclass(frozen=True, slots=True)
class SpeechInfo:
    """A message posted as a character: who posted it, as whom, where and when (never what)."""

    message_id: int
    guild_id: int
    channel_id: int
    webhook_id: int
    speaker_id: int
    character_id: int | None  # None once the character was deleted
    character_name: str
    created_at: datetime


