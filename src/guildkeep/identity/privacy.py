"""Identity's part of an export and a forget: the user row and their server memberships.

It runs last: every other module's rows reference ``users.id``.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from guildkeep.identity.models import GuildMember, User
from guildkeep.privacy.registry import ForgetReport, row_dict


class IdentityPrivacy:
    """The ``users`` row and ``guild_members`` rows of one user."""

    name = "identity"
    tables = ("users", "guild_members")
    order = 1000

    async def export_user(self, session: AsyncSession, user_id: int) -> dict[str, Any]:
        """The user's names and dates, and each server membership (nickname, roles, joined)."""
        user = await session.get(User, user_id)
        members = (
            await session.execute(select(GuildMember).where(GuildMember.user_id == user_id).order_by(GuildMember.id))
        ).scalars().all()
        return {
            "user": row_dict(user) if user is not None else None,
            "memberships": [row_dict(m) for m in members],
        }

    async def forget_user(self, session: AsyncSession, user_id: int) -> ForgetReport:
        """Delete the memberships, then the user row."""
        report = ForgetReport(self.name)
        members = await session.execute(delete(GuildMember).where(GuildMember.user_id == user_id))
        report.removed("guild_members", members)
        users = await session.execute(delete(User).where(User.id == user_id))
        report.removed("users", users)
        return report


PROVIDER = IdentityPrivacy()
