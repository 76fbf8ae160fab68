"""What the campaign service returns: frozen dataclasses, never ORM rows."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from guildkeep.characters.results import CharacterInfo


@dataclass(frozen=True, slots=True)
class CampaignInfo:
    id: int
    guild_id: int
    channel_id: int
    name: str
    gm_id: int
    player_role_id: int | None
    gm_role_id: int | None
    webhook_id: int | None
    archived: bool
    players: tuple[int, ...]
    created_at: datetime


@dataclass(frozen=True, slots=True)
class PlayerCharacterInfo:
    """The character a player plays in a campaign."""

    campaign_id: int
    user_id: int
    character: CharacterInfo


@dataclass(frozen=True, slots=True)
class NpcInfo:
    id: int
    campaign_id: int
    name: str
    avatar_url: str | None
    creator_id: int


@dataclass(frozen=True, slots=True)
class SpeakerInfo:
    """Who a /say posts as: a player's character or (for the GM) an NPC."""

    campaign_id: int
    name: str
    avatar_url: str | None
    character_id: int | None = None
    npc_id: int | None = None


@dataclass(frozen=True, slots=True)
class LeaveResult:
    """A player gone from a campaign (left, or kicked): the role to take from them."""

    campaign: CampaignInfo
    user_id: int
    character_unbound: bool


@dataclass(frozen=True, slots=True)
class SessionInfo:
    """A campaign's next scheduled session (a scheduler job)."""

    campaign_id: int
    guild_id: int
    channel_id: int
    run_at: datetime
    weekly: bool
    note: str


@dataclass(frozen=True, slots=True)
class CampaignSpeechInfo:
    message_id: int
    campaign_id: int
    gm_id: int
    npc_id: int | None


@dataclass(slots=True)
class ImportResult:
    """What an import did: counts and, for each skipped entry, where it was and why."""

    imported: dict[str, int] = field(default_factory=dict)
    updated: dict[str, int] = field(default_factory=dict)
    unchanged: dict[str, int] = field(default_factory=dict)
    skipped: list[tuple[str, str]] = field(default_factory=list)

    def count(self, kind: str, what: str) -> None:
        """Count one entry of ``kind`` ('campaigns', 'characters', 'npcs') as imported/updated/unchanged."""
        bucket = {"imported": self.imported, "updated": self.updated, "unchanged": self.unchanged}[what]
        bucket[kind] = bucket.get(kind, 0) + 1

    def skip(self, where: str, reason: str) -> None:
        """Record an entry left out, with where it was and the reason."""
        self.skipped.append((where, reason))
