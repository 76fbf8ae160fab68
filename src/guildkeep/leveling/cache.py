"""The leveling module's cache is the shared `guildkeep.cache.TTLCache` (namespace ``leveling``)."""

from guildkeep.cache import TTLCache

__all__ = ["TTLCache"]
