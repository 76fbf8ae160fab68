"""guildkeep: a self-hosted Discord community bot on one durable, guild-isolated data layer."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("guildkeep")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+local"

__all__ = ["__version__"]
