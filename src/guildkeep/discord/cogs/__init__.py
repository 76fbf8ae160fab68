"""One extension per module; every ``guildkeep.discord.cogs.<name>`` with ``async def setup(bot)`` is loaded.

Modules whose name starts with ``_`` are helpers and are not loaded as extensions.
"""
