"""The command line: ``guildkeep run``, ``guildkeep db …`` and friends."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.table import Table

from guildkeep import __version__
from guildkeep.campaign.cli import export_campaign_json, import_campaign_json
from guildkeep.clitools import console, err  # also importable from here by module CLIs written before clitools
from guildkeep.clitools import load_cli_settings as _settings
from guildkeep.clitools import one_line_errors as _one_line_errors
from guildkeep.clitools import with_db as _with_db
from guildkeep.config import Settings
from guildkeep.db import Database, migrate
from guildkeep.db import backup as backups_mod
from guildkeep.db.instances import Heartbeat, refuse_if_running
from guildkeep.errors import DomainError
from guildkeep.leveling.cli import import_app
from guildkeep.llm.cli import llm_app
from guildkeep.privacy.cli import privacy_app
from guildkeep.runtime import tune_collector
from guildkeep.scheduler.cli import jobs_app
from guildkeep.signals import install_shutdown_handlers, stdin_lines
from guildkeep.web.cli import web_app

app = typer.Typer(
    name="guildkeep",
    help="guildkeep: a self-hosted Discord community bot. Settings come from GUILDKEEP_* variables or .env.",
    no_args_is_help=True,
    add_completion=False,
)
db_app = typer.Typer(help="Database schema, backups and restores.", no_args_is_help=True)
app.add_typer(db_app, name="db")
import_app.command("campaign-json")(import_campaign_json)
app.add_typer(import_app, name="import")
export_app = typer.Typer(help="Export data in other bots' formats.", no_args_is_help=True)
export_app.command("campaign-json")(export_campaign_json)
app.add_typer(export_app, name="export")
app.add_typer(llm_app, name="llm")
app.add_typer(jobs_app, name="jobs")
app.add_typer(web_app, name="web")
app.add_typer(privacy_app, name="privacy")

log = logging.getLogger("guildkeep.cli")


def _require_backup_dir(settings: Settings, *, write: bool = True) -> None:
    problem = backups_mod.backup_dir_problem(settings.backup_dir, write=write)
    if problem is not None:
        err.print(f"guildkeep: invalid setting GUILDKEEP_BACKUP_DIR: {problem}", markup=False, highlight=False)
        raise typer.Exit(2)


def _require_gacha_config(settings: Settings) -> None:
    """Read the gacha configuration the bot will load, so a bad file stops start-up in one line."""
    from guildkeep.gacha.config import GachaConfigError, load_config

    try:
        load_config(settings.gacha_config_dir)
    except GachaConfigError as exc:
        problem = str(exc)
    except UnicodeDecodeError as exc:
        directory = settings.gacha_config_dir or Path(".")
        culprit = next((p.name for p in sorted(directory.glob("*.json")) if not _is_utf8(p)), "a file")
        problem = f"{culprit}: not UTF-8 text ({exc.reason} at byte {exc.start})"
    except OSError as exc:
        problem = f"cannot be read ({exc.strerror or exc})"
    else:
        return
    _refuse_gacha_config(settings, problem)


def _refuse_gacha_config(settings: Settings, problem: str) -> NoReturn:
    if settings.gacha_config_dir is None:
        err.print(f"guildkeep: the shipped gacha configuration is invalid: {problem}", markup=False, highlight=False)
    else:
        err.print(f"guildkeep: invalid setting GUILDKEEP_GACHA_CONFIG_DIR ({settings.gacha_config_dir}): {problem}",
                  markup=False, highlight=False)
    raise typer.Exit(2)


@contextlib.contextmanager
def _gacha_config_errors(settings: Settings) -> Iterator[None]:
    """A configuration the database refuses at start-up (it drops a rarity tier that owned copies still have:
    the catalogue seeding in the gacha cog's load raises) ends the command in one line, as a bad file does."""
    from discord.ext.commands import ExtensionFailed

    from guildkeep.gacha.config import GachaConfigError

    try:
        yield
    except ExtensionFailed as exc:
        if not isinstance(exc.original, GachaConfigError):
            raise
        _refuse_gacha_config(settings, str(exc.original))
    except GachaConfigError as exc:
        _refuse_gacha_config(settings, str(exc))


def _is_utf8(path: Path) -> bool:
    try:
        path.read_bytes().decode("utf-8")
    except (UnicodeDecodeError, OSError):
        return False
    return True


def _preflight(settings: Settings) -> None:
    """What the bot needs besides the database: checked before start-up, each refused in one line."""
    _require_gacha_config(settings)
    _require_backup_dir(settings)


def _confirm_destructive(what: str, yes: bool, *, word: str) -> None:
    """Go on only with ``--yes`` or, on a terminal, when the operator types ``word``; else refuse in one line."""
    if yes:
        return
    if not sys.stdin.isatty():
        err.print(f"guildkeep: {what}; pass --yes to go ahead (no terminal to confirm on)", markup=False,
                  highlight=False)
        raise typer.Exit(1)
    answer = typer.prompt(f"{what}.\nType {word} to go on", default="", show_default=False)
    if answer.strip() != word:
        err.print("guildkeep: not confirmed; nothing was changed", markup=False)
        raise typer.Exit(1)


def _finite_non_negative(value: float | None) -> float | None:
    if value is not None and not (math.isfinite(value) and value >= 0):
        raise typer.BadParameter(f"{value} is not a number of days (0 or more)")
    return value


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
    _preflight(settings)
    if settings.token is None:
        err.print(
            "guildkeep: no Discord token configured (GUILDKEEP_DISCORD_TOKEN); opening the playground instead.",
            markup=False,
            highlight=False,
        )
        _playground(settings, None)
        return

    from guildkeep.discord.runner import run_bot

    with _one_line_errors(), _gacha_config_errors(settings):
        asyncio.run(run_bot(settings))


@app.command()
def playground(
    script: Annotated[
        Path | None, typer.Option("--script", help="Run the lines of FILE instead of prompting (stdin works too).")
    ] = None,
) -> None:
    """Try the bot with no Discord: a local stand-in with a demo server, where you speak as its members."""
    settings = _settings()
    _preflight(settings)
    _playground(settings, script)


def _playground(settings: Settings, script: Path | None) -> None:
    from datetime import timedelta

    from guildkeep.clock import CLOCK, describe
    from guildkeep.llm.standin import PlaygroundModel, playground_model
    from guildkeep.playground.console import Playground, console_writer
    from guildkeep.sandbox.persist import StateError, WorldFile, state_path
    from guildkeep.testing.harness import SandboxEnv

    if script is not None and not script.is_file():
        err.print(f"guildkeep: no script file {script}", markup=False)
        raise typer.Exit(2)
    try:
        lines = script.read_text(encoding="utf-8").splitlines() if script is not None else None
    except UnicodeDecodeError as exc:
        err.print(f"guildkeep: the script {script} is not UTF-8 text ({exc.reason} at byte {exc.start})",
                  markup=False, highlight=False)
        raise typer.Exit(2) from exc
    except OSError as exc:
        err.print(f"guildkeep: cannot read the script {script}: {exc.strerror or exc}", markup=False, highlight=False)
        raise typer.Exit(2) from exc
    if settings.log_level != "DEBUG":
        # Keep the terminal for the conversation; errors (with their ids) still show.
        logging.getLogger().setLevel(logging.ERROR)

    async def start() -> None:
        main = asyncio.current_task()
        assert main is not None
        remove = install_shutdown_handlers(main.cancel)  # the finally blocks below flush and close
        db = Database.from_settings(settings)
        path = state_path(db.url)
        store = WorldFile(path) if path is not None else None
        model: PlaygroundModel | None = None
        try:
            model = await playground_model(settings)  # the stand-in model when none is configured
            bot_settings = model.settings
            if settings.auto_migrate:
                await migrate.upgrade(db)
            saved = store.load() if store is not None else None
            if saved is not None:
                CLOCK.offset = timedelta(seconds=float(saved.get("clock_offset") or 0))

            async def fresh() -> SandboxEnv:
                return await SandboxEnv.start(db, bot_settings)

            heartbeat = Heartbeat(db, kind="playground")
            await heartbeat.start()
            try:
                if saved is not None and store is not None:
                    env = await SandboxEnv.start(db, bot_settings, restore=lambda server: store.restore(server, saved))
                else:
                    env = await fresh()
            except BaseException:
                await heartbeat.stop()
                raise
            session = Playground(env, console_writer(), store=store, start=fresh)
            try:
                guild = env.driver._guild()
                members = ", ".join(m.user.username for m in guild.members.values() if not m.user.bot)
                where = ("restored from" if saved is not None else "saved in") + f" {path}" if path else "not saved"
                session.out(f"guildkeep playground: sandbox on {env.server.base_url}, database {db.backend}; "
                            f"server '{guild.name}' (id {guild.id}, {where}) with {members}.")
                session.out(model.banner)
                if CLOCK.offset:
                    session.out(f"the bot's clock is at {describe(CLOCK.offset)} (:clock reset for real time)")
                session.save()
                if lines is not None:
                    await session.run_lines(lines)
                elif not sys.stdin.isatty():
                    async for raw in stdin_lines():  # line by line, so a signal is served while input waits
                        line = raw.strip()
                        if not line or line.startswith("#"):
                            continue
                        session.out(session.prompt + line)
                        if not await session.handle(line):
                            break
                else:
                    from guildkeep.playground.editor import history_for

                    await session.interactive(history_for(path))
            finally:
                session.save()
                await session.env.stop()
                await heartbeat.stop()
        finally:
            CLOCK.reset()
            if model is not None:
                await model.stop()
            await db.dispose()
            remove()

    try:
        with _one_line_errors(), _gacha_config_errors(settings):
            asyncio.run(start())
    except asyncio.CancelledError:
        return  # SIGTERM/SIGINT: everything was flushed and closed on the way out
    except StateError as exc:
        err.print(f"guildkeep: {exc}", markup=False, highlight=False)
        raise typer.Exit(1) from exc


# --- db: schema ------------------------------------------------------------------------------


@db_app.command("upgrade")
def db_upgrade(revision: Annotated[str, typer.Argument(help="Target revision.")] = "heads") -> None:
    """Apply migrations up to REVISION (default: every head)."""
    at = _with_db(lambda db, _s: migrate.upgrade(db, revision))
    console.print(f"database at: {', '.join(at) or '(empty)'}")


@db_app.command("downgrade", context_settings={"ignore_unknown_options": True})
def db_downgrade(
    revision: Annotated[
        str, typer.Argument(help="Target: a revision id, base, BRANCH@-N (e.g. leveling@-1), or -N with one head.")
    ],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    force: Annotated[bool, typer.Option("--force", help="Go on even though a bot's heartbeat is fresh.")] = False,
) -> None:
    """Revert migrations down to REVISION, dropping their tables. Takes a backup first; refuses while a bot runs.

    Examples: `guildkeep db downgrade leveling@-1 --yes`, `guildkeep db downgrade -1` (one head applied),
    `guildkeep db downgrade base --yes`.
    """
    _require_backup_dir(_settings())

    async def plan_it(db: Database, _s: Settings) -> list[str]:
        plan = await migrate.downgrade_plan(db, revision)
        if plan and not force:
            await refuse_if_running(db, "dropping tables under it")
        return plan

    plan = _with_db(plan_it)
    if not plan:
        console.print(f"nothing to revert: the database is already at or below {revision}", markup=False)
        return
    _confirm_destructive(
        f"`db downgrade {revision}` reverts {len(plan)} migration(s) ({', '.join(plan)}) and drops their tables",
        yes,
        word="downgrade",
    )

    async def work(db: Database, settings: Settings) -> list[str]:
        if not force:
            await refuse_if_running(db, "dropping tables under it")
        backup = await backups_mod.create_backup(db, settings.backup_dir)
        console.print(f"backup taken before the downgrade: {backup}", markup=False, highlight=False)
        return await migrate.downgrade(db, revision)

    at = _with_db(work)
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
def db_revision(  # noqa: PLR0917 - typer options
    message: Annotated[str, typer.Option("-m", "--message", help="What the revision does.")],
    head: Annotated[str, typer.Option(help="Revision to build on, e.g. leveling@head.")] = "head",
    new_branch: Annotated[str | None, typer.Option(
        "--new-branch", metavar="NAME",
        help="Start the migration branch of a new module NAME, rooted at 0001_identity (revision NAME_0001).",
    )] = None,
    branch_label: Annotated[str | None, typer.Option(help="Label the new revision (prefer --new-branch).")] = None,
    rev_id: Annotated[str | None, typer.Option(help="Revision id to use.")] = None,
    version_path: Annotated[Path | None, typer.Option(
        help="Write the file into this directory instead of the package's migrations.")] = None,
) -> None:
    """(Developers) autogenerate a migration from the models.

    `--head leveling@head` continues a module's branch; `--new-branch polls` starts the branch of a module
    that adds its first tables. The database must be at every head first (`guildkeep db upgrade`).
    """
    path = _with_db(lambda db, _s: migrate.autogenerate(
        db, message, head=head, branch_label=branch_label, rev_id=rev_id, new_branch=new_branch,
        version_path=version_path,
    ))
    console.print(f"wrote {path}; review it before committing", markup=False, highlight=False)


# --- db: backups -----------------------------------------------------------------------------


@db_app.command("backup")
def db_backup() -> None:
    """Take a consistent, compressed backup into the backup directory."""
    _require_backup_dir(_settings())

    async def work(db: Database, settings: Settings) -> Path:
        return await backups_mod.create_backup(db, settings.backup_dir)

    path = _with_db(work)
    console.print(str(path), markup=False)


@db_app.command("backups")
def db_backups() -> None:
    """List the backups, newest first."""
    settings = _settings()
    _require_backup_dir(settings, write=False)
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
    keep: Annotated[
        int | None, typer.Option(help="Keep the newest N, at least 1 (default: GUILDKEEP_BACKUP_KEEP).", min=1)
    ] = None,
    max_age_days: Annotated[
        float | None,
        typer.Option(help="Delete older than this many days (0: no limit).", callback=_finite_non_negative),
    ] = None,
) -> None:
    """Delete old backups by count and age; the newest is always kept."""
    settings = _settings()
    _require_backup_dir(settings)
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
    force: Annotated[bool, typer.Option("--force", help="Go on even though a bot's heartbeat is fresh.")] = False,
) -> None:
    """Replace the database's contents with a backup. Refuses while a bot runs on the database (stop it first)."""
    try:
        backups_mod.read_manifest(file)  # a missing or damaged file is refused before anything is asked
    except DomainError as exc:
        err.print(f"guildkeep: {exc}", markup=False, highlight=False)
        raise typer.Exit(1) from exc

    async def check_running(db: Database, _s: Settings) -> None:
        if not force:
            await refuse_if_running(db, "restoring")

    _with_db(check_running)
    _confirm_destructive(f"`db restore` replaces everything in the database with {file.name}", yes, word="restore")

    async def work(db: Database, _s: Settings) -> dict[str, Any]:
        await check_running(db, _s)
        return await backups_mod.restore_backup(db, file)

    manifest = _with_db(work)
    console.print(f"restored {file.name}: {sum(manifest['tables'].values())} rows in {len(manifest['tables'])} tables")


@db_app.command("verify")
def db_verify(file: Annotated[Path, typer.Argument(help="A backup file to check.")]) -> None:
    """Restore a backup into a scratch database and compare row counts and content checksums table by table."""
    settings = _settings()
    with _one_line_errors():
        report = asyncio.run(backups_mod.verify_backup(file, scratch_url=settings.database_url))
    table = Table("table", "rows in manifest", "rows restored", "contents")
    for name in sorted(set(report.expected) | set(report.actual)):
        table.add_row(name, str(report.expected.get(name, "-")), str(report.actual.get(name, "-")),
                      report.contents(name))
    console.print(table)
    for note in report.notes:
        console.print(f"note: {note}", markup=False, highlight=False)
    if not report.ok:
        for problem in report.problems:
            err.print(f"problem: {problem}", markup=False, highlight=False)
        raise typer.Exit(1)
    what = "row count and contents" if report.checked_contents else "row count"
    console.print(f"OK: {file.name} restores with every table's {what} intact ({report.backend})", markup=False)


# --- bench: performance runs -----------------------------------------------------------------

bench_app = typer.Typer(help="Performance benchmarks (they create and drop their own databases).",
                        no_args_is_help=True)
app.add_typer(bench_app, name="bench")


@bench_app.command("ingest")
def bench_ingest(  # noqa: PLR0917 - typer options
    backend: Annotated[str, typer.Option(help="sqlite, postgresql or both.")] = "both",
    events: Annotated[int, typer.Option(min=1_000, help="Message events to ingest.")] = 1_000_000,
    members: Annotated[int, typer.Option(min=1_000, help="Members over all servers (the largest has a tenth).")]
    = 1_000_000,
    guilds: Annotated[int, typer.Option(min=1, max=100_000, help="Servers.")] = 1_000,
    naive_sample: Annotated[int, typer.Option(min=100, help="Events run through the naive path.")] = 5_000,
    read_rate: Annotated[int, typer.Option(min=10, help="Events/s arriving while /rank and /leaderboard are timed.")]
    = 2_000,
    postgres_url: Annotated[str | None, typer.Option(help="PostgreSQL server to create the databases on "
                                                          "(default GUILDKEEP_TEST_POSTGRES_URL or the local one).")]
    = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="Also write the results as JSON to FILE.")] = None,
    bot_config: Annotated[bool, typer.Option("--bot-config/--bare", help="Servers set up as the bot runs them "
                                             "(daily and weekly quests, achievements), or bare.")] = True,
    held_achievements: Annotated[bool, typer.Option(
        "--held-achievements/--new-achievements",
        help="Members hold the achievements their totals earned (a server where the bot has run), or the "
             "achievements were just created and every member who speaks earns one.")] = True,
) -> None:
    """Chat activity through the write-behind path vs the naive path and the storage limit (docs/leveling.md)."""
    from guildkeep.leveling import bench

    if backend not in ("sqlite", "postgresql", "both"):
        err.print("guildkeep: --backend must be sqlite, postgresql or both", markup=False)
        raise typer.Exit(2)
    backends = ["sqlite", "postgresql"] if backend == "both" else [backend]
    scale = bench.Scale(events=events, members=members, guilds=guilds, naive_sample=min(naive_sample, events),
                        read_rate=read_rate, bot_config=bot_config, held_achievements=held_achievements)
    results = asyncio.run(bench.run(backends, scale, pg_url=postgres_url,
                                    log=lambda m: err.print(m, markup=False, highlight=False)))
    print(bench.table(results))
    text = bench.to_json(results)
    print(text)
    if json_out is not None:
        json_out.write_text(text, encoding="utf-8")
    if not all(all(r.checks.values()) for r in results):
        raise typer.Exit(1)


def main() -> None:
    """The ``guildkeep`` command: the bot, the playground, the tools (the process's collector tuned first)."""
    tune_collector()  # a long-running process holding a million members' state: see guildkeep.runtime
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
