"""The data core: engine and unit of work, column types, mixins, error translation, migrations, backups."""

from guildkeep.db.base import Base
from guildkeep.db.database import Database
from guildkeep.db.errors import (
    ConflictError,
    DomainError,
    DuplicateError,
    ForeignKeyError,
    InsufficientFundsError,
    NotFoundError,
    PermissionDeniedError,
    ValidationError,
)
from guildkeep.db.mixins import SoftDeleteMixin, TimestampMixin
from guildkeep.db.types import BigIntPK, PortableJSON, Snowflake, UTCDateTime, utcnow

__all__ = [
    "Base",
    "BigIntPK",
    "ConflictError",
    "Database",
    "DomainError",
    "DuplicateError",
    "ForeignKeyError",
    "InsufficientFundsError",
    "NotFoundError",
    "PermissionDeniedError",
    "PortableJSON",
    "Snowflake",
    "SoftDeleteMixin",
    "TimestampMixin",
    "UTCDateTime",
    "ValidationError",
    "utcnow",
]
