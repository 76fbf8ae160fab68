"""Pure leveling rules: curves, awards, cooldowns, eligibility, quest periods, templates. No I/O.

Everything here is deterministic given its inputs (randomness comes in as a `random.Random`), so the
high-rate ingestion path, the service and the tests share one implementation.
"""

from __future__ import annotations

import bisect
import functools
import math
import random
import re
import string
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Protocol
from urllib.parse import urlparse

from guildkeep.errors import ValidationError
from guildkeep.leveling.settings import CURVES, DEFAULTS, CurveKind  # settings are declared there
from guildkeep.text import clean_text, echo

MAX_LEVEL = 10_000
MAX_XP = 2**62  # far above any real total; keeps BIGINT arithmetic safe

QUEST_TYPES = ("daily", "weekly", "special", "event", "challenge")
QUEST_REQUIREMENTS = ("total_messages", "total_reactions", "voice_time_seconds", "commands_used")
REFRESH_CYCLES = ("daily", "weekly", "monthly", "once")
DIFFICULTIES = ("easy", "medium", "hard")
ACHIEVEMENT_REQUIREMENTS = ("level", "messages", "voice", "reactions", "commands")
CARD_STYLES = ("default", "minimal", "rounded")
TEMPLATE_KEYS = frozenset({"user", "mention", "level", "xp", "server"})
DEFAULT_LEVEL_UP_MESSAGE = "GG {mention}, you just reached level {level}!"


# --------------------------------------------------------------------------------------------- curves


@dataclass(frozen=True, slots=True)
class Curve:
    """How much total XP each level needs.

    * ``mee6``: XP from L to L+1 is ``5L² + 50L + 100`` (the MEE6 curve; ``base``/``exponent`` unused).
    * ``linear``: XP from L to L+1 is ``base·L + 75`` (Arcane's default with base 100).
    * ``power``: total XP to reach L is ``floor(base · L^exponent)`` (vertyco LevelUp; base 100, exp 2).
    """

    kind: CurveKind = "mee6"
    base: float = 100.0
    exponent: float = 2.0

    def __post_init__(self) -> None:
        """Refuse an unknown curve or a base or exponent out of bounds."""
        if self.kind not in CURVES:
            raise ValidationError(f"The curve must be one of {', '.join(CURVES)}.")
        if not 1 <= self.base <= 1_000_000:
            raise ValidationError("The curve base must be between 1 and 1,000,000.")
        if not 1 <= self.exponent <= 4:
            raise ValidationError("The curve exponent must be between 1 and 4.")

    def xp_for_next(self, level: int) -> int:
        """XP needed to go from ``level`` to ``level + 1``."""
        return self.total_for_level(level + 1) - self.total_for_level(level)

    def total_for_level(self, level: int) -> int:
        """Total XP needed to reach ``level`` from zero (exact integer)."""
        if level <= 0:
            return 0
        if self.kind == "mee6":
            # Σ_{k<L} 5k²+50k+100 = (10L³ + 135L² + 455L) / 6, always an integer.
            return (10 * level**3 + 135 * level**2 + 455 * level) // 6
        if self.kind == "linear":
            step = int(self.base)
            return step * level * (level - 1) // 2 + 75 * level
        total: float = self.base * float(level) ** self.exponent
        return math.floor(total)

    def level_for_xp(self, xp: int) -> int:
        """The level reached with ``xp`` total XP: the largest L with total_for_level(L) <= xp (exact)."""
        if xp <= 0:
            return 0
        return bisect.bisect_right(thresholds(self), xp) - 1

    def progress(self, xp: int) -> tuple[int, int, int]:
        """(level, XP into the current level, XP the current level spans)."""
        level = self.level_for_xp(xp)
        start = self.total_for_level(level)
        return level, xp - start, self.total_for_level(level + 1) - start


@functools.lru_cache(maxsize=64)
def thresholds(curve: Curve) -> tuple[int, ...]:
    """Total XP of every level 0..MAX_LEVEL (a curve's table, built once: a level lookup is one bisect)."""
    return tuple(curve.total_for_level(level) for level in range(MAX_LEVEL + 1))


# ------------------------------------------------------------------------------------------- settings


@dataclass(frozen=True, slots=True)
class XpSettings:
    """The part of a server's config the award rules read."""

    xp_rate: float = DEFAULTS.xp_rate
    message_xp_min: int = DEFAULTS.message_xp_min
    message_xp_max: int = DEFAULTS.message_xp_max
    voice_xp_per_minute: int = DEFAULTS.voice_xp_per_minute
    reaction_xp: int = DEFAULTS.reaction_xp
    command_xp: int = DEFAULTS.command_xp
    cooldowns: Mapping[str, int] = field(default_factory=lambda: dict(DEFAULTS.cooldowns))
    no_xp_channels: frozenset[int] = frozenset()
    no_xp_roles: frozenset[int] = frozenset()
    role_multipliers: Mapping[int, float] = field(default_factory=dict)
    channel_multipliers: Mapping[int, float] = field(default_factory=dict)
    curve: Curve = field(default_factory=Curve)

    def cooldown(self, source: str) -> int:
        """Seconds between XP-earning activities of ``source`` (0: none)."""
        return int(self.cooldowns.get(source, 60 if source == "message" else 0))


@dataclass(frozen=True, slots=True)
class ActivityContext:
    """Where an activity happened: the channel (and its parent, for threads) and the member's roles."""

    channel_id: int | None = None
    parent_channel_id: int | None = None
    role_ids: frozenset[int] = frozenset()


def cooldown_ready(last: datetime | None, now: datetime, seconds: float) -> bool:
    """True when ``seconds`` have passed since ``last`` (or there was no last time)."""
    return last is None or seconds <= 0 or (now - last).total_seconds() >= seconds


def cooldown_ready_ts(last: float | None, now: float, seconds: float) -> bool:
    """`cooldown_ready` on POSIX timestamps (the ingestion path keeps times as floats)."""
    return last is None or seconds <= 0 or now - last >= seconds


def counts(settings: XpSettings, source: str, ctx: ActivityContext, *, last: float | None, now: float) -> bool:
    """Whether an activity counts at all.

    Whether an activity counts at all: not in a no-XP place and past its cooldown. Only activity that counts
    earns XP and advances quests (spam on cooldown and chatter in a no-XP channel advance nothing).
    """
    if xp_blocked(settings, ctx):
        return False
    return source == "voice" or cooldown_ready_ts(last, now, settings.cooldown(source))


def xp_blocked(settings: XpSettings, ctx: ActivityContext) -> bool:
    """No XP in a no-XP channel (or a thread of one), nor for a member holding a no-XP role."""
    if settings.no_xp_channels and (ctx.channel_id in settings.no_xp_channels
                                    or ctx.parent_channel_id in settings.no_xp_channels):
        return True
    return bool(settings.no_xp_roles) and not settings.no_xp_roles.isdisjoint(ctx.role_ids)


def multiplier(settings: XpSettings, ctx: ActivityContext, quest_multiplier: float = 1.0) -> float:
    """Server rate × highest role multiplier × channel multiplier × active quest multiplier."""
    role = max((settings.role_multipliers.get(r, 1.0) for r in ctx.role_ids),
               default=1.0) if settings.role_multipliers else 1.0
    channel = settings.channel_multipliers.get(ctx.channel_id or 0) if settings.channel_multipliers else 1.0
    if channel is None:
        channel = settings.channel_multipliers.get(ctx.parent_channel_id or 0, 1.0)
    return max(0.0, settings.xp_rate) * role * channel * max(quest_multiplier, 0.0)


def apply_multiplier(base: int, factor: float) -> int:
    """Scale an amount, rounding half up, never negative."""
    return max(0, math.floor(base * factor + 0.5))


def base_award(settings: XpSettings, source: str, rng: random.Random, *, seconds: int = 0) -> int:
    """The XP an activity is worth before multipliers."""
    if source == "message":
        lo, hi = sorted((settings.message_xp_min, settings.message_xp_max))
        return rng.randint(lo, hi)
    if source == "reaction":
        return settings.reaction_xp
    if source == "command":
        return settings.command_xp
    if source == "voice":
        return settings.voice_xp_per_minute * max(0, seconds) // 60
    raise ValueError(f"unknown XP source {source!r}")


def award(
    settings: XpSettings,
    source: str,
    ctx: ActivityContext,
    rng: random.Random,
    *,
    last: datetime | None = None,
    now: datetime | None = None,
    seconds: int = 0,
    quest_multiplier: float = 1.0,
) -> int:
    """The XP one activity earns: 0 when blocked or on cooldown, else base × multipliers."""
    if xp_blocked(settings, ctx):
        return 0
    if source != "voice" and now is not None and not cooldown_ready(last, now, settings.cooldown(source)):
        return 0
    base = base_award(settings, source, rng, seconds=seconds)
    return apply_multiplier(base, multiplier(settings, ctx, quest_multiplier))


def active_quest_multiplier(value: float | None, expires_at: datetime | None, now: datetime) -> float:
    """A quest reward multiplier counts until it expires."""
    if value is None or expires_at is None or expires_at <= now:
        return 1.0
    return value


# -------------------------------------------------------------------------------------------- voice


@dataclass(frozen=True, slots=True)
class VoiceState:
    """What voice eligibility reads of a member in a voice channel."""
    self_mute: bool = False
    self_deaf: bool = False
    mute: bool = False
    deaf: bool = False
    bot: bool = False
    afk_channel: bool = False


def voice_eligible(member: VoiceState, others: Iterable[VoiceState]) -> bool:
    """Voice XP accrues only while unmuted, undeafened, not in the AFK channel and not alone with bots."""
    if member.bot or member.afk_channel or member.self_mute or member.self_deaf or member.mute or member.deaf:
        return False
    return any(not o.bot for o in others)


# ----------------------------------------------------------------------------------------- level roles


@dataclass(frozen=True, slots=True)
class LevelRole:
    """A role granted at ``level``; a stacked role is kept once a higher level role is earned."""
    role_id: int
    level: int
    is_stacked: bool = True


def desired_level_roles(level: int, roles: Iterable[LevelRole]) -> set[int]:
    """The level roles a member at ``level`` should hold.

    Every earned stacked role is kept; a non-stacked role is kept only while it is the highest earned.
    """
    earned = sorted((r for r in roles if r.level <= level), key=lambda r: (r.level, r.role_id))
    if not earned:
        return set()
    top = earned[-1].level
    return {r.role_id for r in earned if r.is_stacked or r.level == top}


def reconcile_roles(current: Iterable[int], level: int, roles: Iterable[LevelRole], *,
                    granted: Iterable[int] | None = None) -> tuple[set[int], set[int]]:
    """(roles to add, roles to remove): only level roles are touched; applying twice changes nothing.

    Only roles in ``granted`` (those the bot gave as level rewards) are ever removed: a member who held a
    level role before it became one, or got it elsewhere, keeps it. ``None`` counts every held level role
    as granted.
    """
    roles = list(roles)
    managed = {r.role_id for r in roles}
    have = set(current) & managed
    want = desired_level_roles(level, roles)
    removable = have if granted is None else have & set(granted)
    return want - have, removable - want


# --------------------------------------------------------------------------------------------- quests


def quest_progress(current: int, increment: int, required: int) -> tuple[int, bool]:
    """(new progress, whether this increment completed the quest). Progress stops at the requirement."""
    new = min(required, max(0, current) + max(0, increment))
    return new, current < required <= new


def _at_hour(day: datetime, hour: int) -> datetime:
    return day.astimezone(UTC).replace(hour=hour, minute=0, second=0, microsecond=0)


def period_start(cycle: str, now: datetime, reset_hour: int = 0, reset_day: int = 0) -> datetime:
    """Start of the refresh period containing ``now`` (UTC; weekly resets on ``reset_day``, 0 = Monday)."""
    now = now.astimezone(UTC)
    if cycle == "daily":
        start = _at_hour(now, reset_hour)
        return start if start <= now else start - timedelta(days=1)
    if cycle == "weekly":
        start = _at_hour(now, reset_hour) - timedelta(days=(now.weekday() - reset_day) % 7)
        return start if start <= now else start - timedelta(days=7)
    if cycle == "monthly":
        start = _at_hour(now.replace(day=1), reset_hour)
        if start <= now:
            return start
        previous = (now.replace(day=1) - timedelta(days=1)).replace(day=1)
        return _at_hour(previous, reset_hour)
    raise ValueError(f"cycle {cycle!r} has no period")


def next_reset(cycle: str, now: datetime, reset_hour: int = 0, reset_day: int = 0) -> datetime:
    """The first reset strictly after ``now``."""
    start = period_start(cycle, now, reset_hour, reset_day)
    if cycle == "daily":
        return start + timedelta(days=1)
    if cycle == "weekly":
        return start + timedelta(days=7)
    year, month = (start.year + 1, 1) if start.month == 12 else (start.year, start.month + 1)
    return start.replace(year=year, month=month)


@dataclass(frozen=True, slots=True)
class QuestTemplate:
    """A daily or weekly quest generated once per period (``{n}`` in the description is the requirement)."""
    key: str
    name: str
    description: str
    quest_type: str
    requirement_type: str
    requirement_value: int
    reward_xp: int
    reward_multiplier: float = 1.0
    multiplier_minutes: int = 0
    difficulty: str = "medium"


QUEST_TEMPLATES: tuple[QuestTemplate, ...] = (
    QuestTemplate("daily_chat", "Chatterbox", "Send {n} messages today.", "daily", "total_messages", 20, 150,
                  difficulty="easy"),
    QuestTemplate("daily_react", "Appreciator", "Add {n} reactions today.", "daily", "total_reactions", 10, 100,
                  difficulty="easy"),
    QuestTemplate("daily_voice", "Voice of the day", "Spend {n} seconds talking in voice today.", "daily",
                  "voice_time_seconds", 900, 200),
    QuestTemplate("weekly_chat", "Regular", "Send {n} messages this week.", "weekly", "total_messages", 200, 1000,
                  1.5, 60, "medium"),
    QuestTemplate("weekly_voice", "Hangout", "Spend {n} seconds in voice this week.", "weekly",
                  "voice_time_seconds", 7200, 1200, 1.25, 120, "hard"),
    QuestTemplate("weekly_commands", "Explorer", "Use {n} commands this week.", "weekly", "commands_used", 15, 500),
)


# Period counters: the server's generated daily and weekly quests read a member's progress from counters on the
# member's level row (``daily_*``/``weekly_*``, by requirement type) instead of a row per member and quest, so
# activity costs one row write however many quests it moves. Custom quests keep their rows.
PERIOD_COUNTERS = {"total_messages": "messages", "total_reactions": "reactions",
                   "voice_time_seconds": "voice_seconds", "commands_used": "commands"}
PERIODS = ("daily", "weekly")


def counts_by_period(quest_type: str, template_key: str | None, period_start: datetime | None) -> bool:
    """Whether a quest's progress is read from the period counters (a generated daily or weekly quest)."""
    return template_key is not None and period_start is not None and quest_type in PERIODS


class PeriodQuest(Protocol):
    """What `current_periods` reads of a quest (a `results.QuestInfo`)."""

    @property
    def quest_type(self) -> str:
        """The kind: daily, weekly, special, event or challenge."""

    @property
    def template_key(self) -> str | None:
        """The template a generated quest came from (None: a custom quest)."""

    @property
    def period_start(self) -> datetime | None:
        """Start of the period a generated quest belongs to."""

    @property
    def expires_at(self) -> datetime | None:
        """When the quest ends."""


def current_periods(quests: Iterable[PeriodQuest], now: datetime | None = None) -> dict[str, int]:
    """The server's current quest period of each kind (`period_key`).

    Read from its generated quests (those still running at ``now`` when given).
    """
    found: dict[str, int] = {}
    for q in quests:
        if q.period_start is None or not counts_by_period(q.quest_type, q.template_key, q.period_start):
            continue
        if now is not None and q.expires_at is not None and q.expires_at <= now:
            continue
        key = period_key(q.period_start)
        found[q.quest_type] = max(found.get(q.quest_type, key), key)
    return found


def period_key(start: datetime) -> int:
    """How a period's start is stored beside its counters (POSIX seconds)."""
    return int(start.timestamp())


def period_column(quest_type: str, requirement_type: str) -> str:
    """The level row's counter of a period quest (``daily_messages``, ``weekly_voice_seconds``, …)."""
    return f"{quest_type}_{PERIOD_COUNTERS[requirement_type]}"


def period_progress(period_start: datetime, stored_period: int | None, stored_value: int) -> int:
    """A period quest's progress from the member's counters.

    They count for the quest only while they belong to the quest's period.
    """
    return stored_value if stored_period == period_key(period_start) else 0


# ------------------------------------------------------------------------------------------ templates

_FORMATTER = string.Formatter()


MESSAGE_MAX = 2000  # Discord's limit on a message's content
# The longest each placeholder can render: a server name (100), a display name or username (32), a mention of
# the largest snowflake, and the largest level and total XP.
LONGEST_VALUES = {"server": 100, "user": 32, "mention": len(f"<@{2**64 - 1}>"), "level": len(str(MAX_LEVEL)),
                  "xp": len(str(MAX_XP))}


def _placeholders(template: str) -> list[tuple[str, str | None]]:
    """(literal text, placeholder name) pairs; unknown keys, attribute/index access and format specs refused."""
    try:
        parsed = list(_FORMATTER.parse(template))
    except ValueError as exc:
        raise ValidationError("The message has a { or } without its pair; write {{ or }} for a brace itself.") \
            from exc
    for _literal, name, spec, conversion in parsed:
        if name is None:
            continue
        if name not in TEMPLATE_KEYS or spec or conversion:
            allowed = ", ".join("{" + k + "}" for k in sorted(TEMPLATE_KEYS))
            raise ValidationError(f"Unknown placeholder {{{echo(name, 40)}}}: use {allowed}.")
    return [(literal, name) for literal, name, _spec, _conversion in parsed]


def longest_rendering(template: str) -> int:
    """How long ``template`` can get once filled in, with the longest possible value of every placeholder."""
    return sum(len(literal) + (LONGEST_VALUES[name] if name else 0) for literal, name in _placeholders(template))


def validate_template(template: str) -> str:
    """Check a level-up template and return it stripped.

    The template stripped, refused when it has control characters, unknown placeholders or format specs, or
    when the longest values (a 100-character server name, ...) would make it longer than a Discord message.
    """
    template = clean_text(template, "The level-up message", max_length=1000, multiline=True)
    longest = longest_rendering(template)
    if longest > MESSAGE_MAX:
        raise ValidationError(
            f"Filled in with the longest names and numbers (a server name can be 100 characters, a member's name "
            f"32), this message could be {longest:,} characters, and Discord allows {MESSAGE_MAX:,}. "
            "Shorten it or use fewer placeholders.")
    return template


def render_template(template: str, **values: object) -> str:
    """Fill a level-up template (the caller fits the result to Discord's limits)."""
    _placeholders(template)
    missing = TEMPLATE_KEYS - values.keys()
    if missing:
        raise ValueError(f"missing template values: {sorted(missing)}")
    return template.format_map({k: values[k] for k in TEMPLATE_KEYS})


# --------------------------------------------------------------------------------------------- numbers

_UNITS = ((3, "K"), (6, "M"), (9, "B"), (12, "T"), (15, "Qa"), (18, "Qi"))


def compact_number(value: int) -> str:
    """Format XP the one way cards and embeds show it.

    One format for XP on cards and embeds: ``9,999`` below 10,000, then three significant digits with a
    unit (``12.3K``, ``123K``, ``1.69B``), rounded half up; a value that rounds to 1000 of a unit moves to the
    next (``999,950`` is ``1M``, never ``1000K``).
    """
    value = int(value)
    if value < 0:
        return "-" + compact_number(-value)
    if value < 10_000:
        return f"{value:,}"
    for exp, unit in _UNITS:
        size = 10**exp
        decimals = max(0, 3 - len(str(value // size)))
        scaled = (value * 10**decimals * 2 + size) // (2 * size)  # value / size, rounded half up
        if scaled >= 1000 * 10**decimals and unit != _UNITS[-1][1]:
            continue
        whole, fraction = divmod(scaled, 10**decimals)
        digits = f"{fraction:0{decimals}d}".rstrip("0") if decimals else ""
        return f"{whole}.{digits}{unit}" if digits else f"{whole}{unit}"
    raise AssertionError("unreachable")  # pragma: no cover - the last unit always returns


# ------------------------------------------------------------------------------------------- validation

_HEX = re.compile(r"^#?([0-9a-fA-F]{6})$")


def normalize_hex_colour(value: str) -> str:
    """``#RRGGBB`` in lower case, or a ValidationError."""
    match = _HEX.match(value.strip())
    if not match:
        raise ValidationError(f"“{echo(value, 40)}” is not a colour; use a hex code like #5865f2.")
    return "#" + match.group(1).lower()


def hex_to_rgb(value: str) -> tuple[int, int, int]:
    """(red, green, blue) of a hex colour code."""
    value = normalize_hex_colour(value)
    return int(value[1:3], 16), int(value[3:5], 16), int(value[5:7], 16)


def validate_url(value: str) -> str:
    """An absolute http(s) URL with a host, at most 500 characters."""
    value = clean_text(value, "The image link", max_length=500)
    parsed = urlparse(value)
    if parsed.scheme not in ("http", "https") or not parsed.netloc or len(value) > 500 or " " in value:
        raise ValidationError("The image must be an http:// or https:// link.")
    return value


# ------------------------------------------------------------------------------------------ achievements

ACHIEVEMENT_STAT = {
    "level": "level",
    "messages": "total_messages",
    "voice": "voice_time_seconds",
    "reactions": "total_reactions",
    "commands": "commands_used",
}


def achievement_met(requirement_type: str, requirement_value: int, stats: Mapping[str, int]) -> bool:
    """Whether a member with ``stats`` meets an achievement's requirement."""
    return stats.get(ACHIEVEMENT_STAT[requirement_type], 0) >= requirement_value
