"""Card art: real PNGs, deterministic per creature, framed in the rarity's colour."""

from __future__ import annotations

import io
from dataclasses import replace

from PIL import Image

from guildkeep.gacha import art
from guildkeep.gacha.config import load_config
from guildkeep.gacha.results import EspritInfo


def view(esprit_id: str, level: int = 1) -> EspritInfo:
    cfg = load_config()
    entry = next(e for e in cfg.esprits if e.id == esprit_id)
    return EspritInfo(1, 1, entry.id, entry.name, entry.description, entry.rarity, entry.element, entry.image,
                      level, entry.base_stats.model_dump(), in_escrow=False, is_active=True)


def test_every_catalogue_creature_renders_a_png_card() -> None:
    cfg = load_config()
    seen = set()
    for entry in cfg.esprits:
        data = art.render_card(art.card_spec(view(entry.id), cfg))
        image = Image.open(io.BytesIO(data))
        assert image.format == "PNG"
        assert image.size == (art.WIDTH, art.HEIGHT)
        visual = cfg.visuals[entry.rarity]
        assert image.convert("RGB").getpixel((3, 3)) == art._rgb(visual.color)  # the rarity frame
        seen.add(data)
    assert len(seen) == len(cfg.esprits)  # no two creatures share a card


def test_a_card_is_deterministic_and_shows_the_level() -> None:
    cfg = load_config()
    spec = art.card_spec(view("aurora_seraph"), cfg)
    first = art.render_card(spec)
    art._render.cache_clear()
    assert art.render_card(spec) == first
    assert art.render_card(replace(spec, level=5)) != first


def test_the_portrait_depends_only_on_the_creature() -> None:
    """Two cards of one creature differ only outside the portrait (here: the level)."""
    cfg = load_config()
    a = Image.open(io.BytesIO(art.render_card(art.card_spec(view("cinder_kit", 1), cfg))))
    b = Image.open(io.BytesIO(art.render_card(art.card_spec(view("cinder_kit", 9), cfg))))
    box = (art.PORTRAIT[0] + 3, art.PORTRAIT[1] + 3, art.PORTRAIT[2] - 80, art.PORTRAIT[3] - 20)
    assert a.crop(box).tobytes() == b.crop(box).tobytes()
