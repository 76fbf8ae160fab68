"""Bad input to the leveling service is refused with a player-readable message and stores nothing, on both
databases (PostgreSQL refuses NUL in text; SQLite would store it: both refuse it the same way here)."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from guildkeep.db import Database
from guildkeep.errors import NotFoundError, ValidationError
from guildkeep.identity.service import IdentityService
from guildkeep.leveling.models import Achievement, Quest, ServerConfig
from guildkeep.leveling.service import LevelingService

G, A = 1001, 11


@pytest.fixture
def svc(db: Database) -> LevelingService:
    return LevelingService(db)


async def count(db: Database, model: type) -> int:
    async with db.session(read_only=True) as s:
        return await s.scalar(select(func.count()).select_from(model)) or 0


@pytest.mark.parametrize("name", ["Nul\x00quest", "bell\x07", "\x00"])
async def test_a_quest_name_with_a_control_character_is_refused(svc: LevelingService, db: Database,
                                                                 name: str) -> None:
    with pytest.raises(ValidationError, match="The quest name can't contain control characters"):
        await svc.create_quest(G, name, "", "special", "total_messages", 5, 10)
    assert await count(db, Quest) == 0


async def test_a_quest_description_with_nul_is_refused_but_newlines_are_kept(svc: LevelingService,
                                                                              db: Database) -> None:
    with pytest.raises(ValidationError, match="The description can't contain control characters"):
        await svc.create_quest(G, "Quest", "bad\x00text", "special", "total_messages", 5, 10)
    assert await count(db, Quest) == 0
    made = await svc.create_quest(G, "Quest", "line one\nline two", "special", "total_messages", 5, 10)
    assert made.description == "line one\nline two"


async def test_an_overlong_description_is_refused_not_cut(svc: LevelingService, db: Database) -> None:
    with pytest.raises(ValidationError, match="at most 1,000 characters"):
        await svc.create_quest(G, "Quest", "x" * 4000, "special", "total_messages", 5, 10)
    assert await count(db, Quest) == 0


async def test_achievement_text_is_checked(svc: LevelingService, db: Database) -> None:
    with pytest.raises(ValidationError, match="The achievement name can't contain control characters"):
        await svc.create_achievement(G, "Badge\x00", "", "level", 5)
    with pytest.raises(ValidationError, match="The image link can't contain control characters"):
        await svc.create_achievement(G, "Badge", "", "level", 5, badge_url="https://x.test/\x00.png")
    assert await count(db, Achievement) == 0


async def test_a_level_up_message_with_nul_is_refused(svc: LevelingService, db: Database) -> None:
    with pytest.raises(ValidationError, match="The level-up message can't contain control characters"):
        await svc.update_server_config(G, "level_up_message", "GG {mention}\x00")
    assert await count(db, ServerConfig) == 0


async def test_echoed_input_is_short(svc: LevelingService) -> None:
    with pytest.raises(ValidationError) as bad_colour:
        await svc.update_card(G, A, text_color="x" * 2500)
    assert len(bad_colour.value.message) < 200
    with pytest.raises(ValidationError) as bad_key:
        await svc.update_server_config(G, "y" * 2500, 1)
    assert len(bad_key.value.message) < 1000
    with pytest.raises(ValidationError) as bad_placeholder:
        await svc.update_server_config(G, "level_up_message", "{" + "z" * 900 + "}")
    assert len(bad_placeholder.value.message) < 200


async def test_identity_names_from_discord_lose_control_characters(db: Database) -> None:
    identity = IdentityService(db)
    user = await identity.get_or_create_user(5, username="na\x00me", display_name="Dis\x00play")
    assert (user.username, user.discord_display_name) == ("name", "Display")
    guild = await identity.get_or_create_guild(7, "Ser\x00ver")
    assert guild.name == "Server"
    with pytest.raises(ValidationError, match="A custom name can't contain control characters"):
        await identity.set_custom_name(5, "Cap\x00tain")
    assert (await identity.get_user(5)).custom_name is None
    assert (await identity.set_custom_name(5, "  ")).custom_name is None


@pytest.mark.parametrize("quest_id", [0, -5, 2**63, 10**30])
async def test_ending_a_quest_id_out_of_any_range_is_not_found(svc: LevelingService, quest_id: int) -> None:
    with pytest.raises(NotFoundError, match="no quest with that id"):
        await svc.end_quest(G, quest_id)
