"""gacha_0002 on both databases: existing copies and listings survive, and no id is handed out twice."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import delete, func, insert, select

from guildkeep.db import Database, migrate
from guildkeep.gacha.models import AuctionListing, Esprit, UserEsprit
from guildkeep.identity.models import Guild, User

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
GUILD, USER = 7, 8


async def add_copy(db: Database) -> int:
    async with db.session() as s:
        return (await s.execute(insert(UserEsprit).values(
            guild_id=GUILD, owner_id=USER, esprit_id="kit", level=1, xp=0, current_hp=1, in_escrow=True,
            obtained_via="summon", created_at=NOW, updated_at=NOW).returning(UserEsprit.id))).scalar_one()


async def test_copies_and_listings_survive_and_ids_are_never_reused(empty_database_url: str) -> None:
    db = Database(empty_database_url)
    try:
        await migrate.upgrade(db, "gacha_0001")
        async with db.session() as s:
            await s.execute(insert(Guild).values(id=GUILD, name="g", joined_at=NOW, settings={}, created_at=NOW,
                                                 updated_at=NOW))
            await s.execute(insert(User).values(id=USER, username="u", first_seen_at=NOW, last_seen_at=NOW,
                                                created_at=NOW, updated_at=NOW))
            await s.execute(insert(Esprit).values(
                id="kit", name="Kit", description="", rarity="common", element="fire", base_hp=1, base_attack=1,
                base_defense=1, base_speed=1, base_magic=1, image="kit", in_catalogue=True, created_at=NOW,
                updated_at=NOW))
        first = await add_copy(db)
        second = await add_copy(db)
        async with db.session() as s:
            await s.execute(insert(AuctionListing).values(guild_id=GUILD, seller_id=USER, user_esprit_id=second,
                                                          price=5, currency="faylen", status="open", created_at=NOW))

        await migrate.upgrade(db)
        async with db.session(read_only=True) as s:
            assert list((await s.execute(select(UserEsprit.id).order_by(UserEsprit.id))).scalars()) == [first, second]
            assert (await s.execute(select(AuctionListing.user_esprit_id))).scalar_one() == second
        await migrate.check(db)

        async with db.session() as s:  # what a reset does: the newest copies go
            await s.execute(delete(AuctionListing))
            await s.execute(delete(UserEsprit).where(UserEsprit.id == second))
        assert await add_copy(db) > second

        await migrate.downgrade(db, "gacha_0001")
        async with db.session(read_only=True) as s:
            assert await s.scalar(select(func.count()).select_from(UserEsprit)) == 2
    finally:
        await db.dispose()
