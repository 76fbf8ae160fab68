"""The gateway: HELLO, IDENTIFY, heartbeats, READY and GUILD_CREATE, RESUME, and event dispatch by shard.

Frames are plain-text JSON (discord.py only decompresses binary frames). Each IDENTIFY opens a
session that keeps every event it was sent, so a RESUME after a dropped connection replays what the
client missed; an unknown session is told to re-identify (op 9, not resumable).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import logging
import secrets
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiohttp import WSMsgType, web

if TYPE_CHECKING:
    from guildkeep.sandbox.server import SandboxServer
    from guildkeep.sandbox.state import World

log = logging.getLogger(__name__)

HEARTBEAT_INTERVAL_MS = 41_250
PAYLOAD_MAX_BYTES = 4096  # a larger frame from the client closes the connection with 4002
SEND_LIMIT = 120  # frames a client may send ...
SEND_WINDOW = 60.0  # ... per this many seconds on one connection, else 4008
# Intent bits Discord defines (0-16, 20, 21, 24, 25); any other bit, or a negative value, closes with 4013.
DEFINED_INTENTS = sum(1 << bit for bit in (*range(17), 20, 21, 24, 25))


class Op:
    DISPATCH = 0
    HEARTBEAT = 1
    IDENTIFY = 2
    PRESENCE = 3
    VOICE_STATE = 4
    RESUME = 6
    RECONNECT = 7
    REQUEST_MEMBERS = 8
    INVALID_SESSION = 9
    HELLO = 10
    HEARTBEAT_ACK = 11


class Intent:
    GUILDS = 1 << 0
    GUILD_MEMBERS = 1 << 1
    GUILD_VOICE_STATES = 1 << 7
    GUILD_MESSAGES = 1 << 9
    GUILD_MESSAGE_REACTIONS = 1 << 10
    DIRECT_MESSAGES = 1 << 12
    DIRECT_MESSAGE_REACTIONS = 1 << 13
    MESSAGE_CONTENT = 1 << 15


# event name -> intent needed in a guild, and in a DM
EVENT_INTENTS: dict[str, tuple[int, int]] = {
    "MESSAGE_CREATE": (Intent.GUILD_MESSAGES, Intent.DIRECT_MESSAGES),
    "MESSAGE_UPDATE": (Intent.GUILD_MESSAGES, Intent.DIRECT_MESSAGES),
    "MESSAGE_DELETE": (Intent.GUILD_MESSAGES, Intent.DIRECT_MESSAGES),
    "MESSAGE_REACTION_ADD": (Intent.GUILD_MESSAGE_REACTIONS, Intent.DIRECT_MESSAGE_REACTIONS),
    "MESSAGE_REACTION_REMOVE": (Intent.GUILD_MESSAGE_REACTIONS, Intent.DIRECT_MESSAGE_REACTIONS),
    "GUILD_MEMBER_ADD": (Intent.GUILD_MEMBERS, 0),
    "GUILD_MEMBER_REMOVE": (Intent.GUILD_MEMBERS, 0),
    "GUILD_MEMBER_UPDATE": (Intent.GUILD_MEMBERS, 0),
    "VOICE_STATE_UPDATE": (Intent.GUILD_VOICE_STATES, 0),
    "GUILD_ROLE_CREATE": (Intent.GUILDS, 0),
    "GUILD_ROLE_UPDATE": (Intent.GUILDS, 0),
    "GUILD_ROLE_DELETE": (Intent.GUILDS, 0),
    "CHANNEL_CREATE": (Intent.GUILDS, 0),
    "CHANNEL_UPDATE": (Intent.GUILDS, 0),
    "THREAD_CREATE": (Intent.GUILDS, 0),
    "GUILD_CREATE": (Intent.GUILDS, 0),
}


def shard_for(guild_id: int, shard_count: int) -> int:
    """Discord's routing formula."""
    return (guild_id >> 22) % shard_count


class GatewayClose(Exception):
    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


@dataclass
class Session:
    id: str
    shard_id: int
    shard_count: int
    intents: int
    seq: int = 0
    sent: list[dict[str, Any]] = field(default_factory=list)
    ws: web.WebSocketResponse | None = None
    identified_count: int = 1
    resumed_count: int = 0

    def wants(self, event: str, guild_id: int | None) -> bool:
        if guild_id is not None and shard_for(guild_id, self.shard_count) != self.shard_id:
            return False
        if guild_id is None and self.shard_id != 0:
            return False
        needed = EVENT_INTENTS.get(event)
        if needed is None:
            return True
        intent = needed[0] if guild_id is not None else needed[1]
        return intent == 0 or bool(self.intents & intent)


class Gateway:
    """Sessions and their websockets, for one sandbox server."""

    def __init__(self, server: SandboxServer) -> None:
        self.server = server
        self.sessions: dict[str, Session] = {}
        self.sockets: set[web.WebSocketResponse] = set()
        self.shard_count = 1
        self.connections = 0  # websocket connections accepted, ever
        self.heartbeats = 0  # heartbeats received, ever
        # Heartbeats: a connection that sends none for heartbeat_interval + heartbeat_grace is closed (4009);
        # tests shrink both. The send limit is Discord's 120 frames per 60 s.
        self.heartbeat_interval_ms = HEARTBEAT_INTERVAL_MS
        self.heartbeat_grace = 10.0
        self.send_limit = SEND_LIMIT
        self.send_window = SEND_WINDOW

    @property
    def world(self) -> World:
        return self.server.world

    # -- websocket ----------------------------------------------------------------------------

    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(max_msg_size=0)
        await ws.prepare(request)
        self.sockets.add(ws)
        self.connections += 1
        session: Session | None = None
        sent: collections.deque[float] = collections.deque()
        beat = {"last": time.monotonic()}
        watchdog = asyncio.create_task(self._watch_heartbeats(ws, beat), name="sandbox-gateway-heartbeat-watchdog")
        try:
            await self._send(ws, {"op": Op.HELLO, "d": {"heartbeat_interval": self.heartbeat_interval_ms}})
            async for msg in ws:
                if msg.type not in (WSMsgType.TEXT, WSMsgType.BINARY):
                    continue
                self._rate_limit(sent)
                frame = self._decode(msg.data)
                if frame.get("op") == Op.HEARTBEAT:
                    beat["last"] = time.monotonic()
                    self.heartbeats += 1
                session = await self._on_frame(ws, frame, session)
        except GatewayClose as exc:
            await ws.close(code=exc.code, message=exc.reason.encode())
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            watchdog.cancel()
            self.sockets.discard(ws)
            if session is not None and session.ws is ws:
                session.ws = None
        return ws

    def _rate_limit(self, sent: collections.deque[float]) -> None:
        moment = time.monotonic()
        sent.append(moment)
        while sent and sent[0] <= moment - self.send_window:
            sent.popleft()
        if len(sent) > self.send_limit:
            raise GatewayClose(4008, "Rate limited.")

    @staticmethod
    def _decode(data: str | bytes) -> dict[str, Any]:
        raw = data.encode() if isinstance(data, str) else data
        if len(raw) > PAYLOAD_MAX_BYTES:
            raise GatewayClose(4002, "Error while decoding payload.")
        try:
            frame = json.loads(raw)
        except ValueError:
            raise GatewayClose(4002, "Error while decoding payload.") from None
        if not isinstance(frame, dict):
            raise GatewayClose(4002, "Error while decoding payload.")
        return frame

    async def _watch_heartbeats(self, ws: web.WebSocketResponse, beat: dict[str, float]) -> None:
        """Close a connection whose client stopped heartbeating (a zombie); its session may still RESUME."""
        while not ws.closed:
            allowed = self.heartbeat_interval_ms / 1000 + self.heartbeat_grace
            left = beat["last"] + allowed - time.monotonic()
            if left <= 0:
                log.debug("sandbox gateway: no heartbeat for %.1fs, closing", allowed)
                with contextlib.suppress(ConnectionResetError, RuntimeError):
                    await ws.close(code=4009, message=b"Session timed out.")
                return
            await asyncio.sleep(left)

    async def _on_frame(
        self, ws: web.WebSocketResponse, frame: dict[str, Any], session: Session | None
    ) -> Session | None:
        op = frame.get("op")
        data = frame.get("d")
        if op == Op.HEARTBEAT:
            await self._send(ws, {"op": Op.HEARTBEAT_ACK})
            return session
        if op == Op.IDENTIFY:
            if session is not None:
                raise GatewayClose(4005, "Already authenticated.")
            return await self._identify(ws, data or {})
        if op == Op.RESUME:
            return await self._resume(ws, data or {})
        if session is None:
            raise GatewayClose(4003, "Not authenticated.")
        if op == Op.REQUEST_MEMBERS:
            await self._members_chunk(session, data or {})
        elif op in (Op.PRESENCE, Op.VOICE_STATE):
            pass
        else:
            raise GatewayClose(4001, "Unknown opcode.")
        return session

    async def _identify(self, ws: web.WebSocketResponse, data: dict[str, Any]) -> Session:
        if data.get("token") != self.server.bot_token:
            raise GatewayClose(4004, "Authentication failed.")
        shard_id, shard_count = data.get("shard") or [0, 1]
        if not (0 <= shard_id < shard_count):
            raise GatewayClose(4010, "Invalid shard.")
        intents = data.get("intents", 0)
        if isinstance(intents, bool) or not isinstance(intents, int) or intents < 0 or intents & ~DEFINED_INTENTS:
            raise GatewayClose(4013, "Invalid intent(s).")
        if intents & ~self.server.allowed_intents:
            raise GatewayClose(4014, "Disallowed intent(s).")
        session = Session(secrets.token_hex(16), shard_id, shard_count, intents, ws=ws)
        self.sessions[session.id] = session
        bot = self.server.bot_user
        guilds = [g for g in self.world.guilds.values() if shard_for(g.id, shard_count) == shard_id]
        ready = {
            "v": 10,
            "user": {**bot.payload(), "verified": True, "mfa_enabled": False, "email": None},
            "guilds": [{"id": str(g.id), "unavailable": True} for g in guilds],
            "session_id": session.id,
            "session_type": "normal",
            "resume_gateway_url": self.server.gateway_url,
            "shard": [shard_id, shard_count],
            "application": {"id": str(self.server.application_id), "flags": 0},
            "private_channels": [],
            "relationships": [],
            "presences": [],
            "guild_join_requests": [],
            "geo_ordered_rtc_regions": [],
            "user_settings": {},
        }
        await self._dispatch_to(session, "READY", ready)
        for guild in guilds:
            await self._dispatch_to(session, "GUILD_CREATE", guild.payload())
        self.world.changed()
        return session

    async def _resume(self, ws: web.WebSocketResponse, data: dict[str, Any]) -> Session | None:
        if data.get("token") != self.server.bot_token:
            raise GatewayClose(4004, "Authentication failed.")
        session = self.sessions.get(data.get("session_id", ""))
        if session is None:
            await self._send(ws, {"op": Op.INVALID_SESSION, "d": False})
            return None
        session.ws = ws
        session.resumed_count += 1
        last = int(data.get("seq") or 0)
        for frame in session.sent:
            if frame["s"] > last:
                await self._send(ws, frame)
        await self._dispatch_to(session, "RESUMED", {})
        self.world.changed()
        return session

    async def _members_chunk(self, session: Session, data: dict[str, Any]) -> None:
        guild = self.world.guilds.get(int(data.get("guild_id", 0)))
        if guild is None:
            return
        payload = {
            "guild_id": str(guild.id),
            "members": [m.payload() for m in guild.members.values()],
            "chunk_index": 0,
            "chunk_count": 1,
            "not_found": [],
            "presences": [],
            "nonce": data.get("nonce"),
        }
        await self._dispatch_to(session, "GUILD_MEMBERS_CHUNK", payload)

    # -- sending ------------------------------------------------------------------------------

    async def _send(self, ws: web.WebSocketResponse, frame: dict[str, Any]) -> None:
        if ws.closed:
            return
        with contextlib.suppress(ConnectionResetError, RuntimeError):
            await ws.send_str(json.dumps(frame))

    async def _dispatch_to(self, session: Session, event: str, data: dict[str, Any]) -> None:
        session.seq += 1
        frame = {"op": Op.DISPATCH, "t": event, "s": session.seq, "d": data}
        session.sent.append(frame)
        if session.ws is not None:
            await self._send(session.ws, frame)

    async def dispatch(self, event: str, data: dict[str, Any], guild_id: int | None) -> None:
        """Send an event to every session of the shard that owns ``guild_id`` (and has the intent)."""
        for session in list(self.sessions.values()):
            if session.wants(event, guild_id):
                payload = data
                if event.startswith("MESSAGE_") and "content" in data and not session.intents & Intent.MESSAGE_CONTENT:
                    payload = {**data, "content": "", "embeds": [], "attachments": [], "components": []}
                await self._dispatch_to(session, event, payload)

    async def drop(self, *, code: int = 4000, reason: str = "Sandbox dropped the connection.") -> int:
        """Close every live gateway connection (sessions survive, so clients may RESUME)."""
        sockets = list(self.sockets)
        for ws in sockets:
            with contextlib.suppress(ConnectionResetError, RuntimeError):
                await ws.close(code=code, message=reason.encode())
        return len(sockets)

    async def request_reconnect(self) -> int:
        """Send op 7 RECONNECT to every live connection; clients resume at once."""
        sockets = list(self.sockets)
        for ws in sockets:
            await self._send(ws, {"op": Op.RECONNECT, "d": None})
        return len(sockets)

    async def close(self) -> None:
        await self.drop(code=1001, reason="Sandbox shutting down.")
