"""Characters and speech: every operation is one unit of work, takes plain ids and returns `results`.

Visibility: a character's owner sees it everywhere; anyone else sees it only when it is public and
not hidden on the server they ask from; a private character is "not found" for everyone else (its
existence is not revealed). A server's override is read and written only for that server.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable, Iterable
from datetime import datetime
from enum import Enum
from typing import Any, Final

from sqlalchemy import Select, and_, case, delete, false, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from guildkeep.characters import rules
from guildkeep.characters.errors import (
    CharacterHiddenError,
    CharacterInUseError,
    CharacterNotFoundError,
    DuplicateCharacterError,
    NotCharacterOwnerError,
    NotSpeakerError,
    SpeechNotFoundError,
    TooManyCharactersError,
)
from guildkeep.characters.models import Character, CharacterGuildOverride, CharacterSpeech
from guildkeep.characters.privacy import PROVIDER
from guildkeep.characters.results import CharacterInfo, OverrideInfo, SpeechInfo
from guildkeep.db import Database, utcnow
from guildkeep.db.channels import Channels
from guildkeep.db.dialect import insert_for
from guildkeep.errors import DuplicateError, PermissionDeniedError
from guildkeep.identity.service import ensure_guild, ensure_user
from guildkeep.results import Page
from guildkeep.text import parse_id

MAX_CHARACTERS_PER_OWNER = 300
SUGGESTIONS_MAX = 25  # Discord's limit for autocomplete choices

# Other modules may refuse a character's deletion while they use it (a running story, say): each guard gets
# the deleting unit of work and the character's id and returns the reason to refuse, or None.
DeleteGuard = Callable[[AsyncSession, int], Awaitable[str | None]]
_DELETE_GUARDS: list[DeleteGuard] = []


def register_delete_guard(guard: DeleteGuard) -> None:
    """Have ``guard`` consulted (inside the same transaction) before any character is deleted."""
    if guard not in _DELETE_GUARDS:
        _DELETE_GUARDS.append(guard)


# Other modules may refuse speaking as a character in some channels (a campaign's channel is for its players):
# each guard gets a read-only unit of work, the server, the channel and the speaker, and returns the reason
# to refuse, or None.
SpeakGuard = Callable[[AsyncSession, int, Channels, int], Awaitable[str | None]]
"""``(session, guild_id, channels, speaker_id)``: a reason to refuse, or None; ``channels`` is the channel, then
its parent channel when it is a thread (`guildkeep.db.channels`)."""
_SPEAK_GUARDS: list[SpeakGuard] = []


def register_speak_guard(guard: SpeakGuard) -> None:
    """Have ``guard`` consulted before anyone speaks as a character in a channel."""
    if guard not in _SPEAK_GUARDS:
        _SPEAK_GUARDS.append(guard)


class _Unset(Enum):
    UNSET = "unset"


UNSET: Final = _Unset.UNSET


def _override_info(row: CharacterGuildOverride | None) -> OverrideInfo | None:
    if row is None:
        return None
    return OverrideInfo(row.guild_id, row.nickname, row.avatar_url, row.hidden)


def _info(row: Character, override: CharacterGuildOverride | None = None) -> CharacterInfo:
    return CharacterInfo(
        id=row.id,
        owner_id=row.owner_id,
        name=row.name,
        avatar_url=row.avatar_url,
        description=row.description,
        is_public=row.is_public,
        created_at=row.created_at,
        updated_at=row.updated_at,
        override=_override_info(override),
    )


def _speech(row: CharacterSpeech) -> SpeechInfo:
    return SpeechInfo(
        message_id=row.message_id,
        guild_id=row.guild_id,
        channel_id=row.channel_id,
        webhook_id=row.webhook_id,
        speaker_id=row.speaker_id,
        character_id=row.character_id,
        character_name=row.character_name,
        created_at=row.created_at,
    )


def _with_overrides(guild_id: int | None) -> Select[Character, CharacterGuildOverride | None]:
    """Characters with the override of ``guild_id`` (none at all when no server is given)."""
    on = and_(CharacterGuildOverride.character_id == Character.id,
              CharacterGuildOverride.guild_id == guild_id if guild_id is not None else false())
    return select(Character, CharacterGuildOverride).outerjoin(CharacterGuildOverride, on)


def _not_hidden() -> Any:
    return or_(CharacterGuildOverride.hidden.is_(None), CharacterGuildOverride.hidden.is_(False))


def _pages(total: int, per_page: int) -> int:
    return max(1, math.ceil(total / per_page))


async def character_infos(
    session: AsyncSession, character_ids: Iterable[int], guild_id: int | None
) -> dict[int, CharacterInfo]:
    """The characters with these ids (as ``guild_id`` shows them), read in the caller's unit of work.

    For modules that hold references to characters (a story's cast) and already decided who may use
    them: no visibility check. Ids that no longer exist are left out.
    """
    ids = sorted(set(character_ids))
    if not ids:
        return {}
    rows = (await session.execute(_with_overrides(guild_id).where(Character.id.in_(ids)))).all()
    return {c.id: _info(c, o) for c, o in rows}


async def add_character(
    session: AsyncSession, owner_id: int, name: str, *, avatar_url: str | None = None,
    description: str | None = None, public: bool = False, guild_id: int | None = None,
    max_per_owner: int = MAX_CHARACTERS_PER_OWNER,
) -> CharacterInfo:
    """Create a character inside the caller's unit of work.

    For modules that bind it to something in the same transaction. Same rules as `CharacterService.create`;
    a taken name surfaces as `DuplicateError` when the unit of work flushes or ends.
    """
    clean = rules.clean_name(name)
    avatar = rules.clean_avatar_url(avatar_url)
    text = rules.clean_description(description)
    await ensure_user(session, owner_id)
    count = await session.scalar(select(func.count()).select_from(Character).where(Character.owner_id == owner_id))
    if (count or 0) >= max_per_owner:
        raise TooManyCharactersError(
            f"You already have {max_per_owner} characters, the most one person can have. Delete one to make room.")
    row = Character(owner_id=owner_id, name=clean, name_key=rules.name_key(clean), avatar_url=avatar,
                    description=text, is_public=public, origin_guild_id=guild_id)
    session.add(row)
    await session.flush()
    return _info(row)


class CharacterService:
    """Characters, their per-server overrides and the speech log."""

    def __init__(self, db: Database, *, max_per_owner: int = MAX_CHARACTERS_PER_OWNER) -> None:
        self.db = db
        self.max_per_owner = max_per_owner

    # -- reading helpers (inside a unit of work) ------------------------------------------------

    @staticmethod
    async def _with_override(
        s: AsyncSession, character_id: int, guild_id: int | None
    ) -> tuple[Character, CharacterGuildOverride | None] | None:
        if guild_id is None:
            row = await s.get(Character, character_id)
            return None if row is None else (row, None)
        found = (await s.execute(_with_overrides(guild_id).where(Character.id == character_id))).first()
        return None if found is None else (found[0], found[1])

    @staticmethod
    def _visible(row: Character, override: CharacterGuildOverride | None, viewer_id: int) -> bool:
        if row.owner_id == viewer_id:
            return True
        return row.is_public and not (override is not None and override.hidden)

    async def _owned(self, s: AsyncSession, owner_id: int, character_id: int, *, lock: bool = False) -> Character:
        stmt = select(Character).where(Character.id == character_id)
        if lock:
            stmt = stmt.with_for_update()
        row = (await s.execute(stmt)).scalar_one_or_none()
        if row is None or (row.owner_id != owner_id and not row.is_public):
            raise CharacterNotFoundError
        if row.owner_id != owner_id:
            raise NotCharacterOwnerError
        return row

    # -- characters ----------------------------------------------------------------------------

    async def create(
        self,
        owner_id: int,
        name: str,
        *,
        avatar_url: str | None = None,
        description: str | None = None,
        public: bool = False,
        guild_id: int | None = None,
    ) -> CharacterInfo:
        """Create a character owned by ``owner_id``.

        Its name must be new among the owner's characters (whatever the letter case) and follow Discord's
        name rules.
        """
        try:
            async with self.db.session() as s:
                return await add_character(s, owner_id, name, avatar_url=avatar_url, description=description,
                                           public=public, guild_id=guild_id, max_per_owner=self.max_per_owner)
        except DuplicateError as exc:
            raise DuplicateCharacterError(
                f"You already have a character called **{rules.clean_name(name)}**.") from exc

    async def edit(
        self,
        owner_id: int,
        character_id: int,
        *,
        name: str | _Unset = UNSET,
        avatar_url: str | _Unset | None = UNSET,
        description: str | _Unset | None = UNSET,
        public: bool | _Unset = UNSET,
    ) -> CharacterInfo:
        """Change what is given; only the owner may. Nothing changes when any value is refused."""
        values: dict[str, Any] = {}
        if name is not UNSET:
            clean = rules.clean_name(name)
            values.update(name=clean, name_key=rules.name_key(clean))
        if avatar_url is not UNSET:
            values["avatar_url"] = rules.clean_avatar_url(avatar_url)
        if description is not UNSET:
            values["description"] = rules.clean_description(description)
        if public is not UNSET:
            values["is_public"] = bool(public)
        try:
            async with self.db.session() as s:
                row = await self._owned(s, owner_id, character_id, lock=True)
                for key, value in values.items():
                    setattr(row, key, value)
                if values:
                    row.updated_at = utcnow()
                await s.flush()
                return _info(row)
        except DuplicateError as exc:
            raise DuplicateCharacterError(f"You already have a character called **{values['name']}**.") from exc

    async def delete(self, owner_id: int, character_id: int) -> CharacterInfo:
        """Delete a character and its server overrides.

        Its speech log stays (who wrote a message does not change), keeping the name the messages were
        posted under.
        """
        async with self.db.session() as s:
            row = await self._owned(s, owner_id, character_id, lock=True)
            info = _info(row)
            for guard in _DELETE_GUARDS:
                reason = await guard(s, row.id)
                if reason is not None:
                    raise CharacterInUseError(reason)
            await s.execute(delete(CharacterGuildOverride).where(CharacterGuildOverride.character_id == row.id))
            await s.delete(row)
            return info

    async def get(self, viewer_id: int, character_id: int, *, guild_id: int | None = None) -> CharacterInfo:
        """A character as ``viewer_id`` may see it from ``guild_id`` (with that server's override)."""
        async with self.db.session(read_only=True) as s:
            found = await self._with_override(s, character_id, guild_id)
            if found is None or not self._visible(found[0], found[1], viewer_id):
                raise CharacterNotFoundError
            return _info(*found)

    async def resolve(
        self, viewer_id: int, ref: str, *, guild_id: int | None = None, owned_only: bool = False
    ) -> CharacterInfo:
        """A character from what the player gave.

        That is the id an autocomplete choice carries, or a name (the viewer's own characters first, then
        public ones).
        """
        text = ref.strip()
        if not text:
            raise CharacterNotFoundError("Name a character (pick one from the list as you type).")
        if (character_id := parse_id(text)) is not None:
            try:
                info = await self.get(viewer_id, character_id, guild_id=guild_id)
            except CharacterNotFoundError:
                pass
            else:
                if owned_only and info.owner_id != viewer_id:
                    raise NotCharacterOwnerError
                return info
        key = rules.name_key(" ".join(text.split()))
        async with self.db.session(read_only=True) as s:
            stmt = select(Character.id).where(Character.name_key == key)
            own = await s.scalar(stmt.where(Character.owner_id == viewer_id))
            if own is not None:
                character_id = own
            elif owned_only:
                raise CharacterNotFoundError(f"You have no character called **{text[:80]}**. See /persona list.")
            else:
                found = (await s.execute(stmt.where(Character.is_public.is_(True)).limit(2))).scalars().all()
                if not found:
                    raise CharacterNotFoundError(f"There is no character called **{text[:80]}** that you can see.")
                if len(found) > 1:
                    raise CharacterNotFoundError(
                        f"Several people have a public character called **{text[:80]}**; pick one from the list."
                    )
                character_id = found[0]
        return await self.get(viewer_id, character_id, guild_id=guild_id)

    async def list_owned(
        self, owner_id: int, *, guild_id: int | None = None, page: int = 1, per_page: int = 10
    ) -> Page[CharacterInfo]:
        """The owner's characters, by name, with the requesting server's overrides."""
        return await self._list(Character.owner_id == owner_id, guild_id, page, per_page, include_hidden=True)

    async def list_public(
        self, owner_id: int, *, guild_id: int | None = None, page: int = 1, per_page: int = 10
    ) -> Page[CharacterInfo]:
        """Another person's public characters, without those hidden on the requesting server."""
        where = and_(Character.owner_id == owner_id, Character.is_public.is_(True))
        return await self._list(where, guild_id, page, per_page, include_hidden=False)

    async def list_usable(
        self, guild_id: int, user_id: int, *, page: int = 1, per_page: int = 25
    ) -> Page[CharacterInfo]:
        """The characters ``user_id`` may use on ``guild_id``, with that server's overrides.

        These are their own (private or public) and everyone's public ones that are not hidden there.
        """
        where = or_(Character.owner_id == user_id, and_(Character.is_public.is_(True), _not_hidden()))
        return await self._list(where, guild_id, page, per_page, include_hidden=True)

    async def list_made_in(
        self, guild_id: int, viewer_id: int, *, page: int = 1, per_page: int = 25
    ) -> Page[CharacterInfo]:
        """The characters made on ``guild_id`` that ``viewer_id`` may see there.

        These are theirs, and public ones not hidden there.
        """
        where = and_(Character.origin_guild_id == guild_id,
                     or_(Character.owner_id == viewer_id, and_(Character.is_public.is_(True), _not_hidden())))
        return await self._list(where, guild_id, page, per_page, include_hidden=True)

    async def _list(
        self, where: Any, guild_id: int | None, page: int, per_page: int, *, include_hidden: bool
    ) -> Page[CharacterInfo]:
        per_page = max(1, min(per_page, 25))
        page = max(1, page)
        joined = _with_overrides(guild_id).where(where)
        if not include_hidden:
            joined = joined.where(_not_hidden())
        async with self.db.session(read_only=True) as s:
            total = await s.scalar(select(func.count()).select_from(joined.subquery())) or 0
            pages = _pages(total, per_page)
            page = min(page, pages)
            rows = (
                await s.execute(joined.order_by(Character.name_key, Character.id)
                                .offset((page - 1) * per_page).limit(per_page))
            ).all()
            return Page([_info(c, o) for c, o in rows], page, pages, total)

    async def suggest(
        self, viewer_id: int, typed: str, *, guild_id: int | None = None, owned_only: bool = True,
        speakable: bool = False, limit: int = SUGGESTIONS_MAX,
    ) -> list[CharacterInfo]:
        """Characters whose name contains what the player typed, at most 25.

        Their own come first, then (unless ``owned_only``) public ones; names that start with it come
        first.
        """
        limit = max(1, min(limit, SUGGESTIONS_MAX))
        key = rules.name_key(" ".join(typed.split()))
        mine = Character.owner_id == viewer_id
        visible = mine if owned_only else or_(mine, Character.is_public.is_(True))
        stmt = _with_overrides(guild_id).where(visible)
        not_hidden = _not_hidden()
        stmt = stmt.where(not_hidden if speakable else or_(mine, not_hidden))
        if key:
            stmt = stmt.where(Character.name_key.contains(key, autoescape=True))
        order = [
            case((mine, 0), else_=1),
            case((Character.name_key.startswith(key, autoescape=True), 0), else_=1) if key else Character.id,
            Character.name_key,
            Character.id,
        ]
        async with self.db.session(read_only=True) as s:
            rows = (await s.execute(stmt.order_by(*order).limit(limit))).all()
            return [_info(c, o) for c, o in rows]

    # -- per-server overrides ------------------------------------------------------------------

    async def set_override(
        self,
        owner_id: int,
        character_id: int,
        guild_id: int,
        *,
        nickname: str | _Unset | None = UNSET,
        avatar_url: str | _Unset | None = UNSET,
        hidden: bool | _Unset = UNSET,
    ) -> CharacterInfo:
        """This server's name, avatar or hidden flag for the owner's character (None clears a value)."""
        values: dict[str, Any] = {}
        if nickname is not UNSET:
            values["nickname"] = None if nickname is None or not nickname.strip() else rules.clean_name(
                nickname, what="A server nickname")
        if avatar_url is not UNSET:
            values["avatar_url"] = rules.clean_avatar_url(avatar_url)
        if hidden is not UNSET:
            values["hidden"] = bool(hidden)
        async with self.db.session() as s:
            row = await self._owned(s, owner_id, character_id, lock=True)
            await ensure_guild(s, guild_id)
            now = utcnow()
            ins = insert_for(s, CharacterGuildOverride).values(
                character_id=row.id, guild_id=guild_id, nickname=values.get("nickname"),
                avatar_url=values.get("avatar_url"), hidden=values.get("hidden", False),
                created_at=now, updated_at=now,
            )
            if values:
                ins = ins.on_conflict_do_update(index_elements=["character_id", "guild_id"],
                                                set_={**values, "updated_at": now})
            else:
                ins = ins.on_conflict_do_nothing(index_elements=["character_id", "guild_id"])
            await s.execute(ins)
            found = await self._with_override(s, row.id, guild_id)
            assert found is not None
            return _info(*found)

    async def clear_override(self, owner_id: int, character_id: int, guild_id: int) -> CharacterInfo:
        """Forget this server's override: the character speaks under its own name and avatar again."""
        async with self.db.session() as s:
            row = await self._owned(s, owner_id, character_id, lock=True)
            await s.execute(delete(CharacterGuildOverride).where(
                CharacterGuildOverride.character_id == row.id, CharacterGuildOverride.guild_id == guild_id))
            return _info(row)

    # -- speech --------------------------------------------------------------------------------

    async def speaker_identity(self, speaker_id: int, ref: str, guild_id: int) -> CharacterInfo:
        """The character ``speaker_id`` wants to speak as on ``guild_id``: their own and not hidden there.

        Its ``display_name``/``display_avatar_url`` are what the webhook posts under.
        """
        info = await self.resolve(speaker_id, ref, guild_id=guild_id, owned_only=True)
        if info.hidden:
            raise CharacterHiddenError(
                f"**{info.name}** is hidden on this server. Use `/persona server hidden:False` to show it here."
            )
        return info

    async def check_speak(self, guild_id: int, channel_id: Channels, speaker_id: int) -> None:
        """Refuse when a module keeps ``speaker_id`` from speaking as a character in ``channel_id``.

        In a thread, ``channel_id`` is the thread's id and then its parent channel's: the guards see both.

        Raises `PermissionDeniedError` with the reason.
        """
        if not _SPEAK_GUARDS:
            return
        async with self.db.session(read_only=True) as s:
            for guard in _SPEAK_GUARDS:
                reason = await guard(s, guild_id, channel_id, speaker_id)
                if reason is not None:
                    raise PermissionDeniedError(reason)

    async def record_speech(
        self,
        *,
        message_id: int,
        guild_id: int,
        channel_id: int,
        webhook_id: int,
        speaker_id: int,
        character_id: int | None,
        character_name: str,
        created_at: datetime | None = None,
    ) -> SpeechInfo:
        """Log a message posted as a character (ids only). Recording the same message twice keeps one row."""
        async with self.db.session() as s:
            await ensure_guild(s, guild_id)
            await ensure_user(s, speaker_id)
            values = {"message_id": message_id, "guild_id": guild_id, "channel_id": channel_id,
                      "webhook_id": webhook_id, "speaker_id": speaker_id, "character_id": character_id,
                      "character_name": character_name[: rules.NAME_MAX], "created_at": created_at or utcnow()}
            await s.execute(insert_for(s, CharacterSpeech).values(**values)
                            .on_conflict_do_nothing(index_elements=["message_id"]))
            logged = select(CharacterSpeech).where(CharacterSpeech.message_id == message_id)
            row = (await s.execute(logged)).scalar_one()
            return _speech(row)

    async def speech(self, guild_id: int, message_id: int) -> SpeechInfo:
        """Who posted message ``message_id`` as a character, asked from ``guild_id``."""
        async with self.db.session(read_only=True) as s:
            row = (
                await s.execute(select(CharacterSpeech).where(
                    CharacterSpeech.message_id == message_id, CharacterSpeech.guild_id == guild_id))
            ).scalar_one_or_none()
            if row is None:
                raise SpeechNotFoundError
            return _speech(row)

    async def own_speech(self, guild_id: int, message_id: int, user_id: int) -> SpeechInfo:
        """The message, when ``user_id`` posted it (to edit or delete it); refused for anyone else."""
        info = await self.speech(guild_id, message_id)
        if info.speaker_id != user_id:
            raise NotSpeakerError
        return info

    async def last_speech(self, guild_id: int, channel_id: int, speaker_id: int) -> SpeechInfo:
        """The speaker's latest message as a character in this channel (or thread)."""
        async with self.db.session(read_only=True) as s:
            row = (
                await s.execute(
                    select(CharacterSpeech)
                    .where(CharacterSpeech.guild_id == guild_id, CharacterSpeech.speaker_id == speaker_id,
                           CharacterSpeech.channel_id == channel_id)
                    .order_by(CharacterSpeech.created_at.desc(), CharacterSpeech.message_id.desc())
                    .limit(1)
                )
            ).scalar_one_or_none()
            if row is None:
                raise SpeechNotFoundError("You have not posted as a character in this channel yet.")
            return _speech(row)

    async def speaker_of(self, guild_id: int, message_id: int) -> int | None:
        """The member who really wrote a character message (for leveling, moderation), or None."""
        async with self.db.session(read_only=True) as s:
            return await s.scalar(select(CharacterSpeech.speaker_id).where(
                CharacterSpeech.message_id == message_id, CharacterSpeech.guild_id == guild_id))

    async def forget_speech(self, guild_id: int, message_ids: Iterable[int]) -> int:
        """Drop the log rows of deleted messages; returns how many there were."""
        ids = sorted(set(message_ids))
        if not ids:
            return 0
        async with self.db.session() as s:
            result = await s.execute(delete(CharacterSpeech).where(
                CharacterSpeech.guild_id == guild_id, CharacterSpeech.message_id.in_(ids)))
            return int(getattr(result, "rowcount", 0) or 0)

    # -- privacy -------------------------------------------------------------------------------

    async def export_user(self, user_id: int) -> dict[str, Any]:
        """Everything stored about ``user_id``, JSON-ready: the privacy export's own characters section.

        Their characters (with each server's override) and the log of messages they posted as characters
        (ids, never text).
        """
        async with self.db.session(read_only=True) as s:
            return await PROVIDER.export_user(s, user_id)

    async def forget_user(self, user_id: int) -> dict[str, int]:
        """Delete ``user_id``'s characters, server overrides and speech log, as the privacy forget does.

        The messages themselves stay on Discord. Returns the rows removed per table (tables with none left out).
        """
        async with self.db.session() as s:
            return (await PROVIDER.forget_user(s, user_id)).deleted
