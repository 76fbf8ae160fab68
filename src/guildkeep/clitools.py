"""What every command line shares: the consoles, settings loading and a database for one command.

Kept apart from ``guildkeep.cli`` (the application, which can start the bot and so imports discord) so a
module's own ``cli.py`` can use it without depending on discord.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Iterator
from typing import TypeVar

import asyncpg
import typer
from rich.console import Console
from sqlalchemy.exc import DBAPIError

from guildkeep.config import Settings, SettingsError, configure_logging, load_settings
from guildkeep.db import Database, migrate
from guildkeep.errors import DomainError

T = TypeVar("T")

console = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)


def load_cli_settings() -> Settings:
    """The settings from GUILDKEEP_* variables or .env, with logging configured; a bad one exits with code 2."""
    try:
        settings = load_settings()
    except SettingsError as exc:
        err.print(f"guildkeep: {exc}", markup=False, highlight=False)
        raise typer.Exit(2) from exc
    configure_logging(settings.log_level)
    return settings


def with_db(work: Callable[[Database, Settings], Awaitable[T]]) -> T:
    """Run ``work`` with a database opened from the settings (disposed after); errors end in one line."""
    settings = load_cli_settings()

    async def runner() -> T:
        db = Database.from_settings(settings)
        try:
            return await work(db, settings)
        finally:
            await db.dispose()

    with one_line_errors():
        return asyncio.run(runner())


@contextlib.contextmanager
def one_line_errors() -> Iterator[None]:
    """Domain, migration and database errors end the command with one line on stderr and exit code 1."""
    try:
        yield
    except (DomainError, migrate.MigrationError) as exc:
        err.print(f"guildkeep: {exc}", markup=False, highlight=False)
        raise typer.Exit(1) from exc
    except OSError as exc:
        err.print(f"guildkeep: cannot reach the database: {exc}", markup=False, highlight=False)
        raise typer.Exit(1) from exc
    except (DBAPIError, asyncpg.PostgresError) as exc:
        err.print(f"guildkeep: the database refused: {first_line(exc)}", markup=False, highlight=False)
        raise typer.Exit(1) from exc


def first_line(exc: BaseException) -> str:
    """The driver's own message, without SQLAlchemy's wrapping and background link."""
    orig = getattr(exc, "orig", None) or exc
    text = str(orig).strip().splitlines()
    message = text[0] if text else orig.__class__.__name__
    return message.split("> ", 1)[-1] if message.startswith("<class") else message


__all__ = ["console", "err", "first_line", "load_cli_settings", "one_line_errors", "with_db"]
