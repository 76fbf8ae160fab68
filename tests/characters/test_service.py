"""The characters service on SQLite and PostgreSQL: every rule and operation."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import func, select

from guildkeep.characters.errors import (
    AvatarError,
    CharacterHiddenError,
    CharacterNameError,
    CharacterNotFoundError,
    DuplicateCharacterError,
    NotCharacterOwnerError,
    NotSpeakerError,
    SpeechNotFoundError,
    TooManyCharactersError,
)
from guildkeep.characters.models import Character, CharacterGuildOverride, CharacterSpeech
from guildkeep.characters.service import CharacterService
from guildkeep.db import Database
from guildkeep.privacy import PrivacyService

GUILD = 111_111_111_111_111_111
OTHER_GUILD = 222_222_222_222_222_222
ALICE, BOB, CAROL = 1001, 1002, 1003


@pytest.fixture
def service(db: Database) -> CharacterService:
    return CharacterService(db)


async def count(db: Database, model: type) -> int:
    async with db.session(read_only=True) as s:
        return int(await s.scalar(select(func.count()).select_from(model)) or 0)


# -- create / edit / delete -----------------------------------------------------------------------


async def test_create_stores_a_global_character_owned_by_its_creator(service: CharacterService) -> None:
    made = await service.create(ALICE, "  Gandalf   the Grey ", avatar_url="https://example.com/g.png",
                                description="A wizard.", public=True, guild_id=GUILD)
    assert (made.owner_id, made.name, made.avatar_url, made.description, made.is_public) == (
        ALICE, "Gandalf the Grey", "https://example.com/g.png", "A wizard.", True)
    assert made.created_at.tzinfo is not None
    assert made.updated_at >= made.created_at
    # global: the same character from another server, without any override
    seen = await service.get(ALICE, made.id, guild_id=OTHER_GUILD)
    assert seen.name == "Gandalf the Grey"
    assert seen.override is None


@pytest.mark.parametrize("name", ["", "x" * 81, "Clyde", "my discord pal", "everyone", "Here", "a\u200bb"])
async def test_create_refuses_bad_names_and_stores_nothing(service: CharacterService, db: Database,
                                                           name: str) -> None:
    with pytest.raises(CharacterNameError):
        await service.create(ALICE, name)
    assert await count(db, Character) == 0


async def test_create_refuses_a_non_http_avatar_and_stores_nothing(service: CharacterService, db: Database) -> None:
    with pytest.raises(AvatarError, match="https://"):
        await service.create(ALICE, "Frodo", avatar_url="file:///etc/passwd")
    assert await count(db, Character) == 0


async def test_names_are_unique_per_owner_whatever_the_case(service: CharacterService) -> None:
    await service.create(ALICE, "Gandalf")
    with pytest.raises(DuplicateCharacterError, match="already have a character called"):
        await service.create(ALICE, "GANDALF")
    other = await service.create(BOB, "gandalf")  # another owner may use the name
    assert other.owner_id == BOB


async def test_two_racing_creates_of_one_name_make_one_character(service: CharacterService, db: Database) -> None:
    results = await asyncio.gather(*(service.create(ALICE, "Samwise") for _ in range(4)), return_exceptions=True)
    assert sum(1 for r in results if not isinstance(r, BaseException)) == 1
    assert all(isinstance(r, DuplicateCharacterError) for r in results if isinstance(r, BaseException))
    assert await count(db, Character) == 1


async def test_an_owner_has_a_bounded_number_of_characters(db: Database) -> None:
    service = CharacterService(db, max_per_owner=2)
    await service.create(ALICE, "One")
    await service.create(ALICE, "Two")
    with pytest.raises(TooManyCharactersError, match="2 characters"):
        await service.create(ALICE, "Three")
    await service.create(BOB, "Three")


async def test_edit_changes_only_what_is_given_and_only_for_the_owner(service: CharacterService) -> None:
    made = await service.create(ALICE, "Aragorn", description="Ranger", public=True)
    edited = await service.edit(ALICE, made.id, name="Strider", avatar_url="https://example.com/s.png")
    assert (edited.name, edited.description, edited.avatar_url, edited.is_public) == (
        "Strider", "Ranger", "https://example.com/s.png", True)
    assert edited.updated_at >= made.updated_at
    with pytest.raises(NotCharacterOwnerError):
        await service.edit(BOB, made.id, name="Stolen")
    cleared = await service.edit(ALICE, made.id, avatar_url=None, public=False)
    assert (cleared.avatar_url, cleared.is_public) == (None, False)
    with pytest.raises(CharacterNotFoundError):  # private now: Bob is not told it exists
        await service.edit(BOB, made.id, name="Stolen")
    assert (await service.get(ALICE, made.id)).name == "Strider"


async def test_edit_to_a_taken_or_bad_name_changes_nothing(service: CharacterService) -> None:
    await service.create(ALICE, "Merry")
    pippin = await service.create(ALICE, "Pippin")
    with pytest.raises(DuplicateCharacterError):
        await service.edit(ALICE, pippin.id, name="merry", description="changed")
    with pytest.raises(CharacterNameError):
        await service.edit(ALICE, pippin.id, name="Clyde", description="changed")
    assert (await service.get(ALICE, pippin.id)).description == ""


async def test_delete_is_for_the_owner_and_keeps_the_speech_log(service: CharacterService, db: Database) -> None:
    made = await service.create(ALICE, "Boromir", public=True)
    await service.set_override(ALICE, made.id, GUILD, nickname="Captain")
    await service.record_speech(message_id=5, guild_id=GUILD, channel_id=7, webhook_id=9, speaker_id=ALICE,
                                character_id=made.id, character_name="Captain")
    with pytest.raises(NotCharacterOwnerError):
        await service.delete(BOB, made.id)
    gone = await service.delete(ALICE, made.id)
    assert gone.name == "Boromir"
    with pytest.raises(CharacterNotFoundError):
        await service.get(ALICE, made.id)
    assert await count(db, CharacterGuildOverride) == 0
    speech = await service.speech(GUILD, 5)
    assert (speech.speaker_id, speech.character_id, speech.character_name) == (ALICE, None, "Captain")


# -- visibility -------------------------------------------------------------------------------------


async def test_private_characters_are_invisible_to_others(service: CharacterService) -> None:
    secret = await service.create(ALICE, "Secret Agent")
    assert (await service.get(ALICE, secret.id)).name == "Secret Agent"
    with pytest.raises(CharacterNotFoundError):
        await service.get(BOB, secret.id)
    with pytest.raises(CharacterNotFoundError):
        await service.resolve(BOB, "Secret Agent")
    with pytest.raises(CharacterNotFoundError):
        await service.resolve(BOB, str(secret.id))
    assert await service.suggest(BOB, "secret", owned_only=False) == []
    assert (await service.list_public(ALICE, guild_id=GUILD)).items == []


async def test_public_characters_are_visible_to_anyone(service: CharacterService) -> None:
    hero = await service.create(ALICE, "Hero", public=True)
    assert (await service.get(BOB, hero.id, guild_id=GUILD)).name == "Hero"
    assert (await service.resolve(BOB, "hero")).id == hero.id
    assert [c.id for c in await service.suggest(BOB, "er", owned_only=False)] == [hero.id]
    assert [c.id for c in (await service.list_public(ALICE, guild_id=GUILD)).items] == [hero.id]


async def test_resolve_prefers_the_viewers_own_character(service: CharacterService) -> None:
    await service.create(ALICE, "Twin", public=True)
    mine = await service.create(BOB, "Twin")
    assert (await service.resolve(BOB, "twin")).id == mine.id
    await service.create(CAROL, "Twin", public=True)
    with pytest.raises(CharacterNotFoundError, match="Several people"):
        await service.resolve(1004, "Twin")


async def test_resolve_owned_only_refuses_someone_elses_public_character(service: CharacterService) -> None:
    hero = await service.create(ALICE, "Hero", public=True)
    with pytest.raises(NotCharacterOwnerError):
        await service.resolve(BOB, str(hero.id), owned_only=True)
    with pytest.raises(CharacterNotFoundError, match="You have no character called"):
        await service.resolve(BOB, "Hero", owned_only=True)


# -- per-server overrides -----------------------------------------------------------------------------


async def test_a_server_override_changes_the_name_and_avatar_there_only(service: CharacterService) -> None:
    made = await service.create(ALICE, "Legolas", avatar_url="https://example.com/l.png", public=True)
    here = await service.set_override(ALICE, made.id, GUILD, nickname="Greenleaf",
                                      avatar_url="https://example.com/g.png")
    assert (here.display_name, here.display_avatar_url) == ("Greenleaf", "https://example.com/g.png")
    assert here.override is not None
    assert here.override.guild_id == GUILD
    there = await service.get(BOB, made.id, guild_id=OTHER_GUILD)
    assert (there.display_name, there.display_avatar_url, there.override) == (
        "Legolas", "https://example.com/l.png", None)
    everywhere = await service.get(ALICE, made.id)
    assert everywhere.override is None
    listed = (await service.list_owned(ALICE, guild_id=OTHER_GUILD)).items
    assert [c.display_name for c in listed] == ["Legolas"]
    only_one = await service.set_override(ALICE, made.id, GUILD, avatar_url=None)  # keeps the nickname
    assert (only_one.display_name, only_one.display_avatar_url) == ("Greenleaf", "https://example.com/l.png")
    reset = await service.clear_override(ALICE, made.id, GUILD)
    assert (await service.get(ALICE, reset.id, guild_id=GUILD)).display_name == "Legolas"


async def test_overrides_follow_the_name_rules_and_the_owner(service: CharacterService, db: Database) -> None:
    made = await service.create(ALICE, "Gimli", public=True)
    with pytest.raises(CharacterNameError, match="clyde"):
        await service.set_override(ALICE, made.id, GUILD, nickname="clyde")
    with pytest.raises(NotCharacterOwnerError):
        await service.set_override(BOB, made.id, GUILD, nickname="Mine")
    assert await count(db, CharacterGuildOverride) == 0


async def test_hidden_on_one_server_hides_it_there_only(service: CharacterService) -> None:
    made = await service.create(ALICE, "Ghost", public=True)
    await service.set_override(ALICE, made.id, GUILD, hidden=True)
    with pytest.raises(CharacterNotFoundError):
        await service.get(BOB, made.id, guild_id=GUILD)
    assert (await service.get(BOB, made.id, guild_id=OTHER_GUILD)).name == "Ghost"
    assert (await service.list_public(ALICE, guild_id=GUILD)).items == []
    assert len((await service.list_public(ALICE, guild_id=OTHER_GUILD)).items) == 1
    # the owner still sees it (flagged) and can't speak as it there
    assert (await service.get(ALICE, made.id, guild_id=GUILD)).hidden
    with pytest.raises(CharacterHiddenError):
        await service.speaker_identity(ALICE, "Ghost", GUILD)
    assert (await service.speaker_identity(ALICE, "Ghost", OTHER_GUILD)).id == made.id
    assert await service.suggest(ALICE, "gh", guild_id=GUILD, speakable=True) == []
    assert [c.id for c in await service.suggest(ALICE, "gh", guild_id=GUILD)] == [made.id]


async def test_another_servers_override_is_never_returned(service: CharacterService) -> None:
    made = await service.create(ALICE, "Sauron", public=True)
    await service.set_override(ALICE, made.id, OTHER_GUILD, nickname="Annatar", hidden=False)
    for info in [await service.get(ALICE, made.id, guild_id=GUILD),
                 (await service.list_owned(ALICE, guild_id=GUILD)).items[0],
                 (await service.suggest(ALICE, "sau", guild_id=GUILD))[0],
                 await service.resolve(BOB, "Sauron", guild_id=GUILD)]:
        assert info.override is None
        assert info.display_name == "Sauron"


# -- listing and suggestions ---------------------------------------------------------------------------


async def test_list_owned_pages_by_name(service: CharacterService) -> None:
    for name in ["delta", "Alpha", "charlie", "Bravo", "echo"]:
        await service.create(ALICE, name)
    first = await service.list_owned(ALICE, page=1, per_page=2)
    assert ([c.name for c in first.items], first.page, first.pages, first.total) == (["Alpha", "Bravo"], 1, 3, 5)
    last = await service.list_owned(ALICE, page=9, per_page=2)
    assert ([c.name for c in last.items], last.page) == (["echo"], 3)
    assert (await service.list_owned(BOB)).total == 0


async def test_suggestions_are_at_most_25_own_first_prefix_first(service: CharacterService) -> None:
    for n in range(30):
        await service.create(ALICE, f"Guard {n:02d}")
    await service.create(BOB, "Old Guard", public=True)
    await service.create(ALICE, "Vanguard")
    assert len(await service.suggest(ALICE, "")) == 25
    found = await service.suggest(ALICE, "guard", owned_only=False)
    assert len(found) == 25
    assert all(c.owner_id == ALICE for c in found)
    assert found[0].name == "Guard 00"
    bob_view = await service.suggest(BOB, "GUARD", owned_only=False)
    assert bob_view[0].name == "Old Guard"
    assert len(bob_view) == 1
    assert await service.suggest(ALICE, "%") == []  # LIKE wildcards are literal


# -- speech log ------------------------------------------------------------------------------------------


async def test_speech_is_logged_without_content_and_scoped_to_its_server(service: CharacterService) -> None:
    made = await service.create(ALICE, "Bard")
    logged = await service.record_speech(message_id=42, guild_id=GUILD, channel_id=7, webhook_id=9,
                                         speaker_id=ALICE, character_id=made.id, character_name="Bard")
    again = await service.record_speech(message_id=42, guild_id=GUILD, channel_id=7, webhook_id=9,
                                        speaker_id=ALICE, character_id=made.id, character_name="Bard")
    assert logged == again
    assert (logged.speaker_id, logged.character_name, logged.channel_id) == (ALICE, "Bard", 7)
    assert not hasattr(logged, "content")
    assert (await service.speech(GUILD, 42)).speaker_id == ALICE
    assert await service.speaker_of(GUILD, 42) == ALICE
    with pytest.raises(SpeechNotFoundError):
        await service.speech(OTHER_GUILD, 42)  # another server can't look it up
    assert await service.speaker_of(OTHER_GUILD, 42) is None
    assert await service.speaker_of(GUILD, 43) is None


async def test_only_the_speaker_may_edit_or_delete(service: CharacterService) -> None:
    await service.record_speech(message_id=42, guild_id=GUILD, channel_id=7, webhook_id=9, speaker_id=ALICE,
                                character_id=None, character_name="Bard")
    assert (await service.own_speech(GUILD, 42, ALICE)).message_id == 42
    with pytest.raises(NotSpeakerError):
        await service.own_speech(GUILD, 42, BOB)
    with pytest.raises(SpeechNotFoundError):
        await service.own_speech(OTHER_GUILD, 42, ALICE)


async def test_last_speech_is_the_speakers_latest_in_that_channel(service: CharacterService) -> None:
    for mid, channel, who in [(10, 7, ALICE), (11, 7, ALICE), (12, 8, ALICE), (13, 7, BOB)]:
        await service.record_speech(message_id=mid, guild_id=GUILD, channel_id=channel, webhook_id=9,
                                    speaker_id=who, character_id=None, character_name="X")
    assert (await service.last_speech(GUILD, 7, ALICE)).message_id == 11
    with pytest.raises(SpeechNotFoundError, match="not posted"):
        await service.last_speech(GUILD, 9, ALICE)
    with pytest.raises(SpeechNotFoundError):
        await service.last_speech(OTHER_GUILD, 7, ALICE)


async def test_forget_speech_drops_deleted_messages_of_that_server_only(service: CharacterService,
                                                                        db: Database) -> None:
    for mid, guild in [(1, GUILD), (2, GUILD), (3, OTHER_GUILD)]:
        await service.record_speech(message_id=mid, guild_id=guild, channel_id=7, webhook_id=9, speaker_id=ALICE,
                                    character_id=None, character_name="X")
    assert await service.forget_speech(GUILD, [1, 3, 99]) == 1
    assert await service.forget_speech(GUILD, []) == 0
    assert await count(db, CharacterSpeech) == 2
    assert await service.speaker_of(OTHER_GUILD, 3) == ALICE


# -- privacy ---------------------------------------------------------------------------------------------


async def test_export_user_holds_their_characters_overrides_and_speech(service: CharacterService,
                                                                       db: Database) -> None:
    made = await service.create(ALICE, "Exported", description="mine", guild_id=GUILD)
    await service.set_override(ALICE, made.id, GUILD, nickname="Local")
    await service.create(BOB, "Not Alice's")
    await service.record_speech(message_id=77, guild_id=GUILD, channel_id=7, webhook_id=9, speaker_id=ALICE,
                                character_id=made.id, character_name="Local")
    data = await service.export_user(ALICE)
    [character] = data["characters"]
    assert (character["name"], character["description"], character["origin_guild_id"]) == ("Exported", "mine", GUILD)
    [override] = character["server_overrides"]
    assert {k: override[k] for k in ("guild_id", "nickname", "avatar_url", "hidden")} == {
        "guild_id": GUILD, "nickname": "Local", "avatar_url": None, "hidden": False}
    assert [(r["message_id"], r["character_name"]) for r in data["speech"]] == [(77, "Local")]
    assert "content" not in data["speech"][0]
    assert (await PrivacyService(db).export_user(ALICE))["data"]["characters"] == data  # one code path
    assert await service.export_user(CAROL) == {"characters": [], "speech": []}


async def test_forget_user_leaves_no_row_of_theirs(service: CharacterService, db: Database) -> None:
    made = await service.create(ALICE, "Forgotten", public=True)
    await service.set_override(ALICE, made.id, GUILD, hidden=True)
    await service.set_override(ALICE, made.id, OTHER_GUILD, nickname="There")
    await service.record_speech(message_id=1, guild_id=GUILD, channel_id=7, webhook_id=9, speaker_id=ALICE,
                                character_id=made.id, character_name="Forgotten")
    kept = await service.create(BOB, "Stays")
    await service.record_speech(message_id=2, guild_id=GUILD, channel_id=7, webhook_id=9, speaker_id=BOB,
                                character_id=kept.id, character_name="Stays")
    assert await service.forget_user(ALICE) == {"characters": 1, "character_guild_overrides": 2,
                                                "character_speech": 1}
    async with db.session(read_only=True) as s:
        assert await s.scalar(select(func.count()).select_from(Character).where(Character.owner_id == ALICE)) == 0
        assert await s.scalar(select(func.count()).select_from(CharacterSpeech)
                              .where(CharacterSpeech.speaker_id == ALICE)) == 0
    assert await count(db, CharacterGuildOverride) == 0
    assert await service.speaker_of(GUILD, 2) == BOB
    assert await service.export_user(ALICE) == {"characters": [], "speech": []}


@pytest.mark.parametrize("ref", ["9999999999999999999999999", "①", "²", "٣"])
async def test_resolving_an_odd_number_is_a_clear_not_found(service: CharacterService, ref: str) -> None:
    await service.create(ALICE, "Gandalf", public=True, guild_id=GUILD)
    with pytest.raises(CharacterNotFoundError):
        await service.resolve(ALICE, ref, guild_id=GUILD)
