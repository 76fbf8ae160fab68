"""`PrivacyService`: one person's data across every module, exported as JSON or forgotten."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from guildkeep.db import Database, utcnow
from guildkeep.db.types import SNOWFLAKE_MAX
from guildkeep.errors import ValidationError
from guildkeep.privacy.registry import ForgetReport, PrivacyProvider, json_value, load_providers

log = logging.getLogger(__name__)

EXPORT_FORMAT = 1


@dataclass(frozen=True, slots=True)
class ExportInfo:
    """An export ready to send: the document, its JSON bytes and a file name."""

    user_id: int
    document: dict[str, Any]
    data: bytes
    filename: str


@dataclass(slots=True)
class ForgetResult:
    """What a forget did, one report per module (in the order they ran)."""

    user_id: int
    finished_at: datetime
    reports: list[ForgetReport] = field(default_factory=list)

    @property
    def total_deleted(self) -> int:
        """Rows removed in every module."""
        return sum(r.total_deleted for r in self.reports)

    @property
    def total_anonymised(self) -> int:
        """Rows kept, anonymised, in every module."""
        return sum(r.total_anonymised for r in self.reports)

    def summary_lines(self) -> list[str]:
        """One player-readable line per module that held something."""
        lines = []
        for report in self.reports:
            if not report.total_deleted and not report.total_anonymised:
                continue
            parts = [f"{count} {table}" for table, count in sorted(report.deleted.items())]
            text = f"{report.module}: removed " + (", ".join(parts) if parts else "nothing")
            if report.anonymised:
                kept = ", ".join(f"{count} {table}" for table, count in sorted(report.anonymised.items()))
                text += f"; kept anonymised: {kept}"
            lines.append(text)
        return lines


def _check_user_id(user_id: int) -> int:
    if isinstance(user_id, bool) or not isinstance(user_id, int) or not 0 < user_id <= SNOWFLAKE_MAX:
        raise ValidationError("That is not a Discord user id.")
    return user_id


class PrivacyService:
    """Export or forget everything stored about one user, in every module and every server."""

    def __init__(self, db: Database, providers: Iterable[PrivacyProvider] | None = None) -> None:
        self.db = db
        self.providers = list(providers) if providers is not None else load_providers()

    @property
    def modules(self) -> list[str]:
        """The names of the modules taking part, in forget order."""
        return [p.name for p in self.providers]

    async def export_user(self, user_id: int) -> dict[str, Any]:
        """Everything stored about ``user_id``: a header, then one section per module.

        Read in one read-only unit of work, so the sections are consistent with each other.
        """
        user_id = _check_user_id(user_id)
        sections: dict[str, Any] = {}
        async with self.db.session(read_only=True) as s:
            for provider in self.providers:
                sections[provider.name] = json_value(await provider.export_user(s, user_id))
        return {
            "format": EXPORT_FORMAT,
            "generated_at": json_value(utcnow()),
            "user_id": user_id,
            "modules": self.modules,
            "data": sections,
        }

    async def export_file(self, user_id: int) -> ExportInfo:
        """`export_user` as an indented UTF-8 JSON file."""
        document = await self.export_user(user_id)
        data = json.dumps(document, indent=2, ensure_ascii=False, sort_keys=False).encode()
        stamp = document["generated_at"][:10]
        return ExportInfo(user_id, document, data, f"guildkeep-data-{user_id}-{stamp}.json")

    async def forget_user(self, user_id: int) -> ForgetResult:
        """Remove everything stored about ``user_id``; ledgers keep their lines, anonymised.

        One unit of work for every module (retried as a whole on a conflict), in the providers'
        order, identity last: a forget is all or nothing, and a request that races it (a /start in
        the same second) either lands before it and is forgotten too, or starts a new record after.
        """
        user_id = _check_user_id(user_id)

        async def work(s: AsyncSession) -> list[ForgetReport]:
            return [await provider.forget_user(s, user_id) for provider in self.providers]

        result = ForgetResult(user_id, utcnow(), await self.db.run(work))
        result.finished_at = utcnow()
        # The id itself is not logged: the log would otherwise keep what was just forgotten.
        log.info("forgot a user: %d rows removed, %d kept anonymised", result.total_deleted,
                 result.total_anonymised)
        return result
