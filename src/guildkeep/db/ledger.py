"""The idempotent ledger: a mechanism for any module that moves value (currency, ownership, ...).

A module keeps its own append-only table (for example ``gacha_ledger``) with at least these columns:

``guild_id``, ``user_id``, ``idempotency_key`` (string), ``line`` (int), ``operation`` (string),
``reason`` (string), ``amount`` (int), ``result`` (JSON, nullable), ``created_at`` (datetime), and a
UNIQUE constraint on ``(guild_id, idempotency_key, line)``.

Every request that moves value runs through `Ledger.once`:

- line 0 is written first (`Ledger.claim`) and is unique per (guild, key): of two deliveries of the same
  request, only one can write it; the other collides (or finds it) and gets the first outcome back;
- the request's own lines (1, 2, ...) and the outcome (stored in line 0's ``result``) are written in the same
  transaction as the change they record (`Ledger.finish`);
- a retry with the same key returns the first outcome (with ``"replayed": True``) and changes nothing;
- a key already used for another kind of request is refused with `KeyReusedError`.

For a request with a step that cannot sit inside a transaction (a backup), `Ledger.reserve` claims the
key in a transaction of its own (marking it pending), `Ledger.release` frees it if that step fails, and
`Ledger.complete` does the rest.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from guildkeep.db.database import Database
from guildkeep.db.types import utcnow
from guildkeep.errors import DomainError, DuplicateError, ValidationError

MAX_KEY = 128
MAX_REASON = 300
PENDING = "pending"
REPLAYED = "replayed"

Outcome = dict[str, Any]
ClaimHook = Callable[[AsyncSession, int], Awaitable[Any]]


class KeyReusedError(ValidationError):
    """The idempotency key was already used for another kind of request."""

    default_message = "That request was already used for something else; nothing was changed."


class RequestRunningError(ValidationError):
    """A reserved request (`Ledger.reserve`) has not finished yet."""

    default_message = "That request is already running; nothing more was done."


class LedgerRequest:
    """One request's ledger lines: line 0 claims the idempotency key, the others record its changes."""

    def __init__(self, guild_id: int, user_id: int, key: str | None, operation: str, reason: str = "") -> None:
        """A request of ``user_id`` in ``guild_id``; without ``key`` a fresh one (nothing to replay)."""
        self.guild_id = guild_id
        self.user_id = user_id
        self.key = (key or uuid.uuid4().hex)[:MAX_KEY]
        self.operation = operation
        self.reason = reason[:MAX_REASON]
        self.lines: list[dict[str, Any]] = []

    def add(self, user_id: int, amount: int, **columns: Any) -> None:
        """Record one line: ``amount`` for ``user_id``, plus the module's own columns."""
        self.lines.append({"user_id": user_id, "amount": amount, **columns})


R = TypeVar("R", bound=LedgerRequest)


class Ledger:
    """The idempotency mechanism over one module's ledger table (see the module docstring for its columns)."""

    def __init__(self, db: Database, model: type[Any], *, before_claim: ClaimHook | None = None) -> None:
        """A ledger over ``model``, the mapped ledger table.

        ``before_claim(session, guild_id)`` runs before line 0 is written (for example to create the guild row
        the table references).
        """
        self.db = db
        self.model = model
        self.before_claim = before_claim

    def _line0(self, request: LedgerRequest) -> Any:
        m = self.model
        return (m.guild_id == request.guild_id, m.idempotency_key == request.key, m.line == 0)

    async def claim(self, s: AsyncSession, request: LedgerRequest) -> None:
        """Write line 0: the request owns its key from here until the transaction ends."""
        if self.before_claim is not None:
            await self.before_claim(s, request.guild_id)
        await s.execute(
            insert(self.model).values(
                guild_id=request.guild_id, user_id=request.user_id, idempotency_key=request.key, line=0,
                operation=request.operation, reason=request.reason, amount=0, created_at=utcnow(),
            )
        )

    async def finish(self, s: AsyncSession, request: LedgerRequest, result: Outcome) -> Outcome:
        """Store ``result`` as the request's outcome and write its lines; returns ``result``."""
        await s.execute(update(self.model).where(*self._line0(request)).values(result=result, reason=request.reason))
        if request.lines:
            now = utcnow()
            columns = {name for line in request.lines for name in line}
            await s.execute(
                insert(self.model),
                [
                    {**dict.fromkeys(columns), "guild_id": request.guild_id, "idempotency_key": request.key,
                     "line": number, "operation": request.operation, "reason": request.reason,
                     "created_at": now, **line}
                    for number, line in enumerate(request.lines, start=1)
                ],
            )
        return result

    async def first_outcome(self, s: AsyncSession, request: LedgerRequest) -> Outcome | None:
        """The outcome of an earlier request with this key (marked ``replayed``), or None if there is none.

        Raises `KeyReusedError` when the key belongs to another kind of request and `RequestRunningError`
        when it is reserved but not finished.
        """
        m = self.model
        row = (await s.execute(select(m.operation, m.result).where(*self._line0(request)))).first()
        if row is None:
            return None
        if row.operation != request.operation:
            raise KeyReusedError()
        if row.result is None or row.result.get(PENDING):
            raise RequestRunningError()
        return {**row.result, REPLAYED: True}

    async def _settled(self, request: LedgerRequest) -> Outcome | None:
        async with self.db.session(read_only=True) as s:
            return await self.first_outcome(s, request)

    async def once(
        self, request: R, work: Callable[[AsyncSession, R], Awaitable[Outcome]]
    ) -> Outcome:
        """Run ``work`` in one retried unit of work, unless a request with the same key already ran.

        ``work`` calls `claim` before its first change and returns `finish`'s value. Returns what ``work``
        returned, or the first request's outcome. A key used for another kind of request is refused.
        """

        async def attempt(s: AsyncSession) -> Outcome:
            done = await self.first_outcome(s, request)
            if done is not None:
                return done
            request.lines.clear()
            return await work(s, request)

        try:
            return await self.db.run(attempt)
        except DomainError:
            # The same key may have been committed by a concurrent request between our look-up and our
            # checks (a refusal such as "already claimed" then describes that request's own effect): its
            # outcome is the answer to this one too.
            done = await self._settled(request)
            if done is None:
                raise
            return done

    async def reserve(self, request: LedgerRequest) -> Outcome | None:
        """Claim the key in a transaction of its own, marked pending; None when this call claimed it.

        Returns the first outcome when the request already ran. A duplicate that arrives while the first
        is still pending is refused with `RequestRunningError`.
        """

        async def claim(s: AsyncSession) -> Outcome | None:
            done = await self.first_outcome(s, request)
            if done is not None:
                return done
            await self.claim(s, request)
            await s.execute(update(self.model).where(*self._line0(request)).values(result={PENDING: True}))
            return None

        try:
            return await self.db.run(claim)
        except DuplicateError:
            done = await self._settled(request)
            if done is None:
                raise
            return done

    async def release(self, request: LedgerRequest) -> None:
        """Free a reserved key whose request did nothing, so that it can be tried again."""

        async def free(s: AsyncSession) -> None:
            await s.execute(delete(self.model).where(*self._line0(request)))

        await self.db.run(free)

    async def complete(
        self, request: R, work: Callable[[AsyncSession, R], Awaitable[Outcome]]
    ) -> Outcome:
        """Finish a reserved request: ``work`` (which returns `finish`'s value) in one retried unit of work."""

        async def attempt(s: AsyncSession) -> Outcome:
            request.lines.clear()
            return await work(s, request)

        return await self.db.run(attempt)
