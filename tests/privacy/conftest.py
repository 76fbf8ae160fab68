"""A world where two players have rows in every module, on each backend."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import timedelta

import pytest
from sqlalchemy import insert

from guildkeep.db import Base, Database, utcnow
from guildkeep.gacha.config import load_config
from guildkeep.gacha.service import GachaService
from guildkeep.identity.service import IdentityService
from guildkeep.leveling.models import Achievement, Card, Level, Quest, UserAchievement, UserQuest
from guildkeep.scheduler.service import SchedulerService

GUILD = 710_000_000_000_000_001
OTHER_GUILD = 710_000_000_000_000_002
ANN = 730_000_000_000_000_011  # the player who asks to be forgotten
BOB = 730_000_000_000_000_012  # the player who stays
ADMIN = 730_000_000_000_000_099


@dataclass
class World:
    db: Database
    gacha: GachaService
    open_listing: int = 0
    sold_listing: int = 0
    bought_listing: int = 0
    bob_bought_copy: int = 0
    ann_bought_copy: int = 0
    quest_by_ann: int = 0
    copies: dict[int, list[int]] = field(default_factory=dict)


async def seed_leveling(db: Database, user_id: int, quest_id: int, achievement_id: int, xp: int) -> None:
    async with db.session() as s:
        await s.execute(insert(Level).values(guild_id=GUILD, user_id=user_id, xp=xp, level=3, messages=12,
                                             total_messages=40, last_message_time=utcnow(),
                                             created_at=utcnow(), updated_at=utcnow()))
        await s.execute(insert(UserQuest).values(guild_id=GUILD, user_id=user_id, quest_id=quest_id, progress=4,
                                                 quest_specific_progress=4))
        await s.execute(insert(UserAchievement).values(guild_id=GUILD, user_id=user_id,
                                                       achievement_id=achievement_id, earned_at=utcnow()))
        await s.execute(insert(Card).values(guild_id=GUILD, user_id=user_id, primary_color="#123456",
                                            card_style="minimal"))
        grants = Base.metadata.tables.get("leveling_role_grants")  # level roles the bot gave, where the schema has it
        if grants is not None:
            await s.execute(insert(grants).values(guild_id=GUILD, user_id=user_id, role_id=4242, granted_at=utcnow()))


async def seed_characters(db: Database, user_id: int, message_id: int) -> None:
    """A character with a server override and one logged message, where the schema has characters."""
    tables = Base.metadata.tables
    if "characters" not in tables:
        return
    characters, overrides, speech = (tables[n] for n in ("characters", "character_guild_overrides",
                                                         "character_speech"))
    now = utcnow()
    async with db.session() as s:
        character_id = (await s.execute(insert(characters).values(
            owner_id=user_id, name=f"Hero of {user_id}", name_key=f"hero of {user_id}", description="brave",
            is_public=True, origin_guild_id=GUILD, created_at=now, updated_at=now,
        ).returning(characters.c.id))).scalar_one()
        await s.execute(insert(overrides).values(character_id=character_id, guild_id=GUILD, nickname="Nick",
                                                 hidden=False, created_at=now, updated_at=now))
        await s.execute(insert(speech).values(message_id=message_id, guild_id=GUILD, channel_id=5, webhook_id=6,
                                              speaker_id=user_id, character_id=character_id,
                                              character_name="Nick", created_at=now))


@pytest.fixture
async def world(db: Database) -> World:
    gacha = GachaService(db, load_config(), rng=random.Random(7))
    await gacha.seed_catalogue()
    w = World(db, gacha)
    identity = IdentityService(db)
    for user, name in ((ANN, "ann"), (BOB, "bob"), (ADMIN, "admin")):
        await identity.get_or_create_user(user, name, f"{name.title()} Display")
        await identity.upsert_member(GUILD, user, nickname=f"{name}-nick", roles=[1, 2])
    await identity.upsert_member(OTHER_GUILD, ANN, nickname="ann-elsewhere")
    await identity.set_custom_name(ANN, "Annie")

    # Leveling: a quest Ann authored, an achievement, and each player's XP, progress, badge and card.
    async with db.session() as s:
        w.quest_by_ann = (await s.execute(insert(Quest).values(
            guild_id=GUILD, name="Chatterbox", quest_type="daily", requirement_type="total_messages",
            requirement_value=10, reward_xp=50, created_by=ANN, created_at=utcnow(),
        ).returning(Quest.id))).scalar_one()
        achievement = (await s.execute(insert(Achievement).values(
            guild_id=GUILD, name="First Words", requirement_type="messages", requirement_value=1,
            created_at=utcnow(),
        ).returning(Achievement.id))).scalar_one()
    await seed_leveling(db, ANN, w.quest_by_ann, achievement, 1234)
    await seed_leveling(db, BOB, w.quest_by_ann, achievement, 777)
    await seed_characters(db, ANN, 9001)
    await seed_characters(db, BOB, 9002)

    # Gacha: both play here, Ann also in another server; trades both ways, an open listing, a grant by Ann.
    await gacha.start(GUILD, ANN)
    await gacha.start(GUILD, BOB)
    await gacha.start(OTHER_GUILD, ANN)
    await gacha.grant(GUILD, ADMIN, ANN, amount=3000, currency="faylen", reason="event prize")
    await gacha.grant(GUILD, ADMIN, BOB, amount=1000, currency="faylen", reason="event prize")
    await gacha.summon(GUILD, ANN, 10)
    await gacha.summon(GUILD, BOB, 1)
    ann_copies = [c.copy_id for c in await gacha.owned_choices(GUILD, ANN, tradable_only=True)]
    bob_copies = [c.copy_id for c in await gacha.owned_choices(GUILD, BOB, tradable_only=True)]
    w.open_listing = (await gacha.list_for_sale(GUILD, ANN, ann_copies[0], 50)).listing_id
    w.sold_listing = (await gacha.list_for_sale(GUILD, ANN, ann_copies[1], 70)).listing_id
    await gacha.buy(GUILD, BOB, w.sold_listing)
    w.bob_bought_copy = ann_copies[1]
    w.bought_listing = (await gacha.list_for_sale(GUILD, BOB, bob_copies[0], 30)).listing_id
    await gacha.buy(GUILD, ANN, w.bought_listing)
    w.ann_bought_copy = bob_copies[0]
    await gacha.grant(GUILD, ANN, BOB, amount=5, currency="gems", reason="thanks for the trade")

    # Scheduler: a job about each player, and one about nobody.
    scheduler = SchedulerService(db)
    now = utcnow()
    await scheduler.schedule("test.remind", now + timedelta(days=1), now=now, guild_id=GUILD,
                             payload={"user_id": ANN, "text": "birthday"})
    await scheduler.schedule("test.remind", now + timedelta(days=1), now=now, guild_id=GUILD,
                             payload={"user_ids": [str(BOB)], "text": "raid"})
    await scheduler.schedule("test.tick", now + timedelta(days=1), now=now, payload={})
    return w
