"""The `Database`: engine, unit of work and the per-backend tuning. Built at start-up, never at import."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, NoResultFound
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.pool import StaticPool

from guildkeep.db.errors import translate_db_error
from guildkeep.errors import ConflictError

log = logging.getLogger(__name__)

T = TypeVar("T")

SQLITE_BUSY_TIMEOUT_MS = 15_000
DEFAULT_SQLITE_DIR = Path("data")  # the default database's directory, the only one made when missing


def sqlite_directory_problem(url: str) -> str | None:
    """Why a SQLite database file cannot be created at ``url``: its directory is missing (other than the
    default ``data/``, which is made on first use) or is not a directory. None for PostgreSQL and memory."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    parent = Path(parsed.database).parent
    if parent.is_dir() or parent == DEFAULT_SQLITE_DIR:
        return None
    if parent.exists():
        return f"{parent} (the database file's directory) is not a directory"
    return f"the directory {parent} does not exist; create it first (only the default data/ is created)"


def _sqlite_directory(path: Path) -> None:
    parent = path.parent
    if parent.is_dir():
        return
    if parent == DEFAULT_SQLITE_DIR:
        parent.mkdir(exist_ok=True)
        return
    raise FileNotFoundError(sqlite_directory_problem(f"sqlite:///{path}"))
_READ_ONLY = "guildkeep_read_only"


def _tune_sqlite(engine: AsyncEngine, *, memory: bool, busy_timeout_ms: int) -> None:
    """WAL, foreign keys, busy timeout and synchronous=NORMAL on every connection.

    Write transactions start with ``BEGIN IMMEDIATE`` so that two writers queue on the busy
    timeout instead of both reading and then failing to upgrade their lock (SQLITE_BUSY).
    Read-only sessions use a plain deferred ``BEGIN``.
    """

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
        cursor = dbapi_conn.cursor()
        if not memory:
            cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        read_only = conn.get_execution_options().get(_READ_ONLY, False)
        conn.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")


class Database:
    """Owns the engine. Use `session()` as the unit of work: commit on success, rollback on error."""

    def __init__(
        self,
        url: str,
        *,
        echo: bool = False,
        pool_size: int = 5,
        max_overflow: int = 10,
        sqlite_busy_timeout_ms: int = SQLITE_BUSY_TIMEOUT_MS,
    ) -> None:
        self.url = make_url(url)
        self.backend = "sqlite" if self.url.get_backend_name() == "sqlite" else "postgresql"
        kwargs: dict[str, Any] = {"echo": echo, "future": True}
        if self.backend == "sqlite":
            database = self.url.database or ""
            memory = database in ("", ":memory:")
            if memory:
                kwargs["poolclass"] = StaticPool
                kwargs["connect_args"] = {"check_same_thread": False}
            else:
                _sqlite_directory(Path(database))
                kwargs["pool_size"] = pool_size
                kwargs["max_overflow"] = max_overflow
        else:
            memory = False
            kwargs.update(pool_size=pool_size, max_overflow=max_overflow, pool_pre_ping=True)
        self.is_memory = memory
        self.engine: AsyncEngine = create_async_engine(self.url, **kwargs)
        if self.backend == "sqlite":
            _tune_sqlite(self.engine, memory=memory, busy_timeout_ms=sqlite_busy_timeout_ms)
        self._sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        self._read_sessions = async_sessionmaker(
            self.engine.execution_options(**{_READ_ONLY: True}), expire_on_commit=False
        )

    @classmethod
    def from_settings(cls, settings: Any) -> Database:
        return cls(
            settings.database_url,
            echo=settings.sql_echo,
            pool_size=settings.pool_size,
            max_overflow=settings.max_overflow,
        )

    @property
    def dialect(self) -> str:
        return self.backend

    @asynccontextmanager
    async def session(self, *, read_only: bool = False) -> AsyncIterator[AsyncSession]:
        """The unit of work. Commits when the block ends normally and rolls back on any error.

        Driver errors are re-raised as the matching `DomainError` (duplicate, foreign key,
        conflict ...) with the original attached as ``__cause__``.
        """
        maker = self._read_sessions if read_only else self._sessions
        async with maker() as session:
            try:
                async with session.begin():
                    yield session
            except (DBAPIError, NoResultFound) as exc:
                translated = translate_db_error(exc)
                if translated is None:
                    raise
                raise translated from exc

    async def run(
        self,
        work: Callable[[AsyncSession], Awaitable[T]],
        *,
        attempts: int = 5,
        read_only: bool = False,
    ) -> T:
        """Run ``work`` in a unit of work, retrying on `ConflictError` (serialization, lock)."""
        for attempt in range(1, attempts + 1):
            try:
                async with self.session(read_only=read_only) as session:
                    return await work(session)
            except ConflictError:
                if attempt == attempts:
                    raise
                await asyncio.sleep(random.uniform(0.005, 0.02) * attempt)
        raise AssertionError("unreachable")

    async def dispose(self) -> None:
        await self.engine.dispose()
