"""Discord's rate limits in the sandbox: 429 answers with their headers, and the real bot riding them out."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest

import discord
from guildkeep.sandbox.driver import Driver
from guildkeep.sandbox.limits import RateLimits
from guildkeep.sandbox.server import SandboxServer
from guildkeep.testing.harness import SandboxEnv

RATE_LIMIT_HEADERS = {"X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset", "X-RateLimit-Reset-After",
                      "X-RateLimit-Bucket"}


async def post(session: aiohttp.ClientSession, server: SandboxServer, path: str, body: dict,
               token: str | None = "bot") -> tuple[int, dict, dict[str, str]]:
    headers = {"Authorization": f"Bot {server.bot_token}"} if token == "bot" else {}
    async with session.post(server.api_url + path, json=body, headers=headers) as resp:
        return resp.status, await resp.json() if resp.content_type == "application/json" else {}, dict(resp.headers)


async def test_route_bucket_answers_429_with_discords_headers(sandbox: SandboxServer, sdriver: Driver) -> None:
    general, other = sdriver.channel("general").id, sdriver.channel("bot-commands").id
    async with aiohttp.ClientSession() as session:
        answers = [await post(session, sandbox, f"/channels/{general}/messages", {"content": str(i)})
                   for i in range(6)]
        for i, (status, _body, headers) in enumerate(answers[:5]):
            assert status == 200
            assert set(headers) >= RATE_LIMIT_HEADERS
            assert (headers["X-RateLimit-Limit"], headers["X-RateLimit-Remaining"]) == ("5", str(4 - i))
            assert 0 < float(headers["X-RateLimit-Reset-After"]) <= 5
            assert "X-RateLimit-Scope" not in headers  # only on 429s
        status, body, headers = answers[5]
        assert status == 429
        assert body["message"] == "You are being rate limited."
        assert body["global"] is False
        assert 0 < body["retry_after"] <= 5
        assert headers["Retry-After"] == str(int(-(-body["retry_after"] // 1)))
        assert (headers["X-RateLimit-Scope"], headers["X-RateLimit-Remaining"]) == ("user", "0")
        assert headers["X-RateLimit-Bucket"] == answers[0][2]["X-RateLimit-Bucket"]
        assert "X-RateLimit-Global" not in headers
        assert [m.content for m in sdriver.read("general", as_="bob")] == ["0", "1", "2", "3", "4"]
        # Another channel is another bucket (the channel id is the top-level resource).
        status, _body, headers = await post(session, sandbox, f"/channels/{other}/messages", {"content": "x"})
        assert (status, headers["X-RateLimit-Remaining"]) == (200, "4")
        sandbox.clock.advance(5)  # the window is over: the bucket is full again
        status, _body, headers = await post(session, sandbox, f"/channels/{general}/messages", {"content": "later"})
        assert (status, headers["X-RateLimit-Remaining"]) == (200, "4")


async def test_global_limit_answers_429_global(sandbox: SandboxServer, sdriver: Driver) -> None:
    sandbox.rate_limits = RateLimits(global_limit=(50, 1.0), clock=sandbox.clock)
    channels = [sdriver.channel("general").id, sdriver.channel("bot-commands").id]
    async with aiohttp.ClientSession() as session:
        for i in range(50):
            async with session.get(f"{sandbox.api_url}/channels/{channels[i % 2]}",
                                   headers={"Authorization": f"Bot {sandbox.bot_token}"}) as resp:
                assert resp.status == 200
        status, body, headers = await post(session, sandbox, f"/channels/{channels[0]}/messages", {"content": "x"})
        assert (status, body["global"], body["message"]) == (429, True, "You are being rate limited.")
        assert (headers["X-RateLimit-Global"], headers["X-RateLimit-Scope"]) == ("true", "global")
        assert int(headers["Retry-After"]) >= 1
        # Interaction callbacks are not bound by the global limit (an unknown one is still answered 10062).
        async with session.post(f"{sandbox.api_url}/interactions/1/none/callback", json={"type": 4}) as resp:
            assert (resp.status, (await resp.json())["code"]) == (404, 10062)


@pytest.mark.e2e
async def test_the_real_bot_survives_a_burst_without_losing_a_message(discord_env: SandboxEnv) -> None:
    """100 messages to one channel at once through the bot's own HTTP client: it must wait out every bucket and
    every 429 and deliver them all. Windows are shortened (5 per 0.1 s per channel, 20 per second in all) so the
    burst takes seconds; with Discord's own sizes it would take minutes."""
    server, d = discord_env.server, discord_env.driver
    server.rate_limits = RateLimits(routes={"message-create": (5, 0.1)}, global_limit=(20, 1.0))
    general = d.channel("general")
    channel = discord_env.bot.get_channel(general.id)
    assert isinstance(channel, discord.TextChannel)
    mark = len(server.requests)
    sent = await asyncio.gather(*(channel.send(f"burst {i}") for i in range(100)))
    assert len({m.id for m in sent}) == 100
    arrived = [m.content for m in server.world.channel_messages(general.id)
               if m.author.id == server.bot_user.id and m.content.startswith("burst ")]
    assert sorted(arrived) == sorted(f"burst {i}" for i in range(100))
    answers = [r for r in server.requests[mark:] if r.route == "/channels/{channel_id}/messages"]
    limited = [r for r in answers if r.status == 429]
    assert limited, "the burst should have met Discord's limits"
    assert len(answers) == 100 + len(limited)
    assert all(r.response["retry_after"] > 0 for r in limited)
