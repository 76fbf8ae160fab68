"""The privacy contract every module that stores something about a user implements.

A module ``guildkeep.<module>`` takes part by having a ``privacy.py`` that defines ``PROVIDER``, an
object with:

- ``name``: the module's name, the section of the export and of the forget report;
- ``tables``: every table of the module that holds a user id (a test checks none is left out);
- ``order``: forget runs in ascending order (identity, which the others reference, runs last);
- ``export_user(session, user_id) -> dict``: everything stored about that user, JSON-ready;
- ``forget_user(session, user_id) -> ForgetReport``: remove it, keeping only what a ledger must keep,
  anonymised, inside the unit of work it is given.

Providers are found by walking the packages under ``guildkeep`` (like the model registry), so a new
module needs no edit here.
"""

from __future__ import annotations

import importlib
import importlib.util
import pkgutil
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, Protocol, cast, runtime_checkable

from sqlalchemy import CursorResult, Result
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.ext.asyncio import AsyncSession

import guildkeep

SKIPPED_PACKAGES = frozenset({"db", "discord", "sandbox", "web", "privacy"})


@dataclass(slots=True)
class ForgetReport:
    """What one module did when forgetting a user: rows removed and rows anonymised, per table."""

    module: str
    deleted: dict[str, int] = field(default_factory=dict)
    anonymised: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def removed(self, table: str, count: int | Result[Any]) -> None:
        """Count deleted rows of ``table``: a number, or the result of a DELETE (zero counts are left out)."""
        if n := affected(count):
            self.deleted[table] = self.deleted.get(table, 0) + n

    def kept_anonymised(self, table: str, count: int | Result[Any]) -> None:
        """Count rows of ``table`` kept with the user id replaced: a number, or the result of an UPDATE."""
        if n := affected(count):
            self.anonymised[table] = self.anonymised.get(table, 0) + n

    @property
    def total_deleted(self) -> int:
        """All rows this module removed."""
        return sum(self.deleted.values())

    @property
    def total_anonymised(self) -> int:
        """All rows this module kept with the user id replaced."""
        return sum(self.anonymised.values())


def affected(count: int | Result[Any]) -> int:
    """The rows an UPDATE or DELETE matched, or ``count`` itself when it is a number."""
    if isinstance(count, int):
        return count
    return int(cast(CursorResult[Any], count).rowcount or 0)


@runtime_checkable
class PrivacyProvider(Protocol):
    """One module's part of an export and of a forget."""

    name: str
    tables: tuple[str, ...]
    order: int

    async def export_user(self, session: AsyncSession, user_id: int) -> dict[str, Any]:
        """Everything the module stores about ``user_id``, as JSON-ready values."""
        ...

    async def forget_user(self, session: AsyncSession, user_id: int) -> ForgetReport:
        """Remove (or anonymise, where a ledger must keep it) everything about ``user_id``."""
        ...


def provider_modules() -> list[str]:
    """The ``guildkeep.<module>.privacy`` modules that exist, sorted by name."""
    names = []
    for info in pkgutil.iter_modules(guildkeep.__path__):
        if not info.ispkg or info.name in SKIPPED_PACKAGES:
            continue
        if importlib.util.find_spec(f"guildkeep.{info.name}.privacy") is not None:
            names.append(f"guildkeep.{info.name}.privacy")
    return sorted(names)


def load_providers() -> list[PrivacyProvider]:
    """Every module's ``PROVIDER``, in forget order (then by name)."""
    providers: list[PrivacyProvider] = []
    for name in provider_modules():
        module = importlib.import_module(name)
        provider = getattr(module, "PROVIDER", None)
        if provider is None:
            raise RuntimeError(f"{name} has no PROVIDER")
        providers.append(provider)
    return sorted(providers, key=lambda p: (p.order, p.name))


def json_value(value: Any) -> Any:
    """A stored value as JSON: datetimes in ISO 8601 UTC, decimals as strings, containers walked."""
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value.astimezone(UTC).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dict):
        return {str(k): json_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [json_value(v) for v in value]
    return value


def row_dict(row: Any, *, exclude: tuple[str, ...] = ()) -> dict[str, Any]:
    """Every mapped column of an ORM row, by attribute name, as JSON-ready values."""
    mapper = sa_inspect(row).mapper
    return {
        attr.key: json_value(getattr(row, attr.key))
        for attr in mapper.column_attrs
        if attr.key not in exclude
    }
