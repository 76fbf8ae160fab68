"""The gacha service on both databases: onboarding, wallet, daily, summons, collection, admin."""

from __future__ import annotations

import asyncio
import json
import random
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from guildkeep.db import utcnow
from guildkeep.errors import InsufficientFundsError, NotFoundError, ValidationError
from guildkeep.gacha.config import DATA_DIR, load_config
from guildkeep.gacha.errors import AlreadyStartedError, DailyNotReadyError, NotStartedError
from guildkeep.gacha.models import Esprit, LedgerEntry, Player, UserEsprit
from guildkeep.gacha.service import GachaService
from tests.gacha.conftest import ADMIN, GUILD, OTHER_GUILD, fund


async def count(service: GachaService, model, *where) -> int:
    async with service.db.session(read_only=True) as s:
        return (await s.execute(select(func.count()).select_from(model).where(*where))).scalar_one()


# --- seeding --------------------------------------------------------------------------------------


async def test_seeding_is_idempotent_and_updates_changed_entries(service: GachaService, tmp_path: Path) -> None:
    assert await count(service, Esprit) == 32
    again = await service.seed_catalogue()
    assert (again.inserted, again.updated, again.unchanged, again.retired) == (0, 0, 32, 0)

    data = json.loads((DATA_DIR / "esprits.json").read_text(encoding="utf-8"))
    data["esprits"][0]["name"] = "Cinder Kit (renamed)"
    removed = data["esprits"].pop(1)["id"]
    (tmp_path / "esprits.json").write_text(json.dumps(data), encoding="utf-8")
    report = await service.reseed(tmp_path)
    assert (report.inserted, report.updated, report.unchanged, report.retired) == (0, 1, 30, 1)
    assert await count(service, Esprit) == 32  # retired, not deleted: owned copies keep their entry
    async with service.db.session(read_only=True) as s:
        assert (await s.get(Esprit, "cinder_kit")).name == "Cinder Kit (renamed)"
        assert (await s.get(Esprit, removed)).in_catalogue is False


async def test_concurrent_seeding_duplicates_nothing(db) -> None:
    services = [GachaService(db, load_config()) for _ in range(4)]
    await asyncio.gather(*(s.seed_catalogue() for s in services))
    assert await count(services[0], Esprit) == 32


# --- onboarding ------------------------------------------------------------------------------------


async def test_start_creates_the_player_once(service: GachaService) -> None:
    result = await service.start(GUILD, 1, username="ada", key="i-1")
    assert result.player.balances == {"faylen": 1000, "virelite": 50, "gems": 10}
    assert result.player.active_esprit_id == result.starter.copy_id
    assert result.starter.rarity in ("common", "uncommon")
    assert result.starter.is_active
    with pytest.raises(AlreadyStartedError):
        await service.start(GUILD, 1, key="i-2")
    # The same interaction retried replays the first outcome.
    replay = await service.start(GUILD, 1, key="i-1")
    assert replay.starter.copy_id == result.starter.copy_id
    assert await count(service, UserEsprit) == 1


async def test_double_start_click_at_once_gives_one_starter(service: GachaService) -> None:
    outcomes = await asyncio.gather(
        *(service.start(GUILD, 7, key=f"click-{i}") for i in range(10)), return_exceptions=True
    )
    assert sum(not isinstance(o, BaseException) for o in outcomes) == 1
    assert all(isinstance(o, AlreadyStartedError) for o in outcomes if isinstance(o, BaseException))
    assert await count(service, Player) == 1
    assert await count(service, UserEsprit) == 1


async def test_operations_before_start_say_so(service: GachaService) -> None:
    for call in (service.balance(GUILD, 5), service.daily(GUILD, 5), service.summon(GUILD, 5, 1),
                 service.inventory(GUILD, 5)):
        with pytest.raises(NotStartedError, match="/start"):
            await call


async def test_games_are_isolated_per_guild(service: GachaService) -> None:
    await service.start(GUILD, 1)
    with pytest.raises(NotStartedError):
        await service.balance(OTHER_GUILD, 1)
    await service.start(OTHER_GUILD, 1)
    await fund(service, 1, 5, guild_id=OTHER_GUILD)
    assert (await service.balance(GUILD, 1)).balances["faylen"] == 1000
    assert (await service.leaderboard(OTHER_GUILD)).total == 1


# --- daily ------------------------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = utcnow()

    def __call__(self):
        return self.now


async def test_daily_pays_once_per_day_with_level_and_streak(db) -> None:
    clock = Clock()
    service = GachaService(db, load_config(), rng=random.Random(1), clock=clock)
    await service.seed_catalogue()
    await service.start(GUILD, 1)
    first = await service.daily(GUILD, 1)
    assert first.paid == {"faylen": 200, "virelite": 10}
    assert first.streak == 1
    assert first.balances["faylen"] == 1200
    with pytest.raises(DailyNotReadyError) as info:
        await service.daily(GUILD, 1)
    assert info.value.next_at == first.next_daily_at

    clock.now += timedelta(hours=25)
    second = await service.daily(GUILD, 1)
    assert second.streak == 2
    assert second.paid["faylen"] == 220  # +10 % for the second day in a row

    clock.now += timedelta(hours=60)  # a missed day restarts the streak
    third = await service.daily(GUILD, 1)
    assert third.streak == 1
    assert third.paid["faylen"] == 200


async def test_daily_scales_with_level(service: GachaService) -> None:
    await service.start(GUILD, 1)
    async with service.db.session() as s:
        await s.execute(Player.__table__.update().values(level=6))
    assert (await service.daily(GUILD, 1)).paid["faylen"] == 300


async def test_fifty_simultaneous_daily_claims_pay_once(service: GachaService) -> None:
    await service.start(GUILD, 1)
    outcomes = await asyncio.gather(
        *(service.daily(GUILD, 1, key=f"daily-{i}") for i in range(50)), return_exceptions=True
    )
    paid = [o for o in outcomes if not isinstance(o, BaseException)]
    refused = [o for o in outcomes if isinstance(o, BaseException)]
    assert len(paid) == 1
    assert len(refused) == 49
    assert all(isinstance(o, DailyNotReadyError) for o in refused)
    balance = await service.balance(GUILD, 1)
    assert balance.balances["faylen"] == 1200
    assert balance.balances["virelite"] == 60
    assert await count(service, LedgerEntry, LedgerEntry.operation == "daily") == 3  # request + 2 currencies


async def test_a_retried_daily_with_the_same_key_pays_once(service: GachaService) -> None:
    # Several rounds: a copy that reads the player after the first committed must still get its outcome,
    # not "already claimed" (the race hit about one round in three on PostgreSQL).
    for user in range(1, 11):
        await service.start(GUILD, user)
        results = await asyncio.gather(*(service.daily(GUILD, user, key=f"same-{user}") for _ in range(5)))
        assert {r.paid["faylen"] for r in results} == {200}
        assert (await service.balance(GUILD, user)).balances["faylen"] == 1200


async def test_daily_never_lifts_a_balance_above_the_maximum(service: GachaService) -> None:
    await service.start(GUILD, 1)
    maximum = service.config.settings.balance_max
    await fund(service, 1, maximum - 50)
    result = await service.daily(GUILD, 1)
    assert result.paid["faylen"] == 50
    assert result.balances["faylen"] == maximum


# --- summons ----------------------------------------------------------------------------------------


async def test_ten_pull_debits_the_cost_and_holds_a_rare_or_better(service: GachaService) -> None:
    await service.start(GUILD, 1)
    result = await service.summon(GUILD, 1, 10, key="pull")
    assert len(result.pulls) == 10
    assert result.cost == 900
    assert result.balance_after == 100
    ranks = [service.config.rarity_rank(p.esprit.rarity) for p in result.pulls]
    assert max(ranks) >= service.config.rarity_rank("rare")
    assert (await service.inventory(GUILD, 1)).total == 11
    assert (await service.balance(GUILD, 1)).xp == 100
    # The same request again changes nothing and returns the same Esprits.
    again = await service.summon(GUILD, 1, 10, key="pull")
    assert [p.esprit.copy_id for p in again.pulls] == [p.esprit.copy_id for p in result.pulls]
    assert (await service.balance(GUILD, 1)).balances["faylen"] == 100


async def test_summon_refuses_what_the_player_cannot_afford(service: GachaService) -> None:
    await service.start(GUILD, 1)
    await fund(service, 1, 899)
    with pytest.raises(InsufficientFundsError, match="costs 900 Faylen, but you only have 899 Faylen"):
        await service.summon(GUILD, 1, 10)
    with pytest.raises(ValidationError, match="1 or 10"):
        await service.summon(GUILD, 1, 3)
    assert (await service.balance(GUILD, 1)).balances["faylen"] == 899


async def test_concurrent_summons_never_overdraw(service: GachaService) -> None:
    await service.start(GUILD, 1)
    await fund(service, 1, 500)  # five single pulls
    outcomes = await asyncio.gather(*(service.summon(GUILD, 1, 1) for _ in range(20)), return_exceptions=True)
    won = [o for o in outcomes if not isinstance(o, BaseException)]
    assert len(won) == 5
    assert all(isinstance(o, InsufficientFundsError) for o in outcomes if isinstance(o, BaseException))
    assert (await service.balance(GUILD, 1)).balances["faylen"] == 0
    assert (await service.inventory(GUILD, 1)).total == 6
    assert sorted(r.balance_after for r in won) == [0, 100, 200, 300, 400]


class AlwaysLowest(random.Random):
    def random(self) -> float:
        return 0.0


async def test_pity_counters_persist_and_trigger_exactly(db) -> None:
    service = GachaService(db, load_config(), rng=AlwaysLowest(3))
    await service.seed_catalogue()
    await service.start(GUILD, 1)
    await fund(service, 1, 100_000)
    forced_at = []
    pulled = 0
    for _ in range(9):  # 90 pulls: guarantees at 10, 20, ... 80, hard pity at 90
        result = await service.summon(GUILD, 1, 10)
        for p in result.pulls:
            pulled += 1
            if p.forced:
                forced_at.append((pulled, p.forced, p.esprit.rarity))
    assert [f[0] for f in forced_at] == [10, 20, 30, 40, 50, 60, 70, 80, 90]
    assert forced_at[-1][1:] == ("hard", "legendary")
    assert all(f[2] == "rare" for f in forced_at[:-1])
    profile = await service.balance(GUILD, 1)
    assert (profile.pity_guaranteed, profile.pity_hard, profile.total_pulls) == (0, 0, 90)


# --- collection -----------------------------------------------------------------------------------------


async def test_inventory_pages_filters_and_active_esprit(service: GachaService) -> None:
    start = await service.start(GUILD, 1)
    await fund(service, 1, 2_700)
    for _ in range(3):
        await service.summon(GUILD, 1, 10)
    page1 = await service.inventory(GUILD, 1, page=1)
    assert (page1.total, page1.pages, len(page1.items)) == (31, 4, 10)
    last = await service.inventory(GUILD, 1, page=99)
    assert (last.page, len(last.items)) == (4, 1)
    ranks = [service.config.rarity_rank(e.rarity) for e in page1.items]
    assert ranks == sorted(ranks, reverse=True)
    rares = await service.inventory(GUILD, 1, rarity="rare")
    assert rares.total >= 3
    assert {e.rarity for e in rares.items} == {"rare"}
    with pytest.raises(ValidationError):
        await service.inventory(GUILD, 1, rarity="mythic")

    assert (await service.show(GUILD, 1)).copy_id == start.starter.copy_id
    other = page1.items[0]
    active = await service.set_active(GUILD, 1, other.copy_id)
    assert active.is_active
    assert (await service.balance(GUILD, 1)).active_esprit_id == other.copy_id
    await service.start(GUILD, 2)
    with pytest.raises(NotFoundError):
        await service.set_active(GUILD, 2, other.copy_id)  # not theirs
    with pytest.raises(NotFoundError):
        await service.show(GUILD, 2, other.copy_id)


async def test_leaderboard_by_level_currency_and_xp(service: GachaService) -> None:
    for user in range(1, 13):
        await service.start(GUILD, user)
        await fund(service, user, 1000 + user)
    await fund(service, 3, 100_000)
    await service.summon(GUILD, 3, 10)
    by_level = await service.leaderboard(GUILD, "level")
    assert by_level.items[0].user_id == 3
    assert (by_level.total, by_level.pages) == (12, 2)
    by_money = await service.leaderboard(GUILD, "currency", currency="faylen")
    assert [e.user_id for e in by_money.items[:3]] == [3, 12, 11]
    page2 = await service.leaderboard(GUILD, "xp", page=2)
    assert [e.rank for e in page2.items] == [11, 12]
    with pytest.raises(ValidationError):
        await service.leaderboard(GUILD, "charm")


# --- administration ---------------------------------------------------------------------------------------


async def test_grant_credits_and_debits_within_the_limits(service: GachaService) -> None:
    await service.start(GUILD, 1)
    granted = await service.grant(GUILD, ADMIN, 1, amount=500, currency="gems", reason="event prize")
    assert granted.balance_after == 510
    taken = await service.grant(GUILD, ADMIN, 1, amount=-10, currency="gems", reason="correction")
    assert taken.balance_after == 500
    with pytest.raises(InsufficientFundsError):
        await service.grant(GUILD, ADMIN, 1, amount=-501, currency="gems", reason="too much")
    with pytest.raises(ValidationError, match="above the maximum"):
        await service.grant(GUILD, ADMIN, 1, amount=service.config.settings.balance_max, currency="gems",
                            reason="overflow")
    with pytest.raises(ValidationError, match="reason"):
        await service.grant(GUILD, ADMIN, 1, amount=5, currency="gems", reason=" ")
    with pytest.raises(ValidationError, match="Unknown currency"):
        await service.grant(GUILD, ADMIN, 1, amount=5, currency="dollars", reason="x")
    with pytest.raises(NotFoundError, match="not started"):
        await service.grant(GUILD, ADMIN, 42, amount=5, currency="gems", reason="x")
    lines = [e for e in await service.ledger(GUILD, 1) if e.operation == "grant" and e.line == 1]
    assert [(e.amount, e.balance_after) for e in lines] == [(-10, 500), (500, 510)]
    assert all(f"by {ADMIN}" in e.reason for e in lines)


async def test_reset_backs_up_then_clears_this_guild_only(service: GachaService, tmp_path: Path) -> None:
    await service.start(GUILD, 1)
    await service.start(OTHER_GUILD, 1)
    await service.summon(GUILD, 1, 1)
    report = await service.reset(GUILD, ADMIN, tmp_path / "backups")
    assert report.backup.exists()
    assert (report.players, report.esprits) == (1, 2)
    with pytest.raises(NotStartedError):
        await service.balance(GUILD, 1)
    assert (await service.balance(OTHER_GUILD, 1)).balances["faylen"] == 1000
    assert await count(service, LedgerEntry, LedgerEntry.guild_id == GUILD, LedgerEntry.operation == "reset",
                       LedgerEntry.line == 0) == 1
    assert await count(service, LedgerEntry, LedgerEntry.guild_id == GUILD, LedgerEntry.operation == "summon") > 0
    await service.start(GUILD, 1)  # a fresh start is possible afterwards


async def test_a_key_used_for_another_kind_of_request_is_refused(service: GachaService) -> None:
    await service.start(GUILD, 1)
    await service.daily(GUILD, 1, key="k")
    with pytest.raises(ValidationError, match="already used"):
        await service.summon(GUILD, 1, 1, key="k")
    assert (await service.balance(GUILD, 1)).total_pulls == 0


async def test_the_active_esprit_gains_levels_from_summons(service: GachaService) -> None:
    start = await service.start(GUILD, 1)
    await fund(service, 1, 10_000)
    first = await service.summon(GUILD, 1, 10)  # 50 XP: level 2 at 50 XP
    assert first.active == [start.starter.copy_id, 1, 2]
    shown = await service.show(GUILD, 1)
    assert shown.level == 2
    assert shown.stats["hp"] > start.starter.stats["hp"]
    second = await service.summon(GUILD, 1, 1)
    assert second.active == [start.starter.copy_id, 2, 2]
