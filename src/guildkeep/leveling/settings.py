"""Per-server leveling settings, each declared once: its default, bounds, label and description.

Everything else derives from `LevelingSettings`: the table's column defaults (`leveling.models`), the service's
validation (`check` and `merge`, whose refusals name the setting in words), the ``/levels config`` command's
ranges, choices and descriptions, and the web dashboard's form.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Annotated, Any, Literal, get_args

import annotated_types
from pydantic import BaseModel, ConfigDict, Field
from pydantic import ValidationError as PydanticValidationError

from guildkeep.leveling.errors import SettingError
from guildkeep.text import echo

CurveKind = Literal["mee6", "linear", "power"]
CURVES: tuple[CurveKind, ...] = get_args(CurveKind)
LevelUpMode = Literal["off", "same", "dm", "channel"]
LEVEL_UP_MODES: tuple[str, ...] = get_args(LevelUpMode)
SOURCES = ("message", "voice", "reaction", "command")
COOLDOWN_SOURCES = ("message", "reaction", "command")  # voice accrues by the minute; it has no cooldown
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")

MAX_ID = 2**63 - 1
COOLDOWN_MAX = 86_400
MULTIPLIER_MAX = 10.0
MAX_LISTED = 500  # no-XP channels/roles and multipliers a server may list

Cooldown = Annotated[int, Field(ge=0, le=COOLDOWN_MAX)]
Multiplier = Annotated[float, Field(ge=0.0, le=MULTIPLIER_MAX)]
DiscordId = Annotated[int, Field(ge=1, le=MAX_ID)]


def _default_cooldowns() -> dict[str, int]:
    return {"message": 60, "reaction": 60, "command": 60}


class LevelingSettings(BaseModel):
    """What a server's admins may change with ``/levels config``, ``/levels noxp``, ``/levels multiplier`` and
    the dashboard. A server without a stored row has every default."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    xp_rate: float = Field(1.0, ge=0.0, le=10.0, title="The XP rate", description="Multiplier on all XP (0–10)")
    level_up_mode: LevelUpMode = Field("same", title="The level-up mode",
                                       description="Where level-ups are announced")
    level_up_message: str | None = Field(None, title="The level-up message",
                                         description="Template with {user} {mention} {level} {xp} {server}")
    level_up_channel: DiscordId | None = Field(None, title="The level-up channel",
                                               description="Channel for level-ups (mode 'channel')")
    quest_channel: DiscordId | None = Field(None, title="The quest channel", description="Channel for quest news")
    achievement_channel: DiscordId | None = Field(None, title="The achievement channel",
                                                  description="Channel for achievement news")
    quest_reset_hour: int = Field(0, ge=0, le=23, title="The reset hour", description="Hour (UTC) quests reset")
    quest_reset_day: int = Field(0, ge=0, le=6, title="The reset weekday",
                                 description="Weekday on which weekly quests reset")
    quests_enabled: bool = Field(True, title="Quests", description="Generate daily and weekly quests")
    cooldowns: dict[str, Cooldown] = Field(default_factory=_default_cooldowns, title="A cooldown",
                                           description="Seconds between XP-earning messages, reactions, commands")
    message_xp_min: int = Field(15, ge=0, le=1000, title="Message XP", description="Least XP per message")
    message_xp_max: int = Field(25, ge=0, le=1000, title="Message XP", description="Most XP per message")
    voice_xp_per_minute: int = Field(10, ge=0, le=1000, title="Voice XP", description="XP per eligible voice minute")
    reaction_xp: int = Field(5, ge=0, le=1000, title="Reaction XP", description="XP per reaction")
    command_xp: int = Field(5, ge=0, le=1000, title="Command XP", description="XP per command")
    curve: CurveKind = Field("mee6", title="The curve", description="Level curve")
    curve_base: float = Field(100.0, ge=1.0, le=1_000_000.0, title="The curve base",
                              description="Curve base (linear/power)")
    curve_exponent: float = Field(2.0, ge=1.0, le=4.0, title="The curve exponent", description="Curve exponent (power)")
    no_xp_channels: tuple[DiscordId, ...] = Field((), max_length=MAX_LISTED, title="An id",
                                                  description="Channels (or categories) without XP")
    no_xp_roles: tuple[DiscordId, ...] = Field((), max_length=MAX_LISTED, title="An id",
                                               description="Roles without XP")
    role_multipliers: dict[DiscordId, Multiplier] = Field(default_factory=dict, max_length=MAX_LISTED,
                                                          title="A multiplier", description="XP multiplier by role")
    channel_multipliers: dict[DiscordId, Multiplier] = Field(default_factory=dict, max_length=MAX_LISTED,
                                                             title="A multiplier",
                                                             description="XP multiplier by channel")

    def cooldown(self, source: str) -> int:
        """Seconds between XP-earning activities of ``source`` (0: none)."""
        return int(self.cooldowns.get(source, 60 if source == "message" else 0))


DEFAULTS = LevelingSettings.model_validate({})
NAMES: tuple[str, ...] = tuple(LevelingSettings.model_fields)
NUMBERS: tuple[str, ...] = tuple(
    n for n, f in LevelingSettings.model_fields.items() if f.annotation in (int, float, "int", "float")
)
CHANNELS = ("level_up_channel", "quest_channel", "achievement_channel")


def default(name: str) -> Any:
    """The declared default of a setting (the column default of `ServerConfig`)."""
    value = getattr(DEFAULTS, name)
    return dict(value) if isinstance(value, dict) else value


def label(name: str) -> str:
    """How refusals name the setting: "The XP rate"."""
    return LevelingSettings.model_fields[name].title or name


def describe(name: str) -> str:
    """The setting's one-line description (the slash command's and the dashboard's help text)."""
    return LevelingSettings.model_fields[name].description or name


def bounds(name: str) -> tuple[Any, Any]:
    """The declared (least, most) of a numeric setting."""
    lo = hi = None
    for item in LevelingSettings.model_fields[name].metadata:
        if isinstance(item, annotated_types.Ge):
            lo = item.ge
        elif isinstance(item, annotated_types.Le):
            hi = item.le
    if lo is None or hi is None:
        raise KeyError(f"{name} has no bounds")
    return lo, hi


def choices(name: str) -> tuple[str, ...]:
    """The values a choice setting accepts."""
    return {"level_up_mode": LEVEL_UP_MODES, "curve": CURVES}[name]


# ---------------------------------------------------------------------------------------------- checking


def _int(value: Any, what: str, lo: int, hi: int) -> int:
    if isinstance(value, bool):
        raise SettingError(f"{what} must be a whole number.")
    try:
        number = int(value)
        if isinstance(value, float) and not value.is_integer():
            raise ValueError
    except (TypeError, ValueError, OverflowError):
        raise SettingError(f"{what} must be a whole number.") from None
    if not lo <= number <= hi:
        raise SettingError(f"{what} must be between {lo:,} and {hi:,}.")
    return number


def _float(value: Any, what: str, lo: float, hi: float) -> float:
    if isinstance(value, bool):
        raise SettingError(f"{what} must be a number.")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise SettingError(f"{what} must be a number.") from None
    if not math.isfinite(number) or not lo <= number <= hi:
        raise SettingError(f"{what} must be between {lo:,g} and {hi:,g}.")
    return number


def _id(value: Any, what: str = "An id") -> int:
    return _int(value, what, 1, MAX_ID)


def _multipliers(value: Any) -> dict[int, float]:
    if not isinstance(value, Mapping):
        raise SettingError("Multipliers are pairs of an id and a number.")
    return {_id(k): _float(v, "A multiplier", 0.0, MULTIPLIER_MAX) for k, v in value.items()}


def _ids(value: Any) -> tuple[int, ...]:
    if isinstance(value, str | bytes) or not hasattr(value, "__iter__"):
        raise SettingError("That must be a list of ids.")
    return tuple(sorted({_id(v) for v in value}))


def check(name: str, value: Any) -> Any:
    """One setting's value, coerced to its declared kind and bounds; a `SettingError` in words otherwise.

    ``None`` (or ``""``) unsets a channel and restores the default level-up message.
    """
    if name not in LevelingSettings.model_fields:
        raise SettingError(f"Unknown setting “{echo(str(name))}”; settings: {', '.join(NAMES)}.")
    what = label(name)
    if name in CHANNELS:
        return None if value in (None, "", 0) else _id(value, "A channel")
    if name == "level_up_message":
        if value in (None, ""):
            return None
        from guildkeep.leveling.rules import validate_template  # rules imports this module

        return validate_template(str(value))
    if name in ("level_up_mode", "curve"):
        if value not in choices(name):
            raise SettingError(f"{what} must be one of: {', '.join(choices(name))}.")
        return str(value)
    if name == "quests_enabled":
        if not isinstance(value, bool):
            raise SettingError("Quests are on or off (true or false).")
        return value
    if name == "cooldowns":
        if not isinstance(value, Mapping):
            raise SettingError(f"Cooldowns exist for: {', '.join(SOURCES)}.")
        out = {}
        for source, seconds in value.items():
            if source not in SOURCES:
                raise SettingError(f"Cooldowns exist for: {', '.join(SOURCES)}.")
            out[str(source)] = _int(seconds, what, 0, COOLDOWN_MAX)
        return out
    if name in ("no_xp_channels", "no_xp_roles"):
        return _ids(value)
    if name in ("role_multipliers", "channel_multipliers"):
        return _multipliers(value)
    lo, hi = bounds(name)
    if LevelingSettings.model_fields[name].annotation is int:
        return _int(value, what, lo, hi)
    return _float(value, what, lo, hi)


def merge(current: LevelingSettings, changes: Mapping[str, Any]) -> LevelingSettings:
    """``current`` with ``changes`` checked and applied (cooldowns are merged, not replaced); the settings that
    depend on each other are checked together. Raises a `SettingError` and changes nothing on bad input."""
    values = {name: check(name, value) for name, value in changes.items()}
    if "cooldowns" in values:
        values["cooldowns"] = {**current.cooldowns, **values["cooldowns"]}
    data = {**current.model_dump(), **values}
    if data["message_xp_min"] > data["message_xp_max"]:
        raise SettingError("The minimum message XP cannot be above the maximum.")
    for name in ("no_xp_channels", "no_xp_roles", "role_multipliers", "channel_multipliers"):
        if len(data[name]) > MAX_LISTED:
            raise SettingError(f"A server can list at most {MAX_LISTED} of those.")
    try:
        return LevelingSettings.model_validate(data)
    except PydanticValidationError as exc:  # the checks above cover every field; this is the safety net
        first = exc.errors()[0]
        raise SettingError(f"{label(str(first['loc'][0]))}: {first['msg']}.") from exc


def from_stored(row: Any) -> LevelingSettings:
    """The settings held in a ``leveling_server_config`` row (stored values are trusted; missing cooldowns
    fall back to their defaults)."""
    data: dict[str, Any] = {name: getattr(row, name) for name in NAMES}
    data["cooldowns"] = {**DEFAULTS.cooldowns, **{str(k): int(v) for k, v in (row.cooldowns or {}).items()}}
    data["no_xp_channels"] = tuple(int(c) for c in row.no_xp_channels or ())
    data["no_xp_roles"] = tuple(int(r) for r in row.no_xp_roles or ())
    data["role_multipliers"] = {int(k): float(v) for k, v in (row.role_multipliers or {}).items()}
    data["channel_multipliers"] = {int(k): float(v) for k, v in (row.channel_multipliers or {}).items()}
    return LevelingSettings.model_construct(**data)


def to_stored(settings: LevelingSettings) -> dict[str, Any]:
    """Column values for a ``leveling_server_config`` row (JSON columns hold string keys and plain lists)."""
    data = settings.model_dump()
    data["no_xp_channels"] = list(settings.no_xp_channels)
    data["no_xp_roles"] = list(settings.no_xp_roles)
    data["role_multipliers"] = {str(k): v for k, v in settings.role_multipliers.items()}
    data["channel_multipliers"] = {str(k): v for k, v in settings.channel_multipliers.items()}
    return data
