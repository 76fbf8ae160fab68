"""Web fixtures: the app over httpx (same event loop as the database), seeded servers, a sandbox for OAuth2."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Iterable
from typing import Any
from urllib.parse import parse_qs, urlsplit

import aiohttp
import httpx
import pytest

from guildkeep.config import Settings, load_settings
from guildkeep.db import Database
from guildkeep.db.dialect import insert_for
from guildkeep.gacha.config import load_config
from guildkeep.gacha.service import GachaService
from guildkeep.identity.models import Guild, User
from guildkeep.leveling.models import Level
from guildkeep.leveling.rules import Curve
from guildkeep.leveling.service import LevelingService
from guildkeep.sandbox.driver import Driver
from guildkeep.sandbox.server import SandboxServer
from guildkeep.web.app import WebContext, create_app

GUILD = 700_000_000_000_000_001
OTHER = 700_000_000_000_000_002
CURVE = Curve("mee6")


async def seed_levels(db: Database, guild_id: int, members: Iterable[tuple[int, str, int]],
                      guild_name: str = "Test Server") -> None:
    """Guild, users and XP rows in one go: (user id, name, xp)."""
    members = list(members)
    async with db.session() as s:
        await s.execute(insert_for(s, Guild).values(id=guild_id, name=guild_name)
                        .on_conflict_do_nothing(index_elements=["id"]))
        if members:
            await s.execute(insert_for(s, User).on_conflict_do_nothing(index_elements=["id"]),
                            [{"id": uid, "username": name} for uid, name, _xp in members])
            await s.execute(insert_for(s, Level), [
                {"guild_id": guild_id, "user_id": uid, "xp": xp, "level": CURVE.level_for_xp(xp)}
                for uid, _name, xp in members])


def web_settings(database_url: str, discord_url: str = "https://discord.com", **extra: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": database_url, "web_base_url": "http://testserver", "web_client_id": "1",
        "web_client_secret": "not-used", "web_session_secret": "test-session-secret", "web_discord_url": discord_url,
    }
    values.update(extra)
    return load_settings(**values)


@pytest.fixture
async def gacha(db: Database) -> GachaService:
    svc = GachaService(db, load_config(), rng=random.Random(20261202))
    await svc.seed_catalogue()
    return svc


@pytest.fixture
def leveling(db: Database) -> LevelingService:
    return LevelingService(db)


@pytest.fixture
def ctx(db: Database, database_url: str, leveling: LevelingService, gacha: GachaService) -> WebContext:
    return WebContext(db, web_settings(database_url), leveling, gacha)


@pytest.fixture
async def client(ctx: WebContext) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app(ctx))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


# ------------------------------------------------------------------------------------------ OAuth2


class Discord:
    """A sandbox with two servers for logins: in A, alice owns it, mod has Manage Server, bob has nothing; in B,
    only bob (its owner) is an admin."""

    def __init__(self, server: SandboxServer) -> None:
        self.server = server
        driver = Driver(server)
        self.a = driver.create_guild("Server A", owner="alice")
        self.alice = self.a.members[self.a.owner_id].user
        self.b = driver.create_guild("Server B", owner="bob-b")
        self.driver = driver

    async def populate(self) -> None:
        d = self.driver
        managers = await d.create_role("Managers", ["manage_guild"], guild=self.a)
        self.mod = (await d.add_member("mod", roles=[managers], guild=self.a)).user
        self.bob = (await d.add_member("bob", guild=self.a)).user
        bob_b = self.b.members[self.b.owner_id]
        self.b_owner = bob_b.user


@pytest.fixture
async def discord() -> AsyncIterator[Discord]:
    server = await SandboxServer().start()
    world = Discord(server)
    await world.populate()
    try:
        yield world
    finally:
        await server.stop()


@pytest.fixture
async def admin_ctx(db: Database, database_url: str, leveling: LevelingService, gacha: GachaService,
                    discord: Discord) -> WebContext:
    settings = web_settings(database_url, discord.server.base_url, web_client_id=str(discord.server.application_id),
                            web_client_secret=discord.server.oauth.client_secret)
    await seed_levels(db, discord.a.id, [(discord.alice.id, "alice", 500)], guild_name="Server A")
    await seed_levels(db, discord.b.id, [], guild_name="Server B")
    return WebContext(db, settings, leveling, gacha)


@pytest.fixture
async def admin_client(admin_ctx: WebContext) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app(admin_ctx))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


async def log_in(client: httpx.AsyncClient, discord: Discord, user_id: int) -> httpx.Response:
    """The whole authorization-code flow: /login, the sandbox's consent (as ``user_id``), /oauth/callback."""
    start = await client.get("/login")
    assert start.status_code == 303
    authorize = start.headers["location"]
    assert authorize.startswith(discord.server.base_url + "/oauth2/authorize?")
    async with aiohttp.ClientSession() as http, http.get(authorize + f"&user_id={user_id}",
                                                         allow_redirects=False) as resp:
        assert resp.status == 302, await resp.text()
        back = resp.headers["Location"]
    parts = urlsplit(back)
    assert parts.path == "/oauth/callback"
    assert parse_qs(parts.query)["state"]
    return await client.get(f"{parts.path}?{parts.query}")


def csrf_of(page: str) -> str:
    marker = 'name="csrf" value="'
    start = page.index(marker) + len(marker)
    return page[start:page.index('"', start)]
