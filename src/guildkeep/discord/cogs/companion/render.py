"""Text and embeds the companion shows; everything fits Discord's limits."""

from __future__ import annotations

from collections.abc import Sequence

import discord
from guildkeep.companion.results import EventInfo, FactInfo, FactPageInfo, StatusInfo
from guildkeep.companion.settings import CompanionConfig
from guildkeep.discord.limits import clip

COLOR = discord.Color.teal()
CONTENT_MAX = 2000
DESCRIPTION_MAX = 4096
CHOICE_NAME_MAX = 100
FACT_ICONS = {"hobby": "🎨", "work": "💼", "family": "👪", "preference": "⭐", "location": "📍", "event": "📅",
              "relationship": "💞", "general": "📝"}


def fact_line(fact: FactInfo) -> str:
    return f"{FACT_ICONS.get(fact.fact_type, '📝')} {clip(fact.content, 300)} · *{fact.fact_type}* · `#{fact.id}`"


def memory_pages(pages: Sequence[FactPageInfo], name: str) -> list[discord.Embed]:
    """One embed per page of facts (a page holds at most 10 facts of at most ~330 characters)."""
    embeds = []
    for page in pages:
        if not page.facts:
            body = "I don't remember anything about you yet. Tell me about yourself!"
        else:
            body = "\n".join(fact_line(f) for f in page.facts)
        embed = discord.Embed(title=clip(f"What I remember about {name}", 256),
                              description=clip(body, DESCRIPTION_MAX), color=COLOR)
        embed.set_footer(text=f"Page {page.page}/{page.pages} · {page.total} fact(s) · /forget to remove one")
        embeds.append(embed)
    return embeds


def fact_choice_name(fact: FactInfo) -> str:
    return clip(f"#{fact.id} {fact.content}", CHOICE_NAME_MAX)


def status_embed(status: StatusInfo, name: str) -> discord.Embed:
    mood, rel = status.mood, status.relationship
    embed = discord.Embed(title="Companion status", color=COLOR)
    embed.add_field(name="Mood", value=f"{mood.label} (valence {mood.valence:+.2f}, arousal {mood.arousal:+.2f})",
                    inline=False)
    embed.add_field(
        name=clip(f"Relationship with {name}", 256),
        value=(f"{rel.level_name} — {rel.score:.0f}/100 · {rel.total_interactions} interaction(s) "
               f"({rel.positive_interactions} warm, {rel.negative_interactions} cold)"),
        inline=False,
    )
    embed.add_field(name="Memory", value=f"{status.facts_known} fact(s), {status.pending_events} upcoming event(s)",
                    inline=False)
    replies = status.replies_sent
    embed.add_field(name="Replies here", value=f"{replies} repl{'y' if replies == 1 else 'ies'}", inline=False)
    return embed


def config_embed(config: CompanionConfig) -> discord.Embed:
    embed = discord.Embed(title="Companion settings", color=COLOR)
    embed.add_field(name="Persona", value=clip(config.persona, 1024), inline=False)
    channels = ", ".join(f"<#{c}>" for c in config.channel_ids) or "every channel (when mentioned)"
    embed.add_field(name="Talks in", value=clip(channels, 1024), inline=False)
    embed.add_field(name="Enabled", value="yes" if config.enabled else "no")
    embed.add_field(name="Birthday hour (UTC)", value=f"{config.birthday_hour_utc}:00")
    return embed


def event_text(event: EventInfo) -> str:
    who = f"<@{event.user_id}>"
    if event.event_type == "birthday":
        text = f"🎂 Happy birthday, {who}! I hope your day is wonderful."
    elif event.event_type == "reminder":
        text = f"⏰ {who}, you asked me to remind you: {event.title}"
    else:
        text = f"👋 {who}, {event.title}"
    return clip(text, CONTENT_MAX)


def reminder_text(event: EventInfo) -> str:
    return clip(f"⏰ I'll remind you {discord.utils.format_dt(event.trigger_at, 'R')} "
                f"({discord.utils.format_dt(event.trigger_at, 'f')}): {event.title}", CONTENT_MAX)
