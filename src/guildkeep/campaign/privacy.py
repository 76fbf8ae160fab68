"""Campaigns' part of an export and a forget.

A player's memberships and character bindings are theirs and are deleted (the characters themselves are
the characters module's). A campaign the user runs as GM and the NPCs they made belong to the server's
game (others play in it), so they are kept with the user id cleared (0); a server manager can hand the
campaign to a new GM with /campaign transfer.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from guildkeep.campaign.models import Campaign, CampaignCharacter, CampaignNpc, CampaignPlayer
from guildkeep.privacy.registry import ForgetReport, row_dict

FORGOTTEN_USER = 0


class CampaignPrivacy:
    """Memberships and character bindings (deleted); campaigns run and NPCs made (kept, user cleared)."""

    name = "campaign"
    tables = ("campaign_players", "campaign_characters", "campaigns", "campaign_npcs")
    order = 90  # before characters (100): bindings go before the characters they point at

    async def export_user(self, session: AsyncSession, user_id: int) -> dict[str, Any]:
        """The campaigns the user plays in or runs, their character bindings and the NPCs they made."""
        plays = (await session.execute(select(CampaignPlayer).where(CampaignPlayer.user_id == user_id)
                                       .order_by(CampaignPlayer.campaign_id))).scalars().all()
        bound = (await session.execute(select(CampaignCharacter).where(CampaignCharacter.user_id == user_id)
                                       .order_by(CampaignCharacter.id))).scalars().all()
        runs = (await session.execute(select(Campaign).where(Campaign.gm_id == user_id)
                                      .order_by(Campaign.id))).scalars().all()
        npcs = (await session.execute(select(CampaignNpc).where(CampaignNpc.creator_id == user_id)
                                      .order_by(CampaignNpc.id))).scalars().all()
        return {"memberships": [row_dict(r) for r in plays], "characters": [row_dict(r) for r in bound],
                "campaigns_run": [row_dict(r) for r in runs], "npcs_created": [row_dict(r) for r in npcs]}

    async def forget_user(self, session: AsyncSession, user_id: int) -> ForgetReport:
        """Delete memberships and bindings; keep campaigns and NPCs with the user cleared."""
        report = ForgetReport(self.name)
        report.removed("campaign_characters", await session.execute(
            delete(CampaignCharacter).where(CampaignCharacter.user_id == user_id)))
        report.removed("campaign_players", await session.execute(
            delete(CampaignPlayer).where(CampaignPlayer.user_id == user_id)))
        report.kept_anonymised("campaigns", await session.execute(
            update(Campaign).where(Campaign.gm_id == user_id).values(gm_id=FORGOTTEN_USER)))
        report.kept_anonymised("campaign_npcs", await session.execute(
            update(CampaignNpc).where(CampaignNpc.creator_id == user_id).values(creator_id=FORGOTTEN_USER)))
        return report


PROVIDER = CampaignPrivacy()
