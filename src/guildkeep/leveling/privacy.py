"""Leveling's part of an export and a forget: XP, quest progress, achievements and rank cards.

Nothing here is a ledger, so everything is deleted. Quests an administrator authored stay (the
server uses them) with their author cleared. The record of level roles the bot granted
(``leveling_role_grants``, where the schema has it) is deleted too: the member keeps the Discord
roles, and the bot no longer counts them as its own to take back.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Table, delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from guildkeep.db import Base
from guildkeep.leveling.models import Achievement, Card, Level, Quest, UserAchievement, UserQuest
from guildkeep.privacy.registry import ForgetReport, json_value, row_dict

ROLE_GRANTS = "leveling_role_grants"


def _role_grants() -> Table | None:
    """The role-grant table, read from the metadata so that this works whether or not the schema has it."""
    return Base.metadata.tables.get(ROLE_GRANTS)


class LevelingPrivacy:
    """Per-server XP and counters, quest progress, earned achievements, rank-card look, authored quests."""

    name = "leveling"
    tables = (
        "leveling_levels",
        "leveling_user_quests",
        "leveling_user_achievements",
        "leveling_cards",
        "leveling_quests",
        ROLE_GRANTS,
    )
    order = 100

    async def export_user(self, session: AsyncSession, user_id: int) -> dict[str, Any]:
        """Levels, quest progress (with the quest's name), achievements (with their name), cards."""
        levels = (
            await session.execute(select(Level).where(Level.user_id == user_id).order_by(Level.guild_id))
        ).scalars().all()
        quests = (
            await session.execute(
                select(UserQuest, Quest.name, Quest.quest_type)
                .join(Quest, Quest.id == UserQuest.quest_id)
                .where(UserQuest.user_id == user_id)
                .order_by(UserQuest.id)
            )
        ).all()
        achievements = (
            await session.execute(
                select(UserAchievement, Achievement.name)
                .join(Achievement, Achievement.id == UserAchievement.achievement_id)
                .where(UserAchievement.user_id == user_id)
                .order_by(UserAchievement.id)
            )
        ).all()
        cards = (
            await session.execute(select(Card).where(Card.user_id == user_id).order_by(Card.guild_id))
        ).scalars().all()
        authored = (
            await session.execute(
                select(Quest.id, Quest.guild_id, Quest.name).where(Quest.created_by == user_id).order_by(Quest.id)
            )
        ).all()
        grants = _role_grants()
        granted = (
            [json_value(dict(row)) for row in (await session.execute(
                select(grants).where(grants.c.user_id == user_id).order_by(grants.c.guild_id, grants.c.role_id)
            )).mappings()]
            if grants is not None else []
        )
        return {
            "levels": [row_dict(r) for r in levels],
            "quests": [{**row_dict(uq), "quest_name": name, "quest_type": kind} for uq, name, kind in quests],
            "achievements": [{**row_dict(ua), "achievement_name": name} for ua, name in achievements],
            "cards": [row_dict(r) for r in cards],
            "quests_created": [{"quest_id": q.id, "guild_id": q.guild_id, "name": q.name} for q in authored],
            "roles_granted": granted,
        }

    async def forget_user(self, session: AsyncSession, user_id: int) -> ForgetReport:
        """Delete the member's rows in every server; clear their name from quests they authored."""
        report = ForgetReport(self.name)
        for table, model in (
            ("leveling_user_quests", UserQuest),
            ("leveling_user_achievements", UserAchievement),
            ("leveling_cards", Card),
            ("leveling_levels", Level),
        ):
            result = await session.execute(delete(model).where(model.user_id == user_id))
            report.removed(table, result)
        grants = _role_grants()
        if grants is not None:
            report.removed(ROLE_GRANTS, await session.execute(delete(grants).where(grants.c.user_id == user_id)))
        authored = await session.execute(update(Quest).where(Quest.created_by == user_id).values(created_by=None))
        report.kept_anonymised("leveling_quests", authored)
        return report


PROVIDER = LevelingPrivacy()
