"""Stories' part of an export and a forget.

A player's relationships with story characters are theirs and are deleted. A world belongs to its server's
story (others play in it), so a world the user created is kept with its creator cleared (0).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from guildkeep.privacy.registry import ForgetReport, row_dict
from guildkeep.story.models import StoryRelationship, StoryWorld

FORGOTTEN_CREATOR = 0


class StoryPrivacy:
    """Relationships (deleted) and the worlds a user created (kept, creator cleared)."""

    name = "story"
    tables = ("story_relationships", "story_worlds")
    order = 100

    async def export_user(self, session: AsyncSession, user_id: int) -> dict[str, Any]:
        """The user's relationships with story characters and the worlds they created."""
        relationships = (await session.execute(
            select(StoryRelationship).where(StoryRelationship.user_id == user_id)
            .order_by(StoryRelationship.id))).scalars().all()
        worlds = (await session.execute(
            select(StoryWorld).where(StoryWorld.created_by == user_id).order_by(StoryWorld.id))).scalars().all()
        return {"relationships": [row_dict(r) for r in relationships],
                "worlds_created": [row_dict(w) for w in worlds]}

    async def forget_user(self, session: AsyncSession, user_id: int) -> ForgetReport:
        """Delete the user's relationships; keep the worlds they created with the creator cleared."""
        report = ForgetReport(self.name)
        report.removed("story_relationships", await session.execute(
            delete(StoryRelationship).where(StoryRelationship.user_id == user_id)))
        report.kept_anonymised("story_worlds", await session.execute(
            update(StoryWorld).where(StoryWorld.created_by == user_id).values(created_by=FORGOTTEN_CREATOR)))
        return report


PROVIDER = StoryPrivacy()
