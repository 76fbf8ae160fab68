"""The campaign service on both databases: campaigns, players, characters, NPCs, speech, isolation, races."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from guildkeep.campaign.errors import (
    AlreadyHasCharacterError,
    AlreadyPlayerError,
    CampaignArchivedError,
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
from guildkeep.campaign.models import Campaign, CampaignCharacter, CampaignNpc, CampaignPlayer
from guildkeep.campaign.privacy import PROVIDER
from guildkeep.campaign.service import SESSION_JOB, CampaignService
from guildkeep.characters.errors import CharacterInUseError, CharacterNameError, DuplicateCharacterError
from guildkeep.characters.models import Character
from guildkeep.db import Database
from guildkeep.errors import PermissionDeniedError

G1, G2 = 900_000_000_000_000_001, 900_000_000_000_000_002
C1, C2, C3 = 800_000_000_000_000_001, 800_000_000_000_000_002, 800_000_000_000_000_003
GM, BOB, CAROL, DAVE = (700_000_000_000_000_001, 700_000_000_000_000_002, 700_000_000_000_000_003,
                        700_000_000_000_000_004)


@pytest.fixture
def campaigns(db: Database) -> CampaignService:
    return CampaignService(db)


async def table_count(db: Database, model: type) -> int:
    async with db.session(read_only=True) as s:
        return int(await s.scalar(select(func.count()).select_from(model)) or 0)


async def started(campaigns: CampaignService, *players: int, guild: int = G1, channel: int = C1) -> int:
    info = await campaigns.create(guild, channel, GM, "The Lost Mine")
    for p in players:
        await campaigns.join(guild, channel, p)
    return info.id


async def test_create_info_roles_and_one_campaign_per_channel(campaigns: CampaignService, db: Database) -> None:
    info = await campaigns.create(G1, C1, GM, "  The   Lost Mine ")
    assert (info.name, info.gm_id, info.players, info.archived) == ("The Lost Mine", GM, (), False)
    done = await campaigns.set_discord_ids(G1, info.id, player_role_id=11, gm_role_id=12, webhook_id=13)
    assert (done.player_role_id, done.gm_role_id, done.webhook_id) == (11, 12, 13)
    with pytest.raises(CampaignExistsError):
        await campaigns.create(G1, C1, BOB, "Another")
    with pytest.raises(CampaignInputError):
        await campaigns.create(G1, C2, GM, "   ")
    with pytest.raises(CampaignInputError):
        await campaigns.create(G1, C2, GM, "x" * 101)
    assert await table_count(db, Campaign) == 1
    assert (await campaigns.get(G1, C1)).player_role_id == 11
    with pytest.raises(NoCampaignError):
        await campaigns.get(G1, C2)


async def test_two_creates_in_one_channel_at_once_one_wins(campaigns: CampaignService, db: Database) -> None:
    results = await asyncio.gather(*(campaigns.create(G1, C1, user, f"Game {user}") for user in (GM, BOB, CAROL)),
                                   return_exceptions=True)
    won = [r for r in results if not isinstance(r, BaseException)]
    assert len(won) == 1, results
    assert all(isinstance(r, CampaignExistsError) for r in results if isinstance(r, BaseException)), results
    assert await table_count(db, Campaign) == 1


async def test_join_leave_kick(campaigns: CampaignService, db: Database) -> None:
    await started(campaigns, BOB)
    with pytest.raises(AlreadyPlayerError):
        await campaigns.join(G1, C1, BOB)
    with pytest.raises(GmCannotJoinError):
        await campaigns.join(G1, C1, GM)
    info = await campaigns.join(G1, C1, CAROL)
    assert info.players == (BOB, CAROL)
    left = await campaigns.leave(G1, C1, BOB)
    assert (left.user_id, left.campaign.players) == (BOB, (CAROL,))
    with pytest.raises(NotPlayerError):
        await campaigns.leave(G1, C1, BOB)
    with pytest.raises(NotGmError):
        await campaigns.kick(G1, C1, CAROL, CAROL)
    kicked = await campaigns.kick(G1, C1, GM, CAROL)
    assert kicked.campaign.players == ()
    await campaigns.join(G1, C1, CAROL)
    assert (await campaigns.kick(G1, C1, BOB, CAROL, can_manage=True)).campaign.players == ()
    assert await table_count(db, CampaignPlayer) == 0


async def test_two_joins_of_the_same_player_at_once_are_one_membership(campaigns: CampaignService,
                                                                      db: Database) -> None:
    await started(campaigns)
    results = await asyncio.gather(*(campaigns.join(G1, C1, BOB) for _ in range(4)), return_exceptions=True)
    assert len([r for r in results if not isinstance(r, BaseException)]) == 1, results
    assert all(isinstance(r, AlreadyPlayerError) for r in results if isinstance(r, BaseException)), results
    assert await table_count(db, CampaignPlayer) == 1
    assert (await campaigns.get(G1, C1)).players == (BOB,)


async def test_one_character_per_player_per_campaign(campaigns: CampaignService, db: Database) -> None:
    await started(campaigns, BOB)
    made = await campaigns.create_character(G1, C1, BOB, "Thorin", avatar_url="https://example.org/t.png",
                                            description="A dwarf")
    assert (made.character.name, made.character.owner_id, made.character.avatar_url) == (
        "Thorin", BOB, "https://example.org/t.png")
    with pytest.raises(AlreadyHasCharacterError):
        await campaigns.create_character(G1, C1, BOB, "Balin")
    assert await table_count(db, Character) == 1  # the refused one was not made either
    with pytest.raises(NotPlayerError):
        await campaigns.create_character(G1, C1, CAROL, "Gimli")
    with pytest.raises(CharacterNameError):
        await campaigns.create_character(G1, C1, BOB, "Clyde")
    shown = await campaigns.character_of(G1, C1, BOB)
    assert shown.character.id == made.character.id
    edited = await campaigns.edit_character(G1, C1, BOB, name="Thorin Oakenshield", description="King")
    assert (edited.character.name, edited.character.description) == ("Thorin Oakenshield", "King")
    # a character bound to a campaign is not deleted from under it
    with pytest.raises(CharacterInUseError):
        await campaigns.characters.delete(BOB, made.character.id)
    # leaving unbinds it; the character stays the player's
    await campaigns.leave(G1, C1, BOB)
    assert await table_count(db, CampaignCharacter) == 0
    assert (await campaigns.characters.get(BOB, made.character.id)).name == "Thorin Oakenshield"


async def test_two_characters_for_one_player_at_once_one_wins(campaigns: CampaignService, db: Database) -> None:
    await started(campaigns, BOB)
    results = await asyncio.gather(*(campaigns.create_character(G1, C1, BOB, f"Hero {n}") for n in range(4)),
                                   return_exceptions=True)
    won = [r for r in results if not isinstance(r, BaseException)]
    assert len(won) == 1, results
    assert all(isinstance(r, AlreadyHasCharacterError) for r in results if isinstance(r, BaseException)), results
    assert await table_count(db, CampaignCharacter) == 1
    assert await table_count(db, Character) == 1  # the losers' characters were rolled back with them


async def test_bind_an_existing_character_and_names_taken(campaigns: CampaignService) -> None:
    await started(campaigns, BOB)
    await started(campaigns, BOB, channel=C2)
    persona = await campaigns.characters.create(BOB, "Aragorn")
    bound = await campaigns.bind_character(G1, C1, BOB, str(persona.id))
    assert bound.character.id == persona.id
    with pytest.raises(AlreadyHasCharacterError):
        await campaigns.bind_character(G1, C1, BOB, "Aragorn")
    with pytest.raises(DuplicateCharacterError):
        await campaigns.create_character(G1, C2, BOB, "ARAGORN")
    # the same character may play in two campaigns
    assert (await campaigns.bind_character(G1, C2, BOB, "aragorn")).character.id == persona.id


async def test_list_characters(campaigns: CampaignService) -> None:
    await started(campaigns, BOB, CAROL)
    await campaigns.create_character(G1, C1, CAROL, "Zelda")
    await campaigns.create_character(G1, C1, BOB, "Anna")
    listed = await campaigns.list_characters(G1, C1)
    assert [(p.user_id, p.character.name) for p in listed] == [(BOB, "Anna"), (CAROL, "Zelda")]
    with pytest.raises(NoCharacterError):
        await campaigns.character_of(G1, C1, GM)


async def test_npcs_are_the_gms(campaigns: CampaignService, db: Database) -> None:
    await started(campaigns, BOB)
    npc = await campaigns.create_npc(G1, C1, GM, "Sildar", avatar_url="https://example.org/s.png")
    await campaigns.create_npc(G1, C1, GM, "Glasstaff")
    with pytest.raises(DuplicateNpcError):
        await campaigns.create_npc(G1, C1, GM, "SILDAR")
    with pytest.raises(NotGmError):
        await campaigns.create_npc(G1, C1, BOB, "Mine")
    with pytest.raises(NotGmError):
        await campaigns.delete_npc(G1, C1, BOB, "Sildar")
    assert [n.name for n in await campaigns.list_npcs(G1, C1)] == ["Glasstaff", "Sildar"]
    edited = await campaigns.edit_npc(G1, C1, GM, str(npc.id), name="Sildar Hallwinter", avatar_url=None)
    assert (edited.name, edited.avatar_url) == ("Sildar Hallwinter", None)
    with pytest.raises(DuplicateNpcError):
        await campaigns.edit_npc(G1, C1, GM, "glasstaff", name="Sildar Hallwinter")
    assert [n.name for n in await campaigns.suggest_npcs(G1, C1, "hall")] == ["Sildar Hallwinter"]
    await campaigns.delete_npc(G1, C1, GM, "sildar hallwinter")
    with pytest.raises(NpcNotFoundError):
        await campaigns.delete_npc(G1, C1, GM, "Sildar Hallwinter")
    assert await table_count(db, CampaignNpc) == 1


async def test_who_speaks_as_whom(campaigns: CampaignService) -> None:
    await started(campaigns, BOB)
    await started(campaigns, CAROL, channel=C2)
    thorin = await campaigns.create_character(G1, C1, BOB, "Thorin")
    npc = await campaigns.create_npc(G1, C1, GM, "Sildar")
    assert (await campaigns.speaker(G1, C1, BOB)).character_id == thorin.character.id
    assert (await campaigns.speaker(G1, C1, BOB, "thorin")).name == "Thorin"
    assert (await campaigns.speaker(G1, C1, BOB, f"char:{thorin.character.id}")).name == "Thorin"
    gm = await campaigns.speaker(G1, C1, GM, f"npc:{npc.id}")
    assert (gm.name, gm.npc_id, gm.campaign_id) == ("Sildar", npc.id, npc.campaign_id)
    assert (await campaigns.speaker(G1, C1, GM, "Sildar")).npc_id == npc.id
    with pytest.raises(NotGmError):
        await campaigns.speaker(G1, C1, BOB, f"npc:{npc.id}")
    # a player of another campaign: not a player here, and this NPC is not in their campaign
    with pytest.raises(NotPlayerError):
        await campaigns.speaker(G1, C1, CAROL, f"npc:{npc.id}")
    with pytest.raises(NoCharacterError):
        await campaigns.speaker(G1, C2, CAROL, f"npc:{npc.id}".replace("npc:", "char:"))
    await campaigns.transfer(G1, C2, GM, CAROL)  # even the GM of the other campaign can't
    with pytest.raises(NpcNotFoundError):
        await campaigns.speaker(G1, C2, CAROL, f"npc:{npc.id}")
    with pytest.raises(NoCharacterError):
        await campaigns.speaker(G1, C1, GM)
    assert [s.name for s in await campaigns.suggest_speakers(G1, C1, BOB, "")] == ["Thorin"]
    assert [s.name for s in await campaigns.suggest_speakers(G1, C1, GM, "")] == ["Sildar"]
    assert await campaigns.suggest_speakers(G1, C3, GM, "") == []


async def test_archived_is_read_only(campaigns: CampaignService) -> None:
    await started(campaigns, BOB)
    await campaigns.create_character(G1, C1, BOB, "Thorin")
    with pytest.raises(NotGmError):
        await campaigns.archive(G1, C1, BOB)
    assert (await campaigns.archive(G1, C1, GM)).archived
    for attempt in (campaigns.join(G1, C1, CAROL), campaigns.speaker(G1, C1, BOB),
                    campaigns.create_npc(G1, C1, GM, "Late"), campaigns.edit_character(G1, C1, BOB, name="X"),
                    campaigns.transfer(G1, C1, GM, BOB)):
        with pytest.raises(CampaignArchivedError):
            await attempt
    assert not (await campaigns.archive(G1, C1, GM, False)).archived
    assert (await campaigns.speaker(G1, C1, BOB)).name == "Thorin"


async def test_transfer_and_races(campaigns: CampaignService) -> None:
    await started(campaigns, BOB, CAROL)
    with pytest.raises(NotGmError):
        await campaigns.transfer(G1, C1, BOB, BOB)
    results = await asyncio.gather(campaigns.transfer(G1, C1, GM, BOB), campaigns.transfer(G1, C1, GM, CAROL),
                                   return_exceptions=True)
    won = [r for r in results if not isinstance(r, BaseException)]
    assert len(won) == 1, results
    info, old = won[0]
    assert old == GM
    assert info.gm_id not in info.players  # the new GM is no longer a player
    assert (await campaigns.get(G1, C1)).gm_id == info.gm_id


async def test_delete_takes_everything_of_the_campaign(campaigns: CampaignService, db: Database) -> None:
    campaign_id = await started(campaigns, BOB)
    made = await campaigns.create_character(G1, C1, BOB, "Thorin")
    await campaigns.create_npc(G1, C1, GM, "Sildar")
    await campaigns.record_speech(G1, campaign_id, 555, None)
    with pytest.raises(NotGmError):
        await campaigns.delete(G1, C1, BOB)
    gone = await campaigns.delete(G1, C1, GM)
    assert gone.players == (BOB,)
    for model in (Campaign, CampaignPlayer, CampaignCharacter, CampaignNpc):
        assert await table_count(db, model) == 0, model
    assert (await campaigns.characters.get(BOB, made.character.id)).name == "Thorin"  # still the player's
    await campaigns.characters.delete(BOB, made.character.id)  # and no longer held by the campaign


async def test_gm_deletes_any_message_of_their_campaign(campaigns: CampaignService) -> None:
    campaign_id = await started(campaigns, BOB)
    other = await started(campaigns, CAROL, channel=C2)
    await campaigns.transfer(G1, C2, GM, DAVE)
    await campaigns.record_speech(G1, campaign_id, 1001, None)
    await campaigns.record_speech(G1, campaign_id, 1001, None)  # recorded twice: one row
    await campaigns.record_speech(G1, other, 1002, None)
    assert await campaigns.speech_count(campaign_id) == 1
    assert (await campaigns.gm_speech(G1, 1001, GM)).campaign_id == campaign_id
    with pytest.raises(NotGmError):
        await campaigns.gm_speech(G1, 1001, BOB)
    with pytest.raises(NotGmError):
        await campaigns.gm_speech(G1, 1002, GM)  # GM of another campaign
    with pytest.raises(SpeechNotInCampaignError):
        await campaigns.gm_speech(G2, 1001, GM)  # another server sees nothing
    assert await campaigns.forget_speech(G1, [1001, 1002, 1003]) == 2


async def test_another_server_sees_nothing(campaigns: CampaignService) -> None:
    await started(campaigns, BOB)
    await campaigns.create_npc(G1, C1, GM, "Sildar")
    for attempt in (campaigns.get(G2, C1), campaigns.join(G2, C1, CAROL), campaigns.list_npcs(G2, C1),
                    campaigns.speaker(G2, C1, BOB), campaigns.delete(G2, C1, GM)):
        with pytest.raises(NoCampaignError):
            await attempt
    assert await campaigns.list_campaigns(G2) == []
    assert await campaigns.suggest_npcs(G2, C1, "") == []


async def test_privacy_export_and_forget(campaigns: CampaignService, db: Database) -> None:
    await started(campaigns, BOB)
    await campaigns.create_character(G1, C1, BOB, "Thorin")
    await campaigns.create_npc(G1, C1, GM, "Sildar")
    async with db.session(read_only=True) as s:
        exported = await PROVIDER.export_user(s, BOB)
        gm_export = await PROVIDER.export_user(s, GM)
    assert [m["campaign_id"] for m in exported["memberships"]] != []
    assert len(exported["characters"]) == 1
    assert len(gm_export["campaigns_run"]) == 1
    assert len(gm_export["npcs_created"]) == 1
    async with db.session() as s:
        report = await PROVIDER.forget_user(s, BOB)
        gm_report = await PROVIDER.forget_user(s, GM)
    assert report.deleted == {"campaign_characters": 1, "campaign_players": 1}
    assert gm_report.anonymised == {"campaigns": 1, "campaign_npcs": 1}
    info = await campaigns.get(G1, C1)
    assert (info.gm_id, info.players) == (0, ())


async def test_sessions_are_scheduler_jobs(campaigns: CampaignService) -> None:
    await started(campaigns, BOB)
    now = datetime(2027, 3, 1, 12, 0, tzinfo=UTC)
    with pytest.raises(NotGmError):
        await campaigns.schedule_session(G1, C1, BOB, "in 2 hours", now=now)
    with pytest.raises(CampaignInputError):
        await campaigns.schedule_session(G1, C1, GM, "yesterday-ish", now=now)
    with pytest.raises(CampaignInputError):
        await campaigns.schedule_session(G1, C1, GM, "2027-02-01 18:00", now=now)
    first = await campaigns.schedule_session(G1, C1, GM, "2027-03-14 18:30", now=now, note="Bring dice")
    assert (first.run_at, first.weekly, first.note) == (datetime(2027, 3, 14, 18, 30, tzinfo=UTC), False, "Bring dice")
    # a new schedule replaces the previous one: one live job per campaign
    second = await campaigns.schedule_session(G1, C1, GM, "in 2 days", now=now, weekly=True)
    assert (second.run_at, second.weekly) == (now + timedelta(days=2), True)
    assert await campaigns.next_session(G1, C1) == second
    live = await campaigns.jobs.list_jobs(kind=SESSION_JOB, status="pending")
    assert len(live) == 1
    due = await campaigns.session_due(live[0])
    assert due is not None
    assert due[0].channel_id == C1
    await campaigns.archive(G1, C1, GM)
    assert await campaigns.session_due(live[0]) is None  # archived: nothing to remind
    assert await campaigns.cancel_session(G1, C1, GM, now=now)
    assert await campaigns.next_session(G1, C1) is None
    assert not await campaigns.cancel_session(G1, C1, GM, now=now)
    await campaigns.archive(G1, C1, GM, False)
    await campaigns.schedule_session(G1, C1, GM, "in 1 hour", now=now)
    await campaigns.delete(G1, C1, GM)  # deleting the campaign cancels its session
    assert not await campaigns.jobs.list_jobs(kind=SESSION_JOB, status="pending")


async def test_speaking_as_a_persona_in_a_campaign_channel_is_for_its_players(campaigns: CampaignService) -> None:
    await started(campaigns, BOB)
    characters = campaigns.characters
    await characters.check_speak(G1, C1, BOB)
    await characters.check_speak(G1, C1, GM)
    await characters.check_speak(G1, C2, CAROL)  # no campaign there: anyone
    with pytest.raises(PermissionDeniedError, match="only its players and GM speak here"):
        await characters.check_speak(G1, C1, CAROL)
    await campaigns.archive(G1, C1, GM)
    with pytest.raises(PermissionDeniedError, match="archived"):
        await characters.check_speak(G1, C1, BOB)
    await characters.check_speak(G2, C1, CAROL)  # another server's channel of that id: not this campaign


async def test_a_thread_counts_as_its_channel_and_its_own_campaign_comes_first(campaigns: CampaignService,
                                                                               db: Database) -> None:
    thread, other_thread = 800_000_000_000_000_011, 800_000_000_000_000_012
    in_thread = (thread, C1)  # what the Discord layer passes from a thread of C1
    campaign_id = await started(campaigns, BOB)
    assert (await campaigns.get(G1, in_thread)).id == campaign_id
    assert await campaigns.find(G1, thread) is None  # the thread alone has none
    assert await campaigns.find(G2, in_thread) is None  # another server's channel of that id: not this campaign
    made = await campaigns.create_character(G1, in_thread, BOB, "Thorin")
    assert made.campaign_id == campaign_id
    npc = await campaigns.create_npc(G1, in_thread, GM, "Sildar")
    assert [n.id for n in await campaigns.suggest_npcs(G1, in_thread, "sil")] == [npc.id]
    assert (await campaigns.speaker(G1, in_thread, BOB)).campaign_id == campaign_id
    session = await campaigns.schedule_session(G1, in_thread, GM, "in 1 hour",
                                               now=datetime(2027, 3, 1, 12, 0, tzinfo=UTC))
    assert session.channel_id == C1  # the reminder goes to the campaign's channel
    # /speak in the thread is the campaign's: only its players and GM
    await campaigns.characters.check_speak(G1, in_thread, BOB)
    with pytest.raises(PermissionDeniedError, match="only its players and GM speak here"):
        await campaigns.characters.check_speak(G1, in_thread, CAROL)
    # no second campaign in a thread of a campaign's channel
    with pytest.raises(CampaignExistsError, match="thread's channel already has a campaign"):
        await campaigns.create(G1, in_thread, CAROL, "Side Game")
    assert await table_count(db, Campaign) == 1
    # a thread of a channel without a campaign may have its own, which its lookups find first
    own = await campaigns.create(G1, (other_thread, C2), CAROL, "Side Game")
    assert own.channel_id == other_thread
    parent = await campaigns.create(G1, C2, GM, "Main Game")
    assert (await campaigns.get(G1, (other_thread, C2))).id == own.id
    assert (await campaigns.get(G1, C2)).id == parent.id
