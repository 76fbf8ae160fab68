"""The companion's part of an export and a forget: everything it remembers about a user.

Preferences, facts (with their associations), conversations and messages, relationships, communication
styles and scheduled events are deleted; mood history rows the user caused keep their numbers with the
user and the description cleared (the server's mood curve is the bot's, not the user's).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from guildkeep.companion.models import MoodHistory
from guildkeep.companion.service import TABLES, forget_user_rows
from guildkeep.db import utcnow
from guildkeep.privacy.registry import ForgetReport, row_dict


class CompanionPrivacy:
    """Every companion table that holds a user id."""

    name = "companion"
    tables = (*(model.__tablename__ for model in TABLES.values()), "companion_fact_associations",
              "companion_mood_history")
    order = 100

    async def export_user(self, session: AsyncSession, user_id: int) -> dict[str, Any]:
        """Each table's rows about the user, and the mood changes they caused."""
        out: dict[str, Any] = {}
        for name, model in TABLES.items():
            rows = (await session.execute(select(model).where(model.user_id == user_id))).scalars().all()
            out[name] = [row_dict(r) for r in rows]
        moods = (await session.execute(select(MoodHistory).where(MoodHistory.trigger_user_id == user_id)
                                       .order_by(MoodHistory.id))).scalars().all()
        out["mood_changes_caused"] = [row_dict(r) for r in moods]
        return out

    async def forget_user(self, session: AsyncSession, user_id: int) -> ForgetReport:
        """Delete every companion row about the user; unlink the mood changes they caused."""
        report = ForgetReport(self.name)
        counts = await forget_user_rows(session, user_id, now=utcnow())
        links = counts.pop("mood_history_links", 0)
        for name, count in counts.items():
            model = TABLES.get(name)
            report.removed(model.__tablename__ if model is not None else f"companion_{name}", count)
        report.kept_anonymised("companion_mood_history", links)
        return report


PROVIDER = CompanionPrivacy()
