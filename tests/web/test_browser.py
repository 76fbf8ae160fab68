"""The web pages in a real browser: Playwright drives Debian's Chromium (``scripts/ensure-chromium.sh``).

The app is served by uvicorn in the test's event loop; logins go through the sandbox's OAuth2 pages. Each
test saves screenshots under ``screenshots/`` (git-ignored). A missing Chromium fails these tests: it is
part of the test set-up (``make test`` installs it), not optional.
"""

from __future__ import annotations

import os
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, async_playwright
from pydantic import SecretStr

from guildkeep.db import Database
from guildkeep.leveling.service import LevelingService
from guildkeep.testing.harness import SandboxEnv
from guildkeep.web.app import WebContext
from guildkeep.web.server import context_for_bot, running
from tests.web.conftest import GUILD, Discord, seed_levels

CHROMIUM = os.environ.get("GUILDKEEP_CHROMIUM", "/usr/bin/chromium")
SHOTS = Path(__file__).resolve().parents[2] / "screenshots"
PHONE = {"width": 390, "height": 844}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def chromium_path() -> str:
    if not Path(CHROMIUM).is_file():
        pytest.fail(f"Chromium is required for the browser tests and is missing at {CHROMIUM}; "
                    "run scripts/ensure-chromium.sh (make test does)")
    return CHROMIUM


@pytest.fixture
async def browser(chromium_path: str) -> AsyncIterator[Browser]:
    async with async_playwright() as pw:
        chromium = await pw.chromium.launch(executable_path=chromium_path, args=["--no-sandbox", "--disable-gpu"])
        try:
            yield chromium
        finally:
            await chromium.close()


async def shot(page: Page, name: str, backend: str) -> None:
    SHOTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(SHOTS / f"{name}-{backend}.png"), full_page=True)


async def test_the_leaderboard_renders_and_pages(db: Database, ctx: WebContext, browser: Browser,
                                                 backend: str) -> None:
    names = ["Aria Moon", "bram", "Cleo_Stone", "dax", "Eve"]
    await seed_levels(db, GUILD, [(10_000 + i, f"{names[i % 5]}{i}", 40_000 - i * 300) for i in range(120)],
                      guild_name="Cozy Corner")
    async with running(ctx, host="127.0.0.1", port=0) as (_server, port):
        page = await browser.new_page()
        await page.goto(f"http://127.0.0.1:{port}/guilds/{GUILD}")
        rows = page.locator("#board li.row")
        assert await rows.count() == 50
        assert await page.locator("h1").inner_text() == "Cozy Corner"
        assert await rows.nth(0).locator(".rank").inner_text() == "#1"
        assert await rows.nth(0).locator(".initials").inner_text() == "AM"
        width = await rows.nth(0).locator(".bar > span").evaluate("e => e.getBoundingClientRect().width")
        assert width > 0
        await shot(page, "leaderboard", backend)
        # "Show more" loads the next page in place through the JSON endpoint.
        await page.click("#more")
        await page.wait_for_function("document.querySelectorAll('#board li.row').length === 100")
        assert await rows.nth(50).locator(".rank").inner_text() == "#51"
        # The plain link pages on the server (and keeps working without JavaScript).
        await page.click("#next")
        await page.wait_for_url(f"**/guilds/{GUILD}?after=*")
        assert await rows.count() == 20
        assert await rows.nth(0).locator(".rank").inner_text() == "#101"
        assert await page.locator("#next").count() == 0
        # A phone: nothing wider than the screen.
        await page.set_viewport_size(PHONE)
        await page.goto(f"http://127.0.0.1:{port}/guilds/{GUILD}")
        scroll = await page.evaluate("document.documentElement.scrollWidth")
        assert scroll <= PHONE["width"]
        await shot(page, "leaderboard-phone", backend)
        await page.goto(f"http://127.0.0.1:{port}/guilds/{GUILD}/members/10000")
        assert "Rank #1" in await page.inner_text("main")
        loaded = await page.locator("img.card").evaluate("img => img.complete && img.naturalWidth")
        assert loaded == 934
        await shot(page, "profile-phone", backend)


async def test_a_member_without_manage_server_is_refused_the_dashboard(
        db: Database, database_url: str, leveling: LevelingService, *, discord: Discord, browser: Browser,
        backend: str) -> None:
    from tests.web.conftest import web_settings

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    settings = web_settings(database_url, discord.server.base_url, web_base_url=base,
                            web_client_id=str(discord.server.application_id),
                            web_client_secret=discord.server.oauth.client_secret)
    await seed_levels(db, discord.a.id, [(discord.bob.id, "bob", 100)], guild_name="Server A")
    async with running(WebContext(db, settings, leveling), host="127.0.0.1", port=port):
        page = await browser.new_page()
        await page.goto(base + "/login")
        await page.click("text=Authorize as bob")
        await page.wait_for_url(base + "/dashboard")
        assert "You have Manage Server in no server" in await page.inner_text("main")
        response = await page.goto(f"{base}/dashboard/{discord.a.id}")
        assert response is not None
        assert response.status == 403
        assert "Manage Server" in await page.inner_text(".error")
        assert await page.locator("#xp_rate").count() == 0
        await shot(page, "dashboard-refused", backend)
    assert (await leveling.get_server_config(discord.a.id)).settings.xp_rate == 1.0


@pytest.mark.e2e
async def test_an_admin_changes_the_xp_rate_and_levels_config_shows_it(discord_env: SandboxEnv, browser: Browser,
                                                                       backend: str) -> None:
    server, driver = discord_env.server, discord_env.driver
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    ctx = context_for_bot(discord_env.bot)
    ctx.settings = discord_env.settings.model_copy(update={
        "web_base_url": base, "web_client_id": str(server.application_id),
        "web_client_secret": SecretStr(server.oauth.client_secret), "web_session_secret": SecretStr("e2e"),
        "web_discord_url": server.base_url})
    guild = driver.guild
    assert guild is not None
    async with running(ctx, host="127.0.0.1", port=port):
        page = await browser.new_page()
        await page.goto(base + "/")
        await page.click("text=Manage your servers")
        await shot(page, "oauth-authorize", backend)
        await page.click("text=Authorize as Alice")
        await page.wait_for_url(base + "/dashboard")
        await page.click("text=Guildkeep Sandbox")
        await page.wait_for_url(f"{base}/dashboard/{guild.id}")
        await page.fill("#xp_rate", "12")
        await page.click("#save-config")
        assert "The XP rate must be between 0 and 10." in await page.inner_text("#error")
        await page.fill("#xp_rate", "2.5")
        await page.click("#save-config")
        await page.wait_for_selector("#saved")
        assert await page.input_value("#xp_rate") == "2.5"
        await shot(page, "dashboard-saved", backend)
    reply = await driver.slash("levels config", as_="alice")
    assert "rate ×2.5" in reply.text


async def test_the_collection_leaderboard_and_auctions(db: Database, ctx: WebContext, browser: Browser,
                                                       backend: str) -> None:
    gacha = ctx.gacha
    assert gacha is not None
    await seed_levels(db, GUILD, [], guild_name="Cozy Corner")
    for uid, name in ((21, "Aria Moon"), (22, "bram"), (23, "Cleo")):
        await gacha.start(GUILD, uid, username=name)
    await gacha.grant(GUILD, 99, 22, amount=5000, currency=None, reason="test")
    await gacha.summon(GUILD, 22, 10)
    copies = [e for e in (await gacha.inventory(GUILD, 22)).items if not e.is_active][:3]
    for i, copy in enumerate(copies):
        await gacha.list_for_sale(GUILD, 22, copy.copy_id, 100 * (i + 1))
    async with running(ctx, host="127.0.0.1", port=0) as (_server, port):
        page = await browser.new_page()
        await page.goto(f"http://127.0.0.1:{port}/guilds/{GUILD}/gacha?by=currency")
        assert await page.locator("table.list tbody tr").count() == 3
        assert "bram" in await page.locator("table.list tbody tr").nth(0).inner_text()
        await shot(page, "gacha", backend)
        await page.click("text=Auctions")
        await page.wait_for_url(f"**/guilds/{GUILD}/auctions")
        rows = page.locator("table.list tbody tr")
        assert await rows.count() == 3
        assert copies[0].name in await page.inner_text("table.list")
        await page.set_viewport_size(PHONE)
        assert await page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
        await shot(page, "auctions-phone", backend)
