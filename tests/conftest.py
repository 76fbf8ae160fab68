"""Shared fixtures. `db` runs every service test on a real SQLite file and a real PostgreSQL server.

PostgreSQL comes from ``GUILDKEEP_TEST_POSTGRES_URL`` (default: the local server on 127.0.0.1:5432).
Each test run creates its own database, migrated to head, and drops it at the end; each test
starts from empty tables. A PostgreSQL test that cannot reach its server fails; it never skips.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from guildkeep.cache import InvalidationBus
from guildkeep.db import Database, migrate
from guildkeep.db.registry import load_models

pytest_plugins = ["guildkeep.testing.plugin"]

DEFAULT_PG = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
BACKENDS = ("sqlite", "postgresql")


def _pg_admin_url() -> str:
    return os.environ.get("GUILDKEEP_TEST_POSTGRES_URL", DEFAULT_PG)


def _asyncpg_dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


async def _create_pg_database(admin_url: str, name: str) -> None:
    conn = await asyncpg.connect(_asyncpg_dsn(admin_url))
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


async def _drop_pg_database(admin_url: str, name: str) -> None:
    conn = await asyncpg.connect(_asyncpg_dsn(admin_url))
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


async def _migrate(url: str) -> None:
    db = Database(url)
    try:
        await migrate.upgrade(db)
    finally:
        await db.dispose()


@pytest.fixture(scope="session")
def pg_admin_url() -> str:
    return _pg_admin_url()


@pytest.fixture(scope="session")
def pg_database_url(pg_admin_url: str) -> Iterator[str]:
    """A PostgreSQL database for this test run, migrated to head, dropped afterwards."""
    name = f"gk_test_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    try:
        asyncio.run(_create_pg_database(pg_admin_url, name))
    except (OSError, asyncpg.PostgresError) as exc:
        pytest.fail(
            f"PostgreSQL is required for the test suite and could not be reached at {pg_admin_url}: {exc}. "
            "Start it (make test does) or set GUILDKEEP_TEST_POSTGRES_URL."
        )
    url = make_url(pg_admin_url).set(database=name).render_as_string(hide_password=False)
    asyncio.run(_migrate(url))
    yield url
    asyncio.run(_drop_pg_database(pg_admin_url, name))


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file migrated to head once; each test gets a copy."""
    path = tmp_path_factory.mktemp("sqlite-template") / "template.db"
    asyncio.run(_migrate(f"sqlite+aiosqlite:///{path}"))
    return path


async def _truncate_all(db: Database) -> None:
    tables = [t.name for t in load_models().sorted_tables]
    if not tables:
        return
    async with db.engine.begin() as conn:
        await conn.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))


@pytest.fixture
def isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No GUILDKEEP_* settings from the outside (except the test PostgreSQL URL); cwd is tmp_path."""
    for key in list(os.environ):
        if key.startswith("GUILDKEEP_") and key != "GUILDKEEP_TEST_POSTGRES_URL":
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def database_url(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A URL to an empty, migrated database of the test's backend."""
    if backend == "sqlite":
        template: Path = request.getfixturevalue("sqlite_template")
        path = tmp_path / "guildkeep.db"
        shutil.copyfile(template, path)
        return f"sqlite+aiosqlite:///{path}"
    return request.getfixturevalue("pg_database_url")


@pytest.fixture
async def db(database_url: str, backend: str) -> AsyncIterator[Database]:
    """A `Database` on an empty, migrated schema, on SQLite and on PostgreSQL."""
    database = Database(database_url, pool_size=10, max_overflow=40)
    if backend == "postgresql":
        await _truncate_all(database)
    try:
        yield database
    finally:
        await database.dispose()


@pytest.fixture
async def empty_database_url(backend: str, pg_admin_url: str, tmp_path: Path) -> AsyncIterator[str]:
    """A URL to a brand-new, unmigrated database of the test's backend."""
    if backend == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}"
        return
    name = f"gk_empty_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    try:
        await _create_pg_database(pg_admin_url, name)
    except (OSError, asyncpg.PostgresError) as exc:
        pytest.fail(f"PostgreSQL could not be reached at {pg_admin_url}: {exc}")
    try:
        yield make_url(pg_admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        await _drop_pg_database(pg_admin_url, name)


_BACKEND_OUTCOMES: dict[str, dict[str, int]] = {}


# ------------------------------------------------------------------------------------------------- Redis

REDIS_URL = os.environ.get("GUILDKEEP_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
REDIS_WAIT = 10.0  # upper bound for a message to cross Redis; `eventually` returns as soon as it has


async def eventually(condition: Callable[[], bool]) -> None:
    """Poll ``condition`` until it holds; fail (TimeoutError) after ``REDIS_WAIT`` seconds."""
    async with asyncio.timeout(REDIS_WAIT):
        while not condition():  # noqa: ASYNC110 - a condition on state other tasks change, no event to wait on
            await asyncio.sleep(0.01)


@pytest.fixture
def redis_channel() -> str:
    """An invalidation channel of this test alone, so parallel runs on one Redis never cross."""
    return f"guildkeep:test:{uuid.uuid4().hex}"


@pytest.fixture
async def shard_buses(redis_channel: str) -> AsyncIterator[tuple[InvalidationBus, InvalidationBus]]:
    """Two subscribed buses on the test Redis, standing for two processes. Redis down: the test fails."""
    buses = (InvalidationBus(REDIS_URL, channel=redis_channel), InvalidationBus(REDIS_URL, channel=redis_channel))
    try:
        for bus in buses:
            await bus.start()
        async with asyncio.timeout(REDIS_WAIT):
            for bus in buses:
                await bus.wait_connected()
        yield buses
    finally:
        for bus in buses:
            await bus.close()


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.when != "call" and not (report.when == "setup" and report.outcome != "passed"):
        return
    backend = next((b for b in BACKENDS if f"[{b}" in report.nodeid or f"-{b}]" in report.nodeid
                    or f"-{b}-" in report.nodeid), "no database")
    counts = _BACKEND_OUTCOMES.setdefault(backend, {})
    counts[report.outcome] = counts.get(report.outcome, 0) + 1


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not _BACKEND_OUTCOMES:
        return
    terminalreporter.section("tests per backend")
    for backend in (*BACKENDS, "no database"):
        counts = _BACKEND_OUTCOMES.get(backend)
        if counts:
            parts = ", ".join(f"{n} {outcome}" for outcome, n in sorted(counts.items()))
            terminalreporter.write_line(f"{backend}: {parts}")
