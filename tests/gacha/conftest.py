"""Gacha fixtures: a seeded service on each backend, with a fixed random seed."""

from __future__ import annotations

import random

import pytest

from guildkeep.db import Database
from guildkeep.gacha.config import load_config
from guildkeep.gacha.service import GachaService

GUILD = 111_111_111_111_111_111
OTHER_GUILD = 222_222_222_222_222_222
ADMIN = 999


@pytest.fixture
async def service(db: Database) -> GachaService:
    svc = GachaService(db, load_config(), rng=random.Random(20261129))
    await svc.seed_catalogue()
    return svc


async def fund(service: GachaService, user_id: int, amount: int, currency: str = "faylen",
               guild_id: int = GUILD) -> int:
    """Set the player's balance of ``currency`` to exactly ``amount`` through admin grants."""
    have = (await service.balance(guild_id, user_id)).balances[currency]
    if amount != have:
        await service.grant(guild_id, ADMIN, user_id, amount=amount - have, currency=currency, reason="test setup")
    return amount
