"""Free text from players: one check every service runs before storing it, and a safe way to quote it back.

PostgreSQL refuses a NUL character in text and SQLite stores it, so the same input would fail on one backend
and not the other; other control characters and lone surrogates (which cannot be encoded at all) are no
better. `clean_text` refuses them all with a message for the player, on both backends alike.
"""

from __future__ import annotations

import unicodedata

from guildkeep.errors import ValidationError

ELLIPSIS = "…"
ECHO_LIMIT = 80


def _bad_character(value: str, *, multiline: bool) -> str | None:
    for char in value:
        if multiline and char in "\n\t":
            continue
        category = unicodedata.category(char)
        if category == "Cc":
            return "NUL" if char == "\x00" else f"U+{ord(char):04X}"
        if category == "Cs":
            return "an unpaired surrogate"
    return None


def clean_text(value: object, what: str, *, max_length: int, min_length: int = 1, multiline: bool = False) -> str:
    """``value`` stripped of surrounding whitespace and checked: a string of ``min_length`` to ``max_length``
    characters with no control characters (newlines and tabs are allowed when ``multiline``). ``what`` names
    the field for the player, e.g. "The quest name"."""
    if not isinstance(value, str):
        raise ValidationError(f"{what} must be text.")
    value = value.strip()
    bad = _bad_character(value, multiline=multiline)
    if bad is not None:
        raise ValidationError(f"{what} can't contain control characters (it has {bad}).")
    if not min_length <= len(value) <= max_length:
        if min_length == 0:
            raise ValidationError(f"{what} can be at most {max_length:,} characters (it has {len(value):,}).")
        raise ValidationError(f"{what} must be {min_length} to {max_length:,} characters (it has {len(value):,}).")
    return value


def plural(count: int, noun: str, nouns: str | None = None) -> str:
    """``1 Esprit``, ``2 Esprits``, ``1,000 players`` (``nouns`` for an irregular plural)."""
    return f"{count:,} {noun if count == 1 else (nouns or noun + 's')}"


def echo(value: object, limit: int = ECHO_LIMIT) -> str:
    """Player input as it may be quoted in a reply: control characters dropped, at most ``limit`` characters."""
    text = "".join(c for c in str(value) if unicodedata.category(c) not in ("Cc", "Cs"))
    return text if len(text) <= limit else text[: limit - 1] + ELLIPSIS


def strip_control(value: str | None) -> str:
    """A name Discord gave us (user, nickname, server), with any control character dropped: stored as seen,
    never refused, since the member did not type it into one of our commands."""
    return "".join(c for c in value or "" if unicodedata.category(c) not in ("Cc", "Cs"))


ID_MAX = 2**63 - 1  # database ids and Discord snowflakes are positive 64-bit integers


def parse_id(value: object) -> int | None:
    """``value`` as a positive 64-bit id when it is written in plain ASCII digits, else None.

    ``str.isdigit`` also accepts superscripts and circled digits (which ``int`` then refuses) and any length,
    so a typed "①" or a 25-digit number would otherwise crash a command or the database."""
    text = str(value).strip()
    if not (text.isascii() and text.isdigit()) or len(text) > len(str(ID_MAX)):
        return None
    number = int(text)
    return number if 0 < number <= ID_MAX else None
