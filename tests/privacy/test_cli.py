"""``guildkeep privacy export|forget`` on both databases."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from typer.testing import CliRunner

from guildkeep.cli import app
from guildkeep.db import Database
from guildkeep.identity.service import IdentityService
from tests.privacy.test_service import rows_naming

runner = CliRunner()
USER = 730_000_000_000_000_021


async def _seed(url: str) -> None:
    db = Database(url)
    try:
        await IdentityService(db).upsert_member(710_000_000_000_000_001, USER, username="dana", nickname="D")
    finally:
        await db.dispose()


async def _rows(url: str) -> dict:
    db = Database(url)
    try:
        return dict(await rows_naming(db, USER))
    finally:
        await db.dispose()


def test_privacy_export_and_forget(empty_database_url: str, tmp_path: Path) -> None:
    url = empty_database_url
    env = {"GUILDKEEP_DATABASE_URL": url, "GUILDKEEP_LOG_LEVEL": "WARNING"}
    assert runner.invoke(app, ["db", "upgrade"], env=env).exit_code == 0
    asyncio.run(_seed(url))

    shown = runner.invoke(app, ["privacy", "export", str(USER)], env=env)
    assert shown.exit_code == 0, shown.output
    assert json.loads(shown.output)["data"]["identity"]["memberships"][0]["nickname"] == "D"
    out = tmp_path / "export.json"
    written = runner.invoke(app, ["privacy", "export", str(USER), "--out", str(out)], env=env)
    assert written.exit_code == 0, written.output
    assert json.loads(out.read_text())["user_id"] == USER

    kept = runner.invoke(app, ["privacy", "forget", str(USER)], env=env, input="n\n")
    assert kept.exit_code == 1
    assert asyncio.run(_rows(url))["users"]

    gone = runner.invoke(app, ["privacy", "forget", str(USER), "--yes"], env=env)
    assert gone.exit_code == 0, gone.output
    assert "identity: removed 1 guild_members, 1 users" in gone.output
    assert asyncio.run(_rows(url)) == {}
    again = runner.invoke(app, ["privacy", "forget", str(USER), "--yes"], env=env)
    assert "nothing was stored" in again.output

    refused = runner.invoke(app, ["privacy", "export", "0"], env=env)
    assert refused.exit_code != 0
