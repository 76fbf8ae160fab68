"""Start the sandbox, a demo server and the real bot connected to it, in this process; stop them cleanly."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field

from guildkeep.config import Settings
from guildkeep.db import Database
from guildkeep.sandbox.driver import Driver
from guildkeep.sandbox.server import SandboxServer
from guildkeep.sandbox.state import ChannelType, Guild, Perm

log = logging.getLogger(__name__)

READY_TIMEOUT = 30.0


@dataclass
class DemoGuild:
    """The demo server every e2e test and the playground start with."""

    guild: Guild
    names: dict[str, int] = field(default_factory=dict)


async def build_demo_guild(driver: Driver) -> DemoGuild:
    """Channels general, bot-commands (text), Lounge (voice) and a thread in general; roles Admin
    (administrator), Moderator, Member; members alice (owner, Admin), bob and carol (Member); the bot's
    own role sits above Moderator and Member so it can manage them."""
    guild = driver.create_guild("Guildkeep Sandbox", owner="alice")
    alice = guild.members[guild.owner_id]
    alice.user.global_name = "Alice"
    member = await driver.create_role("Member", ["view_channel", "send_messages", "read_message_history"],
                                      color=0x2ECC71)
    moderator = await driver.create_role("Moderator", ["manage_messages", "kick_members", "manage_nicknames"],
                                         color=0x3498DB)
    bot_role = next(r for r in guild.roles.values() if r.managed)
    bot_role.position = moderator.position + 1
    admin = await driver.create_role("Admin", ["administrator"], color=0xE74C3C)
    admin.position = bot_role.position + 1
    alice.roles.append(admin.id)
    await driver.add_member("bob", roles=[member], global_name="Bob")
    await driver.add_member("carol", roles=[member], global_name="Carol")
    category = await driver.create_channel("Text Channels", kind=ChannelType.CATEGORY)
    await driver.create_channel("general", parent=category, topic="Chat about anything")
    await driver.create_channel("bot-commands", parent=category, topic="Talk to the bot here")
    await driver.create_channel("Lounge", kind=ChannelType.VOICE)
    await driver.create_thread("general", "welcome-thread", owner="alice")
    return DemoGuild(guild, {"admin": admin.id, "moderator": moderator.id, "member": member.id})


class SandboxEnv:
    """A running sandbox with the real bot connected: ``env.driver`` acts, ``env.bot`` is the bot."""

    def __init__(self, server: SandboxServer, driver: Driver, settings: Settings, db: Database) -> None:
        self.server = server
        self.driver = driver
        self.settings = settings
        self.db = db
        self.bot = None  # type: ignore[assignment]  # set by start(): a GuildkeepBot
        self.demo: DemoGuild | None = None
        self._task: asyncio.Task[None] | None = None
        self._stack = contextlib.ExitStack()
        self._own_db = False

    @classmethod
    async def start(
        cls,
        db: Database,
        settings: Settings,
        *,
        demo: bool = True,
        extensions: Iterable[str] | None = None,
        extra_extensions: Iterable[str] = (),
        ready_timeout: float = READY_TIMEOUT,
        own_db: bool = False,
    ) -> SandboxEnv:
        server = await SandboxServer().start()
        env = cls(server, Driver(server), settings, db)
        env._own_db = own_db
        try:
            if demo:
                env.demo = await build_demo_guild(env.driver)
            await env._start_bot(extensions, extra_extensions, ready_timeout)
        except BaseException:
            await env.stop()
            raise
        return env

    async def _start_bot(self, extensions: Iterable[str] | None, extra: Iterable[str], timeout: float) -> None:
        from guildkeep.discord.bot import GuildkeepBot
        from guildkeep.discord.endpoints import pointed_at

        self._stack.enter_context(pointed_at(self.server.api_url, self.server.gateway_url))
        bot = GuildkeepBot(self.settings, self.db, sandbox=True, extensions=extensions, extra_extensions=extra)
        self.bot = bot
        await bot.login(self.server.bot_token)
        self._task = asyncio.create_task(bot.connect(reconnect=True), name="guildkeep-sandbox-bot")
        ready = asyncio.create_task(bot.wait_until_ready(), name="guildkeep-sandbox-ready")
        done, _pending = await asyncio.wait({self._task, ready}, timeout=timeout,
                                            return_when=asyncio.FIRST_COMPLETED)
        if ready not in done:
            ready.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await ready
            if self._task in done and self._task.exception() is not None:
                raise RuntimeError("the bot stopped before it was ready") from self._task.exception()
            raise TimeoutError(f"the bot was not ready within {timeout:.0f}s")

    async def wait_ready(self, timeout: float = READY_TIMEOUT) -> None:
        """After a drop: wait until the bot is connected again (resumed or re-identified)."""
        bot = self.bot
        await self.driver.wait_for(lambda: bot.is_ready() and bot.ws is not None and bot.ws.open,
                                   "the bot to reconnect", timeout)

    async def stop(self) -> None:
        if self.bot is not None:
            with contextlib.suppress(Exception):
                await self.bot.close()
        if self._task is not None:
            with contextlib.suppress(BaseException):
                await self._task
            self._task = None
        await self.server.stop()
        self._stack.close()
        if self._own_db:
            await self.db.dispose()

    async def __aenter__(self) -> SandboxEnv:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


__all__ = ["DemoGuild", "Perm", "SandboxEnv", "build_demo_guild"]
