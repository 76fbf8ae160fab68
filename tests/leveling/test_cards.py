from __future__ import annotations

import io

from aiohttp import web
from PIL import Image

from guildkeep.leveling import cards
from guildkeep.leveling.cards import (
    BAR_BOX,
    RankCardData,
    fetch_image,
    render_rank_card,
    render_rank_card_async,
    xp_labels,
)
from guildkeep.leveling.results import CardInfo

BAR_Y = (BAR_BOX[1] + BAR_BOX[3]) // 2


def _png(colour: tuple[int, int, int], size: tuple[int, int] = (64, 64)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, colour).save(out, format="PNG")
    return out.getvalue()


def _open(data: bytes) -> Image.Image:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return Image.open(io.BytesIO(data)).convert("RGB")


async def test_card_is_a_png_with_the_xp_bar_filled_to_progress() -> None:
    card = CardInfo(primary_color="#ff0000", secondary_color="#0000ff", background_color="#101010")
    data = RankCardData("Ann", level=10, xp_into_level=25, xp_for_level=100, total_xp=4700, rank=3, card=card,
                        avatar=_png((0, 255, 0)))
    image = _open(await render_rank_card_async(data))
    assert image.size == (cards.WIDTH, cards.HEIGHT)
    width = BAR_BOX[2] - BAR_BOX[0]
    assert image.getpixel((BAR_BOX[0] + width // 8, BAR_Y)) == (255, 0, 0)  # filled quarter
    assert image.getpixel((BAR_BOX[0] + width // 2, BAR_Y)) == (0, 0, 255)  # track
    assert image.getpixel((BAR_BOX[2] - 5, BAR_Y)) == (0, 0, 255)
    assert image.getpixel((140, 141)) == (0, 255, 0)  # avatar centre
    assert image.getpixel((600, 270)) == (16, 16, 16)  # background
    assert image.getpixel((2, 2)) == cards.colour(CardInfo(), "border_color")


def test_styles_and_fallbacks() -> None:
    minimal = CardInfo(card_style="minimal", background_color="#202020", primary_color="#00ff00")
    image = _open(render_rank_card(RankCardData("", 0, 0, 100, 0, card=minimal, avatar=b"not an image",
                                                background=b"garbage")))
    assert image.getpixel((2, 2)) == (32, 32, 32)  # no border
    assert image.getpixel((BAR_BOX[0] + 5, BAR_Y)) == cards.colour(CardInfo(), "secondary_color")  # empty bar
    assert image.getpixel((60, 141)) == (0, 255, 0)  # drawn placeholder avatar in the primary colour
    full = _open(render_rank_card(RankCardData("A" * 40, 5, 100, 100, 10**7, card=CardInfo(card_style="rounded"),
                                               background=_png((200, 0, 0), (100, 30)))))
    assert full.getpixel((BAR_BOX[2] - 30, BAR_Y)) == cards.colour(CardInfo(), "primary_color")
    r, g, _b = full.getpixel((600, 270))
    assert r > 100
    assert g < 20  # the background image, shaded


async def test_fetch_image_falls_back_when_unreachable() -> None:
    app = web.Application()

    async def ok(_request: web.Request) -> web.Response:
        return web.Response(body=_png((1, 2, 3)), content_type="image/png")

    async def big(_request: web.Request) -> web.Response:
        return web.Response(body=b"x" * 2000)

    app.router.add_get("/ok.png", ok)
    app.router.add_get("/big", big)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        assert (await fetch_image(f"http://127.0.0.1:{port}/ok.png"))[:4] == b"\x89PNG"  # type: ignore[index]
        assert await fetch_image(f"http://127.0.0.1:{port}/missing") is None
        assert await fetch_image(f"http://127.0.0.1:{port}/big", max_bytes=1000) is None
        assert await fetch_image("http://127.0.0.1:1/nothing-listens-here", timeout_seconds=1) is None
        assert await fetch_image(None) is None
    finally:
        await runner.cleanup()


def test_card_xp_labels_use_the_compact_format() -> None:
    data = RankCardData("Ann", 80, 0, 5_050_100, 1_689_200_000)
    assert xp_labels(data) == ("0 / 5.05M XP", "1.69B XP total")
    assert xp_labels(RankCardData("Bo", 1, 1_234, 9_999, 5_000)) == ("1,234 / 9,999 XP", "5,000 XP total")
