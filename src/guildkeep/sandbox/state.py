"""The sandbox's in-memory world: users, guilds, roles, members, channels, messages, webhooks.

Everything here is plain data with the Discord API v10 JSON shapes it renders to; the REST routes
and the gateway (``server.py``, ``gateway.py``) mutate it, and the driver reads it as members see it.
Nothing here imports discord.py: the sandbox is a stand-in for Discord, not a client of it.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import re
import secrets
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from guildkeep.clock import CLOCK

DISCORD_EPOCH_MS = 1_420_070_400_000
MENTION_RE = re.compile(r"<@!?(\d+)>")


class Perm:
    """Permission bits (https://discord.com/developers/docs/topics/permissions)."""

    CREATE_INSTANT_INVITE = 1 << 0
    KICK_MEMBERS = 1 << 1
    BAN_MEMBERS = 1 << 2
    ADMINISTRATOR = 1 << 3
    MANAGE_CHANNELS = 1 << 4
    MANAGE_GUILD = 1 << 5
    ADD_REACTIONS = 1 << 6
    VIEW_CHANNEL = 1 << 10
    SEND_MESSAGES = 1 << 11
    MANAGE_MESSAGES = 1 << 13
    EMBED_LINKS = 1 << 14
    ATTACH_FILES = 1 << 15
    READ_MESSAGE_HISTORY = 1 << 16
    MENTION_EVERYONE = 1 << 17
    USE_EXTERNAL_EMOJIS = 1 << 18
    CONNECT = 1 << 20
    SPEAK = 1 << 21
    MUTE_MEMBERS = 1 << 22
    MANAGE_NICKNAMES = 1 << 27
    CREATE_PUBLIC_THREADS = 1 << 35
    CREATE_PRIVATE_THREADS = 1 << 36
    MANAGE_ROLES = 1 << 28
    MANAGE_WEBHOOKS = 1 << 29
    USE_APPLICATION_COMMANDS = 1 << 31
    SEND_MESSAGES_IN_THREADS = 1 << 38
    MODERATE_MEMBERS = 1 << 40
    ALL = (1 << 51) - 1

    @classmethod
    def by_name(cls, name: str) -> int:
        """``"manage_webhooks"`` -> the bit; raises KeyError on an unknown name."""
        value = getattr(cls, name.upper(), None)
        if not isinstance(value, int):
            raise KeyError(f"unknown permission {name!r}")
        return value

    @classmethod
    def of(cls, names: Iterable[str]) -> int:
        bits = 0
        for name in names:
            bits |= cls.by_name(name)
        return bits


EVERYONE_DEFAULT = (
    Perm.VIEW_CHANNEL | Perm.SEND_MESSAGES | Perm.READ_MESSAGE_HISTORY | Perm.ADD_REACTIONS | Perm.EMBED_LINKS
    | Perm.ATTACH_FILES | Perm.USE_APPLICATION_COMMANDS | Perm.CONNECT | Perm.SPEAK | Perm.SEND_MESSAGES_IN_THREADS
    | Perm.USE_EXTERNAL_EMOJIS | Perm.CREATE_INSTANT_INVITE | Perm.CREATE_PUBLIC_THREADS | Perm.CREATE_PRIVATE_THREADS
)


class ChannelType:
    TEXT = 0
    DM = 1
    VOICE = 2
    CATEGORY = 4
    PUBLIC_THREAD = 11
    PRIVATE_THREAD = 12

    THREADS = (PUBLIC_THREAD, PRIVATE_THREAD)


def iso(moment: datetime) -> str:
    return moment.isoformat()


def now() -> datetime:
    """The sandbox's time is the bot's clock (``guildkeep.clock``), so both move together in the playground."""
    return CLOCK.now()


class SnowflakeFactory:
    """Unique, increasing snowflakes built like Discord's (timestamp << 22 | counter)."""

    def __init__(self) -> None:
        self._counter = itertools.count(1)
        self._last = 0

    def __call__(self) -> int:
        candidate = ((int(CLOCK.timestamp() * 1000) - DISCORD_EPOCH_MS) << 22) | (next(self._counter) & 0xFFF)
        self._last = max(candidate, self._last + 1)
        return self._last


@dataclass
class User:
    id: int
    username: str
    global_name: str | None = None
    avatar: str | None = None
    bot: bool = False

    def payload(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "username": self.username,
            "discriminator": "0",
            "global_name": self.global_name,
            "avatar": self.avatar,
            "bot": self.bot,
            "public_flags": 0,
            "flags": 0,
            "banner": None,
            "accent_color": None,
            "avatar_decoration_data": None,
            "collectibles": None,
            "primary_guild": None,
        }


@dataclass
class Role:
    id: int
    guild_id: int
    name: str
    permissions: int
    position: int
    color: int = 0
    hoist: bool = False
    mentionable: bool = False
    managed: bool = False

    def payload(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "name": self.name,
            "color": self.color,
            "colors": {"primary_color": self.color, "secondary_color": None, "tertiary_color": None},
            "hoist": self.hoist,
            "position": self.position,
            "permissions": str(self.permissions),
            "managed": self.managed,
            "mentionable": self.mentionable,
            "icon": None,
            "unicode_emoji": None,
            "flags": 0,
        }


@dataclass
class VoiceState:
    channel_id: int | None
    self_mute: bool = False
    self_deaf: bool = False
    session_id: str = field(default_factory=lambda: secrets.token_hex(16))


@dataclass
class Member:
    user: User
    guild_id: int
    roles: list[int] = field(default_factory=list)
    nick: str | None = None
    joined_at: datetime = field(default_factory=now)
    voice: VoiceState | None = None
    communication_disabled_until: datetime | None = None  # a timeout

    @property
    def display_name(self) -> str:
        return self.nick or self.user.global_name or self.user.username

    def payload(self, *, with_user: bool = True, permissions: int | None = None) -> dict[str, Any]:
        data: dict[str, Any] = {
            "nick": self.nick,
            "roles": [str(r) for r in self.roles],
            "joined_at": iso(self.joined_at),
            "premium_since": None,
            "deaf": False,
            "mute": False,
            "pending": False,
            "flags": 0,
            "avatar": None,
            "banner": None,
            "communication_disabled_until": iso(self.communication_disabled_until)
            if self.communication_disabled_until else None,
        }
        if with_user:
            data["user"] = self.user.payload()
        if permissions is not None:
            data["permissions"] = str(permissions)
        return data

    def voice_payload(self) -> dict[str, Any]:
        voice = self.voice or VoiceState(channel_id=None)
        return {
            "guild_id": str(self.guild_id),
            "channel_id": str(voice.channel_id) if voice.channel_id else None,
            "user_id": str(self.user.id),
            "member": self.payload(),
            "session_id": voice.session_id,
            "deaf": False,
            "mute": False,
            "self_deaf": voice.self_deaf,
            "self_mute": voice.self_mute,
            "self_video": False,
            "suppress": False,
            "request_to_speak_timestamp": None,
        }


@dataclass
class Overwrite:
    id: int
    type: int  # 0 role, 1 member
    allow: int = 0
    deny: int = 0

    def payload(self) -> dict[str, Any]:
        return {"id": str(self.id), "type": self.type, "allow": str(self.allow), "deny": str(self.deny)}


@dataclass
class Channel:
    id: int
    type: int
    name: str | None
    guild_id: int | None = None
    position: int = 0
    parent_id: int | None = None
    topic: str | None = None
    overwrites: list[Overwrite] = field(default_factory=list)
    owner_id: int | None = None  # threads
    recipients: list[User] = field(default_factory=list)  # DMs
    last_message_id: int | None = None

    @property
    def is_thread(self) -> bool:
        return self.type in ChannelType.THREADS

    def payload(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": str(self.id),
            "type": self.type,
            "last_message_id": str(self.last_message_id) if self.last_message_id else None,
            "flags": 0,
        }
        if self.type == ChannelType.DM:
            data["recipients"] = [u.payload() for u in self.recipients]
            return data
        data.update(
            guild_id=str(self.guild_id),
            name=self.name,
            position=self.position,
            parent_id=str(self.parent_id) if self.parent_id else None,
            nsfw=False,
            rate_limit_per_user=0,
        )
        if self.is_thread:
            data.update(
                owner_id=str(self.owner_id) if self.owner_id else None,
                message_count=0,
                member_count=1,
                total_message_sent=0,
                thread_metadata={
                    "archived": False,
                    "auto_archive_duration": 1440,
                    "archive_timestamp": iso(now()),
                    "locked": False,
                    "invitable": True,
                    "create_timestamp": iso(now()),
                },
            )
            return data
        data["permission_overwrites"] = [o.payload() for o in self.overwrites]
        if self.type == ChannelType.TEXT:
            data["topic"] = self.topic
        elif self.type == ChannelType.VOICE:
            data.update(bitrate=64000, user_limit=0, rtc_region=None)
        return data


@dataclass
class Attachment:
    id: int
    filename: str
    data: bytes
    content_type: str | None
    description: str | None = None
    base_url: str = ""

    @property
    def url(self) -> str:
        return f"{self.base_url}/attachments/{self.id}/{self.filename}"

    def payload(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": str(self.id),
            "filename": self.filename,
            "size": len(self.data),
            "url": self.url,
            "proxy_url": self.url,
            "content_type": self.content_type,
        }
        if self.description is not None:
            data["description"] = self.description
        size = image_size(self.data)
        if size:
            data["width"], data["height"] = size
        return data


def image_size(data: bytes) -> tuple[int, int] | None:
    """Width and height of a PNG (what the bot renders), without a decoder."""
    if data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) >= 24:
        return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    return None


@dataclass
class Message:
    id: int
    channel_id: int
    guild_id: int | None
    author: User
    content: str = ""
    embeds: list[dict[str, Any]] = field(default_factory=list)
    components: list[dict[str, Any]] = field(default_factory=list)
    attachments: list[Attachment] = field(default_factory=list)
    timestamp: datetime = field(default_factory=now)
    edited_at: datetime | None = None
    type: int = 0
    flags: int = 0
    webhook_id: int | None = None
    webhook_name: str | None = None  # the display name a webhook message shows
    webhook_avatar_url: str | None = None
    reference_id: int | None = None
    interaction_id: int | None = None
    interaction_meta: dict[str, Any] | None = None  # rendered as interaction_metadata
    visible_to: int | None = None  # ephemeral: only this user sees it
    reactions: dict[str, list[int]] = field(default_factory=dict)  # emoji key -> user ids in order
    mentions: list[User] = field(default_factory=list)
    deleted: bool = False

    @property
    def ephemeral(self) -> bool:
        return self.visible_to is not None

    def author_payload(self) -> dict[str, Any]:
        if self.webhook_id is not None and self.interaction_id is None:
            return {
                "id": str(self.webhook_id),
                "username": self.webhook_name or "Captain Hook",
                "discriminator": "0000",
                "global_name": None,
                "avatar": None,
                "bot": True,
                "public_flags": 0,
                "flags": 0,
                "primary_guild": None,
            }
        return self.author.payload()

    def payload(self, *, viewer_id: int | None = None, member: Member | None = None) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": str(self.id),
            "channel_id": str(self.channel_id),
            "author": self.author_payload(),
            "content": self.content,
            "timestamp": iso(self.timestamp),
            "edited_timestamp": iso(self.edited_at) if self.edited_at else None,
            "tts": False,
            "mention_everyone": False,
            "mentions": [u.payload() for u in self.mentions],
            "mention_roles": [],
            "attachments": [a.payload() for a in self.attachments],
            "embeds": self.embeds,
            "components": self.components,
            "pinned": False,
            "type": self.type,
            "flags": self.flags,
            "reactions": [
                {
                    "emoji": emoji_payload(key),
                    "count": len(users),
                    "count_details": {"burst": 0, "normal": len(users)},
                    "me": viewer_id in users,
                    "me_burst": False,
                    "burst_colors": [],
                }
                for key, users in self.reactions.items()
                if users
            ],
        }
        if self.guild_id is not None:
            data["guild_id"] = str(self.guild_id)
        if member is not None and self.webhook_id is None:
            data["member"] = member.payload(with_user=False)
        if self.webhook_id is not None:
            data["webhook_id"] = str(self.webhook_id)
        if self.reference_id is not None:
            data["message_reference"] = {
                "type": 0,
                "message_id": str(self.reference_id),
                "channel_id": str(self.channel_id),
                "guild_id": str(self.guild_id) if self.guild_id else None,
            }
        if self.interaction_meta is not None:
            data["interaction_metadata"] = self.interaction_meta
        return data


def number_components(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Discord gives every component a numeric ``id`` (1, 2, ... depth first) when the sender did not."""
    counter = itertools.count(1)

    def walk(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        out = []
        for original in items:
            comp = {**original}
            comp.setdefault("id", next(counter))
            for key in ("components", "accessory", "component"):
                child = comp.get(key)
                if isinstance(child, list):
                    comp[key] = walk(child)
                elif isinstance(child, dict):
                    comp[key] = walk([child])[0]
            out.append(comp)
        return out

    return walk(rows)


def emoji_key(raw: str) -> str:
    """Normalise an emoji from a URL (``name:id`` or a unicode character) to one key."""
    return raw


def emoji_payload(key: str) -> dict[str, Any]:
    if ":" in key:
        name, _, emoji_id = key.partition(":")
        return {"id": emoji_id, "name": name, "animated": False}
    return {"id": None, "name": key}


@dataclass
class Webhook:
    id: int
    token: str
    guild_id: int
    channel_id: int
    name: str
    creator: User
    avatar: str | None = None
    application_id: int | None = None

    def payload(self, *, with_token: bool = True) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": str(self.id),
            "type": 1,
            "guild_id": str(self.guild_id),
            "channel_id": str(self.channel_id),
            "name": self.name,
            "avatar": self.avatar,
            "application_id": str(self.application_id) if self.application_id else None,
            "user": self.creator.payload(),
        }
        if with_token:
            data["token"] = self.token
        return data


@dataclass
class Guild:
    id: int
    name: str
    owner_id: int
    roles: dict[int, Role] = field(default_factory=dict)
    members: dict[int, Member] = field(default_factory=dict)
    channels: dict[int, Channel] = field(default_factory=dict)

    @property
    def everyone(self) -> Role:
        return self.roles[self.id]

    def top_position(self, member: Member) -> int:
        if member.user.id == self.owner_id:
            return 1 << 30
        return max((self.roles[r].position for r in member.roles if r in self.roles), default=0)

    def base_permissions(self, member: Member) -> int:
        if member.user.id == self.owner_id:
            return Perm.ALL
        bits = self.everyone.permissions
        for role_id in member.roles:
            role = self.roles.get(role_id)
            if role is not None:
                bits |= role.permissions
        return Perm.ALL if bits & Perm.ADMINISTRATOR else bits

    def permissions_in(self, member: Member, channel: Channel | None) -> int:
        """Discord's algorithm: base permissions, then @everyone, role and member overwrites."""
        bits = self.base_permissions(member)
        if channel is None or bits & Perm.ADMINISTRATOR:
            return bits
        source = self.channels.get(channel.parent_id) if channel.is_thread and channel.parent_id else channel
        overwrites = {(o.type, o.id): o for o in (source.overwrites if source else [])}
        everyone = overwrites.get((0, self.id))
        if everyone:
            bits = (bits & ~everyone.deny) | everyone.allow
        allow = deny = 0
        for role_id in member.roles:
            over = overwrites.get((0, role_id))
            if over:
                allow |= over.allow
                deny |= over.deny
        bits = (bits & ~deny) | allow
        own = overwrites.get((1, member.user.id))
        if own:
            bits = (bits & ~own.deny) | own.allow
        if not bits & Perm.VIEW_CHANNEL:
            return 0
        return bits

    def sorted_roles(self) -> list[Role]:
        return sorted(self.roles.values(), key=lambda r: (r.position, r.id))

    def payload(self, *, voice: bool = True) -> dict[str, Any]:
        channels = [c for c in self.channels.values() if not c.is_thread]
        threads = [c for c in self.channels.values() if c.is_thread]
        return {
            "id": str(self.id),
            "name": self.name,
            "icon": None,
            "splash": None,
            "discovery_splash": None,
            "owner_id": str(self.owner_id),
            "afk_channel_id": None,
            "afk_timeout": 300,
            "verification_level": 0,
            "default_message_notifications": 0,
            "explicit_content_filter": 0,
            "roles": [r.payload() for r in self.sorted_roles()],
            "emojis": [],
            "stickers": [],
            "features": [],
            "mfa_level": 0,
            "application_id": None,
            "system_channel_id": None,
            "system_channel_flags": 0,
            "rules_channel_id": None,
            "vanity_url_code": None,
            "description": None,
            "banner": None,
            "premium_tier": 0,
            "premium_subscription_count": 0,
            "preferred_locale": "en-US",
            "public_updates_channel_id": None,
            "nsfw_level": 0,
            "premium_progress_bar_enabled": False,
            "max_members": 500000,
            "joined_at": iso(now()),
            "large": False,
            "unavailable": False,
            "member_count": len(self.members),
            "members": [m.payload() for m in self.members.values()],
            "channels": [c.payload() for c in channels],
            "threads": [c.payload() for c in threads],
            "voice_states": [
                m.voice_payload() for m in self.members.values() if voice and m.voice and m.voice.channel_id
            ],
            "presences": [],
            "stage_instances": [],
            "guild_scheduled_events": [],
            "soundboard_sounds": [],
        }


@dataclass
class Interaction:
    """One interaction the sandbox sent to the bot, and what the bot answered."""

    id: int
    token: str
    type: int
    guild_id: int | None
    channel_id: int
    user: User
    data: dict[str, Any]
    source_message_id: int | None = None
    opened_by: Interaction | None = None  # a modal submit: the interaction that opened the modal
    response_type: int | None = None
    response_message_id: int | None = None
    followup_ids: list[int] = field(default_factory=list)
    modal: dict[str, Any] | None = None
    choices: list[dict[str, Any]] | None = None
    completed: bool = False  # the player sees a final answer (not "thinking...")
    created: float = field(default_factory=time.monotonic)

    def metadata(self) -> dict[str, Any]:
        """``interaction_metadata`` as messages carry it."""
        meta: dict[str, Any] = {
            "id": str(self.id),
            "type": self.type,
            "user": self.user.payload(),
            "authorizing_integration_owners": {"0": str(self.guild_id)} if self.guild_id else {},
        }
        if self.response_message_id is not None:
            meta["original_response_message_id"] = str(self.response_message_id)
        if self.type == 3 and self.source_message_id is not None:
            meta["interacted_message_id"] = str(self.source_message_id)
        if self.type == 5 and self.opened_by is not None:
            meta["triggering_interaction_metadata"] = self.opened_by.metadata()
        return meta


class World:
    """All sandbox state plus a change signal the driver waits on."""

    def __init__(self) -> None:
        self.snowflake = SnowflakeFactory()
        self.users: dict[int, User] = {}
        self.guilds: dict[int, Guild] = {}
        self.channels: dict[int, Channel] = {}  # every channel, guild or DM, by id
        self.messages: dict[int, list[Message]] = {}  # channel id -> messages, oldest first
        self.webhooks: dict[int, Webhook] = {}
        self.interactions: dict[int, Interaction] = {}
        self.commands: dict[int, dict[str, Any]] = {}  # id -> command payload (global or guild)
        self.attachments: dict[int, Attachment] = {}
        self.base_url = ""
        self._waiters: list[asyncio.Future[None]] = []
        self.version = 0

    # -- change signal ------------------------------------------------------------------------

    def changed(self) -> None:
        self.version += 1
        waiters, self._waiters = self._waiters, []
        for fut in waiters:
            if not fut.done():
                fut.set_result(None)

    async def wait_change(self, timeout: float) -> None:
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(fut)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(fut, timeout)

    # -- lookups ------------------------------------------------------------------------------

    def add_user(self, username: str, *, bot: bool = False, global_name: str | None = None,
                 avatar: str | None = None) -> User:
        user = User(self.snowflake(), username, global_name=global_name, avatar=avatar, bot=bot)
        self.users[user.id] = user
        return user

    def channel_guild(self, channel: Channel) -> Guild | None:
        return self.guilds.get(channel.guild_id) if channel.guild_id else None

    def channel_messages(self, channel_id: int) -> list[Message]:
        return self.messages.setdefault(channel_id, [])

    def find_message(self, channel_id: int, message_id: int) -> Message | None:
        for message in self.messages.get(channel_id, []):
            if message.id == message_id and not message.deleted:
                return message
        return None

    def message_by_id(self, message_id: int) -> Message | None:
        for messages in self.messages.values():
            for message in messages:
                if message.id == message_id and not message.deleted:
                    return message
        return None

    def resolve_mentions(self, message: Message) -> None:
        ids = dict.fromkeys(int(m) for m in MENTION_RE.findall(message.content or ""))
        message.mentions = [self.users[i] for i in ids if i in self.users]

    def add_message(self, message: Message) -> Message:
        self.resolve_mentions(message)
        self.channel_messages(message.channel_id).append(message)
        channel = self.channels.get(message.channel_id)
        if channel is not None:
            channel.last_message_id = message.id
        return message

    def new_attachment(self, filename: str, data: bytes, content_type: str | None,
                       description: str | None = None) -> Attachment:
        attachment = Attachment(self.snowflake(), filename, data, content_type, description, self.base_url)
        self.attachments[attachment.id] = attachment
        return attachment

    def commands_for(self, guild_id: int | None) -> list[dict[str, Any]]:
        """Global commands plus the guild's own (guild ones win on a name clash)."""
        found: dict[tuple[int, str], dict[str, Any]] = {}
        for cmd in self.commands.values():
            if cmd.get("guild_id") is None:
                found[(cmd.get("type", 1), cmd["name"])] = cmd
        for cmd in self.commands.values():
            if guild_id is not None and cmd.get("guild_id") == str(guild_id):
                found[(cmd.get("type", 1), cmd["name"])] = cmd
        return list(found.values())


def first(items: Iterable[Any], pred: Callable[[Any], bool]) -> Any | None:
    return next((item for item in items if pred(item)), None)
