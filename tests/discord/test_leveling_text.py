"""Player-facing leveling text reads as English: plurals, units, numbers."""

from __future__ import annotations

from guildkeep.discord.cogs.leveling import RoleSync, requirement_text


def test_achievement_requirements_read_as_english() -> None:
    assert requirement_text("level", 5) == "level 5"
    assert requirement_text("messages", 1) == "1 message"
    assert requirement_text("messages", 12_000) == "12,000 messages"
    assert requirement_text("reactions", 3) == "3 reactions"
    assert requirement_text("commands", 1) == "1 command"
    assert requirement_text("voice", 3600) == "60 minutes in voice"
    assert requirement_text("voice", 60) == "1 minute in voice"
    assert requirement_text("voice", 90) == "90 seconds in voice"


def test_sync_report_says_what_failed_with_correct_plurals() -> None:
    assert RoleSync(given=[1], taken=[]).report() == "Level roles synced: 1 given, 0 taken."
    report = RoleSync(failed=[(7, "it is managed"), (7, "it is managed"), (8, "gone")]).report()
    assert report == ("Level roles synced: 0 given, 0 taken.\n3 changes failed:\n"
                      "• <@&7> (2 members): it is managed\n• <@&8> (1 member): gone")
