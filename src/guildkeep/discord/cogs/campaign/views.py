"""Buttons of the campaign commands: the confirmation before a campaign is deleted."""

from __future__ import annotations

from guildkeep.discord.limits import clip
from guildkeep.discord.views import ConfirmView


class DeleteCampaignView(ConfirmView):
    """Confirm/Cancel for ``/campaign delete``; only the person who asked can press them."""

    def __init__(self, owner_id: int, campaign_name: str) -> None:
        super().__init__(owner_id=owner_id, timeout=60.0, confirmed=clip(f"Deleting {campaign_name}...", 2000),
                         cancelled="Nothing was deleted.")
