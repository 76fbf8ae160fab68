"""The sandbox server: Discord API v10 REST routes and the gateway, on 127.0.0.1, in one aiohttp app.

Answers follow Discord's shapes, status codes and error codes; every request is recorded
(``server.requests``) so tests can check bodies against Discord's OpenAPI description.
"""

from __future__ import annotations

import json
import logging
import os
import re
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from guildkeep.sandbox import limits
from guildkeep.sandbox.errors import APIError, FormErrors, missing_access, missing_permissions, not_found, unknown
from guildkeep.sandbox.gateway import Gateway, Intent
from guildkeep.sandbox.oauth import SandboxOAuth
from guildkeep.sandbox.state import (
    EVERYONE_DEFAULT,
    Channel,
    ChannelType,
    Guild,
    Interaction,
    Member,
    Message,
    Overwrite,
    Perm,
    Role,
    User,
    Webhook,
    World,
    emoji_key,
    now,
    number_components,
)

log = logging.getLogger(__name__)

API_PREFIX = "/api/v10"
GATEWAY_PATH = "/gateway-ws"
SUPPRESS_EMBEDS = 1 << 2
EPHEMERAL = 1 << 6
LOADING = 1 << 7
SUPPRESS_NOTIFICATIONS = 1 << 12
IS_VOICE_MESSAGE = 1 << 13
IS_COMPONENTS_V2 = 1 << 15
# The flags a sender may set; Discord silently drops any other bit (e.g. EPHEMERAL on a channel message).
SETTABLE_FLAGS_CHANNEL = SUPPRESS_EMBEDS | SUPPRESS_NOTIFICATIONS | IS_VOICE_MESSAGE | IS_COMPONENTS_V2
SETTABLE_FLAGS_WEBHOOK = SUPPRESS_EMBEDS | SUPPRESS_NOTIFICATIONS | IS_COMPONENTS_V2
SETTABLE_FLAGS_INTERACTION = SETTABLE_FLAGS_WEBHOOK | EPHEMERAL
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class RecordedRequest:
    method: str
    path: str  # without the /api/v10 prefix
    route: str  # the route template, e.g. /channels/{channel_id}/messages
    body: Any
    status: int = 0
    response: Any = None


def _json(data: Any, status: int = 200) -> web.Response:
    # discord.py's login needs exactly "application/json" (no charset suffix).
    return web.Response(body=json.dumps(data).encode(), status=status, headers={"Content-Type": "application/json"})


def _no_content() -> web.Response:
    return web.Response(status=204)


def _snowflake(value: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise APIError(400, 50035, "Invalid Form Body",
                       {"id": {"_errors": [{"code": "NUMBER_TYPE_COERCE", "message": "Value is not snowflake."}]}},
                       ) from None


def _stored_embeds(embeds: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    """Embeds as Discord stores them: every embed a sender makes is of type "rich"."""
    return [{**embed, "type": "rich"} for embed in embeds or []]


def _invalid_response_type() -> APIError:
    return APIError(400, 50035, "Invalid Form Body", {"type": {"_errors": [
        {"code": "INTERACTION_RESPONSE_TYPE_INVALID", "message": "Invalid interaction response type"}]}})


class SandboxClock:
    """The sandbox's own sense of time (monotonic seconds) for Discord's deadlines and windows; tests move it
    forward with ``advance`` instead of sleeping (e.g. past an interaction token's 15 minutes)."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.monotonic() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += seconds


class SandboxServer:
    """One local Discord: a world, one bot application, the REST routes and the gateway."""

    def __init__(self, *, bot_name: str = "guildkeep", host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self.port = port
        self.world = World()
        self.bot_user = self.world.add_user(bot_name, bot=True)
        self.application_id = self.bot_user.id
        self.bot_token = f"sandbox.{secrets.token_urlsafe(24)}"
        self.owner_user = self.world.add_user("sandbox-owner")
        self.allowed_intents = (1 << 26) - 1
        # Discord forgets an interaction not answered within 3 s, and its token after 15 minutes.
        # A very slow machine may raise the deadline with GUILDKEEP_SANDBOX_INTERACTION_DEADLINE (seconds).
        self.interaction_deadline = float(os.environ.get("GUILDKEEP_SANDBOX_INTERACTION_DEADLINE", "3"))
        self.interaction_token_lifetime = 15 * 60.0
        self.clock = SandboxClock()
        # Discord's per-route buckets and global limit; tests may swap in tighter or looser ones.
        self.rate_limits = limits.RateLimits(clock=self.clock)
        self.gateway = Gateway(self)
        self.requests: list[RecordedRequest] = []
        self.oauth = SandboxOAuth(self)  # the application's OAuth2 side (web dashboard logins)
        self.app = web.Application(middlewares=[self._middleware], client_max_size=64 * 1024 * 1024)
        self._routes()
        self._runner: web.AppRunner | None = None

    # -- lifecycle ----------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def api_url(self) -> str:
        return self.base_url + API_PREFIX

    @property
    def gateway_url(self) -> str:
        return f"ws://{self.host}:{self.port}{GATEWAY_PATH}"

    async def start(self) -> SandboxServer:
        self._runner = web.AppRunner(self.app, handle_signals=False, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        sockets = getattr(site._server, "sockets", None)
        if not sockets:
            raise RuntimeError("the sandbox could not bind a port")
        self.port = sockets[0].getsockname()[1]
        self.world.base_url = self.base_url
        return self

    async def stop(self) -> None:
        await self.gateway.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> SandboxServer:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- plumbing -----------------------------------------------------------------------------

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        path = request.path
        if not path.startswith(API_PREFIX):
            return await handler(request)
        sub = path[len(API_PREFIX):]
        info = request.match_info.route.resource
        record = RecordedRequest(request.method, sub, info.canonical[len(API_PREFIX):] if info else "", None)
        self.requests.append(record)
        limit_headers: dict[str, str] = {}
        try:
            if info is not None:
                limit_headers = self._rate_limit(request, record.route)
            if not self._public(sub) and not self._authorized(request, sub):
                raise APIError(401, 0, "401: Unauthorized")
            response = await handler(request)
        except limits.RateLimited as exc:
            log.debug("sandbox %s %s -> 429 (retry after %.3fs)", request.method, sub, exc.retry_after)
            response = _json(exc.payload(), 429)
            limit_headers = exc.headers
        except APIError as exc:
            log.debug("sandbox %s %s -> %s", request.method, sub, exc)
            response = _json(exc.payload(), exc.status)
        except web.HTTPNotFound:
            response = _json(not_found().payload(), 404)
        except web.HTTPMethodNotAllowed:
            response = _json({"message": "405: Method Not Allowed", "code": 0}, 405)
        response.headers.update(limit_headers)
        response.headers["Via"] = "1.1 google"  # discord.py takes a 429 without it for a Cloudflare ban
        record.status = response.status
        if isinstance(response, web.Response) and response.content_type == "application/json" and response.body:
            record.response = json.loads(response.body)  # type: ignore[arg-type]
        self.world.changed()
        return response

    def _rate_limit(self, request: web.Request, route: str) -> dict[str, str]:
        """Count the request against its route bucket and the global limit (interaction callbacks, followups and
        ``@original`` edits are not bound by the global limit)."""
        params = dict(request.match_info)
        interaction = route.startswith("/interactions/") or params.get("webhook_id") == str(self.application_id)
        return self.rate_limits.hit(request.method, route, params, request.headers.get("Authorization"),
                                    interaction=interaction)

    def _authorized(self, request: web.Request, sub: str) -> bool:
        """The bot's token, or (for the routes an OAuth2 user may call) a user's Bearer access token."""
        auth = request.headers.get("Authorization")
        if auth == f"Bot {self.bot_token}":
            return True
        return sub in ("/users/@me", "/users/@me/guilds") and self.oauth.user_for(auth) is not None

    @staticmethod
    def _public(sub: str) -> bool:
        # Webhook executes and interaction callbacks authenticate with their token in the URL.
        return sub.startswith("/interactions/") or bool(re.match(r"^/webhooks/\d+/[^/]+", sub)) or sub == "/gateway"

    async def _body(self, request: web.Request) -> tuple[dict[str, Any], list[tuple[str, bytes, str | None]]]:
        """The JSON body, and the files of a multipart body as (filename, bytes, content type)."""
        files: list[tuple[str, bytes, str | None]] = []
        if request.content_type.startswith("multipart/"):
            form = await request.post()
            body = json.loads(str(form.get("payload_json") or "{}"))
            for name, value in form.items():
                if name.startswith("files[") and isinstance(value, web.FileField):
                    files.append((value.filename, value.file.read(), value.content_type))
        elif request.can_read_body:
            raw = await request.read()
            body = json.loads(raw) if raw else {}
        else:
            body = {}
        self.requests[-1].body = body
        return body, files

    def _routes(self) -> None:
        r = self.app.router
        r.add_get(GATEWAY_PATH, self.gateway.handle)
        r.add_get("/attachments/{attachment_id}/{filename}", self.get_attachment)
        self.oauth.add_routes(r)
        for method, path, handler in self.api_routes():
            r.add_route(method, API_PREFIX + path, handler)

    def api_routes(self) -> list[tuple[str, str, Handler]]:
        """Every REST route the sandbox serves: (method, path under /api/v10, handler)."""
        return [
            ("GET", "/gateway", self.get_gateway),
            ("GET", "/gateway/bot", self.get_gateway_bot),
            ("GET", "/users/@me", self.get_me),
            ("GET", "/users/@me/guilds", self.oauth.my_guilds),
            ("GET", "/users/{user_id}", self.get_user),
            ("POST", "/users/@me/channels", self.create_dm),
            ("GET", "/oauth2/applications/@me", self.get_application),
            ("GET", "/applications/@me", self.get_application),
            ("GET", "/applications/{application_id}/commands", self.get_commands),
            ("PUT", "/applications/{application_id}/commands", self.put_commands),
            ("POST", "/applications/{application_id}/commands", self.create_command),
            ("GET", "/applications/{application_id}/guilds/{guild_id}/commands", self.get_commands),
            ("PUT", "/applications/{application_id}/guilds/{guild_id}/commands", self.put_commands),
            ("POST", "/applications/{application_id}/guilds/{guild_id}/commands", self.create_command),
            ("POST", "/interactions/{interaction_id}/{token}/callback", self.interaction_callback),
            ("GET", "/guilds/{guild_id}", self.get_guild),
            ("GET", "/guilds/{guild_id}/channels", self.get_guild_channels),
            ("GET", "/guilds/{guild_id}/roles", self.get_roles),
            ("POST", "/guilds/{guild_id}/roles", self.create_role),
            ("PATCH", "/guilds/{guild_id}/roles/{role_id}", self.edit_role),
            ("DELETE", "/guilds/{guild_id}/roles/{role_id}", self.delete_role),
            ("GET", "/guilds/{guild_id}/members", self.list_members),
            ("GET", "/guilds/{guild_id}/members/{user_id}", self.get_member),
            ("PATCH", "/guilds/{guild_id}/members/{user_id}", self.edit_member),
            ("PUT", "/guilds/{guild_id}/members/{user_id}/roles/{role_id}", self.add_member_role),
            ("DELETE", "/guilds/{guild_id}/members/{user_id}/roles/{role_id}", self.remove_member_role),
            ("GET", "/guilds/{guild_id}/webhooks", self.guild_webhooks),
            ("GET", "/channels/{channel_id}", self.get_channel),
            ("POST", "/channels/{channel_id}/typing", self.typing),
            ("GET", "/channels/{channel_id}/messages", self.history),
            ("POST", "/channels/{channel_id}/messages", self.create_message),
            ("GET", "/channels/{channel_id}/messages/{message_id}", self.get_message),
            ("PATCH", "/channels/{channel_id}/messages/{message_id}", self.edit_message),
            ("DELETE", "/channels/{channel_id}/messages/{message_id}", self.delete_message),
            ("PUT", "/channels/{channel_id}/messages/{message_id}/reactions/{emoji}/@me", self.add_reaction),
            ("DELETE", "/channels/{channel_id}/messages/{message_id}/reactions/{emoji}/@me", self.remove_own_reaction),
            ("DELETE", "/channels/{channel_id}/messages/{message_id}/reactions/{emoji}/{user_id}",
             self.remove_user_reaction),
            ("GET", "/channels/{channel_id}/messages/{message_id}/reactions/{emoji}", self.get_reactions),
            ("DELETE", "/channels/{channel_id}/messages/{message_id}/reactions", self.clear_reactions),
            ("POST", "/channels/{channel_id}/threads", self.create_thread),
            ("POST", "/channels/{channel_id}/messages/{message_id}/threads", self.create_thread),
            ("GET", "/channels/{channel_id}/webhooks", self.channel_webhooks),
            ("POST", "/channels/{channel_id}/webhooks", self.create_webhook),
            ("GET", "/webhooks/{webhook_id}", self.get_webhook),
            ("PATCH", "/webhooks/{webhook_id}", self.edit_webhook),
            ("DELETE", "/webhooks/{webhook_id}", self.delete_webhook),
            ("GET", "/webhooks/{webhook_id}/{token}", self.get_webhook),
            ("PATCH", "/webhooks/{webhook_id}/{token}", self.edit_webhook),
            ("DELETE", "/webhooks/{webhook_id}/{token}", self.delete_webhook),
            ("POST", "/webhooks/{webhook_id}/{token}", self.execute_webhook),
            ("GET", "/webhooks/{webhook_id}/{token}/messages/{message_id}", self.get_webhook_message),
            ("PATCH", "/webhooks/{webhook_id}/{token}/messages/{message_id}", self.edit_webhook_message),
            ("DELETE", "/webhooks/{webhook_id}/{token}/messages/{message_id}", self.delete_webhook_message),
        ]

    # -- lookups and permission checks --------------------------------------------------------

    def guild(self, guild_id: int) -> Guild:
        guild = self.world.guilds.get(guild_id)
        if guild is None:
            raise unknown("Guild")
        return guild

    def channel(self, channel_id: int) -> Channel:
        channel = self.world.channels.get(channel_id)
        if channel is None:
            raise unknown("Channel")
        return channel

    def bot_member(self, guild: Guild) -> Member:
        member = guild.members.get(self.bot_user.id)
        if member is None:
            raise missing_access()
        return member

    def bot_permissions(self, channel: Channel) -> int:
        guild = self.world.channel_guild(channel)
        if guild is None:  # DM
            return Perm.VIEW_CHANNEL | Perm.SEND_MESSAGES | Perm.READ_MESSAGE_HISTORY | Perm.ADD_REACTIONS \
                | Perm.EMBED_LINKS | Perm.ATTACH_FILES
        return guild.permissions_in(self.bot_member(guild), channel)

    def require(self, channel: Channel, *perms: int) -> None:
        bits = self.bot_permissions(channel)
        if not bits & Perm.VIEW_CHANNEL:
            raise missing_access()
        for perm in perms:
            if not bits & perm:
                raise missing_permissions()

    def require_guild(self, guild: Guild, perm: int) -> None:
        if not guild.base_permissions(self.bot_member(guild)) & perm:
            raise missing_permissions()

    def require_above(self, guild: Guild, role: Role) -> None:
        """Role hierarchy: the bot's highest role must be above the role it manages."""
        if guild.top_position(self.bot_member(guild)) <= role.position or role.managed or role.id == guild.id:
            raise missing_permissions()

    def message_payload(self, message: Message, viewer_id: int | None = None) -> dict[str, Any]:
        guild = self.world.guilds.get(message.guild_id) if message.guild_id else None
        member = guild.members.get(message.author.id) if guild else None
        data = message.payload(viewer_id=viewer_id, member=member)
        # Interaction replies and messages of application-owned webhooks name the application.
        if message.interaction_id is not None:
            data["application_id"] = str(self.application_id)
        elif message.webhook_id is not None:
            hook = self.world.webhooks.get(message.webhook_id)
            if hook is not None and hook.application_id:
                data["application_id"] = str(hook.application_id)
        return data

    async def dispatch(self, event: str, data: dict[str, Any], guild_id: int | None) -> None:
        if event == "INTERACTION_CREATE" and (inter := self.world.interactions.get(int(data["id"]))) is not None:
            inter.created = self.clock()  # its 3 s and 15 min run on the sandbox's clock from now
        await self.gateway.dispatch(event, data, guild_id)
        self.world.changed()

    # -- messages (shared by channels, webhooks and interactions) -----------------------------

    def _attachments(self, body: dict[str, Any], files: list[tuple[str, bytes, str | None]]) -> list[Any]:
        described = {str(a.get("id")): a for a in body.get("attachments") or [] if isinstance(a, dict)}
        found = []
        for index, (filename, data, content_type) in enumerate(files):
            if len(data) > limits.ATTACHMENT_SIZE_LIMIT:
                raise APIError(413, 40005, "Request entity too large")
            meta = described.get(str(index), {})
            found.append(self.world.new_attachment(meta.get("filename") or filename, data, content_type,
                                                   meta.get("description")))
        return found

    async def post_message(
        self,
        channel: Channel,
        author: User,
        body: dict[str, Any],
        files: list[tuple[str, bytes, str | None]],
        *,
        webhook: Webhook | None = None,
        interaction: Interaction | None = None,
        message_type: int = 0,
        flags: int = 0,
        form_root: tuple[str | int, ...] = (),
    ) -> Message:
        settable = (SETTABLE_FLAGS_INTERACTION if interaction is not None
                    else SETTABLE_FLAGS_WEBHOOK if webhook is not None else SETTABLE_FLAGS_CHANNEL)
        flags |= int(body.get("flags") or 0) & settable
        limits.check_message(body, files=len(files), require_content=not flags & LOADING, webhook=webhook is not None,
                             root=form_root)
        message = Message(
            id=self.world.snowflake(),
            channel_id=channel.id,
            guild_id=channel.guild_id,
            author=author,
            content=body.get("content") or "",
            embeds=_stored_embeds(body.get("embeds")),
            components=number_components(list(body.get("components") or [])),
            attachments=self._attachments(body, files),
            type=message_type,
            flags=flags,
        )
        ref = body.get("message_reference")
        if isinstance(ref, dict) and ref.get("message_id"):
            message.reference_id = int(ref["message_id"])
        if webhook is not None:
            message.webhook_id = webhook.id
            message.webhook_name = body.get("username") or webhook.name
            message.webhook_avatar_url = body.get("avatar_url") or (
                f"{self.base_url}/avatars/{webhook.id}/{webhook.avatar}.png" if webhook.avatar else None)
        if interaction is not None:
            message.webhook_id = self.application_id
            message.interaction_id = interaction.id
            message.interaction_meta = interaction.metadata()
            if flags & EPHEMERAL:
                message.visible_to = interaction.user.id
        self.world.add_message(message)
        if not message.ephemeral:
            await self.dispatch("MESSAGE_CREATE", self.message_payload(message), channel.guild_id)
        return message

    async def apply_edit(
        self, message: Message, body: dict[str, Any], files: list[tuple[str, bytes, str | None]],
        form_root: tuple[str | int, ...] = (),
    ) -> None:
        limits.check_message(body, files=len(files), require_content=False, root=form_root)
        if "content" in body:
            message.content = body["content"] or ""
            self.world.resolve_mentions(message)
        if "embeds" in body:
            message.embeds = _stored_embeds(body["embeds"])
        if "components" in body:
            message.components = number_components(list(body["components"] or []))
        if "attachments" in body:
            keep = {str(a.get("id")) for a in body["attachments"] or [] if isinstance(a, dict)}
            message.attachments = [a for a in message.attachments if str(a.id) in keep]
        new = self._attachments({"attachments": [a for a in body.get("attachments") or []
                                                 if isinstance(a, dict) and len(str(a.get("id"))) < 3]}, files)
        message.attachments.extend(new)
        if "flags" in body and body["flags"] is not None:
            message.flags = (message.flags & (EPHEMERAL | LOADING)) | (int(body["flags"]) & ~(EPHEMERAL | LOADING))
        message.flags &= ~LOADING
        message.edited_at = now()
        if not message.ephemeral:
            await self.dispatch("MESSAGE_UPDATE", self.message_payload(message), message.guild_id)

    async def remove_message(self, message: Message) -> None:
        message.deleted = True
        if not message.ephemeral:
            data = {"id": str(message.id), "channel_id": str(message.channel_id)}
            if message.guild_id:
                data["guild_id"] = str(message.guild_id)
            await self.dispatch("MESSAGE_DELETE", data, message.guild_id)

    # -- gateway, users, application ------------------------------------------------------------

    async def get_gateway(self, _request: web.Request) -> web.Response:
        return _json({"url": self.gateway_url})

    async def get_gateway_bot(self, _request: web.Request) -> web.Response:
        return _json({
            "url": self.gateway_url,
            "shards": self.gateway.shard_count,
            "session_start_limit": {"total": 1000, "remaining": 999, "reset_after": 0, "max_concurrency": 1},
        })

    async def get_attachment(self, request: web.Request) -> web.Response:
        attachment = self.world.attachments.get(int(request.match_info["attachment_id"]))
        if attachment is None:
            raise web.HTTPNotFound
        return web.Response(body=attachment.data, content_type=attachment.content_type or "application/octet-stream")

    async def get_me(self, request: web.Request) -> web.Response:
        user = self.oauth.user_for(request.headers.get("Authorization")) or self.bot_user
        return _json({**user.payload(), "verified": True, "mfa_enabled": False, "locale": "en-US"})

    async def get_user(self, request: web.Request) -> web.Response:
        user = self.world.users.get(_snowflake(request.match_info["user_id"]))
        if user is None:
            raise unknown("User")
        return _json(user.payload())

    async def get_application(self, _request: web.Request) -> web.Response:
        return _json({
            "id": str(self.application_id),
            "name": self.bot_user.username,
            "icon": None,
            "description": "guildkeep in the sandbox",
            "summary": "",
            "type": None,
            "bot_public": True,
            "bot_require_code_grant": False,
            "verify_key": "0" * 64,
            "flags": 0,
            "owner": self.owner_user.payload(),
            "team": None,
            "bot": self.bot_user.payload(),
            "redirect_uris": [],
            "interactions_endpoint_url": None,
            "role_connections_verification_url": None,
            "flags_new": "0",
            "approximate_guild_count": len(self.world.guilds),
            "approximate_user_install_count": 0,
            "approximate_user_authorization_count": 0,
            "explicit_content_filter": 0,
            "eligible_oauth2_scopes": ["bot", "applications.commands"],
        })

    async def create_dm(self, request: web.Request) -> web.Response:
        body, _ = await self._body(request)
        user = self.world.users.get(_snowflake(str(body.get("recipient_id", "0"))))
        if user is None:
            raise unknown("User")
        for channel in self.world.channels.values():
            if channel.type == ChannelType.DM and channel.recipients and channel.recipients[0].id == user.id:
                return _json(channel.payload())
        channel = Channel(self.world.snowflake(), ChannelType.DM, None, recipients=[user])
        self.world.channels[channel.id] = channel
        return _json(channel.payload())

    # -- application commands -----------------------------------------------------------------

    def _check_app(self, request: web.Request) -> None:
        if _snowflake(request.match_info["application_id"]) != self.application_id:
            raise APIError(403, 50001, "Missing Access")

    async def get_commands(self, request: web.Request) -> web.Response:
        self._check_app(request)
        guild_id = request.match_info.get("guild_id")
        return _json([c for c in self.world.commands.values() if c.get("guild_id") == guild_id])

    def _command_payload(self, cmd: dict[str, Any], cmd_id: int, guild_id: str | None) -> dict[str, Any]:
        dmp = cmd.get("default_member_permissions")
        payload = {
            "id": str(cmd_id),
            "application_id": str(self.application_id),
            "version": str(self.world.snowflake()),
            "type": cmd.get("type", 1),
            "name": cmd["name"],
            "name_localizations": cmd.get("name_localizations"),
            "description": cmd.get("description", ""),
            "description_localizations": cmd.get("description_localizations"),
            "options": cmd.get("options") or [],
            # The spec says string: Discord answers "8", never 8.
            "default_member_permissions": None if dmp is None else str(dmp),
            "dm_permission": cmd.get("dm_permission", True),
            "nsfw": cmd.get("nsfw", False),
            "integration_types": cmd.get("integration_types") or [0],
            "contexts": cmd.get("contexts"),
        }
        if guild_id is not None:
            payload["guild_id"] = guild_id
        return payload

    async def put_commands(self, request: web.Request) -> web.Response:
        self._check_app(request)
        guild_id = request.match_info.get("guild_id")
        if guild_id is not None:
            self.guild(_snowflake(guild_id))
        body, _ = await self._body(request)
        if not isinstance(body, list):
            raise APIError(400, 50035, "Invalid Form Body",
                           {"_errors": [{"code": "BASE_TYPE_ARRAY", "message": "Must be an array."}]})
        limits.check_commands(body)
        old = {(c.get("type", 1), c["name"]): c for c in self.world.commands.values() if c.get("guild_id") == guild_id}
        for cmd in old.values():
            del self.world.commands[int(cmd["id"])]
        stored = []
        for cmd in body:
            key = (cmd.get("type", 1), cmd["name"])
            cmd_id = int(old[key]["id"]) if key in old else self.world.snowflake()
            payload = self._command_payload(cmd, cmd_id, guild_id)
            self.world.commands[cmd_id] = payload
            stored.append(payload)
        return _json(stored)

    async def create_command(self, request: web.Request) -> web.Response:
        """One command: a new name is created (201), an existing name of the same type is overwritten (200)."""
        self._check_app(request)
        guild_id = request.match_info.get("guild_id")
        if guild_id is not None:
            self.guild(_snowflake(guild_id))
        body, _ = await self._body(request)
        limits.check_command(body)
        mine = [c for c in self.world.commands.values() if c.get("guild_id") == guild_id]
        existing = next((c for c in mine if (c.get("type", 1), c["name"]) == (body.get("type", 1), body["name"])),
                        None)
        if existing is None and body.get("type", 1) == 1 and sum(
                1 for c in mine if c.get("type", 1) == 1) >= limits.GLOBAL_CHAT_COMMANDS_MAX:
            raise limits.too_many_commands()
        cmd_id = int(existing["id"]) if existing else self.world.snowflake()
        payload = self._command_payload(body, cmd_id, guild_id)
        self.world.commands[cmd_id] = payload
        return _json(payload, 200 if existing else 201)

    # -- interactions -------------------------------------------------------------------------

    def interaction_age(self, inter: Interaction) -> float:
        # ``created`` is the sandbox clock's time when the interaction was sent (monotonic time if it never was).
        return self.clock() - inter.created

    def interaction_by_token(self, token: str) -> Interaction:
        """The interaction a followup or ``@original`` call names; its token works for 15 minutes, then it is
        401 Invalid Webhook Token (50027), as for any webhook token Discord no longer accepts."""
        for inter in self.world.interactions.values():
            if inter.token == token:
                if self.interaction_age(inter) > self.interaction_token_lifetime:
                    break
                return inter
        raise APIError(401, 50027, "Invalid Webhook Token")

    async def interaction_callback(self, request: web.Request) -> web.Response:
        inter = self.world.interactions.get(_snowflake(request.match_info["interaction_id"]))
        if inter is None or inter.token != request.match_info["token"]:
            raise unknown("Interaction")
        if inter.response_type is None and self.interaction_age(inter) > self.interaction_deadline:
            raise unknown("Interaction")  # answered too late: the player saw "The application did not respond"
        body, files = await self._body(request)
        if inter.response_type is not None:
            raise APIError(400, 40060, "Interaction has already been acknowledged.")
        cb_type = int(body.get("type", 0))
        data = body.get("data") or {}
        channel = self.channel(inter.channel_id)
        message: Message | None = None
        if cb_type == 4:
            message = await self.post_message(channel, self.bot_user, data, files, interaction=inter,
                                              message_type=20 if inter.type == 2 else 0, form_root=("data",))
            inter.completed = True
        elif cb_type == 5:
            flags = LOADING | (int(data.get("flags") or 0) & EPHEMERAL)
            message = await self.post_message(channel, self.bot_user, {}, [], interaction=inter,
                                              message_type=20 if inter.type == 2 else 0, flags=flags)
        elif cb_type in (6, 7):
            if inter.source_message_id is None:
                raise APIError(400, 40060 if cb_type == 6 else 50035, "Interaction has no message to update.")
            message = self.world.message_by_id(inter.source_message_id)
            if message is None:
                raise unknown("Message")
            if cb_type == 7:
                await self.apply_edit(message, data, files, form_root=("data",))
                inter.completed = True
        elif cb_type == 8:
            if inter.type != 4:
                raise _invalid_response_type()
            limits.check_autocomplete(data)
            inter.choices = list(data.get("choices") or [])
            inter.completed = True
        elif cb_type == 9:
            if inter.type == 5:  # a modal submit cannot be answered with another modal
                raise _invalid_response_type()
            limits.check_modal(data)
            inter.modal = data
            inter.completed = True
        else:
            raise APIError(400, 50035, "Invalid Form Body",
                           {"type": {"_errors": [{"code": "BASE_TYPE_CHOICES", "message": "Value must be one of."}]}})
        inter.response_type = cb_type
        if message is not None:
            inter.response_message_id = message.id
        self.world.changed()
        if request.query.get("with_response") not in ("1", "true", "True"):
            return _no_content()
        answer: dict[str, Any] = {"interaction": {"id": str(inter.id), "type": inter.type}}
        if message is not None and cb_type in (4, 5, 7):
            answer["interaction"].update(response_message_id=str(message.id), response_message_loading=cb_type == 5,
                                         response_message_ephemeral=message.ephemeral)
            if cb_type != 5:  # the spec has no resource for a deferral: only the loading flag above
                answer["resource"] = {"type": cb_type, "message": self.message_payload(message)}
        return _json(answer)

    # -- guilds, roles, members ---------------------------------------------------------------

    async def get_guild(self, request: web.Request) -> web.Response:
        guild = self.guild(_snowflake(request.match_info["guild_id"]))
        payload = guild.payload(voice=False)
        for key in ("members", "channels", "threads", "voice_states", "presences", "joined_at", "large",
                    "member_count", "unavailable"):
            payload.pop(key, None)
        # Fields GET /guilds/{id} always carries (the spec marks them required), beyond the gateway's guild.
        payload.update(home_header=None, region="deprecated", widget_enabled=False, widget_channel_id=None,
                       max_presences=None, max_stage_video_channel_users=50, max_video_channel_users=25,
                       safety_alerts_channel_id=None, nsfw=False, incidents_data=None)
        if request.query.get("with_counts") in ("1", "true", "True"):
            payload.update(approximate_member_count=len(guild.members), approximate_presence_count=0)
        return _json(payload)

    async def get_guild_channels(self, request: web.Request) -> web.Response:
        guild = self.guild(_snowflake(request.match_info["guild_id"]))
        return _json([c.payload() for c in guild.channels.values() if not c.is_thread])

    async def get_roles(self, request: web.Request) -> web.Response:
        guild = self.guild(_snowflake(request.match_info["guild_id"]))
        return _json([r.payload() for r in guild.sorted_roles()])

    def _role(self, guild: Guild, role_id: str) -> Role:
        role = guild.roles.get(_snowflake(role_id))
        if role is None:
            raise unknown("Role")
        return role

    def _role_fields(self, guild: Guild, role: Role, body: dict[str, Any]) -> None:
        errors = FormErrors()
        errors.max_length(("name",), body.get("name"), 100, 1)
        errors.raise_if_any()
        if "permissions" in body and body["permissions"] is not None:
            wanted = int(body["permissions"])
            mine = guild.base_permissions(self.bot_member(guild))
            if wanted & ~mine and not mine & Perm.ADMINISTRATOR:
                raise missing_permissions()  # a role can't grant what the bot doesn't have
            role.permissions = wanted
        if body.get("name") is not None:
            role.name = body["name"]
        for key in ("color", "hoist", "mentionable"):
            if body.get(key) is not None:
                setattr(role, key, body[key])

    async def create_role(self, request: web.Request) -> web.Response:
        guild = self.guild(_snowflake(request.match_info["guild_id"]))
        self.require_guild(guild, Perm.MANAGE_ROLES)
        body, _ = await self._body(request)
        if len(guild.roles) >= 250:
            raise APIError(400, 30005, "Maximum number of guild roles reached (250)")
        for other in guild.roles.values():
            if other.id != guild.id:
                other.position += 1
        role = Role(self.world.snowflake(), guild.id, "new role", 0, 1)
        self._role_fields(guild, role, body)
        guild.roles[role.id] = role
        await self.dispatch("GUILD_ROLE_CREATE", {"guild_id": str(guild.id), "role": role.payload()}, guild.id)
        return _json(role.payload())

    async def edit_role(self, request: web.Request) -> web.Response:
        guild = self.guild(_snowflake(request.match_info["guild_id"]))
        role = self._role(guild, request.match_info["role_id"])
        self.require_guild(guild, Perm.MANAGE_ROLES)
        self.require_above(guild, role)
        body, _ = await self._body(request)
        self._role_fields(guild, role, body)
        await self.dispatch("GUILD_ROLE_UPDATE", {"guild_id": str(guild.id), "role": role.payload()}, guild.id)
        return _json(role.payload())

    async def delete_role(self, request: web.Request) -> web.Response:
        guild = self.guild(_snowflake(request.match_info["guild_id"]))
        role = self._role(guild, request.match_info["role_id"])
        self.require_guild(guild, Perm.MANAGE_ROLES)
        self.require_above(guild, role)
        del guild.roles[role.id]
        for member in guild.members.values():
            if role.id in member.roles:
                member.roles.remove(role.id)
        await self.dispatch("GUILD_ROLE_DELETE", {"guild_id": str(guild.id), "role_id": str(role.id)}, guild.id)
        return _no_content()

    def _member(self, guild: Guild, user_id: str) -> Member:
        member = guild.members.get(_snowflake(user_id))
        if member is None:
            raise unknown("Member")
        return member

    async def list_members(self, request: web.Request) -> web.Response:
        guild = self.guild(_snowflake(request.match_info["guild_id"]))
        limit = min(int(request.query.get("limit", "1")), 1000)
        after = int(request.query.get("after", "0"))
        members = sorted((m for m in guild.members.values() if m.user.id > after), key=lambda m: m.user.id)
        return _json([m.payload() for m in members[:limit]])

    async def get_member(self, request: web.Request) -> web.Response:
        guild = self.guild(_snowflake(request.match_info["guild_id"]))
        return _json(self._member(guild, request.match_info["user_id"]).payload())

    async def member_updated(self, guild: Guild, member: Member) -> None:
        await self.dispatch("GUILD_MEMBER_UPDATE", {"guild_id": str(guild.id), **member.payload()}, guild.id)

    async def edit_member(self, request: web.Request) -> web.Response:
        guild = self.guild(_snowflake(request.match_info["guild_id"]))
        member = self._member(guild, request.match_info["user_id"])
        body, _ = await self._body(request)
        timeout = self._timeout(guild, member, body["communication_disabled_until"]) \
            if "communication_disabled_until" in body else None  # checked before anything changes
        if "roles" in body:
            self.require_guild(guild, Perm.MANAGE_ROLES)
            wanted = [_snowflake(str(r)) for r in body["roles"] or []]
            for role_id in set(wanted) ^ set(member.roles):
                self.require_above(guild, self._role(guild, str(role_id)))
            member.roles = wanted
        if "communication_disabled_until" in body:
            member.communication_disabled_until = timeout
        if "nick" in body:
            if member.user.id == guild.owner_id or guild.top_position(member) >= guild.top_position(
                    self.bot_member(guild)):
                raise missing_permissions()
            self.require_guild(guild, Perm.MANAGE_NICKNAMES)
            member.nick = body["nick"]
        await self.member_updated(guild, member)
        return _json(member.payload())

    def _timeout(self, guild: Guild, member: Member, until: Any) -> datetime | None:
        """A timeout's end: it needs Moderate Members and the bot above the member; owners and administrators
        are exempt. ``None`` lifts it."""
        self.require_guild(guild, Perm.MODERATE_MEMBERS)
        if (member.user.id == guild.owner_id or guild.base_permissions(member) & Perm.ADMINISTRATOR
                or guild.top_position(member) >= guild.top_position(self.bot_member(guild))):
            raise missing_permissions()
        if until is None:
            return None
        try:
            moment = datetime.fromisoformat(str(until))
        except ValueError:
            raise APIError(400, 50035, "Invalid Form Body", {"communication_disabled_until": {"_errors": [
                {"code": "DATE_TIME_TYPE_PARSE", "message": f"Could not parse {until}. Should be ISO8601."}]}},
                ) from None
        return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)

    async def _member_role(self, request: web.Request, *, add: bool) -> web.Response:
        guild = self.guild(_snowflake(request.match_info["guild_id"]))
        member = self._member(guild, request.match_info["user_id"])
        role = self._role(guild, request.match_info["role_id"])
        self.require_guild(guild, Perm.MANAGE_ROLES)
        self.require_above(guild, role)
        if add != (role.id in member.roles):
            (member.roles.append if add else member.roles.remove)(role.id)
            await self.member_updated(guild, member)
        return _no_content()

    async def add_member_role(self, request: web.Request) -> web.Response:
        return await self._member_role(request, add=True)

    async def remove_member_role(self, request: web.Request) -> web.Response:
        return await self._member_role(request, add=False)

    # -- channels and messages ----------------------------------------------------------------

    async def get_channel(self, request: web.Request) -> web.Response:
        channel = self.channel(_snowflake(request.match_info["channel_id"]))
        self.require(channel)
        return _json(channel.payload())

    async def typing(self, request: web.Request) -> web.Response:
        channel = self.channel(_snowflake(request.match_info["channel_id"]))
        self.require(channel, Perm.SEND_MESSAGES)
        return _no_content()

    def visible(self, channel_id: int, viewer_id: int | None = None) -> list[Message]:
        return [m for m in self.world.channel_messages(channel_id)
                if not m.deleted and (m.visible_to is None or m.visible_to == viewer_id)]

    async def history(self, request: web.Request) -> web.Response:
        channel = self.channel(_snowflake(request.match_info["channel_id"]))
        self.require(channel)
        if not self.bot_permissions(channel) & Perm.READ_MESSAGE_HISTORY:
            return _json([])  # Discord: without Read Message History, no messages are returned
        q = request.query
        limit = max(1, min(int(q.get("limit", "50")), 100))
        messages = self.visible(channel.id)
        if "before" in q:
            messages = [m for m in messages if m.id < int(q["before"])]
        if "after" in q:
            messages = [m for m in messages if m.id > int(q["after"])]
            messages = messages[:limit]
        if "around" in q:
            pivot = int(q["around"])
            older = [m for m in messages if m.id <= pivot][-(limit // 2 + 1):]
            newer = [m for m in messages if m.id > pivot][: limit - len(older)]
            messages = older + newer
        messages = messages[-limit:]
        return _json([self.message_payload(m) for m in reversed(messages)])

    def _send_perms(self, channel: Channel, files: list[Any]) -> None:
        send = Perm.SEND_MESSAGES_IN_THREADS if channel.is_thread else Perm.SEND_MESSAGES
        self.require(channel, send, *([Perm.ATTACH_FILES] if files else []))

    async def create_message(self, request: web.Request) -> web.Response:
        channel = self.channel(_snowflake(request.match_info["channel_id"]))
        body, files = await self._body(request)
        if channel.type == ChannelType.DM:
            if not self._shares_guild(channel.recipients[0].id):
                raise APIError(403, 50007, "Cannot send messages to this user")
        else:
            self._send_perms(channel, files)
        ref = body.get("message_reference")
        if isinstance(ref, dict) and channel.guild_id:
            self.require(channel, Perm.READ_MESSAGE_HISTORY)  # a reply needs to read what it replies to
        if (isinstance(ref, dict) and ref.get("message_id")
                and self.world.find_message(channel.id, int(ref["message_id"])) is None
                and ref.get("fail_if_not_exists", True)):
                raise APIError(400, 50035, "Invalid Form Body", {"message_reference": {"_errors": [
                    {"code": "REPLIES_UNKNOWN_MESSAGE", "message": "Unknown message"}]}})
        message = await self.post_message(channel, self.bot_user, body, files,
                                          message_type=19 if isinstance(ref, dict) else 0)
        return _json(self.message_payload(message))

    def _shares_guild(self, user_id: int) -> bool:
        return any(user_id in g.members for g in self.world.guilds.values())

    def _message(self, request: web.Request) -> tuple[Channel, Message]:
        channel = self.channel(_snowflake(request.match_info["channel_id"]))
        message = self.world.find_message(channel.id, _snowflake(request.match_info["message_id"]))
        if channel.guild_id:
            self.require(channel)
        if message is None or message.ephemeral:
            raise unknown("Message")
        return channel, message

    async def get_message(self, request: web.Request) -> web.Response:
        channel, message = self._message(request)
        if channel.guild_id:
            self.require(channel, Perm.READ_MESSAGE_HISTORY)
        return _json(self.message_payload(message, self.bot_user.id))

    async def edit_message(self, request: web.Request) -> web.Response:
        _channel, message = self._message(request)
        if message.author.id != self.bot_user.id or message.webhook_id is not None:
            raise APIError(403, 50005, "Cannot edit a message authored by another user")
        body, files = await self._body(request)
        await self.apply_edit(message, body, files)
        return _json(self.message_payload(message, self.bot_user.id))

    async def delete_message(self, request: web.Request) -> web.Response:
        channel, message = self._message(request)
        if message.author.id != self.bot_user.id and channel.guild_id:
            self.require(channel, Perm.MANAGE_MESSAGES)
        await self.remove_message(message)
        return _no_content()

    async def create_thread(self, request: web.Request) -> web.Response:
        """A thread in a text channel, on its own or from a message (then it takes the message's id)."""
        parent = self.channel(_snowflake(request.match_info["channel_id"]))
        if parent.type != ChannelType.TEXT:
            raise APIError(400, 50024, "Cannot execute action on this channel type")
        body, _ = await self._body(request)
        private = body.get("type") == ChannelType.PRIVATE_THREAD and "message_id" not in request.match_info
        self.require(parent, Perm.CREATE_PRIVATE_THREADS if private else Perm.CREATE_PUBLIC_THREADS)
        errors = FormErrors()
        errors.max_length(("name",), body.get("name"), 100, 1)
        if body.get("name") is None:
            errors.add(("name",), "BASE_TYPE_REQUIRED", "This field is required")
        errors.raise_if_any()
        thread_id = self.world.snowflake()
        if "message_id" in request.match_info:
            message = self.world.find_message(parent.id, _snowflake(request.match_info["message_id"]))
            if message is None:
                raise unknown("Message")
            if any(c.id == message.id for c in self.world.channels.values()):
                raise APIError(400, 160004, "A thread has already been created for this message")
            thread_id = message.id
        guild = self.guild(parent.guild_id or 0)
        thread = Channel(thread_id, ChannelType.PRIVATE_THREAD if private else ChannelType.PUBLIC_THREAD,
                         body["name"], guild.id, parent_id=parent.id, owner_id=self.bot_user.id)
        guild.channels[thread.id] = thread
        self.world.channels[thread.id] = thread
        await self.dispatch("THREAD_CREATE", {**thread.payload(), "newly_created": True}, guild.id)
        return _json(thread.payload(), 201)

    # -- reactions ----------------------------------------------------------------------------

    async def react(self, message: Message, user: User, emoji: str, *, add: bool) -> None:
        users = message.reactions.setdefault(emoji, [])
        if add == (user.id in users):
            return
        if add:
            users.append(user.id)
        else:
            users.remove(user.id)
        data: dict[str, Any] = {
            "user_id": str(user.id),
            "channel_id": str(message.channel_id),
            "message_id": str(message.id),
            "emoji": {"id": None, "name": emoji} if ":" not in emoji else {
                "id": emoji.split(":", 1)[1], "name": emoji.split(":", 1)[0]},
            "burst": False,
            "type": 0,
        }
        if message.guild_id:
            data["guild_id"] = str(message.guild_id)
            if add:
                guild = self.world.guilds[message.guild_id]
                member = guild.members.get(user.id)
                if member:
                    data["member"] = member.payload()
                data["message_author_id"] = str(message.author.id)
        await self.dispatch("MESSAGE_REACTION_ADD" if add else "MESSAGE_REACTION_REMOVE", data, message.guild_id)

    async def add_reaction(self, request: web.Request) -> web.Response:
        channel, message = self._message(request)
        if channel.guild_id:
            self.require(channel, Perm.READ_MESSAGE_HISTORY)
            if not message.reactions.get(emoji_key(request.match_info["emoji"])):
                self.require(channel, Perm.ADD_REACTIONS)
        await self.react(message, self.bot_user, emoji_key(request.match_info["emoji"]), add=True)
        return _no_content()

    async def remove_own_reaction(self, request: web.Request) -> web.Response:
        _channel, message = self._message(request)
        await self.react(message, self.bot_user, emoji_key(request.match_info["emoji"]), add=False)
        return _no_content()

    async def remove_user_reaction(self, request: web.Request) -> web.Response:
        channel, message = self._message(request)
        user = self.world.users.get(_snowflake(request.match_info["user_id"]))
        if user is None:
            raise unknown("User")
        if user.id != self.bot_user.id:
            self.require(channel, Perm.MANAGE_MESSAGES)
        await self.react(message, user, emoji_key(request.match_info["emoji"]), add=False)
        return _no_content()

    async def get_reactions(self, request: web.Request) -> web.Response:
        _channel, message = self._message(request)
        ids = message.reactions.get(emoji_key(request.match_info["emoji"]), [])
        return _json([self.world.users[i].payload() for i in ids])

    async def clear_reactions(self, request: web.Request) -> web.Response:
        channel, message = self._message(request)
        self.require(channel, Perm.MANAGE_MESSAGES)
        message.reactions.clear()
        return _no_content()

    # -- webhooks -----------------------------------------------------------------------------

    async def channel_webhooks(self, request: web.Request) -> web.Response:
        channel = self.channel(_snowflake(request.match_info["channel_id"]))
        self.require(channel, Perm.MANAGE_WEBHOOKS)
        return _json([w.payload() for w in self.world.webhooks.values() if w.channel_id == channel.id])

    async def guild_webhooks(self, request: web.Request) -> web.Response:
        guild = self.guild(_snowflake(request.match_info["guild_id"]))
        self.require_guild(guild, Perm.MANAGE_WEBHOOKS)
        return _json([w.payload() for w in self.world.webhooks.values() if w.guild_id == guild.id])

    async def create_webhook(self, request: web.Request) -> web.Response:
        channel = self.channel(_snowflake(request.match_info["channel_id"]))
        if channel.type not in (ChannelType.TEXT, ChannelType.VOICE):
            raise APIError(400, 50024, "Cannot execute action on this channel type")
        self.require(channel, Perm.MANAGE_WEBHOOKS)
        body, _ = await self._body(request)
        errors = FormErrors()
        name = body.get("name")
        if name is None:
            errors.add(("name",), "BASE_TYPE_REQUIRED", "This field is required")
        limits.check_webhook_username(errors, name, "name")
        errors.raise_if_any()
        if sum(1 for w in self.world.webhooks.values() if w.channel_id == channel.id) >= limits.WEBHOOKS_PER_CHANNEL:
            raise APIError(400, 30007, f"Maximum number of webhooks reached ({limits.WEBHOOKS_PER_CHANNEL})")
        hook = Webhook(self.world.snowflake(), secrets.token_urlsafe(48), channel.guild_id or 0, channel.id, str(name),
                       self.bot_user, avatar=secrets.token_hex(16) if body.get("avatar") else None,
                       application_id=self.application_id)
        self.world.webhooks[hook.id] = hook
        return _json(hook.payload())

    def _webhook(self, request: web.Request) -> Webhook:
        hook = self.world.webhooks.get(_snowflake(request.match_info["webhook_id"]))
        if hook is None:
            raise unknown("Webhook")
        token = request.match_info.get("token")
        if token is None:
            self.require(self.channel(hook.channel_id), Perm.MANAGE_WEBHOOKS)
        elif token != hook.token:
            raise APIError(401, 50027, "Invalid Webhook Token")
        return hook

    async def get_webhook(self, request: web.Request) -> web.Response:
        hook = self._webhook(request)
        return _json(hook.payload())

    async def edit_webhook(self, request: web.Request) -> web.Response:
        hook = self._webhook(request)
        body, _ = await self._body(request)
        errors = FormErrors()
        limits.check_webhook_username(errors, body.get("name"), "name")
        errors.raise_if_any()
        if body.get("name"):
            hook.name = body["name"]
        if "avatar" in body:
            hook.avatar = secrets.token_hex(16) if body["avatar"] else None
        if body.get("channel_id") and "token" not in request.match_info:
            target = self.channel(_snowflake(str(body["channel_id"])))
            self.require(target, Perm.MANAGE_WEBHOOKS)
            hook.channel_id = target.id
        return _json(hook.payload())

    async def delete_webhook(self, request: web.Request) -> web.Response:
        hook = self._webhook(request)
        del self.world.webhooks[hook.id]
        return _no_content()

    def _webhook_channel(self, hook: Webhook, request: web.Request) -> Channel:
        thread_id = request.query.get("thread_id")
        if not thread_id:
            return self.channel(hook.channel_id)
        thread = self.world.channels.get(_snowflake(thread_id))
        if thread is None or not thread.is_thread or thread.parent_id != hook.channel_id:
            raise unknown("Channel")
        return thread

    async def execute_webhook(self, request: web.Request) -> web.Response:
        if _snowflake(request.match_info["webhook_id"]) == self.application_id:
            return await self._followup(request)
        hook = self._webhook(request)
        body, files = await self._body(request)
        errors = FormErrors()
        limits.check_webhook_username(errors, body.get("username"), "username")  # Discord checks it per message too
        errors.raise_if_any()
        channel = self._webhook_channel(hook, request)
        if not hook.application_id and request.query.get("with_components") not in ("1", "true", "True"):
            body = {k: v for k, v in body.items() if k != "components"}  # ignored, as Discord does
        message = await self.post_message(channel, self.bot_user, body, files, webhook=hook)
        if request.query.get("wait") in ("1", "true", "True"):
            return _json(self.message_payload(message))
        return _no_content()

    async def _followup(self, request: web.Request) -> web.Response:
        inter = self.interaction_by_token(request.match_info["token"])
        if inter.response_type is None:
            raise unknown("Webhook")
        body, files = await self._body(request)
        original = self.world.message_by_id(inter.response_message_id) if inter.response_message_id else None
        if inter.response_type == 5 and original is not None and original.flags & LOADING:
            # The first followup after "thinking..." replaces the loading message.
            await self.apply_edit(original, body, files)
            message = original
        else:
            channel = self.channel(inter.channel_id)
            message = await self.post_message(channel, self.bot_user, body, files, interaction=inter)
            inter.followup_ids.append(message.id)
        inter.completed = True
        return _json(self.message_payload(message))

    def _webhook_message(self, request: web.Request) -> tuple[Interaction | None, Message]:
        mid = request.match_info["message_id"]
        if _snowflake(request.match_info["webhook_id"]) == self.application_id:
            inter = self.interaction_by_token(request.match_info["token"])
            target = inter.response_message_id if mid == "@original" else _snowflake(mid)
            if mid == "@original" and inter.response_type in (6, 7):
                target = inter.source_message_id
            message = self.world.message_by_id(target) if target else None
            if message is None:
                raise unknown("Message")
            return inter, message
        hook = self._webhook(request)
        # Discord looks in the webhook's channel, or in the thread named by ``thread_id``: a message of a
        # thread is "unknown" without it.
        channel = self._webhook_channel(hook, request)
        message = self.world.message_by_id(_snowflake(mid))
        if message is None or message.webhook_id != hook.id or message.channel_id != channel.id:
            raise unknown("Message")
        return None, message

    async def get_webhook_message(self, request: web.Request) -> web.Response:
        _inter, message = self._webhook_message(request)
        return _json(self.message_payload(message))

    async def edit_webhook_message(self, request: web.Request) -> web.Response:
        inter, message = self._webhook_message(request)
        body, files = await self._body(request)
        await self.apply_edit(message, body, files)
        if inter is not None:
            inter.completed = True
        return _json(self.message_payload(message))

    async def delete_webhook_message(self, request: web.Request) -> web.Response:
        inter, message = self._webhook_message(request)
        await self.remove_message(message)
        if inter is not None:
            inter.completed = True
        return _no_content()

    # -- world building (used by the driver) ----------------------------------------------------

    def create_guild(self, name: str, owner: User, *, bot_permissions: int | None = None,
                     guild_id: int | None = None) -> Guild:
        guild_id = guild_id or self.world.snowflake()
        guild = Guild(guild_id, name, owner.id)
        guild.roles[guild_id] = Role(guild_id, guild_id, "@everyone", EVERYONE_DEFAULT, 0)
        self.world.guilds[guild_id] = guild
        guild.members[owner.id] = Member(owner, guild_id)
        bot_role = Role(self.world.snowflake(), guild_id, self.bot_user.username,
                        bot_permissions if bot_permissions is not None else BOT_DEFAULT_PERMISSIONS, 1, managed=True)
        guild.roles[bot_role.id] = bot_role
        guild.members[self.bot_user.id] = Member(self.bot_user, guild_id, roles=[bot_role.id])
        return guild

    def add_overwrite(self, channel: Channel, target_id: int, target_type: int, allow: int, deny: int) -> None:
        channel.overwrites = [o for o in channel.overwrites if not (o.id == target_id and o.type == target_type)]
        channel.overwrites.append(Overwrite(target_id, target_type, allow, deny))


BOT_DEFAULT_PERMISSIONS = (
    Perm.VIEW_CHANNEL | Perm.SEND_MESSAGES | Perm.SEND_MESSAGES_IN_THREADS | Perm.EMBED_LINKS | Perm.ATTACH_FILES
    | Perm.READ_MESSAGE_HISTORY | Perm.ADD_REACTIONS | Perm.MANAGE_ROLES | Perm.MANAGE_WEBHOOKS
    | Perm.MANAGE_MESSAGES | Perm.USE_EXTERNAL_EMOJIS | Perm.CONNECT
)

__all__ = ["BOT_DEFAULT_PERMISSIONS", "Intent", "RecordedRequest", "SandboxClock", "SandboxServer"]
