"""The companion's pure rules: no I/O, no clock. Every time is a parameter.

Mood decay and labels, relationship levels, fact ranking (recency x importance x relevance), fact
reconciliation, the deterministic fact extractor, the 60-minute conversation split, message
sentiment and topics, communication-style learning, and the next occurrence of a recurring event.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from guildkeep.scheduler import rules as scheduler_rules

# ----------------------------------------------------------------------------------- vocabularies

FACT_TYPES = ("hobby", "work", "family", "preference", "location", "event", "relationship", "general")
TEMPORAL = ("past", "present", "future", "timeless")
FACT_SOURCES = ("conversation", "auto_extraction", "manual")
ROLES = ("user", "assistant", "system")
EVENT_TYPES = ("birthday", "follow_up", "reminder")
EVENT_STATUSES = ("pending", "triggered", "cancelled")
PENDING, TRIGGERED, CANCELLED = EVENT_STATUSES
RECURRENCES = ("yearly", "monthly", "weekly", "daily")
TRIGGER_TYPES = ("conversation", "time_decay", "event")
LENGTHS = ("short", "medium", "long")
ASSOCIATION_TYPES = ("shared_interest", "same_location", "same_work", "related")

GLOBAL_GUILD = 0  # guild id of per-server rows that belong to direct messages (no server)

CONVERSATION_TIMEOUT = timedelta(minutes=60)
MAX_FACT_LENGTH = 500
MAX_MESSAGE_LENGTH = 4000
MAX_TITLE = 255
MAX_TOPIC = 255


def clamp(value: float, low: float, high: float) -> float:
    """``value`` kept within ``low`` and ``high``."""
    return max(low, min(high, value))


# ------------------------------------------------------------------------------------------ mood

MOOD_HALF_LIFE_HOURS = 6.0
MOOD_STEP = 0.15  # how far one conversation message moves the mood at most


def decay_mood(valence: float, arousal: float, elapsed: timedelta,
               half_life_hours: float = MOOD_HALF_LIFE_HOURS) -> tuple[float, float]:
    """Both axes move toward 0 (neutral), halving every ``half_life_hours``."""
    hours = max(0.0, elapsed.total_seconds() / 3600)
    factor = 0.5 ** (hours / half_life_hours) if half_life_hours > 0 else 0.0
    return valence * factor, arousal * factor


def nudge_mood(valence: float, arousal: float, sentiment: float, intensity: float) -> tuple[float, float]:
    """One message's effect: valence follows its sentiment, arousal its intensity; both stay in [-1, 1]."""
    v = clamp(valence + MOOD_STEP * clamp(sentiment, -1, 1), -1.0, 1.0)
    a = clamp(arousal + MOOD_STEP * clamp(intensity, -1, 1), -1.0, 1.0)
    return v, a


def mood_label(valence: float, arousal: float) -> str:
    """A word for a point of the valence/arousal plane (0.2 around neutral counts as neutral)."""
    if abs(valence) < 0.2 and abs(arousal) < 0.2:
        return "neutral"
    if valence >= 0.2:
        if arousal >= 0.2:
            return "excited"
        if arousal <= -0.2:
            return "content"
        return "happy"
    if valence <= -0.2:
        if arousal >= 0.2:
            return "frustrated"
        if arousal <= -0.2:
            return "sad"
        return "melancholy"
    return "curious" if arousal >= 0.2 else "calm"


# ---------------------------------------------------------------------------------- relationships

DEFAULT_SCORE = 10.0  # a new acquaintance starts as a stranger

LEVELS = (
    (20.0, "stranger", "Stranger"),
    (40.0, "acquaintance", "Acquaintance"),
    (60.0, "friend", "Friend"),
    (80.0, "good_friend", "Good Friend"),
    (100.0, "close_friend", "Close Friend"),
)


def relationship_level(score: float) -> str:
    """0-20 stranger, 21-40 acquaintance, 41-60 friend, 61-80 good friend, 81-100 close friend.

    Scores are real numbers: a level's upper bound belongs to it (20.0 is a stranger, 20.01 an acquaintance).
    """
    score = clamp(score, 0.0, 100.0)
    for upper, key, _name in LEVELS:
        if score <= upper:
            return key
    return LEVELS[-1][1]


def level_name(key: str) -> str:
    """The name people read for a relationship level key (``acquaintance`` -> ``Acquaintance``)."""
    return next(name for _upper, k, name in LEVELS if k == key)


def relationship_delta(sentiment: float, length: int) -> float:
    """Points one message adds: a small base, more for warm and longer messages, less for hostile ones."""
    delta = 0.5 + min(length, 400) / 400 * 0.5
    if sentiment > 0.1:
        delta += 1.0 * sentiment
    elif sentiment < -0.1:
        delta += 2.0 * sentiment  # negative: hostility costs more than warmth earns
    return delta


def running_average(old: float, count: int, value: float) -> float:
    """The mean of ``count`` values plus one more, from the mean of the first ``count``."""
    return (old * count + value) / (count + 1)


# -------------------------------------------------------------------------------- text analysis

_WORD = re.compile(r"[a-z0-9']+")


def _wordset(text: str) -> frozenset[str]:
    return frozenset(text.split())


_POSITIVE = _wordset(
    "love like great good awesome amazing thanks thank happy glad nice cool wonderful fun enjoy yay "
    "excellent fantastic beautiful best sweet cute perfect haha lol"
)
_NEGATIVE = _wordset(
    "hate bad awful terrible sad angry annoying stupid worst horrible upset boring ugly sucks tired "
    "depressed lonely cry hurt mad dumb useless"
)
_STOP = _wordset(
    "a an the and or but i i'm im my me you your is are was were be to of in on at for with it this that "
    "do does did have has had so very really just not no yes am as by from about what who how why when "
    "we they he she them our their its can will would should could"
)
TOPICS = _wordset(
    "music games gaming movies films books reading anime manga sports football soccer basketball cooking "
    "baking art drawing painting programming coding travel hiking photography coffee tea cats dogs pets "
    "science space history math writing poetry chess dance dancing guitar piano singing fashion food "
    "gardening fishing running yoga cycling climbing swimming"
)
_EMOJI = re.compile("[\U0001f300-\U0001faff\u2600-\u27bf]|:[a-z_]+:|[:;]-?[)(dp]", re.IGNORECASE)
_HUMOR = re.compile(r"\b(lol|lmao|rofl|haha\w*|hehe\w*|jk)\b|😂|🤣|😆", re.IGNORECASE)
_CASUAL = re.compile(r"\b(u|ur|gonna|wanna|lol|omg|btw|idk|ya|yeah|nah|hey|sup|thx)\b", re.IGNORECASE)
_FORMAL = re.compile(r"\b(please|thank you|regards|would you|could you|kindly|however|therefore)\b", re.IGNORECASE)


def words(text: str) -> list[str]:
    """The lower-case words of a text, in order."""
    return _WORD.findall(text.lower())


def content_words(text: str) -> set[str]:
    """The words of a text that carry meaning: no stop words, no single letters."""
    return {w for w in words(text) if w not in _STOP and len(w) > 1}


def sentiment(text: str) -> float:
    """-1 (hostile) to 1 (warm) from a small word list; 0 when the message shows neither."""
    tokens = words(text)
    pos = sum(t in _POSITIVE for t in tokens) + text.count("❤") + text.count("😊")
    neg = sum(t in _NEGATIVE for t in tokens) + text.count("😢") + text.count("😠")
    if pos == neg:
        return 0.0
    return clamp((pos - neg) / max(1, pos + neg), -1.0, 1.0)


def intensity(text: str) -> float:
    """-1 (flat) to 1 (excited): exclamation marks, capitals and emoji raise it."""
    letters = [c for c in text if c.isalpha()]
    caps = sum(c.isupper() for c in letters) / len(letters) if letters else 0.0
    score = min(text.count("!"), 3) * 0.25 + (0.5 if caps > 0.6 and len(letters) > 3 else 0.0)
    score += min(len(_EMOJI.findall(text)), 2) * 0.15
    return clamp(score - 0.2, -1.0, 1.0)


def topics(text: str) -> list[str]:
    """Topics a message mentions, from a fixed list (lowercase, stable order)."""
    return sorted(content_words(text) & TOPICS)


def similarity(a: str, b: str) -> float:
    """Word overlap (Jaccard) of the content words of two texts, 0-1."""
    wa, wb = content_words(a), content_words(b)
    if not wa or not wb:
        return 1.0 if a.strip().lower() == b.strip().lower() else 0.0
    return len(wa & wb) / len(wa | wb)


# -------------------------------------------------------------------------------- conversations


def starts_new_conversation(last_message_at: datetime | None, now: datetime,
                            timeout: timedelta = CONVERSATION_TIMEOUT) -> bool:
    """A message opens a new conversation when the last one is ``timeout`` (60 min) old or more."""
    return last_message_at is None or now - last_message_at >= timeout


def estimate_tokens(text: str) -> int:
    """The LLM layer's rule of thumb: one token per four characters, rounded up."""
    return math.ceil(len(text) / 4)


# ------------------------------------------------------------------------------------ facts


@dataclass(frozen=True)
class ExtractedFact:
    """A fact read from a message (by the model or the rules), before it is reconciled and stored."""

    fact_type: str
    content: str
    importance: float = 0.5
    confidence: float = 0.8
    temporal_relevance: str = "present"
    birthday: tuple[int, int] | None = None  # (month, day) when the fact is a birthday


_MONTHS = {name: i for i, name in enumerate(
    ("january", "february", "march", "april", "may", "june", "july", "august", "september", "october",
     "november", "december"), start=1)}
_MONTHS.update({name[:3]: i for name, i in list(_MONTHS.items())})
_MONTHS["sept"] = 9

_CLAUSE_END = r"(?=[.!?;\n]|,\s*(?:and|but)\b|\s+but\b|$)"
_PATTERNS: tuple[tuple[re.Pattern[str], str, float, str], ...] = (
    (re.compile(r"\bi (?:work|am working) as (?:an? |the )?(?P<x>[^.!?;\n]{2,80}?)" + _CLAUSE_END, re.I),
     "work", 0.7, "present"),
    (re.compile(r"\bi(?:'m| am) an? (?P<x>(?:software |web |game )?(?:developer|engineer|teacher|nurse|doctor|"
                r"student|designer|artist|writer|programmer|lawyer|chef|cook|musician)[^.!?;\n]{0,40}?)"
                + _CLAUSE_END, re.I), "work", 0.7, "present"),
    (re.compile(r"\bi (?:live|am living) in (?P<x>[^.!?;\n]{2,80}?)" + _CLAUSE_END, re.I),
     "location", 0.6, "present"),
    (re.compile(r"\bi(?:'m| am) from (?P<x>[^.!?;\n]{2,80}?)" + _CLAUSE_END, re.I), "location", 0.5, "timeless"),
    (re.compile(r"\bi (?:really )?(?:love|enjoy|adore) (?P<x>[^.!?;\n]{2,80}?)" + _CLAUSE_END, re.I),
     "hobby", 0.6, "present"),
    (re.compile(r"\bmy (?:favou?rite|favorite) (?P<what>[a-z ]{2,30}?) is (?P<x>[^.!?;\n]{1,80}?)" + _CLAUSE_END, re.I),
     "preference", 0.5, "present"),
    (re.compile(r"\bi (?:hate|can't stand|dislike) (?P<x>[^.!?;\n]{2,80}?)" + _CLAUSE_END, re.I),
     "preference", 0.5, "present"),
    (re.compile(r"\bmy (?P<who>wife|husband|partner|girlfriend|boyfriend|son|daughter|mother|mom|mum|father|dad|"
                r"sister|brother|cat|dog)(?:'s name)? is (?:called |named )?(?P<x>[^.!?;\n]{1,60}?)"
                + _CLAUSE_END, re.I),
     "family", 0.7, "present"),
)
_BIRTHDAY = re.compile(r"\bmy birthday is (?:on )?(?P<x>[^.!?;\n]{3,40}?)" + _CLAUSE_END, re.I)


def parse_month_day(text: str) -> tuple[int, int] | None:
    """``March 14``, ``14 March``, ``14th of march``, ``2000-03-14``, ``03-14``; None when not a real date."""
    t = text.strip().lower()
    iso = re.search(r"\b(?:(\d{4})-)?(\d{1,2})-(\d{1,2})\b", t)
    month: int | None = None
    day: int | None = None
    if iso:
        month, day = int(iso.group(2)), int(iso.group(3))
    else:
        m = re.search(r"\b([a-z]{3,9})\.?\s+(\d{1,2})(?:st|nd|rd|th)?\b", t)
        if m and m.group(1) in _MONTHS:
            month, day = _MONTHS[m.group(1)], int(m.group(2))
        else:
            m = re.search(r"\b(\d{1,2})(?:st|nd|rd|th)?\s+(?:of\s+)?([a-z]{3,9})\b", t)
            if m and m.group(2) in _MONTHS:
                month, day = _MONTHS[m.group(2)], int(m.group(1))
    if month is None or day is None:
        return None
    try:
        date(2000, month, day)  # a leap year, so Feb 29 is a valid birthday
    except ValueError:
        return None
    return month, day


def _clean(value: str) -> str:
    return re.sub(r"\s+", " ", value).strip(" ,'\"").rstrip()


def extract_facts(text: str) -> list[ExtractedFact]:
    """The deterministic extractor used without a model: fixed phrasings, nothing guessed."""
    found: list[tuple[int, ExtractedFact]] = []
    bday = _BIRTHDAY.search(text)
    if bday:
        md = parse_month_day(bday.group("x"))
        if md is not None:
            month, day = md
            found.append((bday.start(), ExtractedFact("event", f"Birthday is {date(2000, month, day):%B} {day}",
                                                      0.9, 0.9, "timeless", birthday=md)))
    for pattern, fact_type, importance, temporal in _PATTERNS:
        for match in pattern.finditer(text):
            value = _clean(match.group("x"))
            if not value:
                continue
            groups = match.groupdict()
            if fact_type == "work":
                content = f"Works as {value}" if "work" in match.group(0).lower() else f"Is a {value}"
            elif fact_type == "location":
                content = f"Lives in {value}" if "live" in match.group(0).lower() else f"Is from {value}"
            elif fact_type == "hobby":
                content = f"Loves {value}"
            elif fact_type == "preference" and groups.get("what"):
                content = f"Favourite {_clean(groups['what'])} is {value}"
            elif fact_type == "preference":
                content = f"Dislikes {value}"
            else:
                content = f"{groups['who'].capitalize()} is {value}"
            found.append((match.start(), ExtractedFact(fact_type, content[:MAX_FACT_LENGTH], importance, 0.8,
                                                       temporal)))
    return [fact for _start, fact in sorted(found, key=lambda item: item[0])]


def fact_slot(fact_type: str, content: str) -> str | None:
    """Facts that hold one value per user (job, home, birthday): a new one replaces the old one."""
    lowered = content.lower()
    if lowered.startswith("birthday"):
        return "birthday"
    if fact_type == "work" and lowered.startswith(("works as", "is a")):
        return "work"
    if fact_type == "location" and lowered.startswith("lives in"):
        return "home"
    if fact_type == "preference" and lowered.startswith("favourite "):
        return "favourite:" + lowered.split(" is ", 1)[0]
    if fact_type == "family":
        return "family:" + lowered.split(" is ", 1)[0]
    return None


@dataclass(frozen=True)
class ExistingFact:
    """A stored fact as reconciliation compares new ones against it."""

    id: int
    fact_type: str
    content: str


ADD, UPDATE, NOOP = "add", "update", "none"
DUPLICATE_SIMILARITY = 0.8
UPDATE_SIMILARITY = 0.5


def reconcile(fact_type: str, content: str, existing: list[ExistingFact]) -> tuple[str, int | None]:
    """What to do with a new fact given the user's active facts: add, update one (keeping its id) or nothing.

    Same content (or nearly): nothing. Same one-value slot (job, home, birthday ...) or largely the same
    words in the same type: update that fact. Otherwise: add.
    """
    slot = fact_slot(fact_type, content)
    best: tuple[float, ExistingFact] | None = None
    for fact in existing:
        sim = similarity(content, fact.content)
        if content.strip().lower() == fact.content.strip().lower() or (
            sim >= DUPLICATE_SIMILARITY and fact.fact_type == fact_type
        ):
            return NOOP, fact.id
        if slot is not None and fact_slot(fact.fact_type, fact.content) == slot:
            return UPDATE, fact.id
        if fact.fact_type == fact_type and sim >= UPDATE_SIMILARITY and (best is None or sim > best[0]):
            best = (sim, fact)
    if best is not None:
        return UPDATE, best[1].id
    return ADD, None


RECENCY_HALF_LIFE_DAYS = 30.0
RELEVANCE_FLOOR = 0.1


def fact_score(*, importance: float, last_used: datetime, now: datetime, content: str, query: str) -> float:
    """Recency x importance x relevance.

    Recency halves every 30 days since the fact was last used; relevance is the word overlap with the
    message, never below 0.1 so unrelated facts still rank.
    """
    age_days = max(0.0, (now - last_used).total_seconds() / 86400)
    recency: float = 0.5 ** (age_days / RECENCY_HALF_LIFE_DAYS)
    query_words = content_words(query)
    fact_words = content_words(content)
    overlap = len(query_words & fact_words) / len(fact_words) if fact_words and query_words else 0.0
    relevance = RELEVANCE_FLOOR + (1 - RELEVANCE_FLOOR) * overlap
    return recency * clamp(importance, 0.0, 1.0) * relevance


# --------------------------------------------------------------------------- communication style


@dataclass(frozen=True)
class StyleSample:
    """One message's measure of how its author talks: its length and each style axis (0-1)."""

    length: int
    formality: float
    emoji: float
    humor: float
    detail: float


def style_sample(text: str) -> StyleSample:
    """What one message says about how its author likes to talk (each axis 0-1)."""
    length = len(text)
    formal = len(_FORMAL.findall(text))
    casual = len(_CASUAL.findall(text)) + (1 if text[:1].islower() else 0)
    formality = clamp(0.5 + 0.25 * formal - 0.2 * casual, 0.0, 1.0)
    emoji = clamp(len(_EMOJI.findall(text)) / 3, 0.0, 1.0)
    humor = clamp(len(_HUMOR.findall(text)) / 2, 0.0, 1.0)
    detail = clamp(length / 300, 0.0, 1.0)
    return StyleSample(length, formality, emoji, humor, detail)


STYLE_FULL_CONFIDENCE_SAMPLES = 20


def preferred_length(avg_length: float) -> str:
    """``short``, ``medium`` or ``long`` for an average message length in characters."""
    if avg_length < 60:
        return "short"
    if avg_length < 250:
        return "medium"
    return "long"


def style_confidence(samples: int) -> float:
    """How far a style learnt from ``samples`` messages can be trusted, 0-1 (1 once there are enough)."""
    return clamp(samples / STYLE_FULL_CONFIDENCE_SAMPLES, 0.0, 1.0)


# ----------------------------------------------------------------------------------- events


def next_yearly(month: int, day: int, now: datetime, hour: int = 9) -> datetime:
    """The next ``month``/``day`` at ``hour``:00 UTC strictly after ``now`` (Feb 29 is Feb 28 in common years)."""
    for year in (now.year, now.year + 1, now.year + 2):
        last = (date(year, month % 12 + 1, 1) - timedelta(days=1)).day if month != 12 else 31
        when = datetime(year, month, min(day, last), hour, tzinfo=UTC)
        if when > now:
            return when
    raise AssertionError("unreachable")


def next_occurrence(first: datetime, recurrence: str, after: datetime) -> datetime:
    """The first occurrence of a series anchored at ``first`` that is later than ``after``."""
    n = 1
    while True:
        when = scheduler_rules.occurrence(first, recurrence, n)
        if when > after:
            return when
        n += 1


# ---------------------------------------------------------------------------------- reminder time

_IN = re.compile(r"^in\s+(\d{1,5})\s*(s|secs?|seconds?|m|mins?|minutes?|h|hrs?|hours?|d|days?|w|weeks?)$")
_DAY_AT = re.compile(r"^(today|tomorrow)(?:\s+(?:at\s+)?(\d{1,2})(?::(\d{2}))?\s*(am|pm)?)?$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
MAX_REMINDER_AHEAD = timedelta(days=5 * 366)
WHEN_HELP = "Try `in 10 minutes`, `in 2 hours`, `tomorrow 9:00` or a date like `2027-03-14 18:30` (UTC)."


def _unit_seconds(unit: str) -> int:
    if unit.startswith("mi") or unit == "m":
        return _UNITS["m"]
    return _UNITS[unit[0]]


def parse_when(text: str, now: datetime) -> datetime | None:
    """A reminder time in UTC from ``in 10 minutes``, ``tomorrow 9:00``, ``today 18:30`` or an ISO date/time.

    None when the text is none of those, names an impossible time, or lies in the past or more than five
    years ahead.
    """
    t = re.sub(r"\s+", " ", text.strip().lower())
    when: datetime | None = None
    m = _IN.match(t)
    if m:
        when = now + timedelta(seconds=int(m.group(1)) * _unit_seconds(m.group(2)))
    elif (m := _DAY_AT.match(t)) is not None:
        hour = int(m.group(2)) if m.group(2) else 9
        minute = int(m.group(3)) if m.group(3) else 0
        if m.group(4):
            if not 1 <= hour <= 12:
                return None
            hour = hour % 12 + (12 if m.group(4) == "pm" else 0)
        if hour > 23 or minute > 59:
            return None
        day = now.date() + timedelta(days=1 if m.group(1) == "tomorrow" else 0)
        when = datetime(day.year, day.month, day.day, hour, minute, tzinfo=UTC)
    else:
        try:
            parsed = datetime.fromisoformat(t.replace(" ", "T", 1).upper().replace("Z", "+00:00"))
        except ValueError:
            return None
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", t):
            parsed = parsed.replace(hour=9)
        when = parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    if when <= now or when - now > MAX_REMINDER_AHEAD:
        return None
    return when
