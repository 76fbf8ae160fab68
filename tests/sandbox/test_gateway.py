"""The gateway as a bare websocket client sees it: identify, shard routing, intents, resume."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from guildkeep.sandbox.driver import Driver
from guildkeep.sandbox.gateway import Intent, shard_for
from guildkeep.sandbox.server import SandboxServer
from guildkeep.testing.harness import SandboxEnv

ALL_INTENTS = Intent.GUILDS | Intent.GUILD_MESSAGES | Intent.MESSAGE_CONTENT | Intent.GUILD_MEMBERS


class Client:
    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws

    async def recv(self) -> dict[str, Any]:
        msg = await self.ws.receive(timeout=5)
        assert msg.type == aiohttp.WSMsgType.TEXT, msg
        return json.loads(msg.data)

    async def send(self, op: int, d: Any) -> None:
        await self.ws.send_str(json.dumps({"op": op, "d": d}))

    async def until(self, event: str) -> dict[str, Any]:
        while True:
            frame = await self.recv()
            if frame.get("t") == event:
                return frame

    async def until_op(self, op: int) -> dict[str, Any]:
        while True:
            frame = await self.recv()
            if frame.get("op") == op:
                return frame


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def connect(server: SandboxServer, http: aiohttp.ClientSession) -> Client:
    client = Client(await http.ws_connect(server.gateway_url + "?v=10&encoding=json"))
    hello = await client.recv()
    assert hello["op"] == 10
    assert hello["d"]["heartbeat_interval"] > 0
    return client


async def identify(server: SandboxServer, http: aiohttp.ClientSession, shard: list[int] | None = None,
                   intents: int = ALL_INTENTS) -> tuple[Client, dict[str, Any]]:
    client = await connect(server, http)
    d: dict[str, Any] = {"token": server.bot_token, "intents": intents, "properties": {}}
    if shard:
        d["shard"] = shard
    await client.send(2, d)
    ready = await client.until("READY")
    return client, ready


async def test_identify_ready_and_guild_create(sandbox: SandboxServer, http: aiohttp.ClientSession) -> None:
    client, ready = await identify(sandbox, http)
    guild = next(iter(sandbox.world.guilds.values()))
    assert ready["d"]["guilds"] == [{"id": str(guild.id), "unavailable": True}]
    assert ready["d"]["resume_gateway_url"] == sandbox.gateway_url
    created = await client.until("GUILD_CREATE")
    data = created["d"]
    assert {c["name"] for c in data["channels"]} >= {"general", "bot-commands", "Lounge"}
    assert [t["name"] for t in data["threads"]] == ["welcome-thread"]
    assert data["member_count"] == len(data["members"]) == 4
    assert {r["name"] for r in data["roles"]} >= {"@everyone", "Admin", "Moderator", "Member", "guildkeep"}
    await client.send(1, 2)
    assert (await client.recv())["op"] == 11


async def test_bad_token_closes_with_4004(sandbox: SandboxServer, http: aiohttp.ClientSession) -> None:
    client = await connect(sandbox, http)
    await client.send(2, {"token": "nope", "intents": 0, "properties": {}})
    msg = await client.ws.receive(timeout=5)
    assert msg.type == aiohttp.WSMsgType.CLOSE
    assert client.ws.close_code == 4004


async def test_gateway_bot_and_shard_routing(sandbox: SandboxServer, http: aiohttp.ClientSession) -> None:
    driver = Driver(sandbox)
    base = next(iter(sandbox.world.guilds))
    guilds = [driver.create_guild(f"g{i}", guild_id=base + (i << 22) + 1) for i in range(4)]
    sandbox.gateway.shard_count = 2
    async with http.get(sandbox.api_url + "/gateway/bot",
                        headers={"Authorization": f"Bot {sandbox.bot_token}"}) as resp:
        info = await resp.json()
    assert (info["url"], info["shards"]) == (sandbox.gateway_url, 2)
    shard0, ready0 = await identify(sandbox, http, [0, 2])
    shard1, ready1 = await identify(sandbox, http, [1, 2])
    all_guilds = [*sandbox.world.guilds.values()]
    for shard_id, ready in ((0, ready0), (1, ready1)):
        expected = {str(g.id) for g in all_guilds if (g.id >> 22) % 2 == shard_id}
        assert {g["id"] for g in ready["d"]["guilds"]} == expected
    assert ready0["d"]["shard"] == [0, 2]
    on1 = next(g for g in guilds if shard_for(g.id, 2) == 1)
    general = await driver.create_channel("chat", guild=on1)
    driver.guild = on1
    member = await driver.add_member("zed")
    await driver.send(general, "routed", as_=member)
    message = await shard1.until("MESSAGE_CREATE")
    assert message["d"]["content"] == "routed"
    assert all(f["d"].get("content") != "routed" for f in sandbox.gateway.sessions[ready0["d"]["session_id"]].sent)
    await shard0.ws.close()


async def test_intents_filter_events_and_content(sandbox: SandboxServer, http: aiohttp.ClientSession,
                                                 sdriver: Driver) -> None:
    client, ready = await identify(sandbox, http, intents=Intent.GUILDS | Intent.GUILD_MESSAGES)
    await sdriver.add_member("dave")
    await sdriver.send("general", "secret words", as_="bob")
    message = await client.until("MESSAGE_CREATE")
    assert message["d"]["content"] == ""
    session = sandbox.gateway.sessions[ready["d"]["session_id"]]
    assert not any(f["t"] == "GUILD_MEMBER_ADD" for f in session.sent)


async def test_resume_replays_missed_events(sandbox: SandboxServer, http: aiohttp.ClientSession,
                                            sdriver: Driver) -> None:
    client, ready = await identify(sandbox, http)
    await client.until("GUILD_CREATE")
    seq = sandbox.gateway.sessions[ready["d"]["session_id"]].seq
    await client.ws.close()
    await sdriver.send("general", "while you were away", as_="bob")
    again = await connect(sandbox, http)
    await again.send(6, {"token": sandbox.bot_token, "session_id": ready["d"]["session_id"], "seq": seq})
    missed = await again.recv()
    assert (missed["t"], missed["d"]["content"], missed["s"]) == ("MESSAGE_CREATE", "while you were away", seq + 1)
    assert (await again.recv())["t"] == "RESUMED"


async def test_unknown_session_must_identify_again(sandbox: SandboxServer, http: aiohttp.ClientSession) -> None:
    client = await connect(sandbox, http)
    await client.send(6, {"token": sandbox.bot_token, "session_id": "gone", "seq": 3})
    assert await client.recv() == {"op": 9, "d": False}


async def closed_with(client: Client) -> tuple[int | None, str]:
    while True:
        msg = await client.ws.receive(timeout=5)
        if msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSING):
            return client.ws.close_code, str(msg.extra or "")


async def test_invalid_json_closes_with_4002(sandbox: SandboxServer, http: aiohttp.ClientSession) -> None:
    client = await connect(sandbox, http)
    await client.ws.send_str('{"op": 1, "d": ')
    assert await closed_with(client) == (4002, "Error while decoding payload.")


async def test_a_payload_over_4096_bytes_closes_with_4002(sandbox: SandboxServer,
                                                          http: aiohttp.ClientSession) -> None:
    client, _ready = await identify(sandbox, http)
    frame = {"op": 3, "d": {"since": None, "activities": [], "status": "online", "afk": False, "pad": ""}}
    frame["d"]["pad"] = "x" * (4096 - len(json.dumps(frame)))
    await client.ws.send_str(json.dumps(frame))  # exactly 4096 bytes: accepted
    await client.send(1, None)
    assert (await client.until_op(11))["op"] == 11
    frame["d"]["pad"] += "x"
    await client.ws.send_str(json.dumps(frame))
    assert (await closed_with(client))[0] == 4002


async def test_more_than_120_frames_a_minute_closes_with_4008(sandbox: SandboxServer,
                                                              http: aiohttp.ClientSession) -> None:
    client = await connect(sandbox, http)
    for _ in range(120):
        await client.send(1, None)
    for _ in range(120):
        assert (await client.recv())["op"] == 11
    await client.send(1, None)
    assert await closed_with(client) == (4008, "Rate limited.")


@pytest.mark.parametrize("intents", [-1, 1 << 17, 1 << 30, "513"])
async def test_undefined_or_negative_intents_close_with_4013(sandbox: SandboxServer, http: aiohttp.ClientSession,
                                                             intents: Any) -> None:
    client = await connect(sandbox, http)
    await client.send(2, {"token": sandbox.bot_token, "intents": intents, "properties": {}})
    assert await closed_with(client) == (4013, "Invalid intent(s).")


async def test_a_client_that_stops_heartbeating_is_disconnected(sandbox: SandboxServer,
                                                                http: aiohttp.ClientSession) -> None:
    sandbox.gateway.heartbeat_interval_ms = 300
    sandbox.gateway.heartbeat_grace = 0.2
    client, ready = await identify(sandbox, http)
    hello_interval = sandbox.gateway.heartbeat_interval_ms
    assert hello_interval == 300
    for _ in range(4):  # heartbeating in time keeps the connection open past the deadline
        await asyncio.sleep(0.2)
        await client.send(1, None)
        assert (await client.until_op(11))["op"] == 11
    code, reason = await closed_with(client)
    assert (code, reason) == (4009, "Session timed out.")
    again = await connect(sandbox, http)  # the session survives: the client may resume
    await again.send(6, {"token": sandbox.bot_token, "session_id": ready["d"]["session_id"], "seq": 0})
    assert (await again.until("RESUMED"))["t"] == "RESUMED"


@pytest.mark.e2e
async def test_the_real_bot_heartbeats_in_time_and_is_not_taken_for_a_zombie(discord_env: SandboxEnv) -> None:
    gateway = discord_env.server.gateway
    gateway.heartbeat_interval_ms, gateway.heartbeat_grace = 300, 0.3
    before = gateway.connections
    await discord_env.driver.drop_connection()  # the bot resumes, and HELLO now asks for a beat every 300 ms
    await discord_env.driver.wait_for(lambda: gateway.connections > before, "the bot to connect again")
    await discord_env.wait_ready()
    connections, start = gateway.connections, gateway.heartbeats
    await discord_env.driver.wait_for(lambda: gateway.heartbeats >= start + 6, "six heartbeats from the bot", 10)
    assert gateway.connections == connections, "the sandbox closed a healthy connection"
