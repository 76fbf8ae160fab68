"""Embeds for worlds, stories, relationships and story characters, within Discord's limits."""

from __future__ import annotations

import discord
from guildkeep.characters.results import CharacterInfo
from guildkeep.discord.limits import clip
from guildkeep.story import rules
from guildkeep.story.results import RelationshipInfo, StoryInfo, WorldInfo

COLOR = discord.Colour.from_rgb(46, 134, 171)
FIELDS_MAX = 25


def md(text: str) -> str:
    return discord.utils.escape_markdown(text)


def world_embed(world: WorldInfo) -> discord.Embed:
    embed = discord.Embed(title=clip(world.name, 256), description=clip(world.description, 1000) or None,
                          color=COLOR)
    for loc in world.locations[: FIELDS_MAX - 1]:
        lines = [clip(loc.description, 300)] if loc.description else []
        lines += [f"• **{md(e.name)}**" + (f": {clip(e.description, 120)}" if e.description else "")
                  for e in loc.events]
        embed.add_field(name=clip(loc.name, 256), value=clip("\n".join(lines) or "-", 1024), inline=False)
    if not world.locations:
        embed.add_field(name="Locations", value="None yet. Add one with `/world location add`.", inline=False)
    embed.add_field(name="Created by", value=f"<@{world.created_by}>")
    embed.set_footer(text=f"World #{world.id}")
    return _fit(embed)


def worlds_embed(worlds: list[WorldInfo]) -> discord.Embed:
    lines = [f"**{md(w.name)}** - {len(w.locations)} location(s)" for w in worlds]
    return discord.Embed(title="Worlds on this server", description=clip("\n".join(lines), 4096), color=COLOR)


def story_embed(story: StoryInfo) -> discord.Embed:
    embed = discord.Embed(title=clip(f"Story in {story.world_name}", 256), color=COLOR,
                          description=clip(story.state.scene, 1000) or None)
    embed.add_field(name="Status", value=story.status)
    embed.add_field(name="Location", value=clip(story.state.location or "-", 1024))
    embed.add_field(name="Started by", value=f"<@{story.started_by}>")
    cast = ", ".join(md(c.name) for c in story.cast) or "none"
    embed.add_field(name="Characters", value=clip(cast, 1024), inline=False)
    embed.add_field(name="Messages", value=f"{story.message_count} (a summary every {story.summary_every})")
    embed.add_field(name="Summaries", value=str(len(story.summaries)))
    embed.set_footer(text=f"Story #{story.id}")
    return _fit(embed)


def texts_embed(title: str, texts: tuple[str, ...], empty: str) -> discord.Embed:
    embed = discord.Embed(title=title, color=COLOR)
    if not texts:
        embed.description = empty
    shown = texts[-10:]
    first = len(texts) - len(shown) + 1
    for n, text in enumerate(shown, start=first):
        embed.add_field(name=f"{n}.", value=clip(text, 1024), inline=False)
    return _fit(embed)


def relationships_embed(rels: list[RelationshipInfo], who: str) -> discord.Embed:
    embed = discord.Embed(title=clip(f"Relationships of {who}", 256), color=COLOR)
    if not rels:
        embed.description = "No relationships yet in this story."
    for r in rels[:FIELDS_MAX]:
        value = f"{r.score} ({rules.band(r.score)})" + (f"\n{r.description}" if r.description else "")
        embed.add_field(name=clip(r.character_name, 256), value=clip(value, 1024), inline=False)
    return _fit(embed)


def character_embed(info: CharacterInfo) -> discord.Embed:
    embed = discord.Embed(title=clip(info.display_name, 256), description=clip(info.description, 4096) or None,
                          color=COLOR)
    if info.display_avatar_url:
        embed.set_thumbnail(url=info.display_avatar_url)
    embed.add_field(name="Creator", value=f"<@{info.owner_id}>")
    embed.add_field(name="Visibility", value="public" if info.is_public else "private")
    embed.set_footer(text=f"Character #{info.id}")
    return embed


def _fit(embed: discord.Embed) -> discord.Embed:
    """Drop fields from the end until the whole embed is within Discord's 6,000 characters."""
    while len(embed) > 6000 and embed.fields:
        embed.remove_field(len(embed.fields) - 1)
    return embed
