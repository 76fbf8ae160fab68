"""Story operations: each one unit of work, plain ids in, `results` out, every query scoped to a server.

Worlds, stories and relationships are per server: every read and write filters on the ``guild_id`` it is
given, so an id from another server is "not found". A story is found by its channel; asked from a thread,
the ids to look in are the thread's and then its parent's (`guildkeep.db.channels`), so a thread of a
story's channel counts as that channel. Characters are the platform's global characters
(`guildkeep.characters`); the story keeps references to them (its cast).

The narrator path never awaits a model inside a unit of work: `narration_context` reads, the caller asks
the model, then `record_turn` / `record_summary` write conditionally (on the story's version).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, case, delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from guildkeep.characters.errors import CharacterNotFoundError
from guildkeep.characters.results import CharacterInfo
from guildkeep.characters.service import UNSET, CharacterService, character_infos, register_delete_guard
from guildkeep.db import Database, utcnow
from guildkeep.db.channels import Channels, channel_ids, nearest
from guildkeep.errors import DuplicateError
from guildkeep.identity.service import ensure_guild
from guildkeep.results import Page
from guildkeep.story import rules
from guildkeep.story.errors import (
    DuplicateWorldError,
    EventNotFoundError,
    LocationNotFoundError,
    NoStoryError,
    NotStoryManagerError,
    NotWorldManagerError,
    StoryCharacterError,
    StoryInputError,
    StoryRunningError,
    StoryStateError,
    WorldInUseError,
    WorldNotFoundError,
)
from guildkeep.story.models import StoryCast, StoryInstance, StoryRelationship, StoryWorld
from guildkeep.story.results import (
    CastMember,
    LineInfo,
    NarrationContext,
    RelationshipInfo,
    StoryInfo,
    TurnResult,
    WorldInfo,
)

SUGGESTIONS_MAX = 25
EVENT_LOG_KEPT = 100


async def _character_in_running_story(s: AsyncSession, character_id: int) -> str | None:
    """The characters service asks this before deleting a character."""
    running = await s.scalar(
        select(func.count()).select_from(StoryCast)
        .join(StoryInstance, StoryInstance.id == StoryCast.story_id)
        .where(StoryCast.character_id == character_id, StoryInstance.live_channel_id.is_not(None)))
    if running:
        return ("That character is in a running story, so it can't be deleted now. "
                "It can be deleted once the story ends (/story end).")
    return None


register_delete_guard(_character_in_running_story)


@dataclass(frozen=True, slots=True)
class RelationshipChange:
    """What a narrator turn (or a command) does to one relationship."""

    user_id: int
    character_id: int
    change: int = 0
    description: str | None = None


def _world(row: StoryWorld) -> WorldInfo:
    return WorldInfo(id=row.id, guild_id=row.guild_id, name=row.name, description=row.description,
                     locations=rules.load_locations(row.locations), created_by=row.created_by,
                     created_at=row.created_at, updated_at=row.updated_at)


def _cast_member(info: CharacterInfo) -> CastMember:
    return CastMember(character_id=info.id, name=info.display_name, avatar_url=info.display_avatar_url,
                      description=info.description)


class StoryService:
    """Worlds, stories, relationships, and the story module's view of characters."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.characters = CharacterService(db)

    # -- characters (the story's character API, on the platform's characters) ---------------------

    async def save_character(
        self, guild_id: int, user_id: int, *, character_id: int | None = None, name: str | None = None,
        description: str | None = None, avatar_url: str | None = None, public: bool | None = None,
    ) -> CharacterInfo:
        """Create a character (no ``character_id``) or change the given fields of one of the user's own."""
        if character_id is None:
            if name is None:
                raise StoryInputError("A new character needs a name.")
            info = await self.characters.create(user_id, name, avatar_url=avatar_url, description=description,
                                                public=bool(public), guild_id=guild_id)
        else:
            info = await self.characters.edit(
                user_id, character_id, name=name if name is not None else UNSET,
                avatar_url=avatar_url if avatar_url is not None else UNSET,
                description=description if description is not None else UNSET,
                public=public if public is not None else UNSET)
        return await self.characters.get(user_id, info.id, guild_id=guild_id)

    async def get_character(self, guild_id: int, user_id: int, character_id: int) -> CharacterInfo:
        """A character as ``user_id`` may see it on ``guild_id``."""
        return await self.characters.get(user_id, character_id, guild_id=guild_id)

    async def get_characters_by_guild(self, guild_id: int, user_id: int, *, page: int = 1,
                                      per_page: int = 25) -> Page[CharacterInfo]:
        """The characters made on this server that ``user_id`` may see."""
        return await self.characters.list_made_in(guild_id, user_id, page=page, per_page=per_page)

    async def get_selectable_characters(self, guild_id: int, user_id: int, *, page: int = 1,
                                        per_page: int = 25) -> Page[CharacterInfo]:
        """What ``user_id`` may put in a story here.

        That is public characters usable on this server (not hidden here, wherever they were made) plus
        the user's own, private ones included.
        """
        return await self.characters.list_usable(guild_id, user_id, page=page, per_page=per_page)

    async def delete_character(self, guild_id: int, user_id: int, character_id: int) -> CharacterInfo:
        """Delete one of the user's characters; refused, saying why, while a running story uses it."""
        await self.characters.get(user_id, character_id, guild_id=guild_id)
        return await self.characters.delete(user_id, character_id)

    async def suggest_characters(self, guild_id: int, user_id: int, typed: str) -> list[CharacterInfo]:
        """Characters the user may put in a story here whose name contains ``typed`` (autocomplete)."""
        return await self.characters.suggest(user_id, typed, guild_id=guild_id, owned_only=False)

    # -- worlds --------------------------------------------------------------------------------------

    @staticmethod
    async def _world_row(s: AsyncSession, guild_id: int, world_id: int, *, lock: bool = False) -> StoryWorld:
        stmt = select(StoryWorld).where(StoryWorld.id == world_id, StoryWorld.guild_id == guild_id)
        if lock:
            stmt = stmt.with_for_update()
        row = (await s.execute(stmt)).scalar_one_or_none()
        if row is None:
            raise WorldNotFoundError
        return row

    @staticmethod
    def _check_world_manager(row: StoryWorld, user_id: int, can_manage: bool) -> None:
        if row.created_by != user_id and not can_manage:
            raise NotWorldManagerError

    async def create_world(self, guild_id: int, user_id: int, name: str, description: str | None = None,
                           locations: Sequence[rules.WorldLocation] = ()) -> WorldInfo:
        """Create a world on this server; its name must be new there (whatever the letter case)."""
        clean = rules.clean_name(name, "A world's name", rules.WORLD_NAME_MAX)
        text = rules.clean_description(description, "A world's description", rules.WORLD_DESCRIPTION_MAX)
        stored = rules.dump_locations(rules.Locations(items=tuple(locations)).items)
        try:
            async with self.db.session() as s:
                await ensure_guild(s, guild_id)
                row = StoryWorld(guild_id=guild_id, name=clean, name_key=rules.key(clean), description=text,
                                 locations=stored, created_by=user_id)
                s.add(row)
                await s.flush()
                return _world(row)
        except DuplicateError as exc:
            raise DuplicateWorldError(f"This server already has a world called **{clean}**.") from exc

    async def edit_world(self, guild_id: int, world_id: int, user_id: int, *, can_manage: bool = False,
                         name: str | None = None, description: str | None = None) -> WorldInfo:
        """Rename a world or change its description; only its creator, or with ``can_manage``."""
        values: dict[str, Any] = {}
        if name is not None:
            clean = rules.clean_name(name, "A world's name", rules.WORLD_NAME_MAX)
            values.update(name=clean, name_key=rules.key(clean))
        if description is not None:
            values["description"] = rules.clean_description(description, "A world's description",
                                                            rules.WORLD_DESCRIPTION_MAX)
        try:
            async with self.db.session() as s:
                row = await self._world_row(s, guild_id, world_id, lock=True)
                self._check_world_manager(row, user_id, can_manage)
                for k, v in values.items():
                    setattr(row, k, v)
                if values:
                    row.version += 1
                    row.updated_at = utcnow()
                await s.flush()
                return _world(row)
        except DuplicateError as exc:
            raise DuplicateWorldError(f"This server already has a world called **{values['name']}**.") from exc

    async def get_world(self, guild_id: int, world_id: int) -> WorldInfo:
        """A world of this server by id; `WorldNotFoundError` otherwise."""
        async with self.db.session(read_only=True) as s:
            return _world(await self._world_row(s, guild_id, world_id))

    async def find_world(self, guild_id: int, ref: str) -> WorldInfo:
        """A world of this server from what the player gave: an autocomplete id, or its name."""
        text = (ref or "").strip()
        async with self.db.session(read_only=True) as s:
            row = None
            if text.isascii() and text.isdigit() and int(text) < 2**63:
                row = (await s.execute(select(StoryWorld).where(
                    StoryWorld.id == int(text), StoryWorld.guild_id == guild_id))).scalar_one_or_none()
            if row is None and text:
                row = (await s.execute(select(StoryWorld).where(
                    StoryWorld.guild_id == guild_id, StoryWorld.name_key == rules.key(text)[:300]))
                ).scalar_one_or_none()
            if row is None:
                raise WorldNotFoundError
            return _world(row)

    async def get_all_worlds(self, guild_id: int) -> list[WorldInfo]:
        """Every world of this server, by name."""
        async with self.db.session(read_only=True) as s:
            rows = (await s.execute(select(StoryWorld).where(StoryWorld.guild_id == guild_id)
                                    .order_by(StoryWorld.name_key, StoryWorld.id))).scalars().all()
            return [_world(r) for r in rows]

    async def suggest_worlds(self, guild_id: int, typed: str) -> list[WorldInfo]:
        """Worlds of this server whose name contains ``typed``, names starting with it first (autocomplete)."""
        wanted = rules.key(typed or "")[:300]
        stmt = select(StoryWorld).where(StoryWorld.guild_id == guild_id)
        order: list[Any] = [StoryWorld.name_key, StoryWorld.id]
        if wanted:
            stmt = stmt.where(StoryWorld.name_key.contains(wanted, autoescape=True))
            order.insert(0, case((StoryWorld.name_key.startswith(wanted, autoescape=True), 0), else_=1))
        async with self.db.session(read_only=True) as s:
            rows = (await s.execute(stmt.order_by(*order).limit(SUGGESTIONS_MAX))).scalars().all()
            return [_world(r) for r in rows]

    async def delete_world(self, guild_id: int, world_id: int, user_id: int, *, can_manage: bool = False) -> WorldInfo:
        """Delete a world and its ended stories; refused while a story in it still runs."""
        async with self.db.session() as s:
            row = await self._world_row(s, guild_id, world_id, lock=True)
            self._check_world_manager(row, user_id, can_manage)
            running = await s.scalar(select(StoryInstance.channel_id).where(
                StoryInstance.world_id == row.id, StoryInstance.live_channel_id.is_not(None)).limit(1))
            if running is not None:
                raise WorldInUseError(f"A story in <#{running}> is still using **{row.name}**; end it first "
                                      "with /story end.")
            info = _world(row)
            await s.delete(row)
            return info

    async def _change_locations(self, guild_id: int, world_id: int, user_id: int, can_manage: bool,
                                change: Any) -> WorldInfo:
        async with self.db.session() as s:
            row = await self._world_row(s, guild_id, world_id, lock=True)
            self._check_world_manager(row, user_id, can_manage)
            locations = change(rules.load_locations(row.locations))
            row.locations = rules.dump_locations(locations)
            row.version += 1
            row.updated_at = utcnow()
            await s.flush()
            return _world(row)

    @staticmethod
    def _location_index(locations: tuple[rules.WorldLocation, ...], name: str) -> int:
        index = rules.find_location(locations, name)
        if index is None:
            raise LocationNotFoundError
        return index

    async def add_location(self, guild_id: int, world_id: int, user_id: int, name: str,
                           description: str | None = None, *, can_manage: bool = False) -> WorldInfo:
        """Add a location to a world; only its creator, or with ``can_manage``."""
        return await self._change_locations(guild_id, world_id, user_id, can_manage,
                                            lambda locs: rules.add_location(locs, name, description or ""))

    async def remove_location(self, guild_id: int, world_id: int, user_id: int, name: str, *,
                              can_manage: bool = False) -> WorldInfo:
        """Remove a location (and its events) from a world; only its creator, or with ``can_manage``."""
        def change(locs: tuple[rules.WorldLocation, ...]) -> tuple[rules.WorldLocation, ...]:
            return rules.remove_location(locs, self._location_index(locs, name))
        return await self._change_locations(guild_id, world_id, user_id, can_manage, change)

    async def add_event(self, guild_id: int, world_id: int, user_id: int, location: str, name: str, *,
                        description: str | None = None, can_manage: bool = False) -> WorldInfo:
        """Add an event to a location of a world; only its creator, or with ``can_manage``."""
        def change(locs: tuple[rules.WorldLocation, ...]) -> tuple[rules.WorldLocation, ...]:
            index = self._location_index(locs, location)
            updated = rules.add_event(locs[index], name, description or "")
            return tuple(updated if i == index else loc for i, loc in enumerate(locs))
        return await self._change_locations(guild_id, world_id, user_id, can_manage, change)

    async def remove_event(self, guild_id: int, world_id: int, user_id: int, location: str, name: str, *,
                           can_manage: bool = False) -> WorldInfo:
        """Remove an event from a location of a world; only its creator, or with ``can_manage``."""
        def change(locs: tuple[rules.WorldLocation, ...]) -> tuple[rules.WorldLocation, ...]:
            index = self._location_index(locs, location)
            event = rules.find_event(locs[index], name)
            if event is None:
                raise EventNotFoundError
            updated = rules.remove_event(locs[index], event)
            return tuple(updated if i == index else loc for i, loc in enumerate(locs))
        return await self._change_locations(guild_id, world_id, user_id, can_manage, change)

    # -- stories ---------------------------------------------------------------------------------------

    @staticmethod
    async def _story_info(s: AsyncSession, row: StoryInstance) -> StoryInfo:
        world_name = await s.scalar(select(StoryWorld.name).where(StoryWorld.id == row.world_id)) or "?"
        cast_ids = (await s.execute(select(StoryCast.character_id).where(StoryCast.story_id == row.id)
                                    .order_by(StoryCast.position))).scalars().all()
        infos = await character_infos(s, cast_ids, row.guild_id)
        cast = tuple(_cast_member(infos[c]) for c in cast_ids if c in infos)
        return StoryInfo(
            id=row.id, guild_id=row.guild_id, channel_id=row.channel_id, world_id=row.world_id,
            world_name=world_name, started_by=row.started_by, status=row.status,
            state=rules.load_state(row.state), cast=cast, summaries=tuple(row.summaries or ()),
            outlines=tuple(row.outlines or ()), event_log=tuple(row.event_log or ()),
            message_count=row.message_count, since_summary=row.since_summary, summary_every=row.summary_every,
            no_model_notice=row.no_model_notice, version=row.version, created_at=row.created_at,
            updated_at=row.updated_at)

    @staticmethod
    async def _running_row(s: AsyncSession, guild_id: int, channel_id: Channels, *,
                           lock: bool = False) -> StoryInstance:
        stmt = select(StoryInstance).where(StoryInstance.guild_id == guild_id,
                                           StoryInstance.live_channel_id.in_(channel_ids(channel_id)))
        if lock:
            stmt = stmt.with_for_update()
        row = nearest((await s.execute(stmt)).scalars(), lambda r: r.live_channel_id, channel_id)
        if row is None:
            raise NoStoryError
        return row

    @staticmethod
    def _check_story_manager(row: StoryInstance, user_id: int, can_manage: bool) -> None:
        if row.started_by != user_id and not can_manage:
            raise NotStoryManagerError

    async def start_story(self, guild_id: int, channel_id: Channels, user_id: int, world_id: int,
                          character_ids: Iterable[int] = (), *, outline: str | None = None,
                          summary_every: int = rules.SUMMARY_EVERY_DEFAULT) -> StoryInfo:
        """Start a story in a channel (the first of ``channel_id``).

        The database allows one running story per channel: of two starts at once, one wins and the other
        is told a story is already running. A thread (its id first, then its parent's) whose channel has a
        running story belongs to it: refused.
        """
        here, *enclosing = channel_ids(channel_id)
        every = rules.check_summary_every(summary_every)
        ids = list(dict.fromkeys(int(c) for c in character_ids))
        if len(ids) > rules.CAST_MAX:
            raise StoryInputError(f"A story can have at most {rules.CAST_MAX} characters.")
        first_outline = rules.clean_description(outline, "The outline", rules.OUTLINE_MAX) if outline else ""
        for character_id in ids:  # the starter must be allowed to use each of them here
            try:
                info = await self.characters.get(user_id, character_id, guild_id=guild_id)
            except CharacterNotFoundError:
                raise StoryCharacterError("One of those characters doesn't exist or isn't yours to use; pick "
                                          "them from the list as you type.") from None
            if info.hidden:
                raise StoryCharacterError(f"**{info.name}** is hidden on this server.")
        try:
            async with self.db.session() as s:
                if enclosing and await s.scalar(select(StoryInstance.id).where(
                        StoryInstance.guild_id == guild_id, StoryInstance.live_channel_id.in_(enclosing))):
                    raise StoryRunningError("A story is already running in this thread's channel, and its "
                                            "threads belong to it. End it first with /story end.")
                world = await self._world_row(s, guild_id, world_id)
                first_location = rules.load_locations(world.locations)
                state = rules.StoryState(location=first_location[0].name if first_location else None)
                row = StoryInstance(
                    guild_id=guild_id, channel_id=here, live_channel_id=here, world_id=world.id,
                    started_by=user_id, status=rules.STATUS_ACTIVE, state=state.model_dump(mode="json"),
                    summaries=[], outlines=[first_outline] if first_outline else [],
                    event_log=[{"at": utcnow().isoformat(), "what": "started"}], recent=[],
                    summary_every=every)
                s.add(row)
                await s.flush()
                for position, character_id in enumerate(ids):
                    s.add(StoryCast(story_id=row.id, character_id=character_id, guild_id=guild_id,
                                    position=position))
                await s.flush()
                return await self._story_info(s, row)
        except StoryRunningError:
            raise
        except DuplicateError as exc:
            raise StoryRunningError from exc

    async def current_story(self, guild_id: int, channel_id: Channels) -> StoryInfo | None:
        """The channel's running (active or paused) story, or None."""
        async with self.db.session(read_only=True) as s:
            try:
                row = await self._running_row(s, guild_id, channel_id)
            except NoStoryError:
                return None
            return await self._story_info(s, row)

    async def story_status(self, guild_id: int, channel_id: Channels) -> tuple[int, str] | None:
        """The id and status (``active`` or ``paused``) of the channel's running story, or None.

        One cheap read, made for every message the narrator sees.
        """
        async with self.db.session(read_only=True) as s:
            rows = (await s.execute(select(StoryInstance.id, StoryInstance.status, StoryInstance.live_channel_id)
                                    .where(StoryInstance.guild_id == guild_id,
                                           StoryInstance.live_channel_id.in_(channel_ids(channel_id))))).all()
            found = nearest(rows, lambda r: r.live_channel_id, channel_id)
            return (found.id, found.status) if found is not None else None

    async def get_story_instance(self, guild_id: int, channel_id: Channels) -> StoryInfo:
        """The running (active or paused) story of this channel."""
        async with self.db.session(read_only=True) as s:
            return await self._story_info(s, await self._running_row(s, guild_id, channel_id))

    async def get_story(self, guild_id: int, story_id: int) -> StoryInfo:
        """Any story of this server by id (ended ones too)."""
        async with self.db.session(read_only=True) as s:
            row = (await s.execute(select(StoryInstance).where(
                StoryInstance.id == story_id, StoryInstance.guild_id == guild_id))).scalar_one_or_none()
            if row is None:
                raise NoStoryError("There is no such story on this server.")
            return await self._story_info(s, row)

    async def _set_status(self, guild_id: int, channel_id: Channels, user_id: int, can_manage: bool,
                          status: str) -> StoryInfo:
        async with self.db.session() as s:
            row = await self._running_row(s, guild_id, channel_id, lock=True)
            self._check_story_manager(row, user_id, can_manage)
            if row.status == status:
                raise StoryStateError(f"The story is already {status}.")
            row.status = status
            if status == rules.STATUS_ENDED:
                row.live_channel_id = None
                row.recent = []  # what players wrote is not kept once the story ends
            row.event_log = rules.keep_last([*(row.event_log or []), {"at": utcnow().isoformat(), "what": status}],
                                            EVENT_LOG_KEPT)
            row.version += 1
            row.updated_at = utcnow()
            await s.flush()
            return await self._story_info(s, row)

    async def pause_story(self, guild_id: int, channel_id: Channels, user_id: int, *,
                          can_manage: bool = False) -> StoryInfo:
        """Pause the channel's story; only whoever started it, or with ``can_manage``."""
        return await self._set_status(guild_id, channel_id, user_id, can_manage, rules.STATUS_PAUSED)

    async def resume_story(self, guild_id: int, channel_id: Channels, user_id: int, *,
                           can_manage: bool = False) -> StoryInfo:
        """Resume the channel's paused story; only whoever started it, or with ``can_manage``."""
        return await self._set_status(guild_id, channel_id, user_id, can_manage, rules.STATUS_ACTIVE)

    async def end_story(self, guild_id: int, channel_id: Channels, user_id: int, *,
                        can_manage: bool = False) -> StoryInfo:
        """End the channel's story (what players wrote is not kept); only whoever started it, or with ``can_manage``."""
        return await self._set_status(guild_id, channel_id, user_id, can_manage, rules.STATUS_ENDED)

    async def add_outline(self, guild_id: int, channel_id: Channels, user_id: int, text: str, *,
                          can_manage: bool = False) -> StoryInfo:
        """Add an outline the narrator follows to the channel's story; only its starter, or with ``can_manage``."""
        clean = rules.clean_description(text, "The outline", rules.OUTLINE_MAX)
        if not clean:
            raise StoryInputError("The outline is empty.")
        async with self.db.session() as s:
            row = await self._running_row(s, guild_id, channel_id, lock=True)
            self._check_story_manager(row, user_id, can_manage)
            if len(row.outlines or []) >= rules.OUTLINES_MAX:
                raise StoryInputError(f"A story can have at most {rules.OUTLINES_MAX} outlines.")
            row.outlines = [*(row.outlines or []), clean]
            row.version += 1
            await s.flush()
            return await self._story_info(s, row)

    async def set_summary_every(self, guild_id: int, channel_id: Channels, user_id: int, every: int, *,
                                can_manage: bool = False) -> StoryInfo:
        """Set how many messages pass between the channel's story summaries; only its starter, or ``can_manage``."""
        value = rules.check_summary_every(every)
        async with self.db.session() as s:
            row = await self._running_row(s, guild_id, channel_id, lock=True)
            self._check_story_manager(row, user_id, can_manage)
            row.summary_every = value
            await s.flush()
            return await self._story_info(s, row)

    # -- relationships -------------------------------------------------------------------------------

    @staticmethod
    async def _relationships(s: AsyncSession, guild_id: int, story_id: int,
                             user_id: int | None = None) -> list[RelationshipInfo]:
        stmt = select(StoryRelationship).where(StoryRelationship.guild_id == guild_id,
                                               StoryRelationship.story_id == story_id)
        if user_id is not None:
            stmt = stmt.where(StoryRelationship.user_id == user_id)
        rows = (await s.execute(stmt.order_by(StoryRelationship.user_id, StoryRelationship.character_id))
                ).scalars().all()
        names = await character_infos(s, [r.character_id for r in rows], guild_id)
        return [RelationshipInfo(story_id=r.story_id, user_id=r.user_id, character_id=r.character_id,
                                 character_name=names[r.character_id].display_name,
                                 description=r.description, score=r.score, updated_at=r.updated_at)
                for r in rows if r.character_id in names]  # a deleted character's relationships are left out

    async def get_relationships_for_story(self, guild_id: int, story_id: int,
                                          user_id: int | None = None) -> list[RelationshipInfo]:
        """The relationships of any story of this server (one player's, or everyone's)."""
        async with self.db.session(read_only=True) as s:
            return await self._relationships(s, guild_id, story_id, user_id)

    async def get_relationships(self, guild_id: int, channel_id: Channels, user_id: int | None = None
                                ) -> list[RelationshipInfo]:
        """The relationships of the channel's running story (one player's, or everyone's)."""
        async with self.db.session(read_only=True) as s:
            row = await self._running_row(s, guild_id, channel_id)
            return await self._relationships(s, guild_id, row.id, user_id)

    @staticmethod
    async def _apply_relationship(s: AsyncSession, row: StoryInstance, change: RelationshipChange, *,
                                  absolute: int | None = None) -> None:
        cast = await s.scalar(select(StoryCast.character_id).where(
            StoryCast.story_id == row.id, StoryCast.character_id == change.character_id))
        if cast is None:
            raise StoryCharacterError("That character is not in this story.")
        rel = (await s.execute(select(StoryRelationship).where(
            StoryRelationship.story_id == row.id, StoryRelationship.user_id == change.user_id,
            StoryRelationship.character_id == change.character_id).with_for_update())).scalar_one_or_none()
        if rel is None:
            rel = StoryRelationship(guild_id=row.guild_id, story_id=row.id, user_id=change.user_id,
                                    character_id=change.character_id, description="", score=0)
            s.add(rel)
        rel.score = absolute if absolute is not None else rules.step(rel.score or 0, change.change)
        if change.description is not None:
            rel.description = change.description
        rel.updated_at = utcnow()
        await s.flush()

    async def set_relationship(self, guild_id: int, channel_id: Channels, user_id: int, player_id: int,
                               character_id: int, *, score: int | None = None, description: str | None = None,
                               can_manage: bool = False) -> RelationshipInfo:
        """Set a player's relationship with a character of the channel's story (its starter or a manager)."""
        value = rules.check_score(score) if score is not None else None
        text = (rules.clean_description(description, "The relationship's description",
                                        rules.RELATIONSHIP_TEXT_MAX) if description is not None else None)
        if value is None and text is None:
            raise StoryInputError("Give a score, a description, or both.")
        async with self.db.session() as s:
            row = await self._running_row(s, guild_id, channel_id, lock=True)
            self._check_story_manager(row, user_id, can_manage)
            await self._apply_relationship(s, row, RelationshipChange(player_id, character_id, 0, text),
                                           absolute=value)
            [info] = [r for r in await self._relationships(s, guild_id, row.id, player_id)
                      if r.character_id == character_id]
            return info

    # -- the narrator's turn ---------------------------------------------------------------------------

    async def narration_context(self, guild_id: int, channel_id: Channels, user_id: int | None = None
                                ) -> NarrationContext | None:
        """What a narrator prompt needs for this channel, or None when no story runs here."""
        async with self.db.session(read_only=True) as s:
            try:
                row = await self._running_row(s, guild_id, channel_id)
            except NoStoryError:
                return None
            story = await self._story_info(s, row)
            world = _world(await self._world_row(s, guild_id, row.world_id))
            recent = tuple(LineInfo(str(x.get("speaker", "")), str(x.get("text", ""))) for x in row.recent or [])
            relationships = tuple(await self._relationships(s, guild_id, row.id, user_id))
            return NarrationContext(story=story, world=world, recent=recent, relationships=relationships)

    async def claim_no_model_notice(self, guild_id: int, story_id: int) -> bool:
        """True exactly once per story: the caller then says that no language model is set."""
        async with self.db.session() as s:
            result = await s.execute(update(StoryInstance).where(
                StoryInstance.id == story_id, StoryInstance.guild_id == guild_id,
                StoryInstance.no_model_notice.is_(False)).values(no_model_notice=True))
            return bool(getattr(result, "rowcount", 0))

    async def record_turn(self, guild_id: int, story_id: int, version: int, lines: Sequence[LineInfo], *,
                          state: rules.StoryState | None = None,
                          relationships: Sequence[RelationshipChange] = (),
                          event: str | None = None) -> TurnResult:
        """Write what a narrator turn did, if the story has not changed since ``version`` was read.

        Else `StoryStateError` is raised and nothing is written. Counts the player's message towards the
        next summary.
        """
        async with self.db.session() as s:
            row = (await s.execute(select(StoryInstance).where(
                StoryInstance.id == story_id, StoryInstance.guild_id == guild_id).with_for_update())
            ).scalar_one_or_none()
            if row is None or row.version != version or row.status != rules.STATUS_ACTIVE:
                raise StoryStateError("The story changed while the narrator was thinking (paused, ended or edited); "
                                      "nothing was changed.")
            cast = set((await s.execute(select(StoryCast.character_id).where(StoryCast.story_id == row.id))
                        ).scalars().all())
            changed: list[RelationshipChange] = []
            for change in relationships:
                if change.character_id in cast:
                    await self._apply_relationship(s, row, change)
                    changed.append(change)
            if state is not None:
                row.state = state.model_dump(mode="json")
            new_lines = [{"speaker": rules.clip(x.speaker, 100), "text": rules.clip(x.text, rules.LINE_MAX)}
                         for x in lines]
            row.recent = rules.keep_last([*(row.recent or []), *new_lines], rules.RECENT_KEPT)
            if event:
                row.event_log = rules.keep_last(
                    [*(row.event_log or []), {"at": utcnow().isoformat(), "what": rules.clip(event, 300)}],
                    EVENT_LOG_KEPT)
            row.message_count += 1
            row.since_summary += 1
            row.version += 1
            row.updated_at = utcnow()
            await s.flush()
            story = await self._story_info(s, row)
            rels = await self._relationships(s, guild_id, row.id)
            touched = {(c.user_id, c.character_id) for c in changed}
            return TurnResult(story=story,
                              relationships_changed=tuple(r for r in rels if (r.user_id, r.character_id) in touched),
                              summary_due=row.since_summary >= row.summary_every)

    async def record_summary(self, guild_id: int, story_id: int, summary: str, covered: int) -> StoryInfo:
        """Append a summary of the last ``covered`` messages (older summaries beyond the kept number go)."""
        text = rules.clip(summary, rules.SUMMARY_MAX)
        if not text:
            raise StoryInputError("The summary is empty.")
        async with self.db.session() as s:
            row = (await s.execute(select(StoryInstance).where(
                StoryInstance.id == story_id, StoryInstance.guild_id == guild_id).with_for_update())
            ).scalar_one_or_none()
            if row is None:
                raise NoStoryError
            row.summaries = rules.keep_last([*(row.summaries or []), text], rules.SUMMARIES_KEPT)
            row.since_summary = max(0, row.since_summary - covered)
            await s.flush()
            return await self._story_info(s, row)

    # -- privacy ---------------------------------------------------------------------------------------

    async def forget_guild(self, guild_id: int) -> int:
        """Delete every world, story and relationship of a server; returns how many worlds there were."""
        async with self.db.session() as s:
            stories = select(StoryInstance.id).where(StoryInstance.guild_id == guild_id)
            await s.execute(delete(StoryRelationship).where(StoryRelationship.guild_id == guild_id))
            await s.execute(delete(StoryCast).where(and_(StoryCast.story_id.in_(stories))))
            await s.execute(delete(StoryInstance).where(StoryInstance.guild_id == guild_id))
            result = await s.execute(delete(StoryWorld).where(StoryWorld.guild_id == guild_id))
            return int(getattr(result, "rowcount", 0) or 0)
