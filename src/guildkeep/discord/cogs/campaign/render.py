"""Embeds for campaigns, their characters and NPCs, within Discord's limits."""

from __future__ import annotations

import discord
from guildkeep.campaign.results import CampaignInfo, NpcInfo, PlayerCharacterInfo, SessionInfo
from guildkeep.discord.limits import clip, fit_embed

COLOR = discord.Colour.from_rgb(192, 57, 43)
LIST_MAX = 40


def md(text: str) -> str:
    """A name shown inside bold text: its own markdown characters are shown, not applied."""
    return discord.utils.escape_markdown(text)


def mentions(user_ids: tuple[int, ...] | list[int]) -> str:
    shown = [f"<@{u}>" for u in user_ids[:LIST_MAX]]
    more = len(user_ids) - len(shown)
    return ", ".join(shown) + (f" and {more} more" if more > 0 else "") if shown else "nobody yet"


def campaign_embed(info: CampaignInfo, *, characters: int | None = None, npcs: int | None = None,
                   session: SessionInfo | None = None) -> discord.Embed:
    embed = discord.Embed(title=clip(info.name, 256), color=COLOR,
                          description="Archived: read-only." if info.archived else None)
    embed.add_field(name="GM", value=f"<@{info.gm_id}>" if info.gm_id else "nobody (ask a server manager)")
    embed.add_field(name="Channel", value=f"<#{info.channel_id}>")
    if info.player_role_id or info.gm_role_id:
        roles = [f"<@&{r}>" for r in (info.player_role_id, info.gm_role_id) if r]
        embed.add_field(name="Roles", value=" ".join(roles))
    embed.add_field(name=f"Players ({len(info.players)})", value=clip(mentions(info.players), 1024), inline=False)
    if characters is not None:
        embed.add_field(name="Characters", value=str(characters))
    if npcs is not None:
        embed.add_field(name="NPCs", value=str(npcs))
    if session is not None:
        stamp = int(session.run_at.timestamp())
        embed.add_field(name="Next session", value=f"<t:{stamp}:F>" + (" (weekly)" if session.weekly else ""),
                        inline=False)
    embed.set_footer(text=f"Campaign #{info.id}")
    return fit_embed(embed)


def character_embed(played: PlayerCharacterInfo) -> discord.Embed:
    c = played.character
    embed = discord.Embed(title=clip(c.display_name, 256), description=clip(c.description, 4096) or None,
                          color=COLOR)
    if c.display_avatar_url:
        embed.set_thumbnail(url=c.display_avatar_url)
    embed.add_field(name="Played by", value=f"<@{played.user_id}>")
    embed.set_footer(text=f"Character #{c.id}")
    return fit_embed(embed)


def characters_embed(title: str, played: list[PlayerCharacterInfo]) -> discord.Embed:
    lines = [f"**{md(p.character.display_name)}** - <@{p.user_id}>" for p in played[:LIST_MAX]]
    if len(played) > LIST_MAX:
        lines.append(f"... and {len(played) - LIST_MAX} more")
    text = "\n".join(lines) or "No characters yet. Players make theirs with `/character create`."
    return fit_embed(discord.Embed(title=clip(title, 256), description=clip(text, 4096), color=COLOR))


def npc_embed(npc: NpcInfo) -> discord.Embed:
    embed = discord.Embed(title=clip(npc.name, 256), color=COLOR)
    if npc.avatar_url:
        embed.set_thumbnail(url=npc.avatar_url)
    embed.set_footer(text=f"NPC #{npc.id}")
    return fit_embed(embed)


def npcs_embed(title: str, npcs: list[NpcInfo]) -> discord.Embed:
    lines = [f"**{md(n.name)}**" + (" (with a picture)" if n.avatar_url else "") for n in npcs[:LIST_MAX]]
    if len(npcs) > LIST_MAX:
        lines.append(f"... and {len(npcs) - LIST_MAX} more")
    text = "\n".join(lines) or "No NPCs yet. The GM adds them with `/npc create`."
    return fit_embed(discord.Embed(title=clip(title, 256), description=clip(text, 4096), color=COLOR))
