"""Races on the same copy, on both databases: set-active against listing, and what a sale leaves behind."""

from __future__ import annotations

import asyncio

from sqlalchemy import select

from guildkeep.errors import DomainError
from guildkeep.gacha.models import Player, UserEsprit
from guildkeep.gacha.service import GachaService
from tests.gacha.conftest import GUILD, fund

SELLER, BUYER = 1, 2
ROUNDS = 40  # before the fix, about one round in eight lost the race on PostgreSQL


async def seller_active(service: GachaService) -> tuple[int | None, UserEsprit | None]:
    async with service.db.session(read_only=True) as s:
        active = (await s.execute(
            select(Player.active_esprit_id).where(Player.guild_id == GUILD, Player.user_id == SELLER)
        )).scalar_one()
        copy = await s.get(UserEsprit, active) if active is not None else None
    return active, copy


async def test_set_active_racing_a_listing_never_leaves_the_active_copy_in_escrow_nor_sold(
    service: GachaService,
) -> None:
    await service.start(GUILD, SELLER)
    await service.start(GUILD, BUYER)
    await fund(service, SELLER, 900 * 4)
    for _ in range(4):
        await service.summon(GUILD, SELLER, 10)
    both_won = 0
    for round_ in range(ROUNDS):
        copy_id = next(e.copy_id for e in await service.owned_choices(GUILD, SELLER, tradable_only=True))
        made_active, listed = await asyncio.gather(
            service.set_active(GUILD, SELLER, copy_id),
            service.list_for_sale(GUILD, SELLER, copy_id, 1, "faylen", key=f"list-{round_}"),
            return_exceptions=True,
        )
        for outcome in (made_active, listed):
            if isinstance(outcome, BaseException) and not isinstance(outcome, DomainError):
                raise outcome
        both_won += not isinstance(made_active, BaseException) and not isinstance(listed, BaseException)
        active, copy = await seller_active(service)
        assert copy is not None, f"round {round_}: no active Esprit"
        assert not copy.in_escrow, f"round {round_}: the active Esprit is at auction"
        if not isinstance(listed, BaseException):
            await service.buy(GUILD, BUYER, listed.listing_id, key=f"buy-{round_}")
            active, copy = await seller_active(service)
            assert active is None or (copy is not None and copy.owner_id == SELLER), (
                f"round {round_}: the seller's active Esprit is the buyer's copy")
        assert await service.reconcile(GUILD) == []
    assert both_won == 0


async def test_a_sale_clears_the_sellers_pointer_to_the_sold_copy(service: GachaService) -> None:
    """Whatever set the pointer (an older version, a hand edit), a sold copy never stays the seller's active one."""
    await service.start(GUILD, SELLER)
    await service.start(GUILD, BUYER)
    await service.summon(GUILD, SELLER, 1)
    copy_id = next(e.copy_id for e in await service.owned_choices(GUILD, SELLER, tradable_only=True))
    listing = await service.list_for_sale(GUILD, SELLER, copy_id, 5)
    async with service.db.session() as s:
        await s.execute(Player.__table__.update().where(Player.user_id == SELLER).values(active_esprit_id=copy_id))
    await service.buy(GUILD, BUYER, listing.listing_id)
    active, _ = await seller_active(service)
    assert active is None
    assert (await service.show(GUILD, BUYER, copy_id)).owner_id == BUYER
