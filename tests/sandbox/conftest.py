from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from guildkeep.sandbox.demo import build_demo_guild
from guildkeep.sandbox.driver import Driver
from guildkeep.sandbox.server import SandboxServer


class Api:
    """A bare HTTP client acting as the bot (no discord.py), for checking the server's answers."""

    def __init__(self, server: SandboxServer, session: aiohttp.ClientSession) -> None:
        self.server = server
        self.session = session

    async def call(self, method: str, path: str, body: Any = None, *, auth: bool = True,
                   **kw: Any) -> tuple[int, Any]:
        headers = {"Authorization": f"Bot {self.server.bot_token}"} if auth else {}
        async with self.session.request(method, self.server.api_url + path, json=body, headers=headers,
                                        **kw) as resp:
            data = await resp.json() if resp.content_type == "application/json" else None
            return resp.status, data


@pytest.fixture
async def sandbox() -> AsyncIterator[SandboxServer]:
    server = await SandboxServer().start()
    await build_demo_guild(Driver(server))
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture
def sdriver(sandbox: SandboxServer) -> Driver:
    return Driver(sandbox, guild=next(iter(sandbox.world.guilds.values())))


@pytest.fixture
async def api(sandbox: SandboxServer) -> AsyncIterator[Api]:
    async with aiohttp.ClientSession() as session:
        yield Api(sandbox, session)
