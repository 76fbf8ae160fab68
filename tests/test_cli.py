from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from guildkeep import __version__
from guildkeep.cli import app

runner = CliRunner()


@pytest.fixture
def cli_env(empty_database_url: str, isolated_env: Path) -> dict[str, str]:
    tmp_path = isolated_env
    return {
        "GUILDKEEP_DATABASE_URL": empty_database_url,
        "GUILDKEEP_BACKUP_DIR": str(tmp_path / "backups"),
        "GUILDKEEP_LOG_LEVEL": "WARNING",
    }


def _ok(args: list[str], env: dict[str, str]) -> str:
    result = runner.invoke(app, args, env=env)
    assert result.exit_code == 0, (args, result.output, result.exception)
    return result.output


def test_version() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert __version__ in result.output


def test_db_commands_end_to_end(cli_env: dict[str, str], tmp_path: Path) -> None:
    """The issue's acceptance path: upgrade, check, backup, verify — on an empty database of each backend."""
    assert "database at:" in _ok(["db", "upgrade"], cli_env)  # every module branch's head, not only identity
    assert "(head)" in _ok(["db", "current"], cli_env)
    assert "schema matches the models" in _ok(["db", "check"], cli_env)
    assert "0001_identity" in _ok(["db", "history"], cli_env)
    backup_path = Path(_ok(["db", "backup"], cli_env).strip().splitlines()[-1])
    assert backup_path.exists()
    assert "OK:" in _ok(["db", "verify", str(backup_path)], cli_env)
    assert backup_path.name in _ok(["db", "backups"], cli_env)
    assert "restored" in _ok(["db", "restore", str(backup_path), "--yes"], cli_env)
    assert "removed 0 backup(s)" in _ok(["db", "prune"], cli_env)
    _ok(["db", "downgrade", "base"], cli_env)
    result = runner.invoke(app, ["db", "check"], env=cli_env)
    assert result.exit_code == 1
    assert "run `guildkeep db upgrade`" in result.output


def test_bad_setting_is_one_clear_line(cli_env: dict[str, str]) -> None:
    result = runner.invoke(app, ["db", "current"], env={**cli_env, "GUILDKEEP_POOL_SIZE": "lots"})
    assert result.exit_code == 2
    assert "invalid setting GUILDKEEP_POOL_SIZE" in result.output


def test_verify_missing_file_is_clear(cli_env: dict[str, str]) -> None:
    result = runner.invoke(app, ["db", "verify", "nope.tar.gz"], env=cli_env)
    assert result.exit_code == 1
    assert "No backup file" in result.output
