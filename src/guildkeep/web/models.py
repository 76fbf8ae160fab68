"""The web module's table: per-server web settings (absent row = the defaults: public pages on)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, true
from sqlalchemy.orm import Mapped, mapped_column

from guildkeep.db import Base, Snowflake, UTCDateTime, utcnow


class WebSettings(Base):
    __tablename__ = "web_settings"

    guild_id: Mapped[int] = mapped_column(Snowflake(), ForeignKey("guilds.id", ondelete="CASCADE"),
                                          primary_key=True, autoincrement=False)
    public_pages: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True, server_default=true())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow, onupdate=utcnow)
