"""Characters' part of an export and a forget: the characters a user owns and the log of their character speech.

Nothing here is a ledger: the characters (with every server's override of them) and the speech log rows
are deleted. The messages themselves stay on Discord; who wrote them is no longer known.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from guildkeep.characters.models import Character, CharacterGuildOverride, CharacterSpeech
from guildkeep.privacy.registry import ForgetReport, row_dict


class CharactersPrivacy:
    """Owned characters with their server overrides, and the speech log of messages posted as a character."""

    name = "characters"
    tables = ("characters", "character_guild_overrides", "character_speech")
    order = 100

    async def export_user(self, session: AsyncSession, user_id: int) -> dict[str, Any]:
        """The user's characters (each with its server overrides) and their speech log (ids, never text)."""
        characters = (
            await session.execute(select(Character).where(Character.owner_id == user_id).order_by(Character.id))
        ).scalars().all()
        overrides = (
            await session.execute(
                select(CharacterGuildOverride)
                .join(Character, Character.id == CharacterGuildOverride.character_id)
                .where(Character.owner_id == user_id)
                .order_by(CharacterGuildOverride.character_id, CharacterGuildOverride.guild_id)
            )
        ).scalars().all()
        speech = (
            await session.execute(
                select(CharacterSpeech).where(CharacterSpeech.speaker_id == user_id)
                .order_by(CharacterSpeech.created_at, CharacterSpeech.message_id)
            )
        ).scalars().all()
        by_character: dict[int, list[dict[str, Any]]] = {}
        for o in overrides:
            by_character.setdefault(o.character_id, []).append(row_dict(o))
        return {
            "characters": [{**row_dict(c), "server_overrides": by_character.get(c.id, [])} for c in characters],
            "speech": [row_dict(r) for r in speech],
        }

    async def forget_user(self, session: AsyncSession, user_id: int) -> ForgetReport:
        """Delete the user's characters, their server overrides and the log of their character messages."""
        report = ForgetReport(self.name)
        owned = select(Character.id).where(Character.owner_id == user_id)
        report.removed("character_guild_overrides", await session.execute(
            delete(CharacterGuildOverride).where(CharacterGuildOverride.character_id.in_(owned))))
        report.removed("character_speech", await session.execute(
            delete(CharacterSpeech).where(CharacterSpeech.speaker_id == user_id)))
        report.removed("characters", await session.execute(delete(Character).where(Character.owner_id == user_id)))
        return report


PROVIDER = CharactersPrivacy()
