"""Pure rules for campaigns: names, references typed by players, the seed's JSON entries. No I/O."""

from __future__ import annotations

import re
import unicodedata
from datetime import UTC, datetime, timedelta
from typing import Any

from guildkeep.campaign.errors import CampaignInputError
from guildkeep.characters import rules as character_rules

CAMPAIGN_NAME_MAX = 100
NPC_PREFIX = "npc:"
CHARACTER_PREFIX = "char:"
SUGGESTIONS_MAX = 25
_SPACES = re.compile(r"\s+")
_DIGITS = re.compile(r"^\d{1,20}$")


def clean_campaign_name(raw: str) -> str:
    """A campaign's name: one line, 1 to 100 visible characters."""
    if any(unicodedata.category(ch) == "Cc" and not ch.isspace() for ch in raw):
        raise CampaignInputError("A campaign's name can't contain control characters.")
    name = _SPACES.sub(" ", raw).strip()
    if not name:
        raise CampaignInputError("A campaign's name can't be empty.")
    if len(name) > CAMPAIGN_NAME_MAX:
        raise CampaignInputError(
            f"A campaign's name can be at most {CAMPAIGN_NAME_MAX} characters (this one has {len(name)}).")
    return name


def clean_npc_name(raw: str) -> str:
    """An NPC's name follows the rules of the name a message is posted under (a webhook's)."""
    return character_rules.clean_name(raw, what="An NPC's name")


def role_names(campaign_name: str) -> tuple[str, str]:
    """The names of the campaign's player role and GM role (Discord: at most 100 characters)."""
    base = campaign_name[:90]
    return f"{base} Player", f"{base} GM"


def parse_speaker_ref(ref: str | None) -> tuple[str, int | str | None]:
    """What ``/say as:`` names: ``("npc", id)``, ``("character", id)``, ``("name", text)`` or ``("own", None)``."""
    text = (ref or "").strip()
    if not text:
        return "own", None
    lowered = text.lower()
    for prefix, kind in ((NPC_PREFIX, "npc"), (CHARACTER_PREFIX, "character")):
        if lowered.startswith(prefix) and _DIGITS.match(text[len(prefix):]):
            return kind, int(text[len(prefix):])
    return "name", " ".join(text.split())


def snowflake(value: Any) -> int | None:
    """A Discord id from the seed's files (a string or a number of digits), or None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if 0 < value < 2**63 else None
    if isinstance(value, str) and _DIGITS.match(value.strip()):
        number = int(value.strip())
        return number if 0 < number < 2**63 else None
    return None


def optional_text(value: Any, what: str) -> str | None:
    """A text field that may be missing or null; anything else is refused with the reason."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise CampaignInputError(f"{what} must be text")
    return value


SESSION_NOTE_MAX = 500
MAX_SESSION_AHEAD = timedelta(days=366)
WHEN_HELP = "Try `in 30 minutes`, `in 2 days` or a date and time like `2027-03-14 18:30` (UTC)."
_IN = re.compile(r"^in (\d{1,4}) ?(m|mins?|minutes?|h|hrs?|hours?|d|days?|w|weeks?)$")
_UNIT_SECONDS = {"m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_session_time(text: str, now: datetime) -> datetime:
    """When a session starts, in UTC: ``in 30 minutes``, ``in 2 days`` or ``2027-03-14 18:30`` (UTC).

    Refused when it is none of those, in the past, or more than a year ahead.
    """
    t = _SPACES.sub(" ", text.strip().lower())
    if (m := _IN.match(t)) is not None:
        when = now + timedelta(seconds=int(m.group(1)) * _UNIT_SECONDS[m.group(2)[0]])
    else:
        try:
            parsed = datetime.fromisoformat(t.replace(" ", "T", 1).upper().replace("Z", "+00:00"))
        except ValueError:
            raise CampaignInputError(f"I can't read `{text[:40]}` as a time. {WHEN_HELP}") from None
        when = parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    if when <= now:
        raise CampaignInputError(f"That time has already passed. {WHEN_HELP}")
    if when - now > MAX_SESSION_AHEAD:
        raise CampaignInputError("A session can be scheduled at most a year ahead.")
    return when


def clean_note(raw: str | None) -> str:
    """A session's note: at most 500 characters, no control characters but line breaks."""
    text = (raw or "").strip()
    if any(unicodedata.category(ch) == "Cc" and ch not in "\n\t" for ch in text):
        raise CampaignInputError("A note can't contain control characters.")
    if len(text) > SESSION_NOTE_MAX:
        raise CampaignInputError(f"A note can be at most {SESSION_NOTE_MAX} characters (this one has {len(text)}).")
    return text
