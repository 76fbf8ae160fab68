"""Typed settings, read once at start-up from the environment and `.env` (prefix ``GUILDKEEP_``)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///data/guildkeep.db"
SUPPORTED_SCHEMES = ("sqlite+aiosqlite", "postgresql+asyncpg")


class SettingsError(Exception):
    """A setting has a wrong value; the message names the setting in one line."""


class Settings(BaseSettings):
    """Everything guildkeep can be configured with. Each field is ``GUILDKEEP_<NAME>``."""

    model_config = SettingsConfigDict(
        env_prefix="GUILDKEEP_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        validate_default=True,
    )

    database_url: str = Field(
        DEFAULT_DATABASE_URL,
        description="SQLAlchemy URL: sqlite+aiosqlite:///path.db, sqlite+aiosqlite:///:memory: "
        "or postgresql+asyncpg://user@host/db",
    )
    sql_echo: bool = Field(False, description="Log every SQL statement.")
    pool_size: int = Field(5, ge=1, le=200, description="Connections kept open (PostgreSQL).")
    max_overflow: int = Field(10, ge=0, le=500, description="Extra connections allowed at peak.")
    auto_migrate: bool = Field(True, description="Upgrade the database schema when the bot starts.")

    discord_token: SecretStr | None = Field(None, description="Bot token from the Discord developer portal.")
    shard_count: int | None = Field(None, ge=1, description="Total shards; unset lets Discord decide.")
    shard_ids: list[int] | None = Field(None, description="Shards this process runs, e.g. [0,1].")
    redis_url: str | None = Field(None, description="Optional Redis URL for shared cache and cooldowns.")

    backup_dir: Path = Field(Path("backups"), description="Where backups are written.")
    backup_interval_hours: float = Field(
        24.0, ge=0, description="Hours between automatic backups while the bot runs; 0 turns them off."
    )
    backup_keep: int = Field(14, ge=1, description="Backups kept by count (the newest N).")
    backup_max_age_days: float = Field(30.0, ge=0, description="Backups older than this are pruned; 0 = no limit.")

    write_behind_flush_seconds: float = Field(
        1.0, ge=0, le=300, description="Longest time high-rate activity (XP, counters, voice time) waits in memory "
        "before it is stored: the most a crash can lose. 0 stores every event before it is acknowledged."
    )
    gacha_config_dir: Path | None = Field(
        None, description="Directory whose gacha JSON files replace the shipped ones of the same name."
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = Field("INFO")

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_level(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @field_validator("database_url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        scheme = value.split("://", 1)[0] if "://" in value else ""
        if scheme not in SUPPORTED_SCHEMES:
            raise ValueError(
                f"must start with one of {', '.join(s + '://' for s in SUPPORTED_SCHEMES)} (got {value!r})"
            )
        return value

    @field_validator("redis_url")
    @classmethod
    def _check_redis(cls, value: str | None) -> str | None:
        if value and not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must start with redis://, rediss:// or unix://")
        return value or None

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def token(self) -> str | None:
        if self.discord_token is None:
            return None
        return self.discord_token.get_secret_value() or None


def load_settings(**overrides: object) -> Settings:
    """Read the settings, turning a validation failure into one clear line naming the setting."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        first = exc.errors()[0]
        name = "GUILDKEEP_" + "_".join(str(p) for p in first["loc"] if isinstance(p, str)).upper()
        raise SettingsError(f"invalid setting {name}: {first['msg']}") from exc


def configure_logging(level: str = "INFO") -> None:
    """One format for every logger; discord.py's loggers follow the same handler."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_guildkeep", False):
            root.removeHandler(handler)
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-8s %(name)s: %(message)s"))
    handler._guildkeep = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level)
    # Alembic narrates every step at INFO; keep that for DEBUG runs.
    logging.getLogger("alembic").setLevel(logging.DEBUG if level == "DEBUG" else logging.WARNING)
