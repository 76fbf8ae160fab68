"""Values shared by every module's results: one generic page of items."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One page of a listing: its items, its 1-based number, how many pages and items there are."""

    items: list[T]
    page: int  # 1-based
    pages: int
    total: int

    @staticmethod
    def count_pages(total: int, per_page: int) -> int:
        """How many pages ``total`` items fill at ``per_page`` a page (at least one)."""
        return max(1, -(-total // per_page))
