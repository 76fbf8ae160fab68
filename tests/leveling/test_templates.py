"""Level-up templates are checked at save time against the longest values they can be filled with."""

from __future__ import annotations

import pytest

from guildkeep.db import Database
from guildkeep.errors import ValidationError
from guildkeep.leveling import rules
from guildkeep.leveling.service import LevelingService

G = 1001


def test_the_longest_rendering_counts_each_placeholder_at_its_longest() -> None:
    assert rules.longest_rendering("GG") == 2
    assert rules.longest_rendering("{server}") == 100
    assert rules.longest_rendering("{user} {mention}") == 32 + 1 + len("<@18446744073709551615>")
    assert rules.longest_rendering("{level}/{xp}") == len("10000") + 1 + len(str(2**62))


def test_125_server_names_are_refused_and_19_fit() -> None:
    with pytest.raises(ValidationError, match="could be 12,500 characters, and Discord allows 2,000"):
        rules.validate_template("{server}" * 125)
    fits = "{server}" * 19 + "{mention}" + "x" * 10
    assert rules.longest_rendering(fits) <= 2000
    assert rules.validate_template(fits) == fits


def test_every_accepted_template_renders_within_discords_limit() -> None:
    template = "{server}" * 19 + "{mention}{level}{xp}"
    rules.validate_template(template)
    text = rules.render_template(template, server="S" * 100, user="U" * 32, mention=f"<@{2**64 - 1}>",
                                 level=rules.MAX_LEVEL, xp=rules.MAX_XP)
    assert len(text) <= 2000


async def test_a_template_that_could_overflow_is_not_saved(db: Database) -> None:
    svc = LevelingService(db)
    with pytest.raises(ValidationError, match="Shorten it"):
        await svc.update_server_config(G, "level_up_message", "{server}" * 125)
    assert (await svc.get_server_config(G)).settings.level_up_message is None
    saved = await svc.update_server_config(G, "level_up_message", "GG {mention} in {server}!")
    assert saved.settings.level_up_message == "GG {mention} in {server}!"


def test_a_lone_brace_is_explained() -> None:
    with pytest.raises(ValidationError, match=r"a \{ or \} without its pair; write \{\{ or \}\}"):
        rules.validate_template("GG {mention")
