"""Running instances: each bot process (and the playground) keeps a heartbeat row in ``bot_instances``.

The row is written when the process starts, refreshed every ``HEARTBEAT_SECONDS`` and deleted on a clean
stop. Operator commands that would pull the database from under a running bot (``db restore``, a
``db downgrade`` that drops tables) look for a heartbeat younger than ``FRESH_SECONDS`` and refuse unless
forced. A process that crashed leaves a row that goes stale on its own. Backups never carry these rows.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Integer, String, delete, inspect, select, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Mapped, mapped_column

from guildkeep.db.base import Base
from guildkeep.db.database import Database
from guildkeep.db.types import UTCDateTime, utcnow
from guildkeep.errors import DomainError

log = logging.getLogger(__name__)

TABLE = "bot_instances"
HEARTBEAT_SECONDS = 15.0
FRESH_SECONDS = 60.0


def new_instance_id() -> str:
    """A process's id in ``bot_instances``."""
    return uuid.uuid4().hex


class BotInstance(Base):
    """One running bot process or playground, by its heartbeat."""

    __tablename__ = TABLE

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), nullable=False)  # "bot" or "playground"
    host: Mapped[str] = mapped_column(String(255), nullable=False)
    pid: Mapped[int] = mapped_column(Integer, nullable=False)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    heartbeat_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)


@dataclass(frozen=True, slots=True)
class InstanceView:
    id: str
    kind: str
    host: str
    pid: int
    started_at: datetime
    heartbeat_at: datetime

    def describe(self, now: datetime | None = None) -> str:
        age = ((now or utcnow()) - self.heartbeat_at).total_seconds()
        return f"{self.kind} pid {self.pid} on {self.host}, last heartbeat {max(age, 0):.0f} s ago"


class BotRunningError(DomainError):
    default_message = "A bot is running on this database."


class Heartbeat:
    """Keeps this process's ``bot_instances`` row fresh while it runs. ``start``/``stop``, or ``async with``."""

    def __init__(self, db: Database, *, kind: str = "bot", interval: float = HEARTBEAT_SECONDS,
                 instance_id: str | None = None) -> None:
        self.db = db
        self.kind = kind
        self.interval = interval
        self.id = instance_id or new_instance_id()
        self.started_at = utcnow()
        self._task: asyncio.Task[None] | None = None
        self._warned = False

    async def beat(self) -> bool:
        """Write the row now (insert or refresh). False, with one warning, when the table is missing."""
        now = utcnow()
        try:
            async with self.db.session() as s:
                result = await s.execute(update(BotInstance).where(BotInstance.id == self.id)
                                         .values(heartbeat_at=now))
                if getattr(result, "rowcount", 0) == 0:  # an UPDATE's CursorResult (typed as Result)
                    s.add(BotInstance(id=self.id, kind=self.kind, host=socket.gethostname()[:255], pid=os.getpid(),
                                      started_at=self.started_at, heartbeat_at=now))
        except (DBAPIError, DomainError, OSError) as exc:  # a missing table, or the database is unreachable
            if not self._warned:
                log.warning("cannot write the heartbeat row (%s); run `guildkeep db upgrade`", exc.__class__.__name__)
                self._warned = True
            return False
        self._warned = False
        return True

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            await self.beat()

    async def start(self) -> None:
        await self.beat()
        self._task = asyncio.create_task(self._loop(), name="guildkeep-heartbeat")

    async def stop(self) -> None:
        """Stop refreshing and delete the row (a clean stop)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        try:
            async with self.db.session() as s:
                await s.execute(delete(BotInstance).where(BotInstance.id == self.id))
        except (DBAPIError, DomainError, OSError) as exc:
            log.warning("cannot remove the heartbeat row: %s", exc.__class__.__name__)

    async def __aenter__(self) -> Heartbeat:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


async def live_instances(db: Database, *, fresh_seconds: float = FRESH_SECONDS) -> list[InstanceView]:
    """Instances whose heartbeat is younger than ``fresh_seconds`` (none when the table does not exist)."""
    async with db.engine.connect() as conn:
        exists = await conn.run_sync(lambda c: inspect(c).has_table(TABLE))
    if not exists:
        return []
    since = utcnow() - timedelta(seconds=fresh_seconds)
    async with db.session(read_only=True) as s:
        rows = (await s.execute(select(BotInstance).where(BotInstance.heartbeat_at >= since)
                                .order_by(BotInstance.heartbeat_at.desc()))).scalars().all()
    return [InstanceView(r.id, r.kind, r.host, r.pid, r.started_at, r.heartbeat_at) for r in rows]


async def refuse_if_running(db: Database, action: str) -> None:
    """Raise `BotRunningError` naming the running instance(s) when a fresh heartbeat exists."""
    live = await live_instances(db)
    if live:
        now = utcnow()
        who = "; ".join(i.describe(now) for i in live[:3]) + (f"; and {len(live) - 3} more" if len(live) > 3 else "")
        raise BotRunningError(
            f"a bot is running on this database ({who}); stop it before {action}, or pass --force"
        )
