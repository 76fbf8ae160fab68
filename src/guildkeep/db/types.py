"""Portable column types: snowflakes, aware UTC datetimes and JSON."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, DateTime, Integer
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

from guildkeep.clock import CLOCK

SNOWFLAKE_MAX = 2**63 - 1


class Snowflake(TypeDecorator[int]):
    """A Discord id: a 64-bit integer (BIGINT on PostgreSQL, INTEGER on SQLite, both 8 bytes)."""

    impl = BigInteger
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> Any:
        if dialect.name == "sqlite":
            # INTEGER keeps "INTEGER PRIMARY KEY" semantics and stores up to 2**63-1 exactly.
            return dialect.type_descriptor(Integer())
        return dialect.type_descriptor(BigInteger())

    def process_bind_param(self, value: Any, dialect: Dialect) -> int | None:
        if value is None:
            return None
        number = int(value)
        if not 0 <= number <= SNOWFLAKE_MAX:
            raise ValueError(f"snowflake out of range: {number}")
        return number

    def process_result_value(self, value: Any, dialect: Dialect) -> int | None:
        return None if value is None else int(value)


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on both backends; naive datetimes are refused."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if not isinstance(value, datetime):
            raise TypeError(f"expected a datetime, got {type(value).__name__}")
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError("naive datetime refused: pass an aware datetime (UTC)")
        aware = value.astimezone(UTC)
        if dialect.name == "sqlite":
            return aware.replace(tzinfo=None)  # stored as UTC text, re-tagged on the way out
        return aware

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        stored: datetime = value
        if stored.tzinfo is None:
            return stored.replace(tzinfo=UTC)
        return stored.astimezone(UTC)


class PortableJSON(TypeDecorator[Any]):
    """JSONB on PostgreSQL (indexable, compact), JSON text on SQLite."""

    impl = JSON
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> Any:
        if dialect.name == "postgresql":
            return dialect.type_descriptor(JSONB())
        return dialect.type_descriptor(JSON())


def utcnow() -> datetime:
    """Now, timezone-aware UTC, from the process-wide clock (``guildkeep.clock``), which the playground can move."""
    return CLOCK.now()


# Surrogate primary keys: BIGINT on PostgreSQL, INTEGER (the rowid alias, so it autoincrements) on SQLite.
BigIntPK = BigInteger().with_variant(Integer(), "sqlite")
