"""Free text the gacha service stores (an admin grant's reason, a player's name) goes through the shared check."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from guildkeep.db import Database
from guildkeep.errors import ValidationError
from guildkeep.gacha.models import LedgerEntry
from guildkeep.gacha.service import GachaService
from guildkeep.identity.models import User
from tests.gacha.conftest import ADMIN, GUILD


async def ledger_lines(db: Database) -> int:
    async with db.session(read_only=True) as s:
        return await s.scalar(select(func.count()).select_from(LedgerEntry)) or 0


async def test_a_grant_reason_with_nul_or_too_long_is_refused(service: GachaService, db: Database) -> None:
    await service.start(GUILD, 1, username="ann")
    before = await ledger_lines(db)
    with pytest.raises(ValidationError, match="The reason can't contain control characters"):
        await service.grant(GUILD, ADMIN, 1, amount=5, currency="faylen", reason="prize\x00")
    with pytest.raises(ValidationError, match="The reason can be at most 250 characters"):
        await service.grant(GUILD, ADMIN, 1, amount=5, currency="faylen", reason="r" * 300)
    assert await ledger_lines(db) == before


async def test_a_player_name_from_discord_loses_control_characters(service: GachaService, db: Database) -> None:
    await service.start(GUILD, 2, username="bo\x00b")
    async with db.session(read_only=True) as s:
        assert await s.scalar(select(User.username).where(User.id == 2)) == "bob"
