"""The auction house on both databases: escrow, purchases, cancellation, racing buyers."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import func, select

from guildkeep.errors import InsufficientFundsError, NotFoundError, PermissionDeniedError, ValidationError
from guildkeep.gacha.errors import AlreadySoldError
from guildkeep.gacha.models import AuctionListing, Player
from guildkeep.gacha.privacy import ANONYMOUS_USER_ID
from guildkeep.gacha.service import GachaService
from guildkeep.privacy import PrivacyService
from tests.gacha.conftest import GUILD, fund

SELLER = 1


async def listable_copy(service: GachaService, user_id: int = SELLER) -> int:
    """A copy the player owns that is not their active Esprit."""
    await service.summon(GUILD, user_id, 1)
    inventory = await service.inventory(GUILD, user_id)
    return next(e.copy_id for e in inventory.items if not e.is_active)


async def total_money(service: GachaService, currency: str = "faylen") -> int:
    async with service.db.session(read_only=True) as s:
        column = getattr(Player, currency)
        return (await s.execute(select(func.sum(column)).where(Player.guild_id == GUILD))).scalar_one()


async def test_listing_puts_the_copy_in_escrow(service: GachaService) -> None:
    start = await service.start(GUILD, SELLER)
    copy_id = await listable_copy(service)
    listing = await service.list_for_sale(GUILD, SELLER, copy_id, 250, "faylen", key="list-1")
    assert listing.esprit.in_escrow
    assert (listing.price, listing.currency, listing.status) == (250, "faylen", "open")
    with pytest.raises(ValidationError, match="already listed"):
        await service.list_for_sale(GUILD, SELLER, copy_id, 300)
    with pytest.raises(ValidationError, match="listed at auction"):
        await service.set_active(GUILD, SELLER, copy_id)
    with pytest.raises(ValidationError, match="active Esprit"):
        await service.list_for_sale(GUILD, SELLER, start.starter.copy_id, 300)
    with pytest.raises(ValidationError, match="price"):
        await service.list_for_sale(GUILD, SELLER, start.starter.copy_id, 0)
    with pytest.raises(NotFoundError):
        await service.list_for_sale(GUILD, SELLER, 987_654, 10)
    again = await service.list_for_sale(GUILD, SELLER, copy_id, 250, "faylen", key="list-1")
    assert again.listing_id == listing.listing_id  # the retried request, not a second listing
    browse = await service.browse(GUILD)
    assert [item.listing_id for item in browse.items] == [listing.listing_id]


async def test_a_purchase_is_reported_even_if_the_listing_vanishes_before_the_reply(
    service: GachaService, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The seller is forgotten (their sold listings deleted) between the purchase's commit and its reply."""
    await service.start(GUILD, SELLER)
    await service.start(GUILD, 2)
    copy_id = await listable_copy(service)
    listing = await service.list_for_sale(GUILD, SELLER, copy_id, 300)
    commit = service._ledger.once

    async def commit_then_forget_the_seller(request, work):  # type: ignore[no-untyped-def]
        outcome = await commit(request, work)
        if request.operation == "auction_buy":
            await PrivacyService(service.db).forget_user(SELLER)
        return outcome

    monkeypatch.setattr(service._ledger, "once", commit_then_forget_the_seller)
    result = await service.buy(GUILD, 2, listing.listing_id, key="buy-vanish")
    with pytest.raises(NotFoundError):  # the listing is gone ...
        await service.listing(GUILD, listing.listing_id)
    # ... and the purchase is still reported as it happened, also when the request is delivered again.
    # The retry names the seller as the ledger now does: anonymous, since they were forgotten.
    again = await service.buy(GUILD, 2, listing.listing_id, key="buy-vanish")
    for reply, seller in ((result, SELLER), (again, ANONYMOUS_USER_ID)):
        sold = reply.listing
        assert (sold.listing_id, sold.status, sold.price) == (listing.listing_id, "sold", 300)
        assert (reply.listing.seller_id, reply.listing.buyer_id) == (seller, 2)
        assert (reply.listing.esprit.copy_id, reply.listing.esprit.owner_id) == (copy_id, 2)
        assert reply.listing.esprit.name == listing.esprit.name
        assert reply.buyer_balance == 700
    assert (await service.show(GUILD, 2, copy_id)).owner_id == 2
    assert (await service.balance(GUILD, 2)).balances["faylen"] == 700


async def test_a_purchase_moves_currency_and_ownership_together(service: GachaService) -> None:
    await service.start(GUILD, SELLER)
    await service.start(GUILD, 2)
    copy_id = await listable_copy(service)
    listing = await service.list_for_sale(GUILD, SELLER, copy_id, 400)
    seller_before = (await service.balance(GUILD, SELLER)).balances["faylen"]
    with pytest.raises(PermissionDeniedError, match="your own listing"):
        await service.buy(GUILD, SELLER, listing.listing_id)
    result = await service.buy(GUILD, 2, listing.listing_id, key="buy-1")
    assert result.buyer_balance == 600
    assert result.seller_balance == seller_before + 400
    assert result.listing.status == "sold"
    assert result.listing.esprit.owner_id == 2
    assert not result.listing.esprit.in_escrow
    # The retried request does not charge twice.
    again = await service.buy(GUILD, 2, listing.listing_id, key="buy-1")
    assert again.buyer_balance == 600
    assert again.listing == result.listing  # the same sale, seller and buyer included
    assert (await service.balance(GUILD, 2)).balances["faylen"] == 600
    # The buyer can use it; the seller no longer has it.
    assert (await service.set_active(GUILD, 2, copy_id)).is_active
    with pytest.raises(NotFoundError):
        await service.show(GUILD, SELLER, copy_id)
    await service.start(GUILD, 3)
    with pytest.raises(AlreadySoldError):
        await service.buy(GUILD, 3, listing.listing_id)
    assert (await service.browse(GUILD)).total == 0
    lines = [(e.user_id, e.currency, e.amount) for e in await service.ledger(GUILD)
             if e.operation == "auction_buy" and e.line > 0]
    assert sorted(lines, key=str) == sorted(
        [(2, "faylen", -400), (SELLER, "faylen", 400), (SELLER, None, -1), (2, None, 1)], key=str
    )


async def test_a_buyer_who_cannot_pay_leaves_the_listing_open(service: GachaService) -> None:
    await service.start(GUILD, SELLER)
    await service.start(GUILD, 2)
    listing = await service.list_for_sale(GUILD, SELLER, await listable_copy(service), 5_000)
    with pytest.raises(InsufficientFundsError):
        await service.buy(GUILD, 2, listing.listing_id)
    assert (await service.listing(GUILD, listing.listing_id)).status == "open"
    assert (await service.balance(GUILD, 2)).balances["faylen"] == 1000


async def test_cancel_returns_the_copy_from_escrow(service: GachaService) -> None:
    await service.start(GUILD, SELLER)
    await service.start(GUILD, 2)
    copy_id = await listable_copy(service)
    listing = await service.list_for_sale(GUILD, SELLER, copy_id, 100, "virelite")
    with pytest.raises(NotFoundError):
        await service.cancel_listing(GUILD, 2, listing.listing_id)  # not theirs
    cancelled = await service.cancel_listing(GUILD, SELLER, listing.listing_id)
    assert cancelled.status == "cancelled"
    assert not cancelled.esprit.in_escrow
    with pytest.raises(NotFoundError, match="withdrawn"):
        await service.buy(GUILD, 2, listing.listing_id)
    with pytest.raises(ValidationError, match="already withdrawn"):
        await service.cancel_listing(GUILD, SELLER, listing.listing_id)
    assert (await service.set_active(GUILD, SELLER, copy_id)).is_active


async def test_twenty_buyers_racing_for_one_listing_make_one_sale(service: GachaService) -> None:
    await service.start(GUILD, SELLER)
    buyers = list(range(100, 120))
    for buyer in buyers:
        await service.start(GUILD, buyer)
    copy_id = await listable_copy(service)
    listing = await service.list_for_sale(GUILD, SELLER, copy_id, 700)
    before = await total_money(service)
    async with service.db.session(read_only=True) as s:
        open_before = (await s.execute(select(func.count()).where(AuctionListing.status == "open"))).scalar_one()

    outcomes = await asyncio.gather(
        *(service.buy(GUILD, b, listing.listing_id, key=f"buy-{b}") for b in buyers), return_exceptions=True
    )
    wins = [(b, o) for b, o in zip(buyers, outcomes, strict=True) if not isinstance(o, BaseException)]
    losses = [o for o in outcomes if isinstance(o, BaseException)]
    assert len(wins) == 1
    assert len(losses) == 19
    assert all(isinstance(o, AlreadySoldError) for o in losses)
    assert "already been sold" in losses[0].message
    winner, _ = wins[0]

    assert await total_money(service) == before  # money moved, none created or lost
    for buyer in buyers:
        expected = 300 if buyer == winner else 1000
        assert (await service.balance(GUILD, buyer)).balances["faylen"] == expected
    assert (await service.show(GUILD, winner, copy_id)).owner_id == winner
    async with service.db.session(read_only=True) as s:
        open_after = (await s.execute(select(func.count()).where(AuctionListing.status == "open"))).scalar_one()
    assert (open_before, open_after) == (1, 0)


async def test_crossing_purchases_do_not_deadlock(service: GachaService) -> None:
    await service.start(GUILD, 1)
    await service.start(GUILD, 2)
    await fund(service, 1, 10_000)
    await fund(service, 2, 10_000)
    a = await service.list_for_sale(GUILD, 1, await listable_copy(service, 1), 10)
    b = await service.list_for_sale(GUILD, 2, await listable_copy(service, 2), 20)
    before = await total_money(service)
    await asyncio.gather(service.buy(GUILD, 2, a.listing_id), service.buy(GUILD, 1, b.listing_id))
    assert await total_money(service) == before
    # a summon, a purchase, a sale
    assert (await service.balance(GUILD, 1)).balances["faylen"] == 10_000 - 100 - 20 + 10
