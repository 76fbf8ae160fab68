"""Gacha: a 10-pull against ten single pulls, and a ledgered, idempotent grant against a bare UPDATE."""

from __future__ import annotations

import random

from sqlalchemy import update

from benchmarks.common import Result, rate
from guildkeep.db import Database
from guildkeep.gacha.config import load_config
from guildkeep.gacha.models import Player
from guildkeep.gacha.service import GachaService

GUILD = 1
PULL_ROUNDS = 30  # each round: ten pulls
GRANTS = 300


async def run(db: Database) -> list[Result]:
    service = GachaService(db, load_config(), rng=random.Random(1))
    await service.seed_catalogue()
    await service.start(GUILD, 1)
    await service.start(GUILD, 2)
    maximum = service.config.settings.balance_max
    for user in (1, 2):
        await service.grant(GUILD, 0, user, amount=maximum // 2, currency="faylen", reason="benchmark funds")

    async def singles() -> None:
        for _ in range(PULL_ROUNDS * 10):
            await service.summon(GUILD, 1, 1)

    async def batches() -> None:
        for _ in range(PULL_ROUNDS):
            await service.summon(GUILD, 1, 10)

    async def bare_updates() -> None:
        for _ in range(GRANTS):
            async with db.session() as s:
                await s.execute(
                    update(Player).where(Player.guild_id == GUILD, Player.user_id == 2).values(faylen=Player.faylen + 1)
                )

    async def ledgered() -> None:
        for i in range(GRANTS):
            await service.grant(GUILD, 0, 2, amount=1, currency="faylen", reason="bench", key=f"bench-{i}")

    single_rate = await rate(PULL_ROUNDS * 10, singles)
    batch_rate = await rate(PULL_ROUNDS * 10, batches)
    bare_rate = await rate(GRANTS, bare_updates)
    ledger_rate = await rate(GRANTS, ledgered)
    return [
        Result("pulls/s, 10-pull vs ten single pulls", "pulls/s", batch_rate, single_rate, target=3),
        Result("grants/s, ledgered+idempotent vs bare UPDATE", "ops/s", ledger_rate, bare_rate, target=0.15),
    ]
