from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

from sqlalchemy import func, select
from typer.testing import CliRunner

from guildkeep.cli import app
from guildkeep.db import Database
from guildkeep.leveling.models import Level
from guildkeep.leveling.service import LevelingService

runner = CliRunner()


def _level(url: str, guild: int, user: int) -> tuple[int, int]:
    async def read() -> tuple[int, int]:
        db = Database(url)
        try:
            view = await LevelingService(db).get_user_level(guild, user)
        finally:
            await db.dispose()
        return view.xp, view.level

    return asyncio.run(read())


def test_import_mee6_command_is_idempotent(empty_database_url: str, tmp_path: Path) -> None:
    database_url = empty_database_url
    export = tmp_path / "mee6.json"
    export.write_text(json.dumps({"players": [
        {"id": "123456789012345678", "xp": 4675, "level": 10, "username": "ann"},
        {"id": "223456789012345678", "xp": 100, "level": 1},
        {"id": "oops", "xp": 1},
    ]}))
    env = {"GUILDKEEP_DATABASE_URL": database_url, "GUILDKEEP_LOG_LEVEL": "WARNING"}
    assert runner.invoke(app, ["db", "upgrade"], env=env).exit_code == 0
    first = runner.invoke(app, ["import", "mee6", str(export), "--guild", "42"], env=env)
    assert first.exit_code == 0, first.output
    assert "2" in first.output
    assert "skipped oops" in first.output
    second = runner.invoke(app, ["import", "mee6", str(export), "--guild", "42"], env=env)
    assert second.exit_code == 0
    assert "│ 0        │ 0       │ 2" in second.output
    assert _level(database_url, 42, 123456789012345678) == (4675, 10)


def test_import_rejects_unreadable_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    result = runner.invoke(app, ["import", "mee6", str(bad), "--guild", "1"])
    assert result.exit_code == 2
    bad.write_text(json.dumps({"rows": []}))
    result = runner.invoke(app, ["import", "mee6", str(bad), "--guild", "1"])
    assert result.exit_code == 2
    assert "players" in result.output


def _count_levels(url: str, guild: int) -> tuple[int, int]:
    async def read() -> tuple[int, int]:
        db = Database(url)
        try:
            async with db.session(read_only=True) as s:
                row = (await s.execute(select(func.count(), func.coalesce(func.sum(Level.xp), 0))
                                       .where(Level.guild_id == guild))).one()
        finally:
            await db.dispose()
        return int(row[0]), int(row[1])

    return asyncio.run(read())


def test_import_of_100000_players_in_chunks(empty_database_url: str, tmp_path: Path) -> None:
    """More players than PostgreSQL's 32,767 bind parameters per statement: every statement is chunked."""
    n = 100_000
    export = tmp_path / "mee6.json"
    export.write_text(json.dumps({"players": [
        {"id": str(10**17 + i), "xp": i, "level": 0, "username": f"p{i}"} for i in range(n)]}))
    env = {"GUILDKEEP_DATABASE_URL": empty_database_url, "GUILDKEEP_LOG_LEVEL": "WARNING"}
    assert runner.invoke(app, ["db", "upgrade"], env=env).exit_code == 0
    first = runner.invoke(app, ["import", "mee6", str(export), "--guild", "42"], env=env)
    assert first.exit_code == 0, (first.output, first.exception)
    assert f"│ {n:<8} │ 0       │ 0         │ 0       │" in first.output
    assert _count_levels(empty_database_url, 42) == (n, n * (n - 1) // 2)
    assert _level(empty_database_url, 42, 10**17 + 99_999)[0] == 99_999
    # again, with one player changed: one update, the rest unchanged
    data = json.loads(export.read_text())
    data["players"][-1]["xp"] = 5
    export.write_text(json.dumps(data))
    second = runner.invoke(app, ["import", "mee6", str(export), "--guild", "42"], env=env)
    assert second.exit_code == 0, (second.output, second.exception)
    assert f"│ 0        │ 1       │ {n - 1:<9} │ 0       │" in second.output


def test_import_refuses_ids_outside_discord_range(empty_database_url: str, tmp_path: Path) -> None:
    export = tmp_path / "mee6.json"
    export.write_text(json.dumps({"players": [{"id": "5", "xp": 1}]}))
    env = {"GUILDKEEP_DATABASE_URL": empty_database_url, "GUILDKEEP_LOG_LEVEL": "WARNING"}
    assert runner.invoke(app, ["db", "upgrade"], env=env).exit_code == 0
    for bad in ("18446744073709551616", str(2**63), "0", "-1"):
        result = runner.invoke(app, ["import", "mee6", str(export), "--guild", bad], env=env)
        assert result.exit_code == 2, (bad, result.output)
        assert isinstance(result.exception, SystemExit)
        assert "Discord server id" in result.output, result.output
    ok = runner.invoke(app, ["import", "mee6", str(export), "--guild", str(2**63 - 1)], env=env)
    assert ok.exit_code == 0, ok.output


def test_import_skips_xp_that_is_not_a_whole_number(empty_database_url: str, tmp_path: Path) -> None:
    export = tmp_path / "mee6.json"
    export.write_text(json.dumps({"players": [
        {"id": "1001", "xp": 1.9},
        {"id": "1002", "xp": True},
        {"id": "1003", "xp": "12"},
        {"id": "1004", "xp": 2.0},
        {"id": True, "xp": 5},
        {"id": 1006.5, "xp": 5},
        {"id": "1007", "xp": None},
        {"id": "1008", "xp": 40},
        {"id": 1009, "xp": 41},
    ]}))
    env = {"GUILDKEEP_DATABASE_URL": empty_database_url, "GUILDKEEP_LOG_LEVEL": "WARNING"}
    assert runner.invoke(app, ["db", "upgrade"], env=env).exit_code == 0
    result = runner.invoke(app, ["import", "mee6", str(export), "--guild", "42"], env=env)
    assert result.exit_code == 0, result.output
    assert "skipped 1001: xp must be a whole number (got 1.9)" in result.output
    assert "skipped 1002: xp must be a whole number (got true)" in result.output
    assert "skipped 1004: xp must be a whole number (got 2.0)" in result.output
    assert "skipped True: id must be a Discord user id" in result.output
    assert "skipped 1006.5: id must be a Discord user id" in result.output
    assert "skipped 1007: xp must be a whole number (got null)" in result.output
    assert _count_levels(empty_database_url, 42) == (3, 12 + 40 + 41)


def test_import_shows_a_progress_bar_on_a_terminal(empty_database_url: str, tmp_path: Path) -> None:
    export = tmp_path / "mee6.json"
    export.write_text(json.dumps({"players": [{"id": str(10**17 + i), "xp": i} for i in range(5_000)]}))
    env = {"GUILDKEEP_DATABASE_URL": empty_database_url, "GUILDKEEP_LOG_LEVEL": "WARNING"}
    assert runner.invoke(app, ["db", "upgrade"], env=env).exit_code == 0
    master, slave = os.openpty()
    chunks: list[bytes] = []

    def drain() -> None:
        while True:
            try:
                data = os.read(master, 65536)
            except OSError:
                return
            if not data:
                return
            chunks.append(data)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    try:
        proc = subprocess.run(
            [str(Path(sys.executable).with_name("guildkeep")), "import", "mee6", str(export), "--guild", "42"],
            check=False, stdin=subprocess.DEVNULL, stdout=slave, stderr=slave, timeout=120,
            env={**{k: v for k, v in os.environ.items() if not k.startswith("GUILDKEEP_")}, **env,
                 "COLUMNS": "100", "TERM": "xterm"},
        )
    finally:
        os.close(slave)
        reader.join(timeout=10)
        os.close(master)
    screen = b"".join(chunks).decode(errors="replace")
    assert proc.returncode == 0, screen
    assert "importing" in screen
    assert "5000/5000" in screen
    assert _count_levels(empty_database_url, 42)[0] == 5_000
