"""Everything the bot sends is fitted to Discord's limits: text cut with an ellipsis, fields dropped, totals kept."""

from __future__ import annotations

import ast
from pathlib import Path
from types import SimpleNamespace

import pytest

import discord
from guildkeep.discord import limits
from guildkeep.discord.limits import clip, embed_problems, fit, fit_embed, fit_embeds


def oversize_embed(fields: int = 30) -> discord.Embed:
    embed = discord.Embed(title="T" * 300, description="D" * 5000)
    for i in range(fields):
        embed.add_field(name=f"{i}" + "n" * 300, value="v" * 1100)
    return embed.set_footer(text="F" * 2100).set_author(name="A" * 300)


def test_clip_keeps_short_text_and_ends_cut_text_with_an_ellipsis() -> None:
    assert clip("hello", 5) == "hello"
    assert clip("hello!", 5) == "hell…"
    assert len(clip("x" * 2500, 2000)) == 2000
    assert clip("x" * 2500, 2000).endswith("…")


def test_an_oversize_embed_is_fitted_within_every_limit() -> None:
    embed = oversize_embed()
    assert embed_problems(embed.to_dict())  # the helper sees what Discord would refuse
    fitted = fit_embed(embed)
    data = fitted.to_dict()
    assert embed_problems(data) == []
    assert len(fitted) <= limits.EMBED_TOTAL
    assert data["title"] == "T" * 255 + "…"
    assert len(data["fields"]) <= limits.FIELDS
    assert data["footer"]["text"].endswith("…")
    assert data["author"]["name"] == "A" * 255 + "…"


def test_fitting_leaves_the_original_embed_alone() -> None:
    embed = oversize_embed()
    fit_embed(embed)
    assert len(embed.fields) == 30
    assert len(embed.fields[0].value or "") == 1100


def test_a_small_embed_is_unchanged() -> None:
    embed = discord.Embed(title="Leveling settings", description="All good").add_field(name="XP", value="×1")
    assert fit_embed(embed).to_dict() == embed.to_dict()


def test_more_than_25_fields_says_how_many_were_left_out() -> None:
    embed = discord.Embed(title="many")
    for i in range(40):
        embed.add_field(name=str(i), value="v")
    data = fit_embed(embed).to_dict()
    assert len(data["fields"]) == 25
    assert data["fields"][-1]["value"] == "16 more not shown"


def test_embeds_of_one_message_share_the_6000_total() -> None:
    embeds = fit_embeds([oversize_embed(5)] * 12)
    assert len(embeds) <= limits.EMBEDS
    assert sum(len(e) for e in embeds) <= limits.EMBED_TOTAL


def test_fit_cuts_content_and_keeps_other_arguments() -> None:
    out = fit({"content": "x" * 2001, "ephemeral": True, "embed": oversize_embed(1)})
    assert len(out["content"]) == 2000
    assert out["ephemeral"] is True
    assert embed_problems(out["embed"].to_dict()) == []
    assert fit({"content": None})["content"] is None


def test_empty_field_names_and_values_are_filled_in() -> None:
    embed = discord.Embed(title="t")
    embed._fields = [{"name": "", "value": "", "inline": False}]
    assert embed_problems(fit_embed(embed).to_dict()) == []



class _Response:
    def __init__(self) -> None:
        self.edited: dict | None = None

    async def edit_message(self, **kwargs) -> None:
        self.edited = kwargs


async def test_edit_fits_what_it_changes_and_leaves_out_what_was_not_given() -> None:
    interaction = SimpleNamespace(response=_Response())
    await limits.edit(interaction, embed=discord.Embed(title="T" * 300, description="D" * 5000), view=None)
    sent = interaction.response.edited
    assert set(sent) == {"embed", "view"}  # no content key: the message's text is left as it was
    assert limits.embed_problems(sent["embed"].to_dict()) == []


COGS = Path(limits.__file__).parent / "cogs"
DIRECT = {"send_message", "edit_message", "reply", "edit_original_response"}
ALLOWED_SEND = {"view", "paginator", "self.bot.webhooks"}  # the paginator fits its pages itself


def _direct_sends(source: str) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(source)):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        receiver = ast.unparse(node.func.value)
        if receiver == "self.service" or receiver.startswith("self.service."):
            continue  # the module's own service (a companion's `reply` is no Discord call)
        if node.func.attr in DIRECT or (
            node.func.attr == "send" and receiver not in ALLOWED_SEND and not receiver.startswith("Paginator(")
        ):
            found.append(f"line {node.lineno}: {ast.unparse(node.func)}")
    return found


COG_FILES = sorted(p.relative_to(COGS).as_posix() for p in COGS.rglob("*.py"))


def test_the_scan_sees_single_file_cogs_and_cog_packages() -> None:
    assert "core.py" in COG_FILES
    assert "companion/commands.py" in COG_FILES
    assert "story/listeners.py" in COG_FILES
    assert _direct_sends("async def f(interaction, message):\n    await interaction.response.send_message('x')\n"
                         "    await message.reply('y')\n    await self.service.reply(1)\n") == [
        "line 2: interaction.response.send_message", "line 3: message.reply"]


@pytest.mark.parametrize("cog", COG_FILES)
def test_every_cog_sends_through_the_limits_helpers(cog: str) -> None:
    assert _direct_sends((COGS / cog).read_text(encoding="utf-8")) == []
