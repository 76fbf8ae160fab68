"""The story cog is a package (commands, listeners, render) and is loaded like every other cog."""

from __future__ import annotations

import importlib

from guildkeep.discord.bot import discover_extensions


def test_the_story_cog_package_is_discovered_and_has_setup() -> None:
    assert "guildkeep.discord.cogs.story" in discover_extensions()
    module = importlib.import_module("guildkeep.discord.cogs.story")
    assert callable(module.setup)
    assert not any(name.startswith("guildkeep.discord.cogs.story.") for name in discover_extensions())
