"""The Discord layer: the only package that imports discord.py (bot, cogs, views, webhooks, error handling)."""
