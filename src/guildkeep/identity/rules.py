"""Identity rules: pure functions, no database."""

from __future__ import annotations


def display_name(custom_name: str | None, discord_display_name: str | None, username: str | None) -> str:
    """Custom name, else Discord display name, else username."""
    return custom_name or discord_display_name or username or ""
