"""Column mixins shared by module tables."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, true
from sqlalchemy.orm import Mapped, mapped_column

from guildkeep.db.types import UTCDateTime, utcnow


class TimestampMixin:
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, nullable=False)
    updated_at: Mapped[datetime] = mapped_column(
        UTCDateTime(), default=utcnow, onupdate=utcnow, nullable=False
    )


class SoftDeleteMixin:
    is_active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true(), nullable=False)
