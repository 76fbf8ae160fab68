"""Discord's message limits, and one place that makes anything the bot sends fit them.

Discord refuses a whole message (50035 Invalid Form Body) when one part is too long, and the player then
gets no answer at all. Everything the bot sends goes through `fit_content` / `fit_embed` (the `respond`
and `send` helpers, the paginator and the error handler call them): text past a limit is cut and ends
with an ellipsis, fields past the 25th are dropped, and the embed as a whole is trimmed to 6,000.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Sequence
from typing import Any

import discord

log = logging.getLogger(__name__)

CONTENT = 2000
TITLE = 256
DESCRIPTION = 4096
FIELDS = 25
FIELD_NAME = 256
FIELD_VALUE = 1024
FOOTER = 2048
AUTHOR = 256
EMBED_TOTAL = 6000
EMBEDS = 10
ELLIPSIS = "…"


def clip(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` characters, ending with an ellipsis when it was cut."""
    if len(text) <= limit:
        return text
    return text[: max(0, limit - 1)] + ELLIPSIS if limit > 0 else ""


def fit_content(content: str | None) -> str | None:
    return None if content is None else clip(str(content), CONTENT)


def embed_length(embed: discord.Embed) -> int:
    """What Discord counts toward the 6,000 total: title, description, field names and values, footer, author."""
    return len(embed)


def fit_embed(embed: discord.Embed) -> discord.Embed:
    """A copy of ``embed`` within every embed limit (the original is left alone)."""
    data: dict[str, Any] = copy.deepcopy(dict(embed.to_dict()))  # to_dict shares the embed's own field dicts
    if data.get("title"):
        data["title"] = clip(data["title"], TITLE)
    if data.get("description"):
        data["description"] = clip(data["description"], DESCRIPTION)
    if (data.get("footer") or {}).get("text"):
        data["footer"]["text"] = clip(data["footer"]["text"], FOOTER)
    if (data.get("author") or {}).get("name"):
        data["author"]["name"] = clip(data["author"]["name"], AUTHOR)
    fields = data.get("fields") or []
    if len(fields) > FIELDS:
        log.debug("dropping %d embed field(s) past Discord's 25", len(fields) - FIELDS)
        more = {"name": ELLIPSIS, "value": f"{len(fields) - FIELDS + 1} more not shown", "inline": False}
        fields = [*fields[: FIELDS - 1], more]
    for fld in fields:
        fld["name"] = clip(str(fld.get("name") or ELLIPSIS), FIELD_NAME) or ELLIPSIS
        fld["value"] = clip(str(fld.get("value") or "-"), FIELD_VALUE) or "-"
    if fields:
        data["fields"] = fields
    fitted = discord.Embed.from_dict(data)
    over = len(fitted) - EMBED_TOTAL
    if over > 0:
        _trim_total(data, over)
        fitted = discord.Embed.from_dict(data)
    return fitted


def _trim_total(data: dict[str, Any], over: int) -> None:
    """Shorten the longest parts first (fields from the last, then the description) until ``over`` is gone."""
    fields = data.get("fields") or []
    while over > 0 and fields:
        last = fields[-1]
        size = len(last["name"]) + len(last["value"])
        if size <= over or len(last["value"]) <= 2:
            fields.pop()
            over -= size
        else:
            cut = min(over, len(last["value"]) - 2)
            last["value"] = clip(last["value"], len(last["value"]) - cut)
            over -= cut
    if over > 0 and data.get("description"):
        data["description"] = clip(data["description"], max(1, len(data["description"]) - over))
        over = len(discord.Embed.from_dict(data)) - EMBED_TOTAL
    if over > 0 and (data.get("footer") or {}).get("text"):
        data["footer"]["text"] = clip(data["footer"]["text"], max(1, len(data["footer"]["text"]) - over))


def fit_embeds(embeds: Sequence[discord.Embed]) -> list[discord.Embed]:
    """Each embed fitted, at most 10, and together within the 6,000 total Discord counts per message."""
    fitted = [fit_embed(e) for e in embeds[:EMBEDS]]
    while len(fitted) > 1 and sum(len(e) for e in fitted) > EMBED_TOTAL:
        fitted.pop()
    return fitted


def fit(kwargs: dict[str, Any]) -> dict[str, Any]:
    """Message keyword arguments (``content``, ``embed``, ``embeds``) made to fit; other keys untouched."""
    out = dict(kwargs)
    if out.get("content") is not None:
        out["content"] = fit_content(out["content"])
    if out.get("embed") is not None:
        out["embed"] = fit_embed(out["embed"])
    if out.get("embeds"):
        out["embeds"] = fit_embeds(out["embeds"])
    return out


def embed_problems(embed: dict[str, Any]) -> list[str]:
    """What in an embed (as Discord receives it) breaks a limit; empty when it fits. For tests and logs."""
    problems = []
    for path, value, limit in (
        ("title", embed.get("title"), TITLE),
        ("description", embed.get("description"), DESCRIPTION),
        ("footer", (embed.get("footer") or {}).get("text"), FOOTER),
        ("author", (embed.get("author") or {}).get("name"), AUTHOR),
    ):
        if value and len(value) > limit:
            problems.append(f"{path} has {len(value)} characters (limit {limit})")
    fields = embed.get("fields") or []
    if len(fields) > FIELDS:
        problems.append(f"{len(fields)} fields (limit {FIELDS})")
    parts = (embed.get("title"), embed.get("description"), (embed.get("footer") or {}).get("text"),
             (embed.get("author") or {}).get("name"))
    total = sum(len(v or "") for v in parts)
    for i, fld in enumerate(fields):
        name, value = fld.get("name") or "", fld.get("value") or ""
        total += len(name) + len(value)
        if not name or len(name) > FIELD_NAME:
            problems.append(f"field {i} name has {len(name)} characters (1 to {FIELD_NAME})")
        if not value or len(value) > FIELD_VALUE:
            problems.append(f"field {i} value has {len(value)} characters (1 to {FIELD_VALUE})")
    if total > EMBED_TOTAL:
        problems.append(f"{total} characters in all (limit {EMBED_TOTAL})")
    return problems


async def respond(interaction: discord.Interaction, content: str | None = None, **kwargs: Any) -> None:
    """Answer an interaction (or follow it up when it was already answered or deferred), fitted to the limits."""
    kwargs = fit({"content": content, **kwargs})
    if interaction.response.is_done():
        await interaction.followup.send(**{k: v for k, v in kwargs.items() if v is not None})
    else:
        await interaction.response.send_message(**kwargs)


async def edit(interaction: discord.Interaction, **kwargs: Any) -> None:
    """Answer a component interaction by editing its message (``edit_message``), fitted to the limits; a key
    left out is left as it was, ``content=None`` or ``embed=None`` removes it."""
    await interaction.response.edit_message(**fit(kwargs))


async def send(target: discord.abc.Messageable, content: str | None = None, **kwargs: Any) -> discord.Message:
    """``target.send`` with the message fitted to the limits."""
    return await target.send(**fit({"content": content, **kwargs}))
