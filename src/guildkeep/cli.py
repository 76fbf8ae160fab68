"""The command line: ``guildkeep run``, ``guildkeep db …`` and friends."""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from guildkeep import __version__
from guildkeep.config import Settings, SettingsError, configure_logging, load_settings
from guildkeep.db import Database, DomainError, migrate
from guildkeep.db import backup as backups_mod
from guildkeep.leveling.cli import import_app
from guildkeep.llm.cli import llm_app
from guildkeep.privacy.cli import privacy_app
from guildkeep.scheduler.cli import jobs_app

T = TypeVar("T")

app = typer.Typer(
    name="guildkeep",
    help="guildkeep: a self-hosted Discord community bot. Settings come from GUILDKEEP_* variables or .env.",
    no_args_is_help=True,
    add_completion=False,
)
db_app = typer.Typer(help="Database schema, backups and restores.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(import_app, name="import")
app.add_typer(llm_app, name="llm")
app.add_typer(jobs_app, name="jobs")
app.add_typer(privacy_app, name="privacy")

console = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)
log = logging.getLogger("guildkeep.cli")


def _settings() -> Settings:
    try:
        settings = load_settings()
    except SettingsError as exc:
        err.print(f"guildkeep: {exc}", markup=False, highlight=False)
        raise typer.Exit(2) from exc
    configure_logging(settings.log_level)
    return settings


def _with_db(work: Callable[[Database, Settings], Awaitable[T]]) -> T:
    settings = _settings()

    async def runner() -> T:
        db = Database.from_settings(settings)
        try:
            return await work(db, settings)
        finally:
            await db.dispose()

    try:
        return asyncio.run(runner())
    except (DomainError, migrate.MigrationError) as exc:
        err.print(f"guildkeep: {exc}", markup=False, highlight=False)
        raise typer.Exit(1) from exc
    except OSError as exc:
        err.print(f"guildkeep: cannot reach the database: {exc}", markup=False, highlight=False)
        raise typer.Exit(1) from exc


def _version(value: bool) -> None:
    if value:
        console.print(f"guildkeep {__version__}")
        raise typer.Exit()


@app.callback()
def main_callback(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version and exit.")
    ] = False,
) -> None:
    """guildkeep command line."""


@app.command()
def run() -> None:
    """Migrate the database (unless GUILDKEEP_AUTO_MIGRATE=false) and start the bot (the playground without a token)."""
    settings = _settings()
    if settings.token is None:
        err.print(
            "guildkeep: no Discord token configured (GUILDKEEP_DISCORD_TOKEN); opening the playground instead.",
            markup=False,
            highlight=False,
        )
        _playground(settings, None)
        return

    from guildkeep.discord.runner import run_bot

    asyncio.run(run_bot(settings))


@app.command()
def playground(
    script: Annotated[
        Path | None, typer.Option("--script", help="Run the lines of FILE instead of prompting (stdin works too).")
    ] = None,
) -> None:
    """Try the bot with no Discord: a local stand-in with a demo server, where you speak as its members."""
    _playground(_settings(), script)


def _playground(settings: Settings, script: Path | None) -> None:
    from guildkeep.sandbox.harness import SandboxEnv
    from guildkeep.sandbox.playground import Playground, console_writer

    if script is not None and not script.is_file():
        err.print(f"guildkeep: no script file {script}", markup=False)
        raise typer.Exit(2)
    lines = script.read_text(encoding="utf-8").splitlines() if script is not None else None
    if settings.log_level != "DEBUG":
        # Keep the terminal for the conversation; errors (with their ids) still show.
        logging.getLogger().setLevel(logging.ERROR)

    async def start() -> None:
        db = Database.from_settings(settings)
        try:
            if settings.auto_migrate:
                await migrate.upgrade(db)
            env = await SandboxEnv.start(db, settings)
            try:
                write = console_writer()
                write(f"guildkeep playground: sandbox on {env.server.base_url}, database {db.backend}; "
                      "server 'Guildkeep Sandbox' with alice (owner, Admin), bob and carol.")
                session = Playground(env, write)
                if lines is not None:
                    await session.run_lines(lines)
                elif not sys.stdin.isatty():
                    await session.run_lines(sys.stdin.read().splitlines())
                else:
                    await session.interactive()
            finally:
                await env.stop()
        finally:
            await db.dispose()

    try:
        asyncio.run(start())
    except (DomainError, migrate.MigrationError) as exc:
        err.print(f"guildkeep: {exc}", markup=False, highlight=False)
        raise typer.Exit(1) from exc


# --- db: schema ------------------------------------------------------------------------------


@db_app.command("upgrade")
def db_upgrade(revision: Annotated[str, typer.Argument(help="Target revision.")] = "heads") -> None:
    """Apply migrations up to REVISION (default: every head)."""
    at = _with_db(lambda db, _s: migrate.upgrade(db, revision))
    console.print(f"database at: {', '.join(at) or '(empty)'}")


@db_app.command("downgrade")
def db_downgrade(revision: Annotated[str, typer.Argument(help="Target revision, e.g. -1 or base.")]) -> None:
    """Revert migrations down to REVISION."""
    at = _with_db(lambda db, _s: migrate.downgrade(db, revision))
    console.print(f"database at: {', '.join(at) or '(empty)'}")


@db_app.command("current")
def db_current() -> None:
    """Show the revision(s) the database is at."""
    at = _with_db(lambda db, _s: migrate.current(db))
    heads = set(migrate.heads())
    for rev in at or ["(empty)"]:
        console.print(f"{rev}{' (head)' if rev in heads else ''}", markup=False)


@db_app.command("history")
def db_history() -> None:
    """List the migrations, newest first."""
    for rev in migrate.history():
        console.print(f"{rev.down_revision or '<base>'} -> {rev.revision}: {rev.message}", markup=False)


@db_app.command("check")
def db_check() -> None:
    """Fail when the database is behind, or the models and the migrations disagree."""
    _with_db(lambda db, _s: migrate.check(db))
    console.print("schema matches the models; no migration needed")


@db_app.command("revision")
def db_revision(
    message: Annotated[str, typer.Option("-m", "--message", help="What the revision does.")],
    head: Annotated[str, typer.Option(help="Revision to build on, e.g. leveling@head.")] = "head",
    branch_label: Annotated[str | None, typer.Option(help="Start a new module branch.")] = None,
    rev_id: Annotated[str | None, typer.Option(help="Revision id to use.")] = None,
) -> None:
    """(Developers) autogenerate a migration from the models."""
    _with_db(lambda db, _s: migrate.autogenerate(db, message, head=head, branch_label=branch_label, rev_id=rev_id))


# --- db: backups -----------------------------------------------------------------------------


@db_app.command("backup")
def db_backup() -> None:
    """Take a consistent, compressed backup into the backup directory."""

    async def work(db: Database, settings: Settings) -> Path:
        return await backups_mod.create_backup(db, settings.backup_dir)

    path = _with_db(work)
    console.print(str(path), markup=False)


@db_app.command("backups")
def db_backups() -> None:
    """List the backups, newest first."""
    settings = _settings()
    found = backups_mod.list_backups(settings.backup_dir)
    if not found:
        console.print(f"no backups in {settings.backup_dir}", markup=False)
        return
    for info in found:
        console.print(
            f"{info.created_at:%Y-%m-%d %H:%M:%S}  {info.backend:<10}  {info.size:>12,} B  {info.path}",
            markup=False,
            highlight=False,
        )


@db_app.command("prune")
def db_prune(
    keep: Annotated[int | None, typer.Option(help="Keep the newest N (default: GUILDKEEP_BACKUP_KEEP).")] = None,
    max_age_days: Annotated[float | None, typer.Option(help="Delete older than this (0: no limit).")] = None,
) -> None:
    """Delete old backups by count and age; the newest is always kept."""
    settings = _settings()
    try:
        removed = backups_mod.prune_backups(
            settings.backup_dir,
            keep=keep if keep is not None else settings.backup_keep,
            max_age_days=max_age_days if max_age_days is not None else settings.backup_max_age_days,
        )
    except DomainError as exc:
        err.print(f"guildkeep: {exc}", markup=False)
        raise typer.Exit(1) from exc
    console.print(f"removed {len(removed)} backup(s)")


@db_app.command("restore")
def db_restore(
    file: Annotated[Path, typer.Argument(help="A backup file made by `guildkeep db backup`.")],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> None:
    """Replace the database's contents with a backup. Stop the bot first."""
    if not yes and not typer.confirm(f"Replace everything in the database with {file.name}?", default=False):
        raise typer.Exit(1)

    async def work(db: Database, _s: Settings) -> dict[str, Any]:
        return await backups_mod.restore_backup(db, file)

    manifest = _with_db(work)
    console.print(f"restored {file.name}: {sum(manifest['tables'].values())} rows in {len(manifest['tables'])} tables")


@db_app.command("verify")
def db_verify(file: Annotated[Path, typer.Argument(help="A backup file to check.")]) -> None:
    """Restore a backup into a scratch database and compare row counts table by table."""
    settings = _settings()
    try:
        report = asyncio.run(backups_mod.verify_backup(file, scratch_url=settings.database_url))
    except DomainError as exc:
        err.print(f"guildkeep: {exc}", markup=False)
        raise typer.Exit(1) from exc
    table = Table("table", "in manifest", "restored")
    for name in sorted(set(report.expected) | set(report.actual)):
        table.add_row(name, str(report.expected.get(name, "-")), str(report.actual.get(name, "-")))
    console.print(table)
    if not report.ok:
        for problem in report.problems:
            err.print(f"problem: {problem}", markup=False)
        raise typer.Exit(1)
    console.print(f"OK: {file.name} restores with every table's row count intact ({report.backend})", markup=False)


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
