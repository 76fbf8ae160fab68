"""The generic idempotent ledger (`guildkeep.db.ledger`) over a table of its own, on SQLite and PostgreSQL.

The table here belongs to no module: it proves the mechanism works for any ledger table with the documented
columns, and moves value in a wallet table of its own.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import pytest
from sqlalchemy import BigInteger, Integer, String, UniqueConstraint, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from guildkeep.db import Database, PortableJSON, UTCDateTime
from guildkeep.db.ledger import KeyReusedError, Ledger, LedgerRequest, RequestRunningError
from guildkeep.errors import InsufficientFundsError

GUILD = 5
OTHER_GUILD = 6
USER = 42


class _Base(DeclarativeBase):
    pass


class Line(_Base):
    __tablename__ = "test_db_ledger_lines"
    __table_args__ = (UniqueConstraint("guild_id", "idempotency_key", "line"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    guild_id: Mapped[int] = mapped_column(BigInteger, nullable=False)
    user_id: Mapped[int] = mapped_column(BigInteger, nullable=False)
    idempotency_key: Mapped[str] = mapped_column(String(128), nullable=False)
    line: Mapped[int] = mapped_column(Integer, nullable=False)
    operation: Mapped[str] = mapped_column(String(32), nullable=False)
    reason: Mapped[str] = mapped_column(String(300), nullable=False)
    amount: Mapped[int] = mapped_column(BigInteger, nullable=False)
    token: Mapped[str | None] = mapped_column(String(16))  # a module's own column
    result: Mapped[dict[str, Any] | None] = mapped_column(PortableJSON())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)


class Wallet(_Base):
    __tablename__ = "test_db_ledger_wallets"

    user_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    balance: Mapped[int] = mapped_column(BigInteger, nullable=False)


@pytest.fixture
async def ledger(db: Database) -> AsyncIterator[Ledger]:
    async with db.engine.begin() as conn:
        await conn.run_sync(_Base.metadata.drop_all)
        await conn.run_sync(_Base.metadata.create_all)

    async def wallet(s: AsyncSession) -> None:
        s.add(Wallet(user_id=USER, balance=100))

    await db.run(wallet)
    try:
        yield Ledger(db, Line)
    finally:
        async with db.engine.begin() as conn:
            await conn.run_sync(_Base.metadata.drop_all)


def pay(ledger: Ledger, amount: int, calls: list[int] | None = None):  # type: ignore[no-untyped-def]
    """Work that moves ``amount`` out of the wallet (refused below zero) and records it."""

    async def work(s: AsyncSession, request: LedgerRequest) -> dict[str, Any]:
        if calls is not None:
            calls.append(amount)
        await ledger.claim(s, request)
        after = (await s.execute(
            update(Wallet).where(Wallet.user_id == USER, Wallet.balance >= amount)
            .values(balance=Wallet.balance - amount).returning(Wallet.balance)
        )).scalar_one_or_none()
        if after is None:
            raise InsufficientFundsError("Not enough.")
        request.add(USER, -amount, token="paid")
        request.add(USER, 0)  # a line without the module column: it is written as NULL
        return await ledger.finish(s, request, {"balance": after})

    return work


async def balance(db: Database) -> int:
    async with db.session(read_only=True) as s:
        return int((await s.execute(select(Wallet.balance).where(Wallet.user_id == USER))).scalar_one())


async def lines(db: Database) -> list[tuple[int, str, int, int, str | None]]:
    async with db.session(read_only=True) as s:
        rows = await s.execute(select(Line.guild_id, Line.idempotency_key, Line.line, Line.amount, Line.token)
                               .order_by(Line.guild_id, Line.idempotency_key, Line.line))
        return [tuple(r) for r in rows]  # type: ignore[misc]


async def test_a_retry_returns_the_first_outcome_and_changes_nothing(db: Database, ledger: Ledger) -> None:
    calls: list[int] = []
    first = await ledger.once(LedgerRequest(GUILD, USER, "k1", "pay", "coffee"), pay(ledger, 30, calls))
    again = await ledger.once(LedgerRequest(GUILD, USER, "k1", "pay", "coffee"), pay(ledger, 30, calls))
    assert first == {"balance": 70}
    assert again == {"balance": 70, "replayed": True}
    assert calls == [30]  # the retry never ran its work
    assert await balance(db) == 70
    assert await lines(db) == [(GUILD, "k1", 0, 0, None), (GUILD, "k1", 1, -30, "paid"), (GUILD, "k1", 2, 0, None)]


async def test_a_key_reused_for_another_request_is_refused(db: Database, ledger: Ledger) -> None:
    await ledger.once(LedgerRequest(GUILD, USER, "k1", "pay"), pay(ledger, 30))
    with pytest.raises(KeyReusedError, match="already used"):
        await ledger.once(LedgerRequest(GUILD, USER, "k1", "refund"), pay(ledger, 10))
    assert await balance(db) == 70
    assert len(await lines(db)) == 3


async def test_keys_are_per_guild_and_a_fresh_key_each_time_without_one(db: Database, ledger: Ledger) -> None:
    await ledger.once(LedgerRequest(GUILD, USER, "k1", "pay"), pay(ledger, 10))
    other = await ledger.once(LedgerRequest(OTHER_GUILD, USER, "k1", "pay"), pay(ledger, 10))
    assert "replayed" not in other
    await ledger.once(LedgerRequest(GUILD, USER, None, "pay"), pay(ledger, 10))
    await ledger.once(LedgerRequest(GUILD, USER, None, "pay"), pay(ledger, 10))
    assert await balance(db) == 60


async def test_a_refusal_keeps_the_key_free_and_changes_nothing(db: Database, ledger: Ledger) -> None:
    with pytest.raises(InsufficientFundsError):
        await ledger.once(LedgerRequest(GUILD, USER, "k1", "pay"), pay(ledger, 500))
    assert await balance(db) == 100
    assert await lines(db) == []
    assert await ledger.once(LedgerRequest(GUILD, USER, "k1", "pay"), pay(ledger, 40)) == {"balance": 60}


async def test_concurrent_deliveries_of_one_request_move_value_once(db: Database, ledger: Ledger) -> None:
    outcomes = await asyncio.gather(
        *(ledger.once(LedgerRequest(GUILD, USER, "same", "pay"), pay(ledger, 25)) for _ in range(8)),
        return_exceptions=True,
    )
    assert all(isinstance(o, dict) and o["balance"] == 75 for o in outcomes), outcomes
    assert sum(1 for o in outcomes if isinstance(o, dict) and "replayed" not in o) == 1
    assert await balance(db) == 75
    async with db.session(read_only=True) as s:
        assert (await s.execute(select(func.count()).select_from(Line))).scalar_one() == 3


async def test_reserve_release_complete(db: Database, ledger: Ledger) -> None:
    request = LedgerRequest(GUILD, USER, "slow", "pay")
    assert await ledger.reserve(request) is None
    with pytest.raises(RequestRunningError):  # a duplicate while the first is still running
        await ledger.reserve(LedgerRequest(GUILD, USER, "slow", "pay"))
    await ledger.release(request)  # the slow step failed: the key is free again
    assert await lines(db) == []
    assert await ledger.reserve(request) is None

    async def finish(s: AsyncSession, req: LedgerRequest) -> dict[str, Any]:
        req.reason = "done late"
        req.add(USER, 0, token="late")
        return await ledger.finish(s, req, {"ok": 1})

    assert await ledger.complete(request, finish) == {"ok": 1}
    assert await ledger.reserve(LedgerRequest(GUILD, USER, "slow", "pay")) == {"ok": 1, "replayed": True}
    async with db.session(read_only=True) as s:
        reasons = (await s.execute(select(Line.reason).where(Line.idempotency_key == "slow"))).scalars().all()
    assert reasons == ["done late", "done late"]
