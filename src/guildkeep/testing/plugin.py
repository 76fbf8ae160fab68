"""Pytest plugin: ``discord_env`` starts the sandbox and the real bot on a fresh database, per backend.

Register it in ``tests/conftest.py`` with ``pytest_plugins = ["guildkeep.testing.plugin"]``. It builds on
the conftest's ``db`` and ``database_url`` fixtures, so every e2e test runs on SQLite and PostgreSQL.
Load extra extensions (e.g. a test-only cog) with ``@pytest.mark.discord_extensions("tests.e2e.probe")``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from guildkeep.config import Settings, load_settings
from guildkeep.db import Database
from guildkeep.sandbox.driver import Driver
from guildkeep.testing.harness import SandboxEnv


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "discord_extensions(*names): extra extensions the sandbox bot loads")


@pytest.fixture
def discord_settings(database_url: str) -> Settings:
    """Settings for the sandboxed bot: the test database, no token, no migrations or backups of its own."""
    return load_settings(database_url=database_url, discord_token=None, auto_migrate=False, backup_interval_hours=0)


@pytest.fixture
async def discord_env(db: Database, discord_settings: Settings, request: pytest.FixtureRequest,
                      ) -> AsyncIterator[SandboxEnv]:
    """The sandbox with the demo guild and the real bot connected (its database is ``db``)."""
    marker = request.node.get_closest_marker("discord_extensions")
    extra = tuple(marker.args) if marker else ()
    env = await SandboxEnv.start(db, discord_settings, extra_extensions=extra)
    try:
        yield env
    finally:
        await env.stop()


@pytest.fixture
def driver(discord_env: SandboxEnv) -> Driver:
    return discord_env.driver
