"""A local stand-in for Discord (API v10 REST + gateway) that the real bot, through discord.py, connects to."""
