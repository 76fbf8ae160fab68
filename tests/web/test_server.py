"""Serving the pages: beside the bot (GUILDKEEP_WEB_PORT with `guildkeep run`), on their own (`guildkeep web`)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest

from guildkeep.config import SettingsError, load_settings
from guildkeep.discord.runner import serve_web
from guildkeep.leveling.service import LevelingService
from guildkeep.testing.harness import SandboxEnv
from guildkeep.web.server import context_for_bot


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def get(url: str, *, attempts: int = 100) -> tuple[int, str]:
    """GET ``url``, retrying while nothing listens yet (at most ``attempts`` × 0.2 s)."""
    async with aiohttp.ClientSession() as http:
        for _ in range(attempts):
            try:
                async with http.get(url) as resp:
                    return resp.status, await resp.text()
            except aiohttp.ClientConnectionError:
                await asyncio.sleep(0.2)
    raise AssertionError(f"nothing answered at {url}")


@pytest.mark.e2e
async def test_the_bot_serves_the_pages_on_its_services_when_a_port_is_set(discord_env: SandboxEnv) -> None:
    bot, guild = discord_env.bot, discord_env.driver.guild
    assert guild is not None
    port = free_port()
    bot.settings = discord_env.settings.model_copy(update={"web_port": port, "web_host": "127.0.0.1"})
    alice = guild.owner_id
    await LevelingService(discord_env.db).set_xp(guild.id, alice, 1234)
    task = asyncio.create_task(serve_web(bot))
    try:
        status, page = await get(f"http://127.0.0.1:{port}/guilds/{guild.id}")
        assert status == 200
        assert "Guildkeep Sandbox" in page  # the name from the bot's own guild list
        assert f'href="/guilds/{guild.id}/members/{alice}"' in page
        # The pages use the cogs' own services: a dashboard change is what the next command reads (one cache).
        ctx = context_for_bot(bot)
        assert ctx.leveling is bot.get_cog("Leveling").service  # type: ignore[union-attr]
        assert ctx.gacha is bot.get_cog("Gacha").service  # type: ignore[union-attr]
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    with pytest.raises(AssertionError, match="nothing answered"):
        await get(f"http://127.0.0.1:{port}/", attempts=1)


def test_guildkeep_web_serves_the_pages_on_their_own(isolated_env: Path) -> None:
    port = free_port()
    env = {**os.environ, "GUILDKEEP_DATABASE_URL": f"sqlite+aiosqlite:///{isolated_env / 'web.db'}"}
    proc = subprocess.Popen([sys.executable, "-m", "guildkeep", "web", "--port", str(port)], env=env,
                            cwd=isolated_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        status, page = asyncio.run(get(f"http://127.0.0.1:{port}/"))
        assert status == 200
        assert "guildkeep" in page
        status, _ = asyncio.run(get(f"http://127.0.0.1:{port}/guilds/1"))
        assert status == 404
        assert asyncio.run(get(f"http://127.0.0.1:{port}/login"))[0] == 404  # no OAuth2 client: no dashboard
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=20)
    assert b"Traceback" not in out, out.decode(errors="replace")


@pytest.mark.parametrize("name", ["web_base_url", "web_discord_url"])
def test_web_addresses_must_be_http(name: str, isolated_env: Path) -> None:
    with pytest.raises(SettingsError, match=f"GUILDKEEP_{name.upper()}"):
        load_settings(**{name: "bot.example.org"})
    assert getattr(load_settings(**{name: "https://bot.example.org/"}), name) == "https://bot.example.org"
