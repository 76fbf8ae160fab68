"""Administration on both databases: the ledger reconciles after every admin action, resets are idempotent."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import func, select, update

from guildkeep.errors import ValidationError
from guildkeep.gacha.models import LedgerEntry, Player, UserEsprit
from guildkeep.gacha.service import GachaService
from tests.gacha.conftest import ADMIN, GUILD, OTHER_GUILD, fund


async def busy_server(service: GachaService) -> None:
    """Two players with summons, a listing, a sale and grants: everything a reset has to reverse."""
    await service.start(GUILD, 1)
    await service.start(GUILD, 2)
    await fund(service, 1, 5_000)
    await service.summon(GUILD, 1, 10)
    tradable = await service.owned_choices(GUILD, 1, tradable_only=True)
    sold = await service.list_for_sale(GUILD, 1, tradable[0].copy_id, 100)
    await service.buy(GUILD, 2, sold.listing_id)
    await service.list_for_sale(GUILD, 1, tradable[1].copy_id, 50)  # still open at the reset
    await service.grant(GUILD, ADMIN, 2, amount=7, currency="gems", reason="event")


async def test_reconcile_reports_a_balance_or_owner_the_ledger_does_not_explain(service: GachaService) -> None:
    await busy_server(service)
    assert await service.reconcile(GUILD) == []
    async with service.db.session() as s:
        await s.execute(update(Player).where(Player.user_id == 2).values(gems=Player.gems + 1))
        await s.execute(update(UserEsprit).where(UserEsprit.owner_id == 1, UserEsprit.in_escrow.is_(False))
                        .values(owner_id=2))
    problems = await service.reconcile(GUILD)
    assert any("user 2 gems" in p for p in problems)
    assert any(p.startswith("copy ") for p in problems)


async def test_the_ledger_reconciles_after_every_admin_action(service: GachaService, tmp_path: Path) -> None:
    await busy_server(service)
    await service.start(OTHER_GUILD, 1)
    assert await service.reconcile(GUILD) == []
    await service.grant(GUILD, ADMIN, 1, amount=250, currency="faylen", reason="prize")
    assert await service.reconcile(GUILD) == []
    await service.grant(GUILD, ADMIN, 1, amount=-5, currency="virelite", reason="fine")
    assert await service.reconcile(GUILD) == []
    await service.reseed()
    assert await service.reconcile(GUILD) == []

    old_copies = await count_copies(service)
    report = await service.reset(GUILD, ADMIN, tmp_path / "backups", key="reset-1")
    assert (report.players, report.esprits, report.listings) == (2, old_copies, 2)
    assert await service.reconcile(GUILD) == []
    assert await service.reconcile(OTHER_GUILD) == []

    # Starting again: the ledger's sums are the fresh balances, and the new starter has an id never used before.
    async with service.db.session(read_only=True) as s:
        used = set((await s.execute(select(LedgerEntry.user_esprit_id).where(
            LedgerEntry.user_esprit_id.is_not(None)))).scalars())
    again = await service.start(GUILD, 1)
    assert again.starter.copy_id not in used
    assert again.starter.copy_id > max(used)
    assert await service.reconcile(GUILD) == []
    assert (await service.balance(GUILD, 1)).balances == {"faylen": 1000, "virelite": 50, "gems": 10}


async def count_copies(service: GachaService) -> int:
    async with service.db.session(read_only=True) as s:
        return (await s.execute(select(func.count()).select_from(UserEsprit).where(
            UserEsprit.guild_id == GUILD))).scalar_one()


async def test_a_retried_reset_takes_no_second_backup_and_changes_nothing_twice(
    service: GachaService, tmp_path: Path,
) -> None:
    backups = tmp_path / "backups"
    await busy_server(service)
    first = await service.reset(GUILD, ADMIN, backups, key="interaction:42")
    await service.start(GUILD, 1)  # the game goes on after the reset
    again = await service.reset(GUILD, ADMIN, backups, key="interaction:42")
    assert again.replayed
    assert not first.replayed
    assert (again.backup, again.players, again.esprits) == (first.backup, first.players, first.esprits)
    assert sorted(p.name for p in backups.iterdir()) == [first.backup.name]
    assert await service.has_started(GUILD, 1)  # the replay did not wipe the new game
    assert await service.reconcile(GUILD) == []


async def test_the_same_reset_delivered_twice_at_once_runs_once(service: GachaService, tmp_path: Path) -> None:
    backups = tmp_path / "backups"
    await busy_server(service)
    outcomes = await asyncio.gather(
        *(service.reset(GUILD, ADMIN, backups, key="interaction:7") for _ in range(3)), return_exceptions=True)
    ran = [o for o in outcomes if not isinstance(o, BaseException) and not o.replayed]
    assert len(ran) == 1
    for other in outcomes:
        if isinstance(other, BaseException):
            assert isinstance(other, ValidationError)
            assert "already running" in str(other)
    assert len(list(backups.iterdir())) == 1
    async with service.db.session(read_only=True) as s:
        heads = (await s.execute(select(func.count()).select_from(LedgerEntry).where(
            LedgerEntry.operation == "reset", LedgerEntry.line == 0))).scalar_one()
    assert heads == 1
    assert await service.reconcile(GUILD) == []


async def test_a_reset_whose_backup_failed_can_be_retried(service: GachaService, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    await busy_server(service)
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("x")
    with pytest.raises(Exception):  # noqa: B017, PT011 - whatever the backup raises, nothing is reset
        await service.reset(GUILD, ADMIN, blocker / "backups", key="interaction:9")
    assert await service.has_started(GUILD, 1)
    report = await service.reset(GUILD, ADMIN, tmp_path / "backups", key="interaction:9")
    assert not report.replayed
    assert report.players == 2
