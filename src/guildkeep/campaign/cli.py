"""``guildkeep import campaign-json DIR`` and ``guildkeep export campaign-json --guild ID DIR``.

The directory holds the seed's three files, ``campaigns.json``, ``characters.json`` and ``npcs.json``, and
may hold ``backups/`` with timestamped copies (``campaigns.json.20240101120000``). A file that is missing
or does not parse is reported, and the newest backup copy that parses is offered in its place (asked on
a terminal; ``--use-backup`` takes it without asking, ``--no-backup`` never does).
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

FILES = {"campaigns": "campaigns.json", "characters": "characters.json", "npcs": "npcs.json"}
BACKUP_DIR = "backups"
_STAMP = re.compile(r"\.(\d{14})$")


@dataclass(slots=True)
class SeedDir:
    """What was read from the directory: each file's data (None when left out) and what was said about it."""

    data: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    from_backup: dict[str, Path] = field(default_factory=dict)

    @property
    def entries(self) -> int:
        """How many entries the files hold (the progress bar's total)."""
        depth = {"campaigns": 2, "characters": 3, "npcs": 3}
        return sum(_count(self.data.get(kind), depth[kind]) for kind in FILES)


def _count(data: Any, depth: int) -> int:
    if not isinstance(data, dict):
        return 0
    if depth == 0:
        return 1
    return sum(_count(v, depth - 1) if depth > 1 else 1 for v in data.values())


def read_json(path: Path) -> tuple[Any, str | None]:
    """The file's JSON object, or None and what is wrong with it (missing, unreadable, not JSON)."""
    if not path.exists():
        return None, "is missing"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        return None, f"can't be read ({exc})"
    except json.JSONDecodeError as exc:
        return None, f"is corrupt (not valid JSON: {exc.msg} at line {exc.lineno})"
    if not isinstance(data, dict):
        return None, "is corrupt (it does not hold a JSON object)"
    return data, None


def newest_backup(directory: Path, name: str) -> tuple[Path, Any] | None:
    """The newest timestamped copy of ``name`` in ``directory/backups`` that parses, with its data."""
    backups = directory / BACKUP_DIR
    if not backups.is_dir():
        return None
    stamped = sorted(((m.group(1), p) for p in backups.glob(f"{name}.*") if (m := _STAMP.search(p.name))),
                     reverse=True)
    for _stamp, path in stamped:
        data, problem = read_json(path)
        if problem is None:
            return path, data
    return None


def backup_time(path: Path) -> str:
    """A backup's timestamp as people read it."""
    m = _STAMP.search(path.name)
    if not m:
        return path.name
    d = m.group(1)
    return f"{d[:4]}-{d[4:6]}-{d[6:8]} {d[8:10]}:{d[10:12]}:{d[12:]}"


def read_seed_dir(directory: Path, *, use_backup: bool | None, confirm: Callable[[str], bool]) -> SeedDir:
    """Read the three files. For a missing or corrupt one, say so and offer the newest backup that parses:
    ``use_backup`` True takes it, False never does, None asks ``confirm``."""
    seed = SeedDir()
    for kind, name in FILES.items():
        data, problem = read_json(directory / name)
        if problem is None:
            seed.data[kind] = data
            continue
        note = f"{name} {problem}"
        found = newest_backup(directory, name)
        if found is None:
            seed.notes.append(f"{note}; no backup of it in {directory / BACKUP_DIR} parses, so it is left out")
            seed.data[kind] = None
            continue
        path, backup = found
        offer = f"{note}. Use the newest backup that parses, {path.name} (from {backup_time(path)})?"
        take = use_backup if use_backup is not None else confirm(offer)
        if take:
            seed.data[kind] = backup
            seed.from_backup[kind] = path
            seed.notes.append(f"{note}; using the backup {path.name} (from {backup_time(path)})")
        else:
            seed.data[kind] = None
            seed.notes.append(f"{note}; left out (the backup {path.name} was not used)")
    return seed


def write_seed_dir(directory: Path, data: dict[str, Any], *, now: datetime | None = None) -> list[Path]:
    """Write the three files (the existing ones first copied to ``backups/`` with a timestamp, as the seed
    did); each is written to a temporary file and renamed, so a crash never leaves half a file."""
    directory.mkdir(parents=True, exist_ok=True)
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%d%H%M%S")
    written = []
    for kind, name in FILES.items():
        target = directory / name
        if target.exists():
            backups = directory / BACKUP_DIR
            backups.mkdir(exist_ok=True)
            (backups / f"{name}.{stamp}").write_bytes(target.read_bytes())
        tmp = directory / f".{name}.tmp"
        tmp.write_text(json.dumps(data.get(kind, {}), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        os.replace(tmp, target)
        written.append(target)
    return written


def import_campaign_json(
    directory: Annotated[Path, typer.Argument(help="The directory with campaigns.json, characters.json, npcs.json.",
                                              file_okay=False)],
    use_backup: Annotated[bool | None, typer.Option(
        "--use-backup/--no-backup",
        help="For a missing or corrupt file, take the newest backup that parses without asking (or never).")
    ] = None,
) -> None:
    """Import the seed's campaign files (idempotent: running it again changes nothing) and report what happened.

    Malformed entries are skipped and listed with the reason; the rest is imported.
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from guildkeep.campaign.service import CampaignService
    from guildkeep.clitools import console, err
    from guildkeep.clitools import with_db as _with_db

    if not directory.is_dir():
        raise typer.BadParameter(f"{directory} is not a directory", param_hint="DIR")
    interactive = sys.stdin.isatty()

    def confirm(question: str) -> bool:
        if not interactive:
            err.print(f"{question} Run again with --use-backup to use it.", markup=False, highlight=False)
            return False
        return typer.confirm(question, default=True, err=True)

    seed = read_seed_dir(directory, use_backup=use_backup, confirm=confirm)
    for note in seed.notes:
        err.print(note, markup=False, highlight=False)
    if all(v is None for v in seed.data.values()):
        err.print("guildkeep: nothing to import", markup=False, highlight=False)
        raise typer.Exit(1)
    bar = Progress(TextColumn("importing"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                   console=err, transient=True, disable=not err.is_terminal)
    task = bar.add_task("import", total=seed.entries)

    def progress() -> None:
        bar.advance(task)

    with bar:
        report = _with_db(lambda db, _settings: CampaignService(db).import_seed(seed.data, progress=progress))
    table = Table("", "imported", "updated", "unchanged")
    for kind in FILES:
        table.add_row(kind, str(report.imported.get(kind, 0)), str(report.updated.get(kind, 0)),
                      str(report.unchanged.get(kind, 0)))
    console.print(table)
    console.print(f"skipped: {len(report.skipped)}", markup=False, highlight=False)
    for where, reason in report.skipped:
        err.print(f"skipped {where}: {reason}", markup=False, highlight=False)


def export_campaign_json(
    directory: Annotated[Path, typer.Argument(help="Where to write campaigns.json, characters.json, npcs.json.",
                                              file_okay=False)],
    guild: Annotated[int, typer.Option("--guild", help="The Discord server id to export.")],
) -> None:
    """Write one server's campaigns, characters and NPCs in the seed's layout (existing files are backed up)."""
    from guildkeep.campaign.rules import snowflake
    from guildkeep.campaign.service import CampaignService
    from guildkeep.clitools import console
    from guildkeep.clitools import with_db as _with_db

    if snowflake(guild) is None:
        raise typer.BadParameter(f"{guild} is not a Discord server id (a whole number from 1 to 2^63-1)",
                                 param_hint="--guild")
    data = _with_db(lambda db, _settings: CampaignService(db).export_guild(guild))
    for path in write_seed_dir(directory, data):
        console.print(str(path), markup=False, highlight=False)
    count = _count(data["campaigns"], 2)
    console.print(f"exported {count} campaign(s) of server {guild}", markup=False, highlight=False)
