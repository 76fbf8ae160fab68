"""How the playground shows Discord messages in a terminal: mentions as names, ``<t:…>`` timestamps as
times, embeds as boxes, Discord's markdown as styles. Builds rich renderables; the console they are
printed on decides whether there is colour (none when it is not a terminal or NO_COLOR is set).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from rich import box
from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.style import Style
from rich.table import Table
from rich.text import Text

from guildkeep.sandbox.state import Guild, World

#: Every Discord reference in message text: user, role, channel, slash command, custom emoji, timestamp.
TOKEN_RE = re.compile(
    r"<@!?(?P<user>\d+)>|<@&(?P<role>\d+)>|<#(?P<channel>\d+)>|</(?P<command>[\w -]+):\d+>"
    r"|<a?:(?P<emoji>\w+):\d+>|<t:(?P<ts>-?\d+)(?::(?P<style>[tTdDfFR]))?>"
)
#: Discord's markdown shown as styles: bold, underline, italics, strike-through (markers dropped, as Discord
#: does), inline code (backticks kept, so a command to type stands out without colour too).
MARKDOWN_RE = re.compile(r"\*\*(.+?)\*\*|__(.+?)__|\*(?![\s*])(.+?)(?<!\s)\*|~~(.+?)~~|(`[^`]+`)")
_MARK_STYLES = ("bold", "underline", "italic", "strike", "bold magenta")

MENTION_STYLE = Style(color="bright_blue", bold=True)
TIME_STYLE = Style(color="bright_cyan")


def format_timestamp(moment: datetime, style: str | None, now: datetime) -> str:
    """Discord's timestamp styles, in UTC: t 16:20, T 16:20:30, d 2021-04-20, D 20 April 2021,
    f (default) 20 April 2021 16:20, F Tuesday, 20 April 2021 16:20, R relative ("in 5 minutes")."""
    moment = moment.astimezone(UTC)
    day = f"{moment.day} {moment:%B %Y}"
    match style:
        case "t":
            return f"{moment:%H:%M} UTC"
        case "T":
            return f"{moment:%H:%M:%S} UTC"
        case "d":
            return f"{moment:%Y-%m-%d}"
        case "D":
            return day
        case "F":
            return f"{moment:%A}, {day} {moment:%H:%M} UTC"
        case "R":
            return relative(moment - now)
        case _:
            return f"{day} {moment:%H:%M} UTC"


def relative(delta: timedelta) -> str:
    """A signed duration as Discord words it: "in 5 minutes", "2 hours ago", "in a day", "a few seconds ago"."""
    seconds = abs(delta.total_seconds())
    minutes, hours, days = seconds / 60, seconds / 3600, seconds / 86400
    if seconds < 45:
        amount = "a few seconds"
    elif seconds < 90:
        amount = "a minute"
    elif minutes < 45:
        amount = f"{round(minutes)} minutes"
    elif minutes < 90:
        amount = "an hour"
    elif hours < 22:
        amount = f"{round(hours)} hours"
    elif hours < 36:
        amount = "a day"
    elif days < 26:
        amount = f"{round(days)} days"
    elif days < 45:
        amount = "a month"
    elif days < 320:
        amount = f"{round(days / 30.4)} months"
    elif days < 548:
        amount = "a year"
    else:
        amount = f"{round(days / 365.25)} years"
    return f"in {amount}" if delta.total_seconds() >= 0 else f"{amount} ago"


def colour_style(value: int | None) -> Style | None:
    """A Discord colour (0xRRGGBB; 0 is "no colour") as a style."""
    if not value:
        return None
    return Style(color=f"#{value & 0xFFFFFF:06x}")


@dataclass
class Names:
    """Looks up what a reference in message text names, as the viewing member's client would."""

    world: World
    guild: Guild | None
    now: Callable[[], datetime]

    def user(self, user_id: int) -> tuple[str, Style | None]:
        member = self.guild.members.get(user_id) if self.guild else None
        if member is not None:
            return member.display_name, self.member_colour(user_id)
        user = self.world.users.get(user_id)
        return (user.global_name or user.username, None) if user else ("unknown-user", None)

    def member_colour(self, user_id: int) -> Style | None:
        """The colour of the member's highest coloured role, as Discord paints names."""
        member = self.guild.members.get(user_id) if self.guild else None
        if member is None or self.guild is None:
            return None
        roles = sorted((self.guild.roles[r] for r in member.roles if r in self.guild.roles),
                       key=lambda r: -r.position)
        return next((colour_style(r.color) for r in roles if r.color), None)

    def role(self, role_id: int) -> tuple[str, Style | None]:
        role = self.guild.roles.get(role_id) if self.guild else None
        if role is None:
            return "deleted-role", None
        return role.name, colour_style(role.color)

    def channel(self, channel_id: int) -> str:
        channel = self.world.channels.get(channel_id)
        return channel.name or "unknown" if channel else "unknown"


def render_text(text: str, names: Names, *, base: Style | str = "") -> Text:
    """Message text with references replaced by names and times, and markdown as styles."""
    out = Text(style=base)
    pos = 0
    for match in TOKEN_RE.finditer(text):
        _markdown(out, text[pos:match.start()])
        pos = match.end()
        if match.group("user"):
            name, colour = names.user(int(match.group("user")))
            out.append("@" + name, MENTION_STYLE + colour if colour else MENTION_STYLE)
        elif match.group("role"):
            name, colour = names.role(int(match.group("role")))
            out.append("@" + name, MENTION_STYLE + colour if colour else MENTION_STYLE)
        elif match.group("channel"):
            out.append("#" + names.channel(int(match.group("channel"))), MENTION_STYLE)
        elif match.group("command"):
            out.append("/" + match.group("command"), MENTION_STYLE)
        elif match.group("emoji"):
            out.append(f":{match.group('emoji')}:")
        elif match.group("ts") is not None:
            try:
                moment = datetime.fromtimestamp(int(match.group("ts")), UTC)
            except (OverflowError, OSError, ValueError):
                out.append(match.group(0))
                continue
            out.append(format_timestamp(moment, match.group("style"), names.now()), TIME_STYLE)
    _markdown(out, text[pos:])
    return out


def _markdown(out: Text, text: str) -> None:
    pos = 0
    for match in MARKDOWN_RE.finditer(text):
        out.append(text[pos:match.start()])
        group = next(i for i in range(1, 6) if match.group(i) is not None)
        out.append(match.group(group), _MARK_STYLES[group - 1])
        pos = match.end()
    out.append(text[pos:])


def embed_panel(embed: dict[str, Any], names: Names) -> RenderableType:
    """An embed as a box: author and title on top, description, fields (inline ones side by side, three
    to a row as in Discord), image and thumbnail links, footer and timestamp at the bottom; the border
    takes the embed's colour."""
    parts: list[RenderableType] = []
    author = (embed.get("author") or {}).get("name")
    if author:
        parts.append(Text(author, style="bold"))
    if embed.get("title"):
        title = render_text(embed["title"], names, base="bold")
        if embed.get("url"):
            title.append(f"  <{embed['url']}>", style="dim")
        parts.append(title)
    if embed.get("description"):
        parts.append(render_text(embed["description"], names))
    row: list[dict[str, Any]] = []
    for fld in [*(embed.get("fields") or []), None]:
        if fld is not None and fld.get("inline") and len(row) < 3:
            row.append(fld)
            continue
        if row:
            parts.append(_fields_grid(row, names))
            row = []
        if fld is None:
            continue
        if fld.get("inline"):
            row.append(fld)
        else:
            parts.append(_fields_grid([fld], names))
    for key, label in (("image", "image"), ("thumbnail", "thumbnail")):
        url = (embed.get(key) or {}).get("url")
        if url:
            shown = f"{url.removeprefix('attachment://')} (attached)" if url.startswith("attachment://") else url
            parts.append(Text(f"[{label}: {shown}]", style="dim"))
    footer = (embed.get("footer") or {}).get("text")
    stamp = embed.get("timestamp")
    if footer or stamp:
        line = Text(footer or "", style="dim")
        if stamp:
            try:
                moment = datetime.fromisoformat(str(stamp))
                line.append((" · " if footer else "") + format_timestamp(moment, "f", names.now()), style="dim")
            except ValueError:
                pass
        parts.append(line)
    if not parts:
        parts.append(Text("(empty embed)", style="dim"))
    body: list[RenderableType] = []
    for n, part in enumerate(parts):  # a blank line around each run of fields
        grid, before = isinstance(part, Table), n > 0 and isinstance(parts[n - 1], Table)
        if n and grid != before:
            body.append(Text(""))
        body.append(part)
    return Panel(Group(*body), box=box.ROUNDED, expand=False, padding=(0, 1),
                 border_style=colour_style(embed.get("color")) or "dim")


def _fields_grid(fields: list[dict[str, Any]], names: Names) -> Table:
    grid = Table.grid(padding=(0, 3))
    for _ in fields:
        grid.add_column(overflow="fold")
    grid.add_row(*(render_text(str(f.get("name") or ""), names, base="bold") for f in fields))
    grid.add_row(*(render_text(str(f.get("value") or ""), names) for f in fields))
    return grid


__all__ = ["Names", "embed_panel", "format_timestamp", "relative", "render_text"]
