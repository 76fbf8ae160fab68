"""What the playground prints: mentions as names, timestamps as times, embeds as boxes, colour on terminals."""

from __future__ import annotations

import io
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from rich.console import Console

from guildkeep.playground.console import console_writer
from guildkeep.sandbox.driver import Driver
from guildkeep.sandbox.render import Names, embed_panel, format_timestamp, relative, render_text
from guildkeep.sandbox.server import SandboxServer

NOW = datetime(2026, 4, 20, 16, 20, 30, tzinfo=UTC)
COLOUR = re.compile(r"\x1b\[[0-9;]*?(?:3[0-8]|9[0-7])[;m]")


def plain(renderable: object, width: int = 100) -> str:
    console = Console(file=io.StringIO(), width=width, color_system=None, highlight=False)
    console.print(renderable)
    return console.file.getvalue()  # type: ignore[attr-defined]


@pytest.fixture
async def names(sandbox: SandboxServer) -> Names:
    guild = next(iter(sandbox.world.guilds.values()))
    return Names(sandbox.world, guild, lambda: NOW)


async def test_mentions_read_as_names(names: Names, sdriver: Driver) -> None:
    bob = sdriver.member("bob")
    await sdriver.set_nick("carol", "Caz")
    carol = sdriver.member("carol")
    moderator = sdriver.role("Moderator")
    general = sdriver.channel("general")
    text = (f"hi <@{bob.user.id}> and <@!{carol.user.id}>, ask <@&{moderator.id}> in <#{general.id}>; "
            "try </levels config:123> :) <:blob:42> <@999> <#998>")
    assert str(render_text(text, names)) == (
        "hi @Bob and @Caz, ask @Moderator in #general; try /levels config :) :blob: @unknown-user #unknown")


@pytest.mark.parametrize(("style", "shown"), [
    ("t", "16:20 UTC"),
    ("T", "16:20:30 UTC"),
    ("d", "2026-04-20"),
    ("D", "20 April 2026"),
    ("f", "20 April 2026 16:20 UTC"),
    (None, "20 April 2026 16:20 UTC"),
    ("F", "Monday, 20 April 2026 16:20 UTC"),
    ("R", "a few seconds ago"),
])
def test_timestamp_styles(style: str | None, shown: str) -> None:
    assert format_timestamp(NOW, style, NOW + timedelta(seconds=1)) == shown


@pytest.mark.parametrize(("delta", "shown"), [
    (timedelta(minutes=5), "in 5 minutes"),
    (-timedelta(hours=2), "2 hours ago"),
    (timedelta(days=1), "in a day"),
    (timedelta(days=7), "in 7 days"),
    (timedelta(seconds=70), "in a minute"),
    (timedelta(minutes=60), "in an hour"),
    (-timedelta(days=60), "2 months ago"),
    (timedelta(days=800), "in 2 years"),
])
def test_relative_times(delta: timedelta, shown: str) -> None:
    assert relative(delta) == shown


async def test_timestamps_in_text_follow_the_given_now(names: Names) -> None:
    soon = int((NOW + timedelta(minutes=5)).timestamp())
    assert str(render_text(f"ready <t:{soon}:R>, at <t:{soon}:t>", names)) == "ready in 5 minutes, at 16:25 UTC"


async def test_markdown_becomes_styles(names: Names) -> None:
    text = render_text("**Alice** is *great*, ~~old~~ __new__: type `/help`", names)
    assert str(text) == "Alice is great, old new: type `/help`"
    styles = {str(text)[span.start:span.end]: str(span.style) for span in text.spans}
    assert styles["Alice"] == "bold"
    assert styles["great"] == "italic"


async def test_an_embed_is_a_box_with_its_parts(names: Names, sdriver: Driver) -> None:
    bob = sdriver.member("bob")
    embed = {
        "author": {"name": "guildkeep"},
        "title": "Daily reward",
        "description": f"**200** coins for <@{bob.user.id}>",
        "color": 0x2ECC71,
        "fields": [
            {"name": "Streak", "value": "1 day", "inline": True},
            {"name": "Next claim", "value": f"<t:{int((NOW + timedelta(days=1)).timestamp())}:R>", "inline": True},
            {"name": "Wallet", "value": "1,200 coins", "inline": False},
        ],
        "image": {"url": "attachment://card.png"},
        "footer": {"text": "Come back tomorrow"},
    }
    lines = plain(embed_panel(embed, names)).splitlines()
    assert lines[0].startswith("╭─")
    assert lines[-1].startswith("╰─")
    inner = [line.strip("│ ").rstrip() for line in lines[1:-1]]
    assert inner[:3] == ["guildkeep", "Daily reward", "200 coins for @Bob"]
    assert re.search(r"^Streak +Next claim$", inner[4])  # inline fields side by side
    assert re.search(r"^1 day +in a day$", inner[5])
    assert inner[6:8] == ["Wallet", "1,200 coins"]
    assert "[image: card.png (attached)]" in inner
    assert inner[-1] == "Come back tomorrow"


def test_colour_only_on_a_terminal_and_never_with_no_color(monkeypatch: pytest.MonkeyPatch) -> None:
    line = render_text("**bold** words", Names.__new__(Names))
    line.stylize("red")

    def written() -> str:
        stream = io.StringIO()
        console_writer(stream)(line)
        return stream.getvalue()

    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.delenv("FORCE_COLOR", raising=False)
    monkeypatch.setenv("TERM", "xterm-256color")
    assert written() == "bold words\n"  # not a terminal: plain text
    monkeypatch.setenv("FORCE_COLOR", "1")  # as a terminal would be
    assert COLOUR.search(written())
    monkeypatch.setenv("NO_COLOR", "1")
    out = written()
    assert not COLOUR.search(out)  # NO_COLOR: no colours (bold may stay, as the convention allows)
    assert re.sub(r"\x1b\[[0-9;]*m", "", out) == "bold words\n"


def test_the_docs_describe_every_playground_command() -> None:
    from guildkeep.playground.console import HELP

    root = Path(__file__).resolve().parents[2]
    commands = set(re.findall(r"(?<![\w:]):(?:add \w+|join voice|leave voice|clock reset|[a-z]+)", HELP))
    assert len(commands) >= 20
    for doc in ("docs/sandbox.md", "README.md"):
        text = (root / doc).read_text(encoding="utf-8")
        missing = sorted(c for c in commands if f"`{c}" not in text and f"{c} " not in text)
        assert not missing, f"{doc} does not describe {missing}"
