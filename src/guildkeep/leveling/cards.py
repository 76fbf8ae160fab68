"""Rank cards: a PNG drawn with Pillow off the event loop, from plain values and image bytes.

The cog fetches the avatar and background (``fetch_image``); anything missing or unreadable falls back to
a drawn placeholder, so a card always renders.
"""

from __future__ import annotations

import asyncio
import io
import logging
from dataclasses import dataclass, field

import aiohttp
from PIL import Image, ImageDraw, ImageFont, ImageOps

from guildkeep.leveling.results import CardInfo
from guildkeep.leveling.rules import compact_number, hex_to_rgb

log = logging.getLogger(__name__)

WIDTH, HEIGHT = 934, 282
AVATAR_BOX = (40, 41, 240, 241)
BAR_BOX = (270, 190, 894, 230)  # left, top, right, bottom of the XP bar
DEFAULTS = {
    "background_color": "#23272a",
    "primary_color": "#5865f2",  # XP bar fill
    "secondary_color": "#484b4e",  # XP bar track
    "border_color": "#5865f2",
    "text_color": "#ffffff",
}
MAX_IMAGE_BYTES = 4 * 1024 * 1024
MAX_IMAGE_PIXELS = 16_000_000


@dataclass(frozen=True, slots=True)
class RankCardData:
    name: str
    level: int
    xp_into_level: int
    xp_for_level: int
    total_xp: int
    rank: int | None = None
    card: CardInfo = field(default_factory=CardInfo)
    avatar: bytes | None = None
    background: bytes | None = None


def colour(card: CardInfo, name: str) -> tuple[int, int, int]:
    return hex_to_rgb(getattr(card, name) or DEFAULTS[name])


def _open(data: bytes | None) -> Image.Image | None:
    if not data:
        return None
    try:
        with Image.open(io.BytesIO(data)) as probe:
            if probe.width * probe.height > MAX_IMAGE_PIXELS:
                return None
            probe.load()
            return probe.convert("RGBA")
    except (OSError, ValueError, Image.DecompressionBombError):
        log.debug("unreadable image, using the fallback", exc_info=True)
        return None


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


def xp_labels(data: RankCardData) -> tuple[str, str]:
    """The card's two XP lines: progress through the level, and the total (one compact number format)."""
    return (f"{compact_number(data.xp_into_level)} / {compact_number(data.xp_for_level)} XP",
            f"{compact_number(data.total_xp)} XP total")


def render_rank_card(data: RankCardData) -> bytes:
    """Draw the card and return PNG bytes (blocking; use `render_rank_card_async` from async code)."""
    card = data.card
    text = colour(card, "text_color")
    card_image = Image.new("RGBA", (WIDTH, HEIGHT), (*colour(card, "background_color"), 255))
    background = _open(data.background)
    if background is not None:
        card_image.paste(ImageOps.fit(background, (WIDTH, HEIGHT)), (0, 0))
        shade = Image.new("RGBA", (WIDTH, HEIGHT), (0, 0, 0, 110))
        card_image = Image.alpha_composite(card_image, shade)
    draw = ImageDraw.Draw(card_image)
    if card.card_style != "minimal":
        draw.rectangle((0, 0, WIDTH - 1, HEIGHT - 1), outline=colour(card, "border_color"), width=6)

    size = AVATAR_BOX[2] - AVATAR_BOX[0]
    mask = Image.new("L", (size, size), 0)
    ImageDraw.Draw(mask).ellipse((0, 0, size - 1, size - 1), fill=255)
    avatar = _open(data.avatar)
    if avatar is None:
        avatar = Image.new("RGBA", (size, size), (*colour(card, "primary_color"), 255))
        initial = (data.name[:1] or "?").upper()
        ImageDraw.Draw(avatar).text((size / 2, size / 2), initial, font=_font(110), fill=text, anchor="mm")
    card_image.paste(ImageOps.fit(avatar, (size, size)), AVATAR_BOX[:2], mask)

    left, top, right, bottom = BAR_BOX
    name = data.name if len(data.name) <= 24 else data.name[:23] + "…"
    draw.text((left, 95), name, font=_font(42), fill=text, anchor="ls")
    rank = f"RANK #{data.rank}" if data.rank else "UNRANKED"
    draw.text((right, 70), f"{rank}   LEVEL {data.level}", font=_font(34), fill=text, anchor="rs")
    progress, total = xp_labels(data)
    draw.text((right, top - 14), progress, font=_font(26), fill=text, anchor="rs")
    draw.text((left, top - 14), total, font=_font(22), fill=text, anchor="ls")

    radius = (bottom - top) // 2 if card.card_style == "rounded" else 0
    draw.rounded_rectangle(BAR_BOX, radius=radius, fill=colour(card, "secondary_color"))
    share = 0.0 if data.xp_for_level <= 0 else max(0.0, min(1.0, data.xp_into_level / data.xp_for_level))
    filled = left + round((right - left) * share)
    if filled > left:
        draw.rounded_rectangle((left, top, filled, bottom), radius=min(radius, (filled - left) // 2),
                               fill=colour(card, "primary_color"))

    out = io.BytesIO()
    card_image.convert("RGB").save(out, format="PNG", optimize=False)
    return out.getvalue()


async def render_rank_card_async(data: RankCardData) -> bytes:
    return await asyncio.to_thread(render_rank_card, data)


async def fetch_image(url: str | None, *, session: aiohttp.ClientSession | None = None,
                      timeout_seconds: float = 5.0, max_bytes: int = MAX_IMAGE_BYTES) -> bytes | None:
    """Download an image, or None when it is unreachable, too large or not an image (the card falls back)."""
    if not url:
        return None
    own = session is None
    client = session or aiohttp.ClientSession()
    try:
        async with client.get(url, timeout=aiohttp.ClientTimeout(total=timeout_seconds)) as resp:
            if resp.status != 200:
                return None
            data = await resp.content.read(max_bytes + 1)
            return None if len(data) > max_bytes else data
    except (aiohttp.ClientError, TimeoutError, ValueError):
        log.debug("could not fetch %s", url, exc_info=True)
        return None
    finally:
        if own:
            await client.close()
