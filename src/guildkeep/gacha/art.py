"""Card art, drawn with Pillow: deterministic per creature, framed in its rarity's colours.

Nothing is downloaded: the creature is built from shapes chosen by a generator seeded with a hash of
its id, so a creature always looks the same and two creatures almost never do. Rendering is CPU
work; the Discord layer calls `render_card` through ``asyncio.to_thread``.
"""

from __future__ import annotations

import hashlib
import io
import math
import random
from dataclasses import dataclass
from functools import lru_cache

from PIL import Image, ImageDraw, ImageFont

from guildkeep.gacha.config import STAT_NAMES, GachaConfig
from guildkeep.gacha.results import EspritInfo

WIDTH, HEIGHT = 360, 504
BORDER = 14
PORTRAIT = (BORDER + 14, 76, WIDTH - BORDER - 14, 300)

ELEMENT_COLOURS: dict[str, tuple[tuple[int, int, int], tuple[int, int, int]]] = {
    "fire": ((120, 24, 16), (250, 140, 40)),
    "water": ((10, 40, 110), (70, 170, 230)),
    "earth": ((70, 48, 24), (170, 130, 70)),
    "air": ((90, 120, 150), (220, 240, 250)),
    "nature": ((20, 70, 30), (120, 200, 90)),
    "light": ((150, 120, 40), (255, 245, 200)),
    "shadow": ((20, 10, 40), (110, 70, 150)),
    "frost": ((60, 100, 140), (210, 240, 255)),
}


@dataclass(frozen=True, slots=True)
class CardSpec:
    """Everything drawn on a card; hashable so rendered PNGs can be cached."""

    esprit_id: str
    name: str
    element: str
    rarity_name: str
    stars: int
    frame: str  # "#rrggbb"
    accent: str
    level: int
    stats: tuple[tuple[str, int], ...]  # (label, value) in display order


def card_spec(esprit: EspritInfo, config: GachaConfig) -> CardSpec:
    tier_name, stars = config.tier_label(esprit.rarity)
    visual = config.visual(esprit.rarity)
    stats = tuple((config.stat_icons[name].label, esprit.stats[name]) for name in STAT_NAMES)
    return CardSpec(esprit.esprit_id, esprit.name, esprit.element, tier_name, stars, visual.color,
                    visual.accent, esprit.level, stats)


def _rgb(hex_colour: str) -> tuple[int, int, int]:
    value = hex_colour.lstrip("#")
    return int(value[0:2], 16), int(value[2:4], 16), int(value[4:6], 16)


def _mix(a: tuple[int, int, int], b: tuple[int, int, int], t: float) -> tuple[int, int, int]:
    return (round(a[0] + (b[0] - a[0]) * t), round(a[1] + (b[1] - a[1]) * t), round(a[2] + (b[2] - a[2]) * t))


def _seed(esprit_id: str) -> int:
    return int.from_bytes(hashlib.sha256(esprit_id.encode("utf-8")).digest()[:8], "big")


@lru_cache(maxsize=8)
def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


def _portrait(draw: ImageDraw.ImageDraw, rng: random.Random, element: str) -> None:
    """The creature: a body, a head, eyes, and features picked by the seeded generator."""
    dark, light = ELEMENT_COLOURS.get(element, ((60, 60, 60), (200, 200, 200)))
    x0, y0, x1, y1 = PORTRAIT
    for row in range(y0, y1):  # sky gradient
        draw.line([(x0, row), (x1, row)], fill=_mix(dark, light, (row - y0) / (y1 - y0)))
    for _ in range(rng.randint(6, 14)):  # element motes
        cx, cy, r = rng.randint(x0 + 8, x1 - 8), rng.randint(y0 + 8, y1 - 8), rng.randint(2, 7)
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=_mix(light, (255, 255, 255), 0.5))

    hue = tuple(rng.randint(40, 230) for _ in range(3))
    body_colour = _mix(hue, light, 0.25)  # type: ignore[arg-type]
    cx, ground = (x0 + x1) // 2 + rng.randint(-20, 20), y1 - 24
    body_w, body_h = rng.randint(70, 120), rng.randint(50, 90)
    body = [cx - body_w // 2, ground - body_h, cx + body_w // 2, ground]
    if rng.random() < 0.5:  # wings
        span = rng.randint(40, 80)
        wing = _mix(body_colour, dark, 0.3)
        draw.polygon([(cx, ground - body_h + 10), (cx - body_w // 2 - span, ground - body_h - 30),
                      (cx - body_w // 2, ground - 20)], fill=wing)
        draw.polygon([(cx, ground - body_h + 10), (cx + body_w // 2 + span, ground - body_h - 30),
                      (cx + body_w // 2, ground - 20)], fill=wing)
    if rng.random() < 0.6:  # tail
        side = rng.choice((-1, 1))
        tip = (cx + side * (body_w // 2 + rng.randint(20, 45)), ground - body_h - rng.randint(0, 40))
        draw.line([(cx + side * body_w // 3, ground - body_h // 3), tip], fill=body_colour, width=rng.randint(6, 12))
    draw.ellipse(body, fill=body_colour, outline=dark, width=3)

    head_r = rng.randint(26, 40)
    hx, hy = cx + rng.randint(-10, 10), ground - body_h - head_r + 12
    features = rng.choice(("ears", "horns", "crest", "antennae"))
    if features == "ears":
        for side in (-1, 1):
            draw.polygon([(hx + side * head_r // 2, hy - head_r + 8), (hx + side * head_r, hy - head_r - 22),
                          (hx + side * head_r, hy - head_r // 3)], fill=body_colour, outline=dark)
    elif features == "horns":
        for side in (-1, 1):
            tip = (hx + side * (head_r // 2 + 10), hy - head_r - 30)
            draw.polygon([(hx + side * head_r // 3, hy - head_r + 6), tip,
                          (hx + side * (head_r // 2 + 4), hy - head_r + 10)], fill=(235, 225, 200), outline=dark)
    elif features == "crest":
        for i in range(-2, 3):
            draw.ellipse([hx + i * 9 - 6, hy - head_r - 16, hx + i * 9 + 6, hy - head_r + 8], fill=light, outline=dark)
    else:
        for side in (-1, 1):
            end = (hx + side * (head_r + 10), hy - head_r - 26)
            draw.line([(hx + side * 8, hy - head_r + 4), end], fill=dark, width=3)
            draw.ellipse([end[0] - 5, end[1] - 5, end[0] + 5, end[1] + 5], fill=light)
    draw.ellipse([hx - head_r, hy - head_r, hx + head_r, hy + head_r], fill=body_colour, outline=dark, width=3)
    eye_gap, eye_r = head_r // 2, rng.randint(5, 9)
    eye_colour = rng.choice(((20, 20, 20), (200, 30, 30), (30, 60, 200), (250, 200, 40)))
    for side in (-1, 1):
        ex, ey = hx + side * eye_gap, hy - 4
        draw.ellipse([ex - eye_r, ey - eye_r, ex + eye_r, ey + eye_r], fill=(255, 255, 255))
        draw.ellipse([ex - eye_r // 2, ey - eye_r // 2, ex + eye_r // 2, ey + eye_r // 2], fill=eye_colour)
    draw.arc([hx - 10, hy + 4, hx + 10, hy + 16], 20, 160, fill=dark, width=2)


def _star(draw: ImageDraw.ImageDraw, centre: tuple[float, float], radius: float, colour: tuple[int, int, int]) -> None:
    points = []
    for i in range(10):
        r = radius if i % 2 == 0 else radius * 0.45
        angle = math.pi / 2 + i * math.pi / 5
        points.append((centre[0] + r * math.cos(angle), centre[1] - r * math.sin(angle)))
    draw.polygon(points, fill=colour)


def render_card(spec: CardSpec) -> bytes:
    """The card as PNG bytes. Same spec, same bytes."""
    return _render(spec)


@lru_cache(maxsize=256)
def _render(spec: CardSpec) -> bytes:
    frame, accent = _rgb(spec.frame), _rgb(spec.accent)
    image = Image.new("RGB", (WIDTH, HEIGHT), frame)
    draw = ImageDraw.Draw(image)
    draw.rounded_rectangle([BORDER, BORDER, WIDTH - BORDER, HEIGHT - BORDER], radius=14, fill=(28, 28, 36),
                           outline=accent, width=3)

    draw.text((BORDER + 14, BORDER + 12), spec.name, font=_font(22), fill=(255, 255, 255))
    draw.text((BORDER + 14, BORDER + 40), spec.rarity_name, font=_font(15), fill=accent)
    left = BORDER + 24 + draw.textlength(spec.rarity_name, font=_font(15))
    for i in range(spec.stars):
        _star(draw, (left + i * 17, BORDER + 49), 7, frame)
    draw.text((WIDTH - BORDER - 14, BORDER + 40), f"Lv {spec.level}", font=_font(15), fill=(230, 230, 230),
              anchor="ra")

    _portrait(draw, random.Random(_seed(spec.esprit_id)), spec.element)
    draw.rectangle(PORTRAIT, outline=accent, width=2)
    draw.text((PORTRAIT[2] - 6, PORTRAIT[3] - 6), spec.element.title(), font=_font(13), fill=(255, 255, 255),
              anchor="rd")

    top = PORTRAIT[3] + 18
    highest = max((v for _, v in spec.stats), default=1) or 1
    for i, (label, value) in enumerate(spec.stats):
        y = top + i * 34
        draw.text((BORDER + 16, y), label, font=_font(15), fill=(220, 220, 220))
        bar = [BORDER + 70, y + 3, WIDTH - BORDER - 70, y + 17]
        draw.rounded_rectangle(bar, radius=6, fill=(60, 60, 72))
        filled = bar[0] + round((bar[2] - bar[0]) * min(value / highest, 1.0))
        draw.rounded_rectangle([bar[0], bar[1], max(filled, bar[0] + 12), bar[3]], radius=6, fill=frame)
        draw.text((WIDTH - BORDER - 16, y), str(value), font=_font(15), fill=(255, 255, 255), anchor="ra")

    out = io.BytesIO()
    image.save(out, format="PNG", optimize=False)
    return out.getvalue()


def card_filename(esprit: EspritInfo) -> str:
    return f"{esprit.esprit_id}-{esprit.copy_id}.png"
