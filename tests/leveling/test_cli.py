from __future__ import annotations

import asyncio
import json
from pathlib import Path

from typer.testing import CliRunner

from guildkeep.cli import app
from guildkeep.db import Database
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
