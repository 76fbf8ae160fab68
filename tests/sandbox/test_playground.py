"""The playground's commands against the real bot (tests/e2e/test_playground.py runs the CLI itself)."""

from __future__ import annotations

import io
from collections.abc import Iterator

import pytest

from guildkeep.clock import CLOCK
from guildkeep.sandbox.harness import SandboxEnv
from guildkeep.sandbox.playground import Playground, console_writer

pytestmark = pytest.mark.e2e


@pytest.fixture(autouse=True)
def real_time() -> Iterator[None]:
    yield
    CLOCK.reset()


class Session:
    def __init__(self, env: SandboxEnv) -> None:
        self.stream = io.StringIO()
        self.playground = Playground(env, console_writer(self.stream, width=100))

    async def run(self, *lines: str) -> str:
        """Run lines; return only what they printed."""
        start = len(self.stream.getvalue())
        await self.playground.run_lines(lines)
        return self.stream.getvalue()[start:]


@pytest.fixture
def session(discord_env: SandboxEnv) -> Session:
    return Session(discord_env)


async def test_clock_moves_the_bot_for_a_second_daily(session: Session) -> None:
    await session.run("/start", ":click Accept")
    first = await session.run("/daily")
    assert "Daily reward" in first
    refused = await session.run("/daily")
    assert "already claimed" in refused
    moved = await session.run(":clock +1d")
    assert "(+1d)" in moved
    second = await session.run("/daily")
    assert "Daily reward" in second
    assert "2 days" in second  # the streak went on
    shown = await session.run(":clock")
    assert "(+1d)" in shown
    back = await session.run(":clock reset")
    assert "(real time)" in back


async def test_clock_refuses_a_bad_shift(session: Session) -> None:
    out = await session.run(":clock tomorrow")
    assert "! 'tomorrow' is not a time shift" in out
    assert CLOCK.offset.total_seconds() == 0


async def test_mentions_and_times_read_as_names(session: Session, discord_env: SandboxEnv) -> None:
    d = discord_env.driver
    bob, member, general = d.member("bob"), d.role("Member"), d.channel("general")
    out = await session.run(f"hi <@{bob.user.id}> and <@&{member.id}>, see <#{general.id}> <t:4102444800:D>")
    assert "[#general] Alice: hi @Bob and @Member, see #general 1 January 2100" in out
    await session.run("/start", ":click Accept", "/daily")
    refused = await session.run("/daily")
    assert "The next one is ready in a day." in refused  # <t:…:R> from the bot, relative to the bot's clock
