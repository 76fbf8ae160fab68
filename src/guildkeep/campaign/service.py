"""Campaigns: every operation is one unit of work, takes plain ids and returns `results`.

A campaign is found by its server and channel, so a server never reaches another's campaigns; asked from a
thread, the channel ids to look in are the thread's and then its parent's (`guildkeep.db.channels`), so a
thread of a campaign's channel counts as that channel. Changes
that race (two joins, two characters for one player, a GM transfer) are settled by the database: a
primary key, a unique constraint or a conditional update, never a read followed by a blind write.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any, Final

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from guildkeep.campaign import rules
from guildkeep.campaign.errors import (
    AlreadyHasCharacterError,
    AlreadyPlayerError,
    CampaignArchivedError,
    CampaignChangedError,
    CampaignExistsError,
    CampaignInputError,
    DuplicateNpcError,
    GmCannotJoinError,
    NoCampaignError,
    NoCharacterError,
    NotGmError,
    NotPlayerError,
    NpcNotFoundError,
    SpeechNotInCampaignError,
)
from guildkeep.campaign.models import Campaign, CampaignCharacter, CampaignNpc, CampaignPlayer, CampaignSpeech
from guildkeep.campaign.results import (
    CampaignInfo,
    CampaignSpeechInfo,
    ImportResult,
    LeaveResult,
    NpcInfo,
    PlayerCharacterInfo,
    SessionInfo,
    SpeakerInfo,
)
from guildkeep.characters import rules as character_rules
from guildkeep.characters.errors import DuplicateCharacterError
from guildkeep.characters.models import Character
from guildkeep.characters.service import (
    UNSET,
    CharacterService,
    _Unset,
    add_character,
    character_infos,
    register_delete_guard,
    register_speak_guard,
)
from guildkeep.db import Database, utcnow
from guildkeep.db.channels import Channels, channel_ids, nearest
from guildkeep.db.dialect import insert_for
from guildkeep.errors import DomainError, DuplicateError
from guildkeep.identity.service import ensure_guild
from guildkeep.scheduler import rules as scheduler_rules
from guildkeep.scheduler.results import JobInfo
from guildkeep.scheduler.service import SchedulerService
from guildkeep.text import parse_id

SUGGESTIONS_MAX = 25
SESSION_JOB = "campaign.session"
Progress = Callable[[], None]


CAMPAIGNS: Final = "campaigns"
CHARACTERS: Final = "characters"
NPCS: Final = "npcs"


async def _bound_character_guard(session: AsyncSession, character_id: int) -> str | None:
    name = await session.scalar(
        select(Campaign.name).join(CampaignCharacter, CampaignCharacter.campaign_id == Campaign.id)
        .where(CampaignCharacter.character_id == character_id).limit(1))
    if name is None:
        return None
    return (f"That character plays in the campaign **{name}**. Leave the campaign (/campaign leave) "
            "before deleting it.")


register_delete_guard(_bound_character_guard)


async def _campaign_channel_guard(session: AsyncSession, guild_id: int, channel_id: Channels,
                                  user_id: int) -> str | None:
    """``/speak`` in a campaign's channel or a thread of it: only its players and GM, never while archived."""
    row = await _find_campaign(session, guild_id, channel_id)
    if row is None:
        return None
    if row.archived:
        return CampaignArchivedError.default_message
    if row.gm_id == user_id or await _is_player(session, row.id, user_id):
        return None
    return "This channel is the campaign **" + row.name + "**: only its players and GM speak here as characters."


register_speak_guard(_campaign_channel_guard)


def _session_key(campaign_id: int) -> str:
    return f"campaign:{campaign_id}"


def _session(job: JobInfo) -> SessionInfo:
    payload = job.payload if isinstance(job.payload, dict) else {}
    return SessionInfo(int(payload.get("campaign_id", 0)), job.guild_id or 0, int(payload.get("channel_id", 0)),
                       job.run_at, job.recurrence == scheduler_rules.WEEKLY, str(payload.get("note", "")))


def _npc(row: CampaignNpc) -> NpcInfo:
    return NpcInfo(row.id, row.campaign_id, row.name, row.avatar_url, row.creator_id)


async def _players(s: AsyncSession, campaign_id: int) -> tuple[int, ...]:
    rows = await s.scalars(select(CampaignPlayer.user_id).where(CampaignPlayer.campaign_id == campaign_id)
                           .order_by(CampaignPlayer.joined_at, CampaignPlayer.user_id))
    return tuple(rows.all())


async def _info(s: AsyncSession, row: Campaign) -> CampaignInfo:
    return CampaignInfo(
        id=row.id, guild_id=row.guild_id, channel_id=row.channel_id, name=row.name, gm_id=row.gm_id,
        player_role_id=row.player_role_id, gm_role_id=row.gm_role_id, webhook_id=row.webhook_id,
        archived=row.archived, players=await _players(s, row.id), created_at=row.created_at)


async def _find_campaign(s: AsyncSession, guild_id: int, channel_id: Channels, *,
                         lock: bool = False) -> Campaign | None:
    """The campaign of the first of these channels that has one (a thread's own, else its channel's)."""
    stmt = select(Campaign).where(Campaign.guild_id == guild_id, Campaign.channel_id.in_(channel_ids(channel_id)))
    if lock:
        stmt = stmt.with_for_update()
    return nearest((await s.execute(stmt)).scalars(), lambda row: row.channel_id, channel_id)


async def _campaign(s: AsyncSession, guild_id: int, channel_id: Channels, *, lock: bool = False) -> Campaign:
    row = await _find_campaign(s, guild_id, channel_id, lock=lock)
    if row is None:
        raise NoCampaignError
    return row


def _gm_only(row: Campaign, user_id: int, can_manage: bool = False) -> None:
    if row.gm_id != user_id and not can_manage:
        raise NotGmError


def _writable(row: Campaign) -> None:
    if row.archived:
        raise CampaignArchivedError


async def _is_player(s: AsyncSession, campaign_id: int, user_id: int) -> bool:
    found = await s.scalar(select(CampaignPlayer.user_id).where(
        CampaignPlayer.campaign_id == campaign_id, CampaignPlayer.user_id == user_id))
    return found is not None


async def _binding(s: AsyncSession, campaign_id: int, user_id: int) -> CampaignCharacter | None:
    return (await s.execute(select(CampaignCharacter).where(
        CampaignCharacter.campaign_id == campaign_id, CampaignCharacter.user_id == user_id))).scalar_one_or_none()


async def _find_npc(s: AsyncSession, campaign_id: int, ref: str) -> CampaignNpc:
    text = ref.strip()
    kind, value = rules.parse_speaker_ref(text)
    npc_id = value if kind == "npc" and isinstance(value, int) else parse_id(text)
    if npc_id is not None:
        row = await s.get(CampaignNpc, npc_id)
        if row is not None and row.campaign_id == campaign_id:
            return row
    key = character_rules.name_key(" ".join(text.split()))
    row = (await s.execute(select(CampaignNpc).where(
        CampaignNpc.campaign_id == campaign_id, CampaignNpc.name_key == key))).scalar_one_or_none()
    if row is None:
        raise NpcNotFoundError
    return row


class CampaignService:
    """Campaigns per channel, their players, characters, NPCs and speech log."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.characters = CharacterService(db)
        self.jobs = SchedulerService(db)

    # -- campaigns ---------------------------------------------------------------------------------

    async def create(self, guild_id: int, channel_id: Channels, gm_id: int, name: str) -> CampaignInfo:
        """Start a campaign in the first of ``channel_id`` with ``gm_id`` as its GM; one campaign per channel.

        A thread (its id first, then its parent's) whose channel has a campaign belongs to it: refused.
        """
        clean = rules.clean_campaign_name(name)
        here, *enclosing = channel_ids(channel_id)
        try:
            async with self.db.session() as s:
                if enclosing and await _find_campaign(s, guild_id, enclosing) is not None:
                    raise CampaignExistsError("This thread's channel already has a campaign, and its threads "
                                              "belong to it. See /campaign info.")
                await ensure_guild(s, guild_id)
                row = Campaign(guild_id=guild_id, channel_id=here, name=clean, gm_id=gm_id)
                s.add(row)
                await s.flush()
                return await _info(s, row)
        except CampaignExistsError:
            raise
        except DuplicateError as exc:
            raise CampaignExistsError from exc

    async def set_discord_ids(
        self, guild_id: int, campaign_id: int, *, player_role_id: int | _Unset | None = UNSET,
        gm_role_id: int | _Unset | None = UNSET, webhook_id: int | _Unset | None = UNSET,
    ) -> CampaignInfo:
        """Remember the campaign's roles and webhook (after the bot made them on Discord)."""
        values: dict[str, Any] = {}
        if player_role_id is not UNSET:
            values["player_role_id"] = player_role_id
        if gm_role_id is not UNSET:
            values["gm_role_id"] = gm_role_id
        if webhook_id is not UNSET:
            values["webhook_id"] = webhook_id
        async with self.db.session() as s:
            if values:
                await s.execute(update(Campaign).where(Campaign.id == campaign_id, Campaign.guild_id == guild_id)
                                .values(**values, updated_at=utcnow(), version=Campaign.version + 1))
            row = (await s.execute(select(Campaign).where(
                Campaign.id == campaign_id, Campaign.guild_id == guild_id))).scalar_one_or_none()
            if row is None:
                raise NoCampaignError
            await s.refresh(row)
            return await _info(s, row)

    async def note_webhook(self, guild_id: int, campaign_id: int, webhook_id: int) -> bool:
        """Remember the webhook the campaign's channel speaks through.

        It changes when one is deleted behind the bot's back and made again. True when it changed; a
        conditional update, no read first.
        """
        async with self.db.session() as s:
            done = await s.execute(
                update(Campaign).where(Campaign.id == campaign_id, Campaign.guild_id == guild_id,
                                       or_(Campaign.webhook_id.is_(None), Campaign.webhook_id != webhook_id))
                .values(webhook_id=webhook_id, updated_at=utcnow()))
            return bool(getattr(done, "rowcount", 0))

    async def get(self, guild_id: int, channel_id: Channels) -> CampaignInfo:
        """The campaign played in ``channel_id`` of ``guild_id``."""
        async with self.db.session(read_only=True) as s:
            return await _info(s, await _campaign(s, guild_id, channel_id))

    async def find(self, guild_id: int, channel_id: Channels) -> CampaignInfo | None:
        """The campaign in that channel, or None."""
        try:
            return await self.get(guild_id, channel_id)
        except NoCampaignError:
            return None

    async def list_campaigns(self, guild_id: int) -> list[CampaignInfo]:
        """The server's campaigns, by name."""
        async with self.db.session(read_only=True) as s:
            rows = (await s.execute(select(Campaign).where(Campaign.guild_id == guild_id)
                                    .order_by(Campaign.name, Campaign.id))).scalars().all()
            return [await _info(s, r) for r in rows]

    async def join(self, guild_id: int, channel_id: Channels, user_id: int) -> CampaignInfo:
        """Join the campaign as a player. Joining twice (even at the same moment) is one membership."""
        try:
            async with self.db.session() as s:
                row = await _campaign(s, guild_id, channel_id)
                _writable(row)
                if row.gm_id == user_id:
                    raise GmCannotJoinError
                if await _is_player(s, row.id, user_id):
                    raise AlreadyPlayerError
                s.add(CampaignPlayer(campaign_id=row.id, user_id=user_id, guild_id=guild_id))
                await s.flush()
                return await _info(s, row)
        except DuplicateError as exc:
            raise AlreadyPlayerError from exc

    async def _remove_player(self, guild_id: int, channel_id: Channels, user_id: int, *, by: int | None,
                             can_manage: bool) -> LeaveResult:
        async with self.db.session() as s:
            row = await _campaign(s, guild_id, channel_id)
            if by is not None:
                _gm_only(row, by, can_manage)
            gone = await s.execute(delete(CampaignPlayer).where(
                CampaignPlayer.campaign_id == row.id, CampaignPlayer.user_id == user_id))
            if not getattr(gone, "rowcount", 0):
                if by is None:
                    raise NotPlayerError("You don't play in this campaign.")
                raise NotPlayerError(f"<@{user_id}> doesn't play in this campaign.")
            unbound = await s.execute(delete(CampaignCharacter).where(
                CampaignCharacter.campaign_id == row.id, CampaignCharacter.user_id == user_id))
            return LeaveResult(await _info(s, row), user_id, bool(getattr(unbound, "rowcount", 0)))

    async def leave(self, guild_id: int, channel_id: Channels, user_id: int) -> LeaveResult:
        """Leave the campaign; the player's character is no longer bound to it (it stays theirs)."""
        return await self._remove_player(guild_id, channel_id, user_id, by=None, can_manage=False)

    async def kick(self, guild_id: int, channel_id: Channels, gm_id: int, user_id: int, *,
                   can_manage: bool = False) -> LeaveResult:
        """The GM (or a server manager) removes a player."""
        return await self._remove_player(guild_id, channel_id, user_id, by=gm_id, can_manage=can_manage)

    async def transfer(self, guild_id: int, channel_id: Channels, gm_id: int, new_gm_id: int, *,
                       can_manage: bool = False) -> tuple[CampaignInfo, int]:
        """Hand the campaign to another GM; returns it and the previous GM.

        The new GM stops being a player. A conditional update: two transfers at once, one wins.
        """
        async with self.db.session() as s:
            row = await _campaign(s, guild_id, channel_id)
            _gm_only(row, gm_id, can_manage)
            _writable(row)
            old = row.gm_id
            if new_gm_id == old:
                raise CampaignInputError("They already are this campaign's GM.")
            done = await s.execute(
                update(Campaign).where(Campaign.id == row.id, Campaign.gm_id == old, Campaign.version == row.version)
                .values(gm_id=new_gm_id, version=Campaign.version + 1, updated_at=utcnow()))
            if not getattr(done, "rowcount", 0):
                raise CampaignChangedError
            await s.execute(delete(CampaignPlayer).where(
                CampaignPlayer.campaign_id == row.id, CampaignPlayer.user_id == new_gm_id))
            await s.refresh(row)
            return await _info(s, row), old

    async def archive(self, guild_id: int, channel_id: Channels, gm_id: int, archived: bool = True, *,
                      can_manage: bool = False) -> CampaignInfo:
        """Archive (read-only) or unarchive; only the GM or a server manager."""
        async with self.db.session() as s:
            row = await _campaign(s, guild_id, channel_id)
            _gm_only(row, gm_id, can_manage)
            await s.execute(update(Campaign).where(Campaign.id == row.id)
                            .values(archived=archived, version=Campaign.version + 1, updated_at=utcnow()))
            await s.refresh(row)
            return await _info(s, row)

    async def delete(self, guild_id: int, channel_id: Channels, gm_id: int, *,
                     can_manage: bool = False) -> CampaignInfo:
        """Delete the campaign with its players, character bindings, NPCs and speech log.

        The characters themselves stay their owners'. Returns what it was, to take the roles back.
        """
        async with self.db.session() as s:
            row = await _campaign(s, guild_id, channel_id, lock=True)
            _gm_only(row, gm_id, can_manage)
            info = await _info(s, row)
            for table in (CampaignSpeech, CampaignNpc, CampaignCharacter, CampaignPlayer):
                await s.execute(delete(table).where(table.campaign_id == row.id))
            await s.execute(delete(Campaign).where(Campaign.id == row.id))
        await self.jobs.cancel_key(SESSION_JOB, _session_key(info.id), now=utcnow())
        return info

    # -- sessions (scheduler jobs) -----------------------------------------------------------------

    async def schedule_session(
        self, guild_id: int, channel_id: Channels, gm_id: int, when: str, *, now: datetime, weekly: bool = False,
        note: str | None = None, can_manage: bool = False,
    ) -> SessionInfo:
        """The GM schedules the campaign's next session (weekly: every week from then on).

        The bot reminds the players (their role) in the channel when it starts. A new schedule replaces the
        previous one.
        """
        run_at = rules.parse_session_time(when, now)
        text = rules.clean_note(note)
        async with self.db.session(read_only=True) as s:
            row = await _campaign(s, guild_id, channel_id)
            _gm_only(row, gm_id, can_manage)
            _writable(row)
            campaign_id, home = row.id, row.channel_id
        key = _session_key(campaign_id)
        await self.jobs.cancel_key(SESSION_JOB, key, now=now)
        done = await self.jobs.schedule(
            SESSION_JOB, run_at, now=now, guild_id=guild_id, dedup_key=key,
            recurrence=scheduler_rules.WEEKLY if weekly else scheduler_rules.NONE,
            payload={"campaign_id": campaign_id, "channel_id": home, "note": text})
        if not done.created:
            raise CampaignChangedError("Someone scheduled this campaign's session at the same moment; see "
                                       "/campaign info and try again.")
        return _session(done.job)

    async def cancel_session(self, guild_id: int, channel_id: Channels, gm_id: int, *, now: datetime,
                             can_manage: bool = False) -> bool:
        """The GM cancels the scheduled session (and its weekly series); False when none was scheduled."""
        async with self.db.session(read_only=True) as s:
            row = await _campaign(s, guild_id, channel_id)
            _gm_only(row, gm_id, can_manage)
            campaign_id = row.id
        return await self.jobs.cancel_key(SESSION_JOB, _session_key(campaign_id), now=now) is not None

    async def next_session(self, guild_id: int, channel_id: Channels) -> SessionInfo | None:
        """The campaign's scheduled session, if any."""
        async with self.db.session(read_only=True) as s:
            row = await _campaign(s, guild_id, channel_id)
        job = await self.jobs.find(SESSION_JOB, _session_key(row.id))
        if job is None or job.status not in (scheduler_rules.PENDING, scheduler_rules.RUNNING):
            return None
        return _session(job)

    async def session_due(self, job: JobInfo) -> tuple[CampaignInfo, SessionInfo] | None:
        """The campaign a session job reminds, for the scheduler's handler.

        None when it was deleted or archived since (nothing to post).
        """
        session = _session(job)
        async with self.db.session(read_only=True) as s:
            row = await s.get(Campaign, session.campaign_id)
            if row is None or row.archived or row.guild_id != session.guild_id:
                return None
            return await _info(s, row), session

    # -- characters --------------------------------------------------------------------------------

    async def _player_campaign(self, s: AsyncSession, guild_id: int, channel_id: Channels, user_id: int) -> Campaign:
        row = await _campaign(s, guild_id, channel_id)
        _writable(row)
        if row.gm_id != user_id and not await _is_player(s, row.id, user_id):
            raise NotPlayerError
        return row

    async def _bound_twice(self, guild_id: int, channel_id: Channels, user_id: int) -> bool:
        async with self.db.session(read_only=True) as s:
            row = await _campaign(s, guild_id, channel_id)
            return await _binding(s, row.id, user_id) is not None

    async def create_character(
        self, guild_id: int, channel_id: Channels, user_id: int, name: str, *, avatar_url: str | None = None,
        description: str | None = None,
    ) -> PlayerCharacterInfo:
        """Make a new character (in the player's repository) and play it here, in one unit of work.

        One character per player per campaign, however many requests race.
        """
        clean = character_rules.clean_name(name)
        try:
            async with self.db.session() as s:
                row = await self._player_campaign(s, guild_id, channel_id, user_id)
                if await _binding(s, row.id, user_id) is not None:
                    raise AlreadyHasCharacterError
                info = await add_character(s, user_id, clean, avatar_url=avatar_url, description=description,
                                           guild_id=guild_id)
                s.add(CampaignCharacter(campaign_id=row.id, guild_id=guild_id, user_id=user_id,
                                        character_id=info.id))
                await s.flush()
                return PlayerCharacterInfo(row.id, user_id, info)
        except DuplicateError as exc:
            if await self._bound_twice(guild_id, channel_id, user_id):
                raise AlreadyHasCharacterError from exc
            raise DuplicateCharacterError(f"You already have a character called **{clean}**. "
                                          "Pick it with the `persona` option instead.") from exc

    async def bind_character(self, guild_id: int, channel_id: Channels, user_id: int, ref: str) -> PlayerCharacterInfo:
        """Play one of the player's existing characters (``/persona``) in this campaign."""
        character = await self.characters.resolve(user_id, ref, guild_id=guild_id, owned_only=True)
        try:
            async with self.db.session() as s:
                row = await self._player_campaign(s, guild_id, channel_id, user_id)
                if await _binding(s, row.id, user_id) is not None:
                    raise AlreadyHasCharacterError
                s.add(CampaignCharacter(campaign_id=row.id, guild_id=guild_id, user_id=user_id,
                                        character_id=character.id))
                await s.flush()
                return PlayerCharacterInfo(row.id, user_id, character)
        except DuplicateError as exc:
            raise AlreadyHasCharacterError from exc

    async def character_of(self, guild_id: int, channel_id: Channels, user_id: int) -> PlayerCharacterInfo:
        """The character ``user_id`` plays in the campaign of this channel."""
        async with self.db.session(read_only=True) as s:
            row = await _campaign(s, guild_id, channel_id)
            bound = await _binding(s, row.id, user_id)
            found = await character_infos(s, [bound.character_id], guild_id) if bound else {}
            if bound is None or bound.character_id not in found:
                raise NoCharacterError
            return PlayerCharacterInfo(row.id, user_id, found[bound.character_id])

    async def edit_character(
        self, guild_id: int, channel_id: Channels, user_id: int, *, name: str | _Unset = UNSET,
        avatar_url: str | _Unset | None = UNSET, description: str | _Unset | None = UNSET,
    ) -> PlayerCharacterInfo:
        """Change the player's character in this campaign (its name, avatar, description)."""
        async with self.db.session(read_only=True) as s:
            row = await self._player_campaign(s, guild_id, channel_id, user_id)
            bound = await _binding(s, row.id, user_id)
            if bound is None:
                raise NoCharacterError
            character_id = bound.character_id
        await self.characters.edit(user_id, character_id, name=name, avatar_url=avatar_url, description=description)
        return await self.character_of(guild_id, channel_id, user_id)

    async def list_characters(self, guild_id: int, channel_id: Channels) -> list[PlayerCharacterInfo]:
        """Every character played in the campaign, by name."""
        async with self.db.session(read_only=True) as s:
            row = await _campaign(s, guild_id, channel_id)
            bound = (await s.execute(select(CampaignCharacter).where(CampaignCharacter.campaign_id == row.id))
                     ).scalars().all()
            infos = await character_infos(s, [b.character_id for b in bound], guild_id)
            found = [PlayerCharacterInfo(row.id, b.user_id, infos[b.character_id])
                     for b in bound if b.character_id in infos]
            return sorted(found, key=lambda p: (character_rules.name_key(p.character.display_name), p.user_id))

    # -- NPCs --------------------------------------------------------------------------------------

    async def create_npc(self, guild_id: int, channel_id: Channels, gm_id: int, name: str, *,
                         avatar_url: str | None = None, can_manage: bool = False) -> NpcInfo:
        """The GM adds an NPC; names are unique in a campaign whatever the letter case."""
        clean = rules.clean_npc_name(name)
        avatar = character_rules.clean_avatar_url(avatar_url)
        try:
            async with self.db.session() as s:
                row = await _campaign(s, guild_id, channel_id)
                _gm_only(row, gm_id, can_manage)
                _writable(row)
                npc = CampaignNpc(campaign_id=row.id, guild_id=guild_id, name=clean,
                                  name_key=character_rules.name_key(clean), avatar_url=avatar, creator_id=gm_id)
                s.add(npc)
                await s.flush()
                return _npc(npc)
        except DuplicateError as exc:
            raise DuplicateNpcError(f"This campaign already has an NPC called **{clean}**.") from exc

    async def edit_npc(self, guild_id: int, channel_id: Channels, gm_id: int, ref: str, *, name: str | _Unset = UNSET,
                       avatar_url: str | _Unset | None = UNSET, can_manage: bool = False) -> NpcInfo:
        """The GM renames an NPC or changes its avatar (None removes it)."""
        values: dict[str, Any] = {}
        if name is not UNSET:
            clean = rules.clean_npc_name(name)
            values.update(name=clean, name_key=character_rules.name_key(clean))
        if avatar_url is not UNSET:
            values["avatar_url"] = character_rules.clean_avatar_url(avatar_url)
        try:
            async with self.db.session() as s:
                row = await _campaign(s, guild_id, channel_id)
                _gm_only(row, gm_id, can_manage)
                _writable(row)
                npc = await _find_npc(s, row.id, ref)
                if values:
                    await s.execute(update(CampaignNpc).where(CampaignNpc.id == npc.id)
                                    .values(**values, updated_at=utcnow()))
                    await s.refresh(npc)
                return _npc(npc)
        except DuplicateError as exc:
            raise DuplicateNpcError(f"This campaign already has an NPC called **{values.get('name')}**.") from exc

    async def delete_npc(self, guild_id: int, channel_id: Channels, gm_id: int, ref: str, *,
                         can_manage: bool = False) -> NpcInfo:
        """The GM deletes an NPC (its messages stay, still attributed to the GM)."""
        async with self.db.session() as s:
            row = await _campaign(s, guild_id, channel_id)
            _gm_only(row, gm_id, can_manage)
            _writable(row)
            npc = await _find_npc(s, row.id, ref)
            info = _npc(npc)
            await s.execute(update(CampaignSpeech).where(CampaignSpeech.npc_id == npc.id).values(npc_id=None))
            await s.execute(delete(CampaignNpc).where(CampaignNpc.id == npc.id))
            return info

    async def list_npcs(self, guild_id: int, channel_id: Channels) -> list[NpcInfo]:
        """The campaign's NPCs, by name."""
        async with self.db.session(read_only=True) as s:
            row = await _campaign(s, guild_id, channel_id)
            npcs = (await s.execute(select(CampaignNpc).where(CampaignNpc.campaign_id == row.id)
                                    .order_by(CampaignNpc.name_key, CampaignNpc.id))).scalars().all()
            return [_npc(n) for n in npcs]

    async def suggest_npcs(self, guild_id: int, channel_id: Channels, typed: str) -> list[NpcInfo]:
        """At most 25 NPCs of the campaign whose name contains what was typed (none without a campaign)."""
        key = character_rules.name_key(" ".join(typed.split()))
        async with self.db.session(read_only=True) as s:
            campaign = await _find_campaign(s, guild_id, channel_id)
            if campaign is None:
                return []
            stmt = select(CampaignNpc).where(CampaignNpc.campaign_id == campaign.id)
            if key:
                stmt = stmt.where(CampaignNpc.name_key.contains(key, autoescape=True))
            npcs = (await s.execute(stmt.order_by(CampaignNpc.name_key).limit(SUGGESTIONS_MAX))).scalars().all()
            return [_npc(n) for n in npcs]

    # -- speech ------------------------------------------------------------------------------------

    async def speaker(self, guild_id: int, channel_id: Channels, user_id: int, ref: str | None = None) -> SpeakerInfo:
        """Who ``user_id`` may post as in this channel's campaign.

        Their own character, or (the GM only) one of the campaign's NPCs. Archived campaigns, non-players and
        other campaigns' NPCs are refused.
        """
        kind, value = rules.parse_speaker_ref(ref)
        async with self.db.session(read_only=True) as s:
            row = await _campaign(s, guild_id, channel_id)
            _writable(row)
            is_gm = row.gm_id == user_id
            if not is_gm and not await _is_player(s, row.id, user_id):
                raise NotPlayerError("Only this campaign's players and GM speak here. Join with /campaign join.")
            bound = await _binding(s, row.id, user_id)
            own = (await character_infos(s, [bound.character_id], guild_id)).get(bound.character_id) if bound else None
            if kind == "npc":
                if not is_gm:
                    raise NotGmError("Only this campaign's GM speaks as its NPCs.")
                npc = await s.get(CampaignNpc, value)
                if npc is None or npc.campaign_id != row.id:
                    raise NpcNotFoundError
                return SpeakerInfo(row.id, npc.name, npc.avatar_url, npc_id=npc.id)
            if kind == "character" and own is not None and own.id == value:
                return SpeakerInfo(row.id, own.display_name, own.display_avatar_url, character_id=own.id)
            if kind == "own" and own is not None:
                return SpeakerInfo(row.id, own.display_name, own.display_avatar_url, character_id=own.id)
            if kind == "name" and isinstance(value, str):
                key = character_rules.name_key(value)
                if own is not None and key in (character_rules.name_key(own.display_name),
                                               character_rules.name_key(own.name)):
                    return SpeakerInfo(row.id, own.display_name, own.display_avatar_url, character_id=own.id)
                if is_gm:
                    npc = (await s.execute(select(CampaignNpc).where(
                        CampaignNpc.campaign_id == row.id, CampaignNpc.name_key == key))).scalar_one_or_none()
                    if npc is not None:
                        return SpeakerInfo(row.id, npc.name, npc.avatar_url, npc_id=npc.id)
                    raise NpcNotFoundError("Neither your character nor an NPC of this campaign has that name.")
            if kind == "character":
                raise NoCharacterError("In a campaign you speak as your own character in it (see /character show).")
            if own is None:
                if is_gm:
                    raise NoCharacterError("Pick an NPC in the `as` option (or make yourself a character with "
                                           "/character create).")
                raise NoCharacterError
            raise NoCharacterError("In a campaign you speak as your own character in it (see /character show).")

    async def suggest_speakers(self, guild_id: int, channel_id: Channels, user_id: int,
                               typed: str) -> list[SpeakerInfo]:
        """The `/say as:` choices: the caller's character, then (for the GM) NPCs; at most 25."""
        try:
            own = await self.character_of(guild_id, channel_id, user_id)
        except NoCampaignError:
            return []
        except NoCharacterError:
            own = None
        key = character_rules.name_key(" ".join(typed.split()))
        found: list[SpeakerInfo] = []
        if own is not None and key in character_rules.name_key(own.character.display_name):
            c = own.character
            found.append(SpeakerInfo(own.campaign_id, c.display_name, c.display_avatar_url, character_id=c.id))
        campaign = await self.find(guild_id, channel_id)
        if campaign is not None and campaign.gm_id == user_id:
            for npc in await self.suggest_npcs(guild_id, channel_id, typed):
                found.append(SpeakerInfo(npc.campaign_id, npc.name, npc.avatar_url, npc_id=npc.id))
        return found[:SUGGESTIONS_MAX]

    async def record_speech(self, guild_id: int, campaign_id: int, message_id: int, npc_id: int | None) -> None:
        """Log which campaign a message posted through the webhook belongs to (once per message)."""
        async with self.db.session() as s:
            await s.execute(insert_for(s, CampaignSpeech).values(
                message_id=message_id, campaign_id=campaign_id, guild_id=guild_id, npc_id=npc_id,
                created_at=utcnow()).on_conflict_do_nothing(index_elements=["message_id"]))

    async def gm_speech(self, guild_id: int, message_id: int, user_id: int, *,
                        can_manage: bool = False) -> CampaignSpeechInfo:
        """A campaign message the GM of its campaign (``user_id``) may delete; anyone else is refused."""
        async with self.db.session(read_only=True) as s:
            found = (await s.execute(
                select(CampaignSpeech, Campaign.gm_id).join(Campaign, Campaign.id == CampaignSpeech.campaign_id)
                .where(CampaignSpeech.message_id == message_id, CampaignSpeech.guild_id == guild_id))).first()
            if found is None:
                raise SpeechNotInCampaignError
            speech, gm_id = found
            if gm_id != user_id and not can_manage:
                raise NotGmError("Only the GM of the campaign that message belongs to can delete it.")
            return CampaignSpeechInfo(speech.message_id, speech.campaign_id, gm_id, speech.npc_id)

    async def forget_speech(self, guild_id: int, message_ids: Iterable[int]) -> int:
        """Drop the campaign log rows of deleted messages; returns how many there were."""
        ids = sorted(set(message_ids))
        if not ids:
            return 0
        async with self.db.session() as s:
            done = await s.execute(delete(CampaignSpeech).where(
                CampaignSpeech.guild_id == guild_id, CampaignSpeech.message_id.in_(ids)))
            return int(getattr(done, "rowcount", 0) or 0)

    async def speech_count(self, campaign_id: int) -> int:
        """How many logged messages a campaign has."""
        async with self.db.session(read_only=True) as s:
            return int(await s.scalar(select(func.count()).select_from(CampaignSpeech)
                                      .where(CampaignSpeech.campaign_id == campaign_id)) or 0)

    # -- the seed's JSON layout --------------------------------------------------------------------

    async def export_guild(self, guild_id: int) -> dict[str, dict[str, Any]]:
        """``campaigns``, ``characters`` and ``npcs`` of one server in the seed's layout (ids as strings)."""
        campaigns: dict[str, Any] = {}
        characters: dict[str, Any] = {}
        npcs: dict[str, Any] = {}
        g = str(guild_id)
        async with self.db.session(read_only=True) as s:
            rows = (await s.execute(select(Campaign).where(Campaign.guild_id == guild_id)
                                    .order_by(Campaign.channel_id))).scalars().all()
            for row in rows:
                info = await _info(s, row)
                campaigns.setdefault(g, {})[str(row.channel_id)] = {
                    "name": row.name, "gm_id": str(row.gm_id),
                    "player_role_id": None if row.player_role_id is None else str(row.player_role_id),
                    "gm_role_id": None if row.gm_role_id is None else str(row.gm_role_id),
                    "webhook_id": None if row.webhook_id is None else str(row.webhook_id),
                    "players": [str(p) for p in info.players], "archived": row.archived}
                bound = (await s.execute(select(CampaignCharacter).where(CampaignCharacter.campaign_id == row.id)
                                         .order_by(CampaignCharacter.user_id))).scalars().all()
                infos = await character_infos(s, [b.character_id for b in bound], None)
                for b in bound:
                    if (c := infos.get(b.character_id)) is not None:
                        characters.setdefault(g, {}).setdefault(str(b.user_id), {})[str(row.channel_id)] = {
                            "name": c.name, "avatar_url": c.avatar_url, "description": c.description}
                for n in (await s.execute(select(CampaignNpc).where(CampaignNpc.campaign_id == row.id)
                                          .order_by(CampaignNpc.id))).scalars().all():
                    npcs.setdefault(g, {}).setdefault(str(row.channel_id), {})[str(n.id)] = {
                        "name": n.name, "avatar_url": n.avatar_url, "creator_id": str(n.creator_id)}
        return {CAMPAIGNS: campaigns, CHARACTERS: characters, NPCS: npcs}

    async def import_seed(self, data: dict[str, Any], *, progress: Progress | None = None) -> ImportResult:
        """Import the seed's three files (``campaigns``, ``characters``, ``npcs``; a missing one is ``None``).

        Each entry is its own unit of work: a malformed entry is skipped with its reason and the rest goes
        on. Running it twice changes nothing the second time.
        """
        result = ImportResult()

        def tick() -> None:
            if progress is not None:
                progress()

        for where, guild_id, channel_id, entry in _entries(data.get(CAMPAIGNS), 2, result, "campaigns.json"):
            await self._import_one(result, CAMPAIGNS, where, self._import_campaign, guild_id, channel_id, entry)
            tick()
        for where, guild_id, user_channel, entry in _entries(data.get(CHARACTERS), 3, result, "characters.json"):
            user_id, channel_id = user_channel
            await self._import_one(result, CHARACTERS, where, self._import_character, guild_id, channel_id,
                                   user_id, entry)
            tick()
        for where, guild_id, channel_npc, entry in _entries(data.get(NPCS), 3, result, "npcs.json"):
            channel_id, _npc_key = channel_npc
            await self._import_one(result, NPCS, where, self._import_npc, guild_id, channel_id, entry)
            tick()
        return result

    @staticmethod
    async def _import_one(result: ImportResult, kind: str, where: str, work: Any, *args: Any) -> None:
        try:
            outcome = await work(*args)
        except DomainError as exc:
            result.skip(where, exc.message if hasattr(exc, "message") else str(exc))
        else:
            result.count(kind, outcome)

    async def _import_campaign(self, guild_id: int, channel_id: int, entry: dict[str, Any]) -> str:
        name = entry.get("name")
        if not isinstance(name, str):
            raise CampaignInputError("no name")
        clean = rules.clean_campaign_name(name)
        gm_id = rules.snowflake(entry.get("gm_id"))
        if gm_id is None:
            raise CampaignInputError("gm_id is not a Discord id")
        ids: dict[str, int | None] = {}
        for key in ("player_role_id", "gm_role_id", "webhook_id"):
            raw = entry.get(key)
            ids[key] = None if raw in (None, "") else rules.snowflake(raw)
            if raw not in (None, "") and ids[key] is None:
                raise CampaignInputError(f"{key} is not a Discord id")
        players_raw = entry.get("players", [])
        if not isinstance(players_raw, list):
            raise CampaignInputError("players is not a list")
        players = []
        for p in players_raw:
            if (pid := rules.snowflake(p)) is None:
                raise CampaignInputError(f"player {str(p)[:30]!r} is not a Discord id")
            if pid != gm_id and pid not in players:
                players.append(pid)
        archived = entry.get("archived", False)
        if not isinstance(archived, bool):
            raise CampaignInputError("archived is not true or false")
        async with self.db.session() as s:
            await ensure_guild(s, guild_id)
            row = (await s.execute(select(Campaign).where(
                Campaign.guild_id == guild_id, Campaign.channel_id == channel_id))).scalar_one_or_none()
            outcome = "unchanged"
            wanted = {"name": clean, "gm_id": gm_id, **ids, "archived": archived}
            if row is None:
                row = Campaign(guild_id=guild_id, channel_id=channel_id, **wanted)
                s.add(row)
                await s.flush()
                outcome = "imported"
            elif any(getattr(row, k) != v for k, v in wanted.items()):
                for k, v in wanted.items():
                    setattr(row, k, v)
                row.version += 1
                row.updated_at = utcnow()
                outcome = "updated"
            have = set(await _players(s, row.id))
            for pid in players:
                if pid not in have:
                    s.add(CampaignPlayer(campaign_id=row.id, user_id=pid, guild_id=guild_id))
                    outcome = "updated" if outcome == "unchanged" else outcome
            await s.flush()
            return outcome

    async def _import_character(self, guild_id: int, channel_id: int, user_id: int, entry: dict[str, Any]) -> str:
        name = entry.get("name")
        if not isinstance(name, str):
            raise CampaignInputError("no name")
        clean = character_rules.clean_name(name)
        avatar = character_rules.clean_avatar_url(rules.optional_text(entry.get("avatar_url"), "avatar_url"))
        description = character_rules.clean_description(rules.optional_text(entry.get("description"), "description"))
        async with self.db.session() as s:
            row = (await s.execute(select(Campaign).where(
                Campaign.guild_id == guild_id, Campaign.channel_id == channel_id))).scalar_one_or_none()
            if row is None:
                raise NoCampaignError(f"no campaign in channel {channel_id} (not in campaigns.json?)")
            outcome = "unchanged"
            if row.gm_id != user_id and not await _is_player(s, row.id, user_id):
                s.add(CampaignPlayer(campaign_id=row.id, user_id=user_id, guild_id=guild_id))
                outcome = "updated"
            bound = await _binding(s, row.id, user_id)
            character = await s.get(Character, bound.character_id) if bound is not None else None
            if character is None:
                character = (await s.execute(select(Character).where(
                    Character.owner_id == user_id, Character.name_key == character_rules.name_key(clean))
                )).scalar_one_or_none()
                if character is not None and (character.name, character.avatar_url, character.description) != (
                        clean, avatar, description):
                    # the same character in two campaigns with other details: binding it would make each entry
                    # undo the other on every run
                    raise DuplicateCharacterError(
                        f"the player already has a character called {clean} with another name spelling, "
                        "picture or description (in another campaign or /persona); rename one of them")
                if character is None:
                    info = await add_character(s, user_id, clean, avatar_url=avatar, description=description,
                                               guild_id=guild_id)
                    character = await s.get(Character, info.id)
                    assert character is not None
                if bound is None:
                    s.add(CampaignCharacter(campaign_id=row.id, guild_id=guild_id, user_id=user_id,
                                            character_id=character.id))
                else:
                    bound.character_id = character.id
                outcome = "imported"
            wanted = {"name": clean, "name_key": character_rules.name_key(clean), "avatar_url": avatar,
                      "description": description}
            if any(getattr(character, k) != v for k, v in wanted.items()):
                for k, v in wanted.items():
                    setattr(character, k, v)
                character.updated_at = utcnow()
                outcome = "updated" if outcome == "unchanged" else outcome
            try:
                await s.flush()
            except DuplicateError as exc:
                raise DuplicateCharacterError(f"the player already has another character called {clean}") from exc
            return outcome

    async def _import_npc(self, guild_id: int, channel_id: int, entry: dict[str, Any]) -> str:
        name = entry.get("name")
        if not isinstance(name, str):
            raise CampaignInputError("no name")
        clean = rules.clean_npc_name(name)
        avatar = character_rules.clean_avatar_url(rules.optional_text(entry.get("avatar_url"), "avatar_url"))
        async with self.db.session() as s:
            row = (await s.execute(select(Campaign).where(
                Campaign.guild_id == guild_id, Campaign.channel_id == channel_id))).scalar_one_or_none()
            if row is None:
                raise NoCampaignError(f"no campaign in channel {channel_id} (not in campaigns.json?)")
            creator = rules.snowflake(entry.get("creator_id")) if entry.get("creator_id") is not None else row.gm_id
            if creator is None:
                raise CampaignInputError("creator_id is not a Discord id")
            key = character_rules.name_key(clean)
            npc = (await s.execute(select(CampaignNpc).where(
                CampaignNpc.campaign_id == row.id, CampaignNpc.name_key == key))).scalar_one_or_none()
            if npc is None:
                s.add(CampaignNpc(campaign_id=row.id, guild_id=guild_id, name=clean, name_key=key,
                                  avatar_url=avatar, creator_id=creator))
                return "imported"
            wanted = {"name": clean, "avatar_url": avatar, "creator_id": creator}
            if all(getattr(npc, k) == v for k, v in wanted.items()):
                return "unchanged"
            for k, v in wanted.items():
                setattr(npc, k, v)
            npc.updated_at = utcnow()
            return "updated"


def _entries(data: Any, depth: int, result: ImportResult, file: str) -> Iterable[tuple[str, int, Any, dict[str, Any]]]:
    """Walk ``{guild: {...depth levels...: entry}}``, skipping (with the reason) what is malformed.

    Yields ``(where, guild_id, keys, entry)``: for depth 2 ``keys`` is the channel id; for depth 3 a pair
    (the second level's id, the third level's key as given).
    """
    if data is None:
        return
    if not isinstance(data, dict):
        result.skip(file, "the file does not hold a JSON object")
        return
    for g_raw, level1 in data.items():
        guild_id = rules.snowflake(g_raw)
        where = f"{file} > {str(g_raw)[:30]}"
        if guild_id is None:
            result.skip(where, "the server id is not a Discord id")
            continue
        if not isinstance(level1, dict):
            result.skip(where, "not a JSON object")
            continue
        for k1, level2 in level1.items():
            id1 = rules.snowflake(k1)
            where1 = f"{where} > {str(k1)[:30]}"
            if id1 is None:
                result.skip(where1, "not a Discord id")
                continue
            if not isinstance(level2, dict):
                result.skip(where1, "not a JSON object")
                continue
            if depth == 2:
                yield where1, guild_id, id1, level2
                continue
            for k2, entry in level2.items():
                where2 = f"{where1} > {str(k2)[:30]}"
                if file == "characters.json":
                    id2 = rules.snowflake(k2)
                    if id2 is None:
                        result.skip(where2, "the channel id is not a Discord id")
                        continue
                    key: Any = (id1, id2)
                else:
                    key = (id1, str(k2))
                if not isinstance(entry, dict):
                    result.skip(where2, "not a JSON object")
                    continue
                yield where2, guild_id, key, entry
