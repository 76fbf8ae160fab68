"""``guildkeep import mee6 FILE --guild ID``: bring a MEE6 leaderboard export into a server's levels."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

import_app = typer.Typer(help="Import data from other bots.", no_args_is_help=True)


def read_mee6_players(path: Path) -> list[Any]:
    """The ``players`` list of a MEE6 leaderboard JSON (``{"players": [...]}``, or a bare list)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise typer.BadParameter(f"cannot read {path}: {exc}", param_hint="FILE") from exc
    players = data.get("players") if isinstance(data, dict) else data
    if not isinstance(players, list):
        raise typer.BadParameter(f"{path} has no 'players' list", param_hint="FILE")
    return players


MAX_SNOWFLAKE = 2**63 - 1


def discord_id(value: int) -> int:
    """Typer callback: a Discord id is a whole number from 1 to 2^63-1."""
    if not 1 <= value <= MAX_SNOWFLAKE:
        raise typer.BadParameter(f"{value} is not a Discord server id (a whole number from 1 to {MAX_SNOWFLAKE})")
    return value


@import_app.command("mee6")
def import_mee6(
    file: Annotated[Path, typer.Argument(help="MEE6 leaderboard JSON with players: id, xp, level, username.")],
    guild: Annotated[
        int, typer.Option("--guild", help="The Discord server id to import into.", callback=discord_id)
    ],
) -> None:
    """Import MEE6 XP (idempotent: running it again changes nothing) and report what happened.

    Entries whose id is not a Discord id or whose xp is not a whole number are skipped and listed.
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from guildkeep.clitools import console, err
    from guildkeep.clitools import with_db as _with_db
    from guildkeep.leveling.service import LevelingService

    players = read_mee6_players(file)
    bar = Progress(TextColumn("importing"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                   console=err, transient=True, disable=not err.is_terminal)
    task = bar.add_task("import", total=None)

    def progress(done: int, total: int) -> None:
        bar.update(task, completed=done, total=total)

    with bar:
        report = _with_db(lambda db, _settings: LevelingService(db).import_mee6(guild, players, progress=progress))
    table = Table("imported", "updated", "unchanged", "skipped")
    table.add_row(str(report.imported), str(report.updated), str(report.unchanged), str(len(report.skipped)))
    console.print(table)
    for player, reason in report.skipped:
        err.print(f"skipped {player}: {reason}", markup=False, highlight=False)
