"""Typed settings, read once at start-up from the environment and `.env` (prefix ``GUILDKEEP_``)."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, ValidationError, ValidationInfo, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

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
    scheduler_poll_seconds: float = Field(
        5.0, gt=0, le=3600, description="How often the bot looks for due scheduled jobs (quest resets, backups ...)."
    )
    gacha_config_dir: Path | None = Field(
        None, description="Directory whose gacha JSON files replace the shipped ones of the same name."
    )
    operator_ids: Annotated[list[int], NoDecode] = Field(
        default_factory=list,
        description="Discord user ids, comma separated, allowed to run operator commands (besides the bot "
        "application's owner), e.g. /gacha reseed.",
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = Field("INFO")

    # The language model: any OpenAI-compatible chat endpoint (docs/llm.md). Unset base URL = none.
    llm_base_url: str | None = Field(
        None, description="OpenAI-compatible API root ending in /v1, e.g. http://127.0.0.1:11434/v1 (Ollama)."
    )
    llm_model: str | None = Field(None, description="Model name sent with every request; required with a base URL.")
    llm_api_key: SecretStr | None = Field(None, description="Bearer key for hosted APIs; local servers need none.")
    llm_timeout_seconds: float = Field(60.0, gt=0, le=600, description="Longest wait for one model request.")
    llm_max_tokens: int = Field(512, ge=1, le=32_768, description="Most tokens a reply may have.")
    llm_context_tokens: int = Field(
        8192, ge=256, le=1_048_576, description="The model's context window; older messages are trimmed to fit."
    )
    llm_requests_per_minute: int = Field(
        20, ge=0, le=100_000, description="Model requests one server may make per minute; 0 = no limit."
    )

    # The web pages (docs/web.md): public leaderboards and the admin dashboard.
    web_port: int | None = Field(
        None, ge=0, le=65535, description="Serve the web pages from `guildkeep run` on this port (unset: not served)."
    )
    web_host: str = Field("127.0.0.1", description="Address the web pages listen on.")
    web_base_url: str | None = Field(
        None, description="The address people reach the web pages at, e.g. https://bot.example.org (OAuth2 "
        "redirect; https makes the session cookie Secure). Default: http://<host>:<port>."
    )
    web_client_id: str | None = Field(None, description="OAuth2 client id of the Discord application (dashboard).")
    web_client_secret: SecretStr | None = Field(None, description="OAuth2 client secret of the Discord application.")
    web_session_secret: SecretStr | None = Field(
        None, description="Key that signs session cookies; unset: a random key per start (everyone logs in again)."
    )
    web_discord_url: str = Field(
        "https://discord.com", description="Where OAuth2 logins go (Discord itself; the sandbox in tests)."
    )

    @field_validator("web_base_url", "web_discord_url")
    @classmethod
    def _check_web_url(cls, value: str | None) -> str | None:
        if not value:
            return None
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_level(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @field_validator("operator_ids", mode="before")
    @classmethod
    def _split_ids(cls, value: object) -> object:
        if isinstance(value, int):
            value = [value]
        if isinstance(value, str):
            value = [part.strip() for part in value.split(",") if part.strip()]
        if isinstance(value, list | tuple):
            ids = []
            for part in value:
                text = str(part).strip()
                if not text.isascii() or not text.isdigit() or not 0 < int(text) < 2**63:
                    raise ValueError(f"expected Discord user ids separated by commas, got {text[:40]!r}")
                ids.append(int(text))
            return ids
        return value

    @field_validator("database_url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        scheme = value.split("://", 1)[0] if "://" in value else ""
        if scheme not in SUPPORTED_SCHEMES:
            raise ValueError(
                f"must start with one of {', '.join(s + '://' for s in SUPPORTED_SCHEMES)} (got {value!r})"
            )
        from guildkeep.db.database import sqlite_directory_problem

        problem = sqlite_directory_problem(value)
        if problem is not None:
            raise ValueError(problem)
        return value

    @field_validator("redis_url")
    @classmethod
    def _check_redis(cls, value: str | None) -> str | None:
        if value and not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must start with redis://, rediss:// or unix://")
        return value or None

    @field_validator("llm_base_url")
    @classmethod
    def _check_llm_url(cls, value: str | None) -> str | None:
        if not value:
            return None
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https:// (the API root, e.g. http://127.0.0.1:11434/v1)")
        return value.rstrip("/")

    @field_validator("llm_model")
    @classmethod
    def _check_llm_model(cls, value: str | None, info: ValidationInfo) -> str | None:
        value = (value or "").strip() or None
        if value is None and info.data.get("llm_base_url"):
            raise ValueError("must be set when GUILDKEEP_LLM_BASE_URL is (the model name the server knows)")
        return value

    @field_validator("shard_ids", mode="before")
    @classmethod
    def _shard_list(cls, value: object) -> object:
        """Accept ``[0]`` (JSON), ``0`` and ``0,1`` as well."""
        if isinstance(value, int | str) and not isinstance(value, bool):
            text = str(value).strip().strip("[]")
            if not text:
                return None
            try:
                return [int(part) for part in text.split(",")]
            except ValueError:
                raise ValueError(f"must be shard numbers such as [0] (got {value!r})") from None
        return value

    @field_validator("gacha_config_dir")
    @classmethod
    def _check_gacha_dir(cls, value: Path | None) -> Path | None:
        if value is None or str(value) == "":
            return None
        if not value.exists():
            raise ValueError(f"{value} does not exist")
        if not value.is_dir():
            raise ValueError(f"{value} is not a directory")
        try:
            os.listdir(value)
        except OSError as exc:
            raise ValueError(f"{value} cannot be read ({exc.strerror or exc})") from None
        return value

    @model_validator(mode="after")
    def _check_shards(self) -> Settings:
        ids = self.shard_ids or []
        if not ids:
            self.shard_ids = None
            return self
        if self.shard_count is None:
            raise ValueError("GUILDKEEP_SHARD_IDS needs GUILDKEEP_SHARD_COUNT (the total number of shards)")
        for shard in ids:
            if not 0 <= shard < self.shard_count:
                raise ValueError(
                    f"GUILDKEEP_SHARD_IDS: shard {shard} is outside GUILDKEEP_SHARD_COUNT={self.shard_count} "
                    f"(shards are numbered 0 to {self.shard_count - 1})"
                )
        if len(set(ids)) != len(ids):
            twice = next(shard for shard in ids if ids.count(shard) > 1)
            raise ValueError(f"GUILDKEEP_SHARD_IDS: shard {twice} is listed twice")
        if len(ids) != 1:
            raise ValueError(f"GUILDKEEP_SHARD_IDS: run one shard per process; give one id, e.g. [{ids[0]}]")
        return self

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def token(self) -> str | None:
        if self.discord_token is None:
            return None
        return self.discord_token.get_secret_value() or None

    @property
    def llm_key(self) -> str | None:
        if self.llm_api_key is None:
            return None
        return self.llm_api_key.get_secret_value() or None


def load_settings(**overrides: object) -> Settings:
    """Read the settings, turning a validation failure into one clear line naming the setting."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        first = exc.errors()[0]
        message = str(first["msg"]).removeprefix("Value error, ")
        fields = [str(p) for p in first["loc"] if isinstance(p, str)]
        if not fields:  # a check across settings: its message names them
            raise SettingsError(f"invalid setting {message}") from exc
        name = "GUILDKEEP_" + "_".join(fields).upper()
        raise SettingsError(f"invalid setting {name}: {message}") from exc


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
