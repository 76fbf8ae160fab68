from __future__ import annotations

from pathlib import Path

import pytest

from guildkeep.config import DEFAULT_DATABASE_URL, SettingsError, load_settings


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import os

    for key in list(os.environ):
        if key.startswith("GUILDKEEP_"):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)  # no stray .env


def test_defaults() -> None:
    settings = load_settings()
    assert settings.database_url == DEFAULT_DATABASE_URL
    assert settings.is_sqlite
    assert settings.token is None
    assert settings.pool_size == 5
    assert settings.backup_dir == Path("backups")
    assert settings.log_level == "INFO"
    assert settings.scheduler_poll_seconds == 5


def test_environment_and_dotenv(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("GUILDKEEP_DISCORD_TOKEN=abc.def\nGUILDKEEP_LOG_LEVEL=debug\n")
    monkeypatch.setenv("GUILDKEEP_DATABASE_URL", "postgresql+asyncpg://u@h/db")
    monkeypatch.setenv("GUILDKEEP_POOL_SIZE", "20")
    monkeypatch.setenv("GUILDKEEP_REDIS_URL", "redis://127.0.0.1:6379/0")
    settings = load_settings()
    assert settings.token == "abc.def"
    assert settings.log_level == "DEBUG"
    assert not settings.is_sqlite
    assert settings.pool_size == 20
    assert settings.redis_url == "redis://127.0.0.1:6379/0"
    assert "abc.def" not in repr(settings)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("GUILDKEEP_DATABASE_URL", "mysql://x/y"),
        ("GUILDKEEP_POOL_SIZE", "zero"),
        ("GUILDKEEP_POOL_SIZE", "0"),
        ("GUILDKEEP_LOG_LEVEL", "LOUD"),
        ("GUILDKEEP_REDIS_URL", "http://nope"),
        ("GUILDKEEP_BACKUP_KEEP", "0"),
        ("GUILDKEEP_SCHEDULER_POLL_SECONDS", "0"),
    ],
)
def test_a_wrong_value_names_the_setting(monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError) as info:
        load_settings()
    message = str(info.value)
    assert message.startswith(f"invalid setting {name}:")
    assert "\n" not in message


def test_a_sqlite_url_under_a_missing_directory_is_refused_in_one_line(isolated_env: Path) -> None:
    missing = isolated_env / "nowhere" / "deeper"
    with pytest.raises(SettingsError) as caught:
        load_settings(database_url=f"sqlite+aiosqlite:///{missing / 'bot.db'}")
    assert str(caught.value).startswith("invalid setting GUILDKEEP_DATABASE_URL: ")
    assert str(missing) in str(caught.value)
    assert "\n" not in str(caught.value)
    assert not (isolated_env / "nowhere").exists()
    a_file = isolated_env / "a-file"
    a_file.write_text("x")
    with pytest.raises(SettingsError, match="is not a directory"):
        load_settings(database_url=f"sqlite+aiosqlite:///{a_file / 'bot.db'}")


def test_only_the_default_data_directory_is_made(isolated_env: Path) -> None:
    from guildkeep.db import Database

    assert load_settings().database_url == "sqlite+aiosqlite:///data/guildkeep.db"
    Database("sqlite+aiosqlite:///data/guildkeep.db")
    assert (isolated_env / "data").is_dir()
    with pytest.raises(FileNotFoundError, match="does not exist"):
        Database(f"sqlite+aiosqlite:///{isolated_env / 'elsewhere' / 'bot.db'}")
    assert not (isolated_env / "elsewhere").exists()
