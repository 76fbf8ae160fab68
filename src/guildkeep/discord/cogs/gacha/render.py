"""What the gacha game shows: lines, embeds and cards, all fitted to Discord's limits.

Pure presentation of the service's results under the loaded config; cards are drawn off the event loop.
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import Callable
from datetime import datetime
from typing import Any

import discord
from guildkeep.discord.limits import DESCRIPTION, TITLE, clip
from guildkeep.discord.views import Page
from guildkeep.gacha import art
from guildkeep.gacha.config import STAT_NAMES, GachaConfig
from guildkeep.gacha.results import EspritInfo, ListingInfo, PlayerInfo, RankInfo
from guildkeep.results import Page as DataPage
from guildkeep.text import plural

CHOICE_NAME = 100  # Discord's limit on an autocomplete choice's name

# From the full line to the most compact one, until a page of lines fits an embed's description.
FITTING = ((100, False), (60, False), (40, False), (40, True), (24, True), (12, True))


def timestamp(moment: datetime | None) -> str:
    """A relative Discord timestamp, or "now"."""
    return "now" if moment is None else f"<t:{int(moment.timestamp())}:R>"


def colour(config: GachaConfig, rarity: str) -> discord.Colour:
    """The rarity's frame colour."""
    return discord.Colour(int(config.visual(rarity).color.lstrip("#"), 16))


def money(config: GachaConfig, amount: int, currency: str) -> str:
    """An amount with the currency's emoji and name."""
    info = config.currency(currency)
    return f"{info.emoji} **{amount:,}** {info.name}".strip()


def wallet_line(config: GachaConfig, balances: dict[str, int]) -> str:
    """Every balance on one line."""
    return " · ".join(money(config, amount, currency) for currency, amount in balances.items())


def rarity_label(config: GachaConfig, rarity: str, *, short: bool = False) -> str:
    """The rarity's emoji, name and stars (``short``: the name alone, clipped)."""
    name, stars = config.tier_label(rarity)
    if short:
        return clip(name, 16)
    return f"{config.visual(rarity).emoji} {name} {'★' * stars}"


def esprit_line(config: GachaConfig, e: EspritInfo, *, name_max: int = 100, short: bool = False) -> str:
    """One owned Esprit on one line."""
    flags = " · active" if e.is_active else (" · at auction" if e.in_escrow else "")
    return (f"`#{e.copy_id}` **{clip(e.name, name_max)}** · {rarity_label(config, e.rarity, short=short)} · "
            f"Lv {e.level}{flags}")


def esprit_embed(config: GachaConfig, e: EspritInfo, *, title: str | None = None) -> discord.Embed:
    """One Esprit's card embed (the card image is attached as `art.card_filename`)."""
    embed = discord.Embed(title=clip(title or e.name, TITLE), description=clip(e.description, DESCRIPTION),
                          colour=colour(config, e.rarity))
    embed.add_field(name="Rarity", value=rarity_label(config, e.rarity))
    embed.add_field(name="Element", value=e.element.title())
    embed.add_field(name="Level", value=str(e.level))
    stats = " · ".join(f"{config.stat_icons[s].emoji} {config.stat_icons[s].label} {e.stats[s]}" for s in STAT_NAMES)
    embed.add_field(name="Stats", value=stats, inline=False)
    embed.set_image(url=f"attachment://{art.card_filename(e)}")
    embed.set_footer(text=f"Esprit #{e.copy_id}")
    return embed


async def card_bytes(config: GachaConfig, e: EspritInfo) -> bytes:
    """The Esprit's card as PNG, drawn in a worker thread."""
    return await asyncio.to_thread(art.render_card, art.card_spec(e, config))


async def card_file(config: GachaConfig, e: EspritInfo) -> discord.File:
    """The Esprit's card as an attachment."""
    return discord.File(io.BytesIO(await card_bytes(config, e)), filename=art.card_filename(e))


async def esprit_page(config: GachaConfig, e: EspritInfo, *, title: str | None = None) -> Page:
    """A paginator page: the Esprit's embed and its card."""
    return Page(embed=esprit_embed(config, e, title=title), files=[(art.card_filename(e), await card_bytes(config, e))])


def listing_line(config: GachaConfig, listing: ListingInfo, *, name_max: int = 100, short: bool = False) -> str:
    """One auction listing on one line."""
    e = listing.esprit
    price = (f"{listing.price:,} {clip(config.currency(listing.currency).name, 12)}" if short
             else money(config, listing.price, listing.currency))
    return (f"**#{listing.listing_id}** · {clip(e.name, name_max)} ({rarity_label(config, e.rarity, short=short)}, "
            f"Lv {e.level}) · {price} · seller <@{listing.seller_id}>")


def fit_lines(items: list[Any], line: Callable[..., str], *, empty: str, limit: int = DESCRIPTION) -> str:
    """One line per item in at most ``limit`` characters: long names and labels shrink until the page fits."""
    text = empty
    for name_max, short in FITTING:
        text = "\n".join(line(item, name_max=name_max, short=short) for item in items) or empty
        if len(text) <= limit:
            return text
    return clip(text, limit)


def inventory_embed(config: GachaConfig, title: str, data: DataPage[EspritInfo]) -> discord.Embed:
    """A page of the player's Esprits."""
    description = fit_lines(data.items, lambda e, **kw: esprit_line(config, e, **kw),
                            empty="No Esprits here yet. Try /summon.")
    embed = discord.Embed(title=clip(title, TITLE), description=description, colour=discord.Colour.blurple())
    return embed.set_footer(text=f"Page {data.page}/{data.pages} · {plural(data.total, 'Esprit')}")


def auction_embed(config: GachaConfig, data: DataPage[ListingInfo]) -> discord.Embed:
    """A page of the auction house."""
    description = fit_lines(data.items, lambda item, **kw: listing_line(config, item, **kw),
                            empty="Nothing is for sale right now.")
    embed = discord.Embed(title="Auction house", description=description, colour=discord.Colour.teal())
    return embed.set_footer(
        text=f"Page {data.page}/{data.pages} · {plural(data.total, 'listing')} · buy with /auction buy")


def leaderboard_embed(shown: str, data: DataPage[RankInfo]) -> discord.Embed:
    """A page of the leaderboard by ``shown``."""
    lines = [f"**{e.rank}.** <@{e.user_id}> · {shown} {e.value:,}" for e in data.items]
    description = "\n".join(lines) or "Nobody has started playing yet."
    embed = discord.Embed(title=f"Leaderboard by {shown}", description=description, colour=discord.Colour.gold())
    return embed.set_footer(text=f"Page {data.page}/{data.pages}")


def balance_embed(config: GachaConfig, name: str, p: PlayerInfo) -> discord.Embed:
    """The player's wallet, level, daily streak and pity counters."""
    embed = discord.Embed(title=f"{name}'s wallet", colour=discord.Colour.gold())
    for currency, amount in p.balances.items():
        info = config.currency(currency)
        embed.add_field(name=f"{info.emoji} {info.name}".strip(), value=f"{amount:,}")
    embed.add_field(name="Level", value=f"{p.level} ({p.xp:,} / {p.xp_next_level:,} XP)")
    embed.add_field(name="Daily", value=f"Streak: {plural(p.daily_streak, 'day')} · next claim "
                                        f"{timestamp(p.next_daily_at)}")
    pity = config.settings.pity
    embed.add_field(
        name="Pity",
        value=f"{p.pity_guaranteed}/{pity.guaranteed_every} to a guaranteed "
              f"{config.tier(pity.guaranteed_rarity).name} · {p.pity_hard}/{pity.hard_threshold} to a "
              f"{config.tier(pity.hard_rarity).name}",
        inline=False,
    )
    return embed


def choice_name(text: str) -> str:
    """An autocomplete choice's name within Discord's limit."""
    return clip(text, CHOICE_NAME)
