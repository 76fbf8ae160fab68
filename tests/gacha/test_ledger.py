"""The ledger reconciles: after a concurrent mixed workload, ledger sums equal balances and ownership."""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections import defaultdict

from sqlalchemy import select

from guildkeep.errors import DomainError
from guildkeep.gacha.models import LedgerEntry, Player, UserEsprit
from guildkeep.gacha.service import GachaService
from tests.gacha.conftest import ADMIN, GUILD

PLAYERS = range(1, 7)


async def act(service: GachaService, rng: random.Random, user: int, step: int) -> None:
    choice = rng.random()
    key = f"{user}-{step}"
    if choice < 0.25:
        await service.summon(GUILD, user, rng.choice((1, 10)), key=key)
    elif choice < 0.35:
        await service.daily(GUILD, user, key=key)
    elif choice < 0.5:
        await service.grant(GUILD, ADMIN, user, amount=rng.randint(-300, 600), currency="faylen", reason="r", key=key)
    elif choice < 0.7:
        owned = await service.owned_choices(GUILD, user, tradable_only=True)
        if owned:
            await service.list_for_sale(GUILD, user, rng.choice(owned).copy_id, rng.randint(1, 400), key=key)
    elif choice < 0.9:
        listings = (await service.browse(GUILD, page_size=25)).items
        if listings:
            await service.buy(GUILD, user, rng.choice(listings).listing_id, key=key)
    else:
        mine = (await service.browse(GUILD, seller_id=user, page_size=25)).items
        if mine:
            await service.cancel_listing(GUILD, user, mine[0].listing_id, key=key)


async def worker(service: GachaService, user: int, seed: int) -> None:
    rng = random.Random(seed)
    for step in range(15):
        state = rng.getstate()
        with contextlib.suppress(DomainError):  # refusals are part of the workload
            await act(service, rng, user, step)
        if rng.random() < 0.3:  # the same request delivered again: must change nothing
            again = random.Random()
            again.setstate(state)
            with contextlib.suppress(DomainError):
                await act(service, again, user, step)


async def test_ledger_sums_equal_balances_and_owners_after_a_concurrent_workload(service: GachaService) -> None:
    for user in PLAYERS:
        await service.start(GUILD, user)
    await asyncio.gather(*(worker(service, user, seed=user * 7) for user in PLAYERS))
    # However the workload's races fell, one sale is raced by every other player: exactly one buyer wins.
    tradable = {user: await service.owned_choices(GUILD, user, tradable_only=True) for user in PLAYERS}
    seller = next(user for user in PLAYERS if tradable[user])
    copy = tradable[seller][0]
    listing = await service.list_for_sale(GUILD, seller, copy.copy_id, 1, key="raced-sale")

    async def try_buy(buyer: int) -> bool:
        try:
            await service.buy(GUILD, buyer, listing.listing_id, key=f"raced-buy-{buyer}")
        except DomainError:
            return False
        return True

    wins = await asyncio.gather(*(try_buy(user) for user in PLAYERS if user != seller))
    assert sum(wins) == 1

    async with service.db.session(read_only=True) as s:
        lines = (await s.execute(select(LedgerEntry).where(LedgerEntry.line > 0))).scalars().all()
        players = (await s.execute(select(Player))).scalars().all()
        copies = (await s.execute(select(UserEsprit))).scalars().all()
    money: dict[tuple[int, str], int] = defaultdict(int)
    owned: dict[tuple[int, int], int] = defaultdict(int)
    for line in lines:
        if line.currency is not None:
            money[line.user_id, line.currency] += line.amount
        elif line.user_esprit_id is not None:
            owned[line.user_id, line.user_esprit_id] += line.amount
    for player in players:
        for currency in ("faylen", "virelite", "gems"):
            assert getattr(player, currency) == money[player.user_id, currency], (player.user_id, currency)
            assert 0 <= getattr(player, currency) <= service.config.settings.balance_max
    for copy in copies:
        assert owned[copy.owner_id, copy.id] == 1
    assert sum(owned.values()) == len(copies)
    assert sum(1 for line in lines if line.operation == "auction_buy") > 0
