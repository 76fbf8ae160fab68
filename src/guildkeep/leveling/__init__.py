"""Leveling: XP from activity, levels, quests, achievements, level roles, rank cards and server config."""
