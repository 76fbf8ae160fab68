"""The data core: engine and unit of work, column types, mixins, error translation, migrations, backups."""

from guildkeep.db.base import Base
from guildkeep.db.database import Database
from guildkeep.db.mixins import SoftDeleteMixin, TimestampMixin
from guildkeep.db.types import BigIntPK, PortableJSON, Snowflake, UTCDateTime, utcnow

__all__ = [
    "Base",
    "BigIntPK",
    "Database",
    "PortableJSON",
    "Snowflake",
    "SoftDeleteMixin",
    "TimestampMixin",
    "UTCDateTime",
    "utcnow",
]
