"""Pure rules for characters and speech: names, avatars and who may be mentioned. No I/O.

Names follow Discord's rules for webhook usernames (the name a character speaks under):

* 1 to 80 characters after trimming; runs of whitespace count as one space (Discord collapses them);
* no zero-width or other invisible characters, no line breaks or control characters;
* must not contain ``clyde`` or ``discord`` in any letter case (Discord answers 400 to a webhook
  created or executed with such a name);
* must not be ``everyone``, ``here`` or ``system message`` in any letter case (reserved names).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from urllib.parse import urlsplit

from guildkeep.characters.errors import AvatarError, CharacterNameError, DescriptionError, SpeechTextError

NAME_MIN = 1
NAME_MAX = 80
DESCRIPTION_MAX = 2000
URL_MAX = 2048
SPEECH_MAX = 2000  # Discord's message content limit
ALLOWED_MENTION_ROLES_MAX = 100  # Discord accepts at most 100 ids in allowed_mentions.roles

FORBIDDEN_SUBSTRINGS = ("clyde", "discord")
FORBIDDEN_EXACT = ("everyone", "here", "system message")

AVATAR_CONTENT_TYPES = ("image/png", "image/jpeg", "image/gif", "image/webp")
AVATAR_EXTENSIONS = (".png", ".jpg", ".jpeg", ".gif", ".webp")
AVATAR_MAX_BYTES = 10 * 1024 * 1024

# Characters Discord strips or refuses in names: zero-width spaces and non-joiners, direction marks and
# overrides, word joiners, BOM, Hangul fillers. The zero-width joiner and variation selectors stay
# allowed (emoji sequences use them), but a name needs at least one visible character.
_INVISIBLE = re.compile("[\u00ad\u034f\u115f\u1160\u17b4\u17b5\u180e\u200b\u200c\u200e\u200f"
                        "\u202a-\u202e\u2060-\u206f\u3164\ufeff\uffa0]")
_NOT_VISIBLE = re.compile("[\\s\u200d\ufe00-\ufe0f]")
_SPACES = re.compile(r"\s+")


def name_key(name: str) -> str:
    """The form two names are compared in: ``Gandalf`` and ``GANDALF`` are the same character name."""
    return unicodedata.normalize("NFKC", name).casefold()


def clean_name(raw: str, *, what: str = "A character's name") -> str:
    """The name as it will be stored and shown, or `CharacterNameError` saying what is wrong with it."""
    if _INVISIBLE.search(raw):
        raise CharacterNameError(f"{what} can't contain invisible characters (zero-width spaces and the like).")
    if "\n" in raw.strip() or "\r" in raw.strip():
        raise CharacterNameError(f"{what} must fit on one line.")
    if any(unicodedata.category(ch) == "Cc" and not ch.isspace() for ch in raw):
        raise CharacterNameError(f"{what} can't contain control characters.")
    name = _SPACES.sub(" ", raw).strip()
    if len(name) < NAME_MIN or not _NOT_VISIBLE.sub("", name):
        raise CharacterNameError(f"{what} can't be empty.")
    if len(name) > NAME_MAX:
        raise CharacterNameError(f"{what} can be at most {NAME_MAX} characters (this one has {len(name)}).")
    folded = name_key(name)
    for word in FORBIDDEN_SUBSTRINGS:
        if word in folded:
            raise CharacterNameError(
                f'Discord does not allow "{word}" anywhere in the name a message is posted under; '
                "please choose another name."
            )
    if folded in FORBIDDEN_EXACT:
        raise CharacterNameError(f'"{name}" is a name Discord reserves; please choose another name.')
    return name


def clean_description(raw: str | None) -> str:
    """A character's description, trimmed; empty when none is given, refused when too long."""
    text = (raw or "").strip()
    if len(text) > DESCRIPTION_MAX:
        raise DescriptionError(
            f"A description can be at most {DESCRIPTION_MAX} characters (this one has {len(text)})."
        )
    return text


def clean_avatar_url(raw: str | None) -> str | None:
    """An avatar link: an http(s) URL with a host, or None to have no avatar."""
    if raw is None:
        return None
    url = raw.strip()
    if not url:
        return None
    if len(url) > URL_MAX:
        raise AvatarError(f"An avatar link can be at most {URL_MAX} characters.")
    if any(ch.isspace() for ch in url):
        raise AvatarError("An avatar link can't contain spaces.")
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        raise AvatarError("That avatar link is not a valid URL.") from exc
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise AvatarError("An avatar must be a web link starting with https:// (or http://), or an uploaded image.")
    return url


def check_avatar_upload(filename: str, content_type: str | None, size: int) -> None:
    """An uploaded avatar must be an image Discord can show (PNG, JPEG, GIF or WebP) of at most 10 MiB."""
    kind = (content_type or "").split(";")[0].strip().lower()
    if kind not in AVATAR_CONTENT_TYPES and not filename.lower().endswith(AVATAR_EXTENSIONS):
        raise AvatarError("An avatar must be an image: PNG, JPEG, GIF or WebP.")
    if size > AVATAR_MAX_BYTES:
        raise AvatarError("An avatar image can be at most 10 MiB.")


def clean_speech(raw: str) -> str:
    """What a character says, trimmed; refused when empty or longer than a message may be."""
    text = raw.strip()
    if not text:
        raise SpeechTextError("There is nothing to say: the text is empty.")
    if len(text) > SPEECH_MAX:
        raise SpeechTextError(f"A message can be at most {SPEECH_MAX} characters (this one has {len(text)}).")
    return text


@dataclass(frozen=True, slots=True)
class MentionPolicy:
    """What a message posted for a member may ping: what that member could ping posting it themselves."""

    everyone: bool  # @everyone and @here
    roles: bool | tuple[int, ...]  # True: any role; a tuple: only these
    users: bool = True


def mention_policy(*, can_mention_everyone: bool, mentionable_role_ids: tuple[int, ...] = ()) -> MentionPolicy:
    """Who a speaker may ping, by Discord's own rule.

    With Mention @everyone, @here and All Roles a member can ping everyone and every role; without it
    only roles marked mentionable. Users can always be pinged.
    """
    if can_mention_everyone:
        return MentionPolicy(everyone=True, roles=True)
    return MentionPolicy(everyone=False, roles=tuple(mentionable_role_ids[:ALLOWED_MENTION_ROLES_MAX]))
