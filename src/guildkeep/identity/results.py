"""What the identity service returns: frozen dataclasses, never ORM rows or discord objects."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from guildkeep.identity.rules import display_name

if TYPE_CHECKING:
    from guildkeep.identity.models import Guild, GuildMember, User


@dataclass(frozen=True, slots=True)
class UserInfo:
    """A user as the bot knows them: names, first and last seen."""

    id: int
    username: str
    discord_display_name: str | None
    custom_name: str | None
    first_seen_at: datetime
    last_seen_at: datetime
    is_active: bool

    @property
    def display_name(self) -> str:
        """The name to show: custom name, else Discord display name, else username, else the id."""
        return display_name(self.custom_name, self.discord_display_name, self.username) or str(self.id)

    @classmethod
    def of(cls, row: User) -> UserInfo:
        """The info of a stored user row."""
        return cls(
            row.id,
            row.username,
            row.discord_display_name,
            row.custom_name,
            row.first_seen_at,
            row.last_seen_at,
            row.is_active,
        )


@dataclass(frozen=True, slots=True)
class GuildInfo:
    """A server the bot has been in: its name, whether the bot is still there, since when."""

    id: int
    name: str
    is_active: bool
    joined_at: datetime

    @classmethod
    def of(cls, row: Guild) -> GuildInfo:
        """The info of a stored server row."""
        return cls(row.id, row.name, row.is_active, row.joined_at)


@dataclass(frozen=True, slots=True)
class MemberInfo:
    """A user's membership of a server: nickname, role ids (sorted) and when they joined."""

    guild_id: int
    user_id: int
    nickname: str | None
    roles: tuple[int, ...]
    joined_at: datetime | None

    @classmethod
    def of(cls, row: GuildMember) -> MemberInfo:
        """The info of a stored membership row."""
        return cls(row.guild_id, row.user_id, row.nickname, tuple(row.roles or ()), row.joined_at)
