"""What the leveling service returns: frozen dataclasses of plain values, no ORM rows, no discord objects.

The leaderboard is a `guildkeep.results.Page` of `LeaderboardEntryInfo`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any

from guildkeep.leveling import rules
from guildkeep.leveling.rules import Curve, XpSettings
from guildkeep.leveling.settings import DEFAULTS, LevelingSettings, from_stored

COUNTERS = ("messages", "total_messages", "total_reactions", "commands_used", "voice_time_seconds")


@dataclass(frozen=True, slots=True)
class ServerConfigInfo:
    """A server's leveling settings (`settings`, declared in `leveling.settings`) and what derives from them."""

    guild_id: int
    settings: LevelingSettings = DEFAULTS

    @property
    def curve_rule(self) -> Curve:
        """The server's level curve."""
        s = self.settings
        return Curve(s.curve, s.curve_base, s.curve_exponent)

    @property
    def xp_settings(self) -> XpSettings:
        """The part of the settings the award rules read."""
        s = self.settings
        return XpSettings(
            xp_rate=s.xp_rate,
            message_xp_min=s.message_xp_min,
            message_xp_max=s.message_xp_max,
            voice_xp_per_minute=s.voice_xp_per_minute,
            reaction_xp=s.reaction_xp,
            command_xp=s.command_xp,
            cooldowns=dict(s.cooldowns),
            no_xp_channels=frozenset(s.no_xp_channels),
            no_xp_roles=frozenset(s.no_xp_roles),
            role_multipliers=dict(s.role_multipliers),
            channel_multipliers=dict(s.channel_multipliers),
            curve=self.curve_rule,
        )

    @property
    def template(self) -> str:
        """The level-up message template (the server's, or the default one)."""
        return self.settings.level_up_message or rules.DEFAULT_LEVEL_UP_MESSAGE

    @classmethod
    def of(cls, row: Any) -> ServerConfigInfo:
        """From a ``leveling_server_config`` row."""
        return cls(guild_id=row.guild_id, settings=from_stored(row))


@dataclass(frozen=True, slots=True)
class LevelInfo:
    """A member's XP and counters in one server, with their level on the server's curve."""

    guild_id: int
    user_id: int
    xp: int
    level: int
    xp_into_level: int
    xp_for_level: int
    messages: int = 0
    total_messages: int = 0
    total_reactions: int = 0
    commands_used: int = 0
    voice_time_seconds: int = 0
    last_message_time: datetime | None = None
    xp_multiplier: float = 1.0
    multiplier_expires_at: datetime | None = None

    @property
    def stats(self) -> dict[str, int]:
        """The level and every activity counter by name."""
        return {"level": self.level, **{c: getattr(self, c) for c in COUNTERS}}


@dataclass(frozen=True, slots=True)
class QuestInfo:
    """A quest definition."""

    id: int
    guild_id: int
    name: str
    description: str
    quest_type: str
    requirement_type: str
    requirement_value: int
    reward_xp: int
    reward_multiplier: float
    multiplier_minutes: int
    active: bool
    refresh_cycle: str
    difficulty: str
    template_key: str | None
    period_start: datetime | None
    expires_at: datetime | None
    created_at: datetime

    @classmethod
    def of(cls, row: Any) -> QuestInfo:
        """From a ``leveling_quests`` row."""
        return cls(**{f.name: getattr(row, f.name) for f in fields(cls)})


@dataclass(frozen=True, slots=True)
class UserQuestInfo:
    """A member's progress on one active quest."""

    quest: QuestInfo
    progress: int
    quest_specific_progress: int
    completed: bool
    completed_at: datetime | None


@dataclass(frozen=True, slots=True)
class AchievementInfo:
    """An achievement definition; ``earned_at`` set when read for a member who earned it."""

    id: int
    guild_id: int
    name: str
    description: str
    requirement_type: str
    requirement_value: int
    reward_xp: int
    badge_url: str | None
    created_at: datetime
    earned_at: datetime | None = None

    @classmethod
    def of(cls, row: Any, earned_at: datetime | None = None) -> AchievementInfo:
        """From a ``leveling_achievements`` row."""
        values = {f.name: getattr(row, f.name) for f in fields(cls) if f.name != "earned_at"}
        return cls(**values, earned_at=earned_at)


@dataclass(frozen=True, slots=True)
class CardInfo:
    """A member's rank-card look."""

    background_url: str | None = None
    background_color: str | None = None
    primary_color: str | None = None
    secondary_color: str | None = None
    border_color: str | None = None
    text_color: str | None = None
    card_style: str = "default"


CARD_COLOURS = ("background_color", "primary_color", "secondary_color", "border_color", "text_color")


@dataclass(frozen=True, slots=True)
class LevelChangeResult:
    """A member's level before and after a change, and their total XP after it."""

    user_id: int
    old_level: int
    new_level: int
    xp: int

    @property
    def leveled_up(self) -> bool:
        """Whether the member went up."""
        return self.new_level > self.old_level


@dataclass(frozen=True, slots=True)
class ActivityResult:
    """What a batch of activity caused in one server: level changes, quests completed, achievements earned.

    The lists are filled while the batch is applied; the result is not reassigned afterwards.
    """

    guild_id: int
    level_changes: list[LevelChangeResult] = field(default_factory=list)
    quests_completed: list[tuple[int, QuestInfo]] = field(default_factory=list)
    achievements_earned: list[tuple[int, AchievementInfo]] = field(default_factory=list)

    @property
    def level_ups(self) -> list[LevelChangeResult]:
        """The changes that went up."""
        return [c for c in self.level_changes if c.leveled_up]


@dataclass(frozen=True, slots=True)
class LeaderboardEntryInfo:
    """One line of the leaderboard."""

    rank: int
    user_id: int
    name: str
    xp: int
    level: int


@dataclass(frozen=True, slots=True)
class ImportResult:
    """What a MEE6 import did: players added, changed, already equal, and the entries skipped with why."""

    imported: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class QuestResetResult:
    """One server's quest reset: the quests it created (none when another process already ran this period's)."""

    guild_id: int
    created: list[QuestInfo]
    quest_channel: int | None

