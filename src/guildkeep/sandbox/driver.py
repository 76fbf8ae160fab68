"""The test API: act as members do (post, react, join voice, run slash commands, click, submit modals)
and read what members see. Every wait is ``wait_for`` with a timeout and a message saying what was awaited.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import secrets
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from guildkeep.sandbox.server import LOADING, SandboxServer
from guildkeep.sandbox.state import (
    Attachment,
    Channel,
    ChannelType,
    Guild,
    Interaction,
    Member,
    Message,
    Perm,
    Role,
    User,
    VoiceState,
    World,
    now,
)

T = TypeVar("T")
DEFAULT_TIMEOUT = 15.0
LISTEN_TIMEOUT = 2.0
ATTACHMENT_SIZE_LIMIT = 10 * 1024 * 1024

MemberRef = Member | User | str
ChannelRef = Channel | str
RoleRef = Role | str


class DriverError(AssertionError):
    """Something a member could not do, or something that did not happen in time."""


class SandboxTimeout(DriverError):
    pass


@dataclass
class SeenMessage:
    """A message as a member sees it in the channel."""

    id: int
    author: str  # display name (a webhook message shows its username override)
    author_id: int
    avatar_url: str | None
    content: str
    embeds: list[dict[str, Any]]
    attachments: list[Attachment]
    components: list[dict[str, Any]]
    is_bot: bool
    is_webhook: bool
    ephemeral: bool
    message: Message


def components_of(rows: list[dict[str, Any]]) -> Iterable[dict[str, Any]]:
    """Every component, depth first, whatever the layout (action rows, containers, sections, labels)."""
    for comp in rows:
        yield comp
        for key in ("components", "accessory", "component"):
            child = comp.get(key)
            if isinstance(child, list):
                yield from components_of(child)
            elif isinstance(child, dict):
                yield from components_of([child])


def embed_text(embed: dict[str, Any]) -> str:
    parts = [embed.get("title") or "", embed.get("description") or ""]
    for fld in embed.get("fields") or []:
        parts += [fld.get("name") or "", fld.get("value") or ""]
    parts.append((embed.get("footer") or {}).get("text") or "")
    parts.append((embed.get("author") or {}).get("name") or "")
    return "\n".join(p for p in parts if p)


@dataclass
class Reply:
    """What the bot answered to one interaction."""

    driver: Driver
    interaction: Interaction
    member: Member
    message: Message | None = None
    modal: dict[str, Any] | None = None
    choices: list[dict[str, Any]] | None = None

    @property
    def content(self) -> str:
        return self.message.content if self.message else ""

    @property
    def embeds(self) -> list[dict[str, Any]]:
        return self.message.embeds if self.message else []

    @property
    def embed(self) -> dict[str, Any]:
        if not self.embeds:
            raise DriverError(f"the reply has no embed; content was {self.content!r}")
        return self.embeds[0]

    @property
    def text(self) -> str:
        """Content plus every embed's text, for easy ``in`` assertions."""
        return "\n".join([self.content, *(embed_text(e) for e in self.embeds)]).strip()

    @property
    def ephemeral(self) -> bool:
        return bool(self.message and self.message.ephemeral)

    @property
    def attachments(self) -> list[Attachment]:
        return self.message.attachments if self.message else []

    @property
    def components(self) -> list[dict[str, Any]]:
        return self.message.components if self.message else []

    @property
    def buttons(self) -> list[dict[str, Any]]:
        return [c for c in components_of(self.components) if c.get("type") == 2]

    @property
    def followups(self) -> list[Message]:
        world = self.driver.world
        found = (world.message_by_id(i) for i in self.interaction.followup_ids)
        return [m for m in found if m is not None]

    async def click(self, target: str | int, *, as_: MemberRef | None = None, **kw: Any) -> Reply:
        return await self.driver.click(self._need_message(), target, as_=as_ or self.member, **kw)

    async def select(self, target: str, values: list[str] | str, *, as_: MemberRef | None = None,
                     **kw: Any) -> Reply:
        return await self.driver.select(self._need_message(), target, values, as_=as_ or self.member, **kw)

    async def submit(self, values: dict[str, str], *, as_: MemberRef | None = None, **kw: Any) -> Reply:
        return await self.driver.submit_modal(self, values, as_=as_ or self.member, **kw)

    async def wait_followup(self, count: int = 1, timeout: float | None = None) -> Message:
        await self.driver.wait_for(lambda: len(self.followups) >= count, f"{count} followup(s)", timeout)
        return self.followups[count - 1]

    def _need_message(self) -> Message:
        if self.message is None:
            raise DriverError("the bot's answer has no message to interact with")
        return self.message


@dataclass
class Driver:
    """Acts on a sandbox server as its members. ``guild`` is the guild names are looked up in."""

    server: SandboxServer
    guild: Guild | None = None
    timeout: float = DEFAULT_TIMEOUT
    _last_reply: dict[int, Reply] = field(default_factory=dict)
    #: Set by an in-process harness: does the bot listen to (message id, component type, custom_id) yet?
    #: A client registers a message's view only after Discord answered it, so a click sent the instant the
    #: reply exists can reach the bot before it listens; with this hook the driver waits for that first.
    component_listened: Callable[[int, int, str], bool] | None = None

    @property
    def world(self) -> World:
        return self.server.world

    @property
    def bot_user(self) -> User:
        return self.server.bot_user

    # -- waiting ------------------------------------------------------------------------------

    async def wait_for(self, predicate: Callable[[], Awaitable[T | None] | T | None], what: str,
                       timeout: float | None = None) -> T:
        """Return ``predicate()``'s first truthy value; fail after ``timeout`` saying what was awaited."""
        timeout = self.timeout if timeout is None else timeout
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            result = predicate()
            if inspect.isawaitable(result):
                result = await result
            if result:
                return result  # type: ignore[return-value]
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise SandboxTimeout(f"timed out after {timeout:.1f}s waiting for {what}{self._recent_errors()}")
            # Woken by any sandbox change; re-checked at least every 50 ms for bot-side state (the database).
            await self.world.wait_change(min(remaining, 0.05))

    def _recent_errors(self, since: int = 0) -> str:
        failed = [r for r in self.server.requests[since:] if r.status >= 400][-3:]
        if not failed:
            return ""
        return "; the bot's last failed requests: " + ", ".join(f"{r.method} {r.path} -> {r.status}" for r in failed)

    async def wait_for_message(self, channel: ChannelRef, predicate: Callable[[Message], bool] | None = None,
                               what: str = "a message", timeout: float | None = None,
                               *, after: Message | None = None) -> Message:
        chan = self.channel(channel)

        def find() -> Message | None:
            for message in self.world.channel_messages(chan.id):
                if message.deleted or (after is not None and message.id <= after.id):
                    continue
                if predicate is None or predicate(message):
                    return message
            return None

        return await self.wait_for(find, f"{what} in #{chan.name}", timeout)

    async def wait_for_bot_message(self, channel: ChannelRef, *, after: Message | None = None,
                                   timeout: float | None = None) -> Message:
        return await self.wait_for_message(
            channel, lambda m: m.author.id == self.bot_user.id and not m.ephemeral, "a message from the bot",
            timeout, after=after)

    # -- lookups ------------------------------------------------------------------------------

    def _guild(self, guild: Guild | None = None) -> Guild:
        found = guild or self.guild
        if found is None:
            raise DriverError("no guild: create one with driver.create_guild(...) first")
        return found

    def member(self, ref: MemberRef, guild: Guild | None = None) -> Member:
        if isinstance(ref, Member):
            return ref
        g = self._guild(guild)
        if isinstance(ref, User):
            found = g.members.get(ref.id)
        else:
            found = next((m for m in g.members.values()
                          if ref in (m.user.username, m.nick, m.user.global_name)), None)
        if found is None:
            names = ", ".join(m.user.username for m in g.members.values())
            raise DriverError(f"no member {ref!r} in {g.name} (members: {names})")
        return found

    def channel(self, ref: ChannelRef, guild: Guild | None = None) -> Channel:
        if isinstance(ref, Channel):
            return ref
        g = self._guild(guild)
        name = ref.lstrip("#")
        found = next((c for c in g.channels.values() if c.name == name), None)
        if found is None:
            names = ", ".join(str(c.name) for c in g.channels.values())
            raise DriverError(f"no channel {ref!r} in {g.name} (channels: {names})")
        return found

    def role(self, ref: RoleRef, guild: Guild | None = None) -> Role:
        if isinstance(ref, Role):
            return ref
        g = self._guild(guild)
        found = next((r for r in g.roles.values() if r.name in (ref, ref.lstrip("@"))), None)
        if found is None:
            raise DriverError(f"no role {ref!r} in {g.name} (roles: {', '.join(r.name for r in g.roles.values())})")
        return found

    @staticmethod
    def mention(who: Member | User | Role) -> str:
        if isinstance(who, Role):
            return f"<@&{who.id}>"
        user = who.user if isinstance(who, Member) else who
        return f"<@{user.id}>"

    @property
    def bot_mention(self) -> str:
        return f"<@{self.bot_user.id}>"

    # -- building the world -------------------------------------------------------------------

    def create_user(self, username: str, *, global_name: str | None = None, bot: bool = False) -> User:
        return self.world.add_user(username, global_name=global_name, bot=bot)

    def create_guild(self, name: str, owner: str | User = "owner", *, bot_permissions: Iterable[str] | None = None,
                     guild_id: int | None = None) -> Guild:
        """A guild with @everyone, the bot's managed role and the owner; the bot sees it when it (re)connects."""
        user = owner if isinstance(owner, User) else self.create_user(owner)
        perms = Perm.of(bot_permissions) if bot_permissions is not None else None
        guild = self.server.create_guild(name, user, bot_permissions=perms, guild_id=guild_id)
        if self.guild is None:
            self.guild = guild
        return guild

    async def announce_guild(self, guild: Guild) -> None:
        """Tell connected bots about a guild created after they connected (GUILD_CREATE, as when invited)."""
        await self.server.dispatch("GUILD_CREATE", guild.payload(), guild.id)

    async def create_role(self, name: str, permissions: Iterable[str] = (), *, position: int | None = None,
                          guild: Guild | None = None, color: int = 0) -> Role:
        g = self._guild(guild)
        top = max((r.position for r in g.roles.values()), default=0)
        role = Role(self.world.snowflake(), g.id, name, Perm.of(permissions), position or top + 1, color=color)
        if position is not None:
            for other in g.roles.values():
                if other.position >= position and other.id != g.id:
                    other.position += 1
        g.roles[role.id] = role
        await self.server.dispatch("GUILD_ROLE_CREATE", {"guild_id": str(g.id), "role": role.payload()}, g.id)
        return role

    async def add_member(self, username: str | User, *, roles: Iterable[RoleRef] = (), nick: str | None = None,
                         guild: Guild | None = None, global_name: str | None = None) -> Member:
        g = self._guild(guild)
        user = username if isinstance(username, User) else self.create_user(username, global_name=global_name)
        member = Member(user, g.id, roles=[self.role(r, g).id for r in roles], nick=nick)
        g.members[user.id] = member
        await self.server.dispatch("GUILD_MEMBER_ADD", {"guild_id": str(g.id), **member.payload()}, g.id)
        return member

    async def remove_member(self, who: MemberRef, guild: Guild | None = None) -> None:
        g = self._guild(guild)
        member = self.member(who, g)
        del g.members[member.user.id]
        await self.server.dispatch("GUILD_MEMBER_REMOVE",
                                   {"guild_id": str(g.id), "user": member.user.payload()}, g.id)

    async def give_role(self, who: MemberRef, role: RoleRef) -> None:
        member = self.member(who)
        r = self.role(role)
        if r.id not in member.roles:
            member.roles.append(r.id)
            await self.server.member_updated(self.world.guilds[member.guild_id], member)

    async def take_role(self, who: MemberRef, role: RoleRef) -> None:
        member = self.member(who)
        r = self.role(role)
        if r.id in member.roles:
            member.roles.remove(r.id)
            await self.server.member_updated(self.world.guilds[member.guild_id], member)

    async def set_nick(self, who: MemberRef, nick: str | None) -> None:
        member = self.member(who)
        member.nick = nick
        await self.server.member_updated(self.world.guilds[member.guild_id], member)

    async def create_channel(self, name: str, *, kind: int = ChannelType.TEXT, parent: ChannelRef | None = None,
                             topic: str | None = None, guild: Guild | None = None) -> Channel:
        g = self._guild(guild)
        parent_id = self.channel(parent, g).id if parent is not None else None
        channel = Channel(self.world.snowflake(), kind, name, g.id, position=len(g.channels), parent_id=parent_id,
                          topic=topic)
        g.channels[channel.id] = channel
        self.world.channels[channel.id] = channel
        await self.server.dispatch("CHANNEL_CREATE", channel.payload(), g.id)
        return channel

    async def create_thread(self, parent: ChannelRef, name: str, *, owner: MemberRef | None = None) -> Channel:
        base = self.channel(parent)
        g = self.world.guilds[base.guild_id or 0]
        owner_id = self.member(owner, g).user.id if owner is not None else g.owner_id
        thread = Channel(self.world.snowflake(), ChannelType.PUBLIC_THREAD, name, g.id, parent_id=base.id,
                         owner_id=owner_id)
        g.channels[thread.id] = thread
        self.world.channels[thread.id] = thread
        await self.server.dispatch("THREAD_CREATE", {**thread.payload(), "newly_created": True}, g.id)
        return thread

    async def set_permissions(self, channel: ChannelRef, target: MemberRef | RoleRef, *,
                              allow: Iterable[str] = (), deny: Iterable[str] = ()) -> None:
        """A channel permission overwrite for a role (by name or Role) or a member."""
        chan = self.channel(channel)
        g = self.world.guilds[chan.guild_id or 0]
        if isinstance(target, Role) or (isinstance(target, str) and any(r.name in (target, target.lstrip("@"))
                                                                        for r in g.roles.values())):
            target_id, target_type = self.role(target, g).id, 0  # type: ignore[arg-type]
        else:
            target_id, target_type = self.member(target, g).user.id, 1
        self.server.add_overwrite(chan, target_id, target_type, Perm.of(allow), Perm.of(deny))
        await self.server.dispatch("CHANNEL_UPDATE", chan.payload(), g.id)

    async def set_bot_permissions(self, permissions: Iterable[str], guild: Guild | None = None) -> None:
        """Replace the permissions of the bot's own (managed) role."""
        g = self._guild(guild)
        role = next(r for r in g.roles.values() if r.managed and r.name == self.bot_user.username)
        role.permissions = Perm.of(permissions)
        await self.server.dispatch("GUILD_ROLE_UPDATE", {"guild_id": str(g.id), "role": role.payload()}, g.id)

    # -- acting as a member -------------------------------------------------------------------

    def _can(self, member: Member, channel: Channel, perm: int, doing: str) -> None:
        g = self.world.guilds[member.guild_id]
        if not g.permissions_in(member, channel) & perm:
            raise DriverError(f"{member.user.username} cannot {doing} in #{channel.name} (missing permission)")

    async def send(self, channel: ChannelRef, content: str = "", *, as_: MemberRef,
                   files: Iterable[tuple[str, bytes]] = (), reply_to: Message | None = None) -> Message:
        """Post a message as a member; the bot receives MESSAGE_CREATE."""
        chan = self.channel(channel)
        member = self.member(as_, self.world.guilds.get(chan.guild_id or 0))
        self._can(member, chan, Perm.SEND_MESSAGES_IN_THREADS if chan.is_thread else Perm.SEND_MESSAGES,
                  "send messages")
        message = Message(self.world.snowflake(), chan.id, chan.guild_id, member.user, content=content,
                          type=19 if reply_to else 0, reference_id=reply_to.id if reply_to else None)
        message.attachments = [self.world.new_attachment(name, data, None) for name, data in files]
        self.world.add_message(message)
        await self.server.dispatch("MESSAGE_CREATE", self.server.message_payload(message), chan.guild_id)
        return message

    async def edit(self, message: Message, content: str) -> Message:
        message.content = content
        message.edited_at = now()
        self.world.resolve_mentions(message)
        await self.server.dispatch("MESSAGE_UPDATE", self.server.message_payload(message), message.guild_id)
        return message

    async def delete(self, message: Message) -> None:
        await self.server.remove_message(message)

    async def react(self, message: Message, emoji: str, *, as_: MemberRef) -> None:
        member = self.member(as_)
        if message.ephemeral:
            raise DriverError("ephemeral messages take no reactions (Discord's client offers none)")
        chan = self.world.channels[message.channel_id]
        if not message.reactions.get(emoji):
            self._can(member, chan, Perm.ADD_REACTIONS, "add reactions")
        await self.server.react(message, member.user, emoji, add=True)

    async def unreact(self, message: Message, emoji: str, *, as_: MemberRef) -> None:
        await self.server.react(message, self.member(as_).user, emoji, add=False)

    async def join_voice(self, who: MemberRef, channel: ChannelRef, *, mute: bool = False,
                         deaf: bool = False) -> None:
        member = self.member(who)
        chan = self.channel(channel)
        if chan.type != ChannelType.VOICE:
            raise DriverError(f"#{chan.name} is not a voice channel")
        self._can(member, chan, Perm.CONNECT, "connect")
        session = member.voice.session_id if member.voice else secrets.token_hex(16)
        member.voice = VoiceState(chan.id, self_mute=mute, self_deaf=deaf, session_id=session)
        await self.server.dispatch("VOICE_STATE_UPDATE", member.voice_payload(), member.guild_id)

    async def set_voice(self, who: MemberRef, *, mute: bool | None = None, deaf: bool | None = None) -> None:
        member = self.member(who)
        if member.voice is None or member.voice.channel_id is None:
            raise DriverError(f"{member.user.username} is not in a voice channel")
        if mute is not None:
            member.voice.self_mute = mute
        if deaf is not None:
            member.voice.self_deaf = deaf
        await self.server.dispatch("VOICE_STATE_UPDATE", member.voice_payload(), member.guild_id)

    async def leave_voice(self, who: MemberRef) -> None:
        member = self.member(who)
        if member.voice is None:
            return
        member.voice = VoiceState(None, session_id=member.voice.session_id)
        await self.server.dispatch("VOICE_STATE_UPDATE", member.voice_payload(), member.guild_id)

    # -- reading ------------------------------------------------------------------------------

    def read(self, channel: ChannelRef, *, as_: MemberRef, limit: int | None = None) -> list[SeenMessage]:
        """The channel as a member sees it, oldest first (their own ephemeral replies included)."""
        chan = self.channel(channel)
        g = self.world.guilds.get(chan.guild_id or 0)
        member = self.member(as_, g)
        if g is not None:
            self._can(member, chan, Perm.VIEW_CHANNEL, "view the channel")
        seen = []
        for message in self.server.visible(chan.id, member.user.id):
            content = f"{self.bot_user.username} is thinking..." if message.flags & LOADING else message.content
            author_member = g.members.get(message.author.id) if g else None
            webhook = message.webhook_id is not None and message.interaction_id is None
            if webhook:
                name, avatar = message.webhook_name or "Webhook", message.webhook_avatar_url
            else:
                name = author_member.display_name if author_member else message.author.username
                avatar = (f"{self.server.base_url}/avatars/{message.author.id}/{message.author.avatar}.png"
                          if message.author.avatar else None)
            seen.append(SeenMessage(message.id, name, message.author.id, avatar, content, message.embeds,
                                    message.attachments, message.components, message.author.bot or webhook, webhook,
                                    message.ephemeral, message))
        return seen[-limit:] if limit else seen

    # -- interactions -------------------------------------------------------------------------

    def find_command(self, name: str, guild: Guild | None = None) -> dict[str, Any]:
        g = self._guild(guild)
        for cmd in self.world.commands_for(g.id):
            if cmd["name"] == name and cmd.get("type", 1) == 1:
                return cmd
        known = ", ".join(sorted("/" + c["name"] for c in self.world.commands_for(g.id)))
        raise DriverError(f"no slash command /{name} is registered (registered: {known or 'none'})")

    def _interaction_payload(self, inter: Interaction, member: Member, channel: Channel,
                             message: Message | None = None) -> dict[str, Any]:
        g = self.world.guilds[member.guild_id]
        payload: dict[str, Any] = {
            "id": str(inter.id),
            "application_id": str(self.server.application_id),
            "type": inter.type,
            "data": inter.data,
            "guild_id": str(g.id),
            "guild": {"id": str(g.id), "locale": "en-US", "features": []},
            "channel_id": str(channel.id),
            "channel": channel.payload(),
            "member": member.payload(permissions=g.permissions_in(member, channel)),
            "token": inter.token,
            "version": 1,
            "locale": "en-US",
            "guild_locale": "en-US",
            "app_permissions": str(self.server.bot_permissions(channel)),
            "entitlements": [],
            "entitlement_sku_ids": [],
            "authorizing_integration_owners": {"0": str(g.id)},
            "context": 0,
            "attachment_size_limit": ATTACHMENT_SIZE_LIMIT,
        }
        if message is not None:
            payload["message"] = self.server.message_payload(message, member.user.id)
        return payload

    async def _until_listened(self, message: Message, component_type: int, custom_id: str) -> None:
        """Wait (briefly) until the bot listens to the component; a view that ended is clicked anyway, since
        what the player then sees is part of what a test checks."""
        listened = self.component_listened
        if listened is None:
            return
        with contextlib.suppress(SandboxTimeout):
            await self.wait_for(lambda: listened(message.id, component_type, custom_id),
                                f"the bot to listen to {custom_id!r}", LISTEN_TIMEOUT)

    async def _interact(self, kind: int, data: dict[str, Any], member: Member, channel: Channel, *, what: str,
                        message: Message | None = None, timeout: float | None = None,
                        opened_by: Interaction | None = None) -> Reply:
        inter = Interaction(self.world.snowflake(), f"itoken.{secrets.token_urlsafe(32)}", kind, member.guild_id,
                            channel.id, member.user, data, source_message_id=message.id if message else None,
                            opened_by=opened_by)
        self.world.interactions[inter.id] = inter
        mark = len(self.server.requests)
        await self.server.dispatch("INTERACTION_CREATE", self._interaction_payload(inter, member, channel, message),
                                   member.guild_id)

        def answered() -> bool:
            return inter.completed

        try:
            await self.wait_for(answered, what, timeout)
        except SandboxTimeout:
            state = {None: "no answer at all", 5: "it deferred ('thinking...') and never followed up",
                     6: "it deferred the update and never edited the message"}.get(inter.response_type, "")
            raise SandboxTimeout(f"the bot did not answer {what} within {timeout or self.timeout:.1f}s "
                                 f"({state}){self._recent_errors(mark)}") from None
        reply = Reply(self, inter, member)
        if inter.response_type in (4, 5):
            reply.message = self.world.message_by_id(inter.response_message_id or 0)
        elif inter.response_type in (6, 7):
            reply.message = self.world.message_by_id(inter.source_message_id or 0)
        elif inter.response_type == 9:
            reply.modal = inter.modal
            reply.message = message
        elif inter.response_type == 8:
            reply.choices = inter.choices
        self._last_reply[member.user.id] = reply
        return reply

    def _check_default_permissions(self, cmd: dict[str, Any], member: Member, channel: Channel) -> None:
        needed = cmd.get("default_member_permissions")
        if needed is None:
            return
        g = self.world.guilds[member.guild_id]
        have = g.permissions_in(member, channel)
        if int(needed) & ~have and not have & Perm.ADMINISTRATOR:
            raise DriverError(f"{member.user.username} cannot see /{cmd['name']}: Discord hides it from members "
                              f"without its default permissions ({needed}); pass as_admin_override=True to model "
                              "a server that granted it in Integrations settings")

    async def slash(self, command: str, /, *, as_: MemberRef, channel: ChannelRef = "bot-commands",
                    timeout: float | None = None, as_admin_override: bool = False,
                    options: dict[str, Any] | None = None, **more_options: Any) -> Reply:
        """Invoke ``/command [subcommand ...]`` as a member with typed options; return the bot's answer.

        Options go as keywords (``amount=5, user="bob"``), or in ``options=`` when a name clashes with
        a parameter here (``channel``, ``timeout``). Users, roles and channels are given by name.
        """
        options = {**(options or {}), **more_options}
        chan = self.channel(channel)
        member = self.member(as_, self.world.guilds.get(chan.guild_id or 0))
        data, cmd = self._command_data(command, options, chan)
        if not as_admin_override:
            self._check_default_permissions(cmd, member, chan)
        return await self._interact(2, data, member, chan, what=f"/{command}", timeout=timeout)

    async def autocomplete(self, command: str, focused: str, typed: str, /, *, as_: MemberRef,
                           channel: ChannelRef = "bot-commands", timeout: float | None = None,
                           options: dict[str, Any] | None = None, **more_options: Any) -> list[dict[str, Any]]:
        """What the bot suggests for option ``focused`` while the member has typed ``typed``."""
        options = {**(options or {}), **more_options}
        chan = self.channel(channel)
        member = self.member(as_, self.world.guilds.get(chan.guild_id or 0))
        data, _cmd = self._command_data(command, options, chan, focused=(focused, typed))
        reply = await self._interact(4, data, member, chan, what=f"autocomplete of /{command} {focused}",
                                     timeout=timeout)
        return reply.choices or []

    async def message_command(self, name: str, message: Message, /, *, as_: MemberRef,
                              timeout: float | None = None, as_admin_override: bool = False) -> Reply:
        """Run the message context-menu command ``name`` (Apps -> name) on ``message`` as a member."""
        chan = self.world.channels[message.channel_id]
        g = self.world.guilds.get(chan.guild_id or 0)
        member = self.member(as_, g)
        self._can(member, chan, Perm.VIEW_CHANNEL, "view the channel")
        cmd = next((c for c in self.world.commands_for(self._guild(g).id)
                    if c["name"] == name and c.get("type") == 3), None)
        if cmd is None:
            raise DriverError(f"no message command {name!r} is registered")
        if not as_admin_override:
            self._check_default_permissions(cmd, member, chan)
        data: dict[str, Any] = {"id": cmd["id"], "name": name, "type": 3, "target_id": str(message.id),
                                "resolved": {"messages": {
                                    str(message.id): self.server.message_payload(message, member.user.id)}}}
        if cmd.get("guild_id"):
            data["guild_id"] = cmd["guild_id"]
        return await self._interact(2, data, member, chan, what=f"the message command {name!r}", timeout=timeout)

    def _command_data(self, command: str, values: dict[str, Any], channel: Channel,
                      focused: tuple[str, str] | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
        name, *path = command.strip().lstrip("/").split()
        cmd = self.find_command(name, self.world.guilds.get(channel.guild_id or 0))
        resolved: dict[str, dict[str, Any]] = {}
        spec_options = cmd.get("options") or []
        options: list[dict[str, Any]] = []
        holder = options
        for part in path:
            sub = next((o for o in spec_options if o["name"] == part and o["type"] in (1, 2)), None)
            if sub is None:
                subs = ", ".join(o["name"] for o in spec_options if o["type"] in (1, 2))
                raise DriverError(f"/{name} has no subcommand {part!r} (has: {subs or 'none'})")
            node = {"type": sub["type"], "name": part, "options": []}
            holder.append(node)
            holder = node["options"]
            spec_options = sub.get("options") or []
        if any(o["type"] in (1, 2) for o in spec_options):
            subs = ", ".join(o["name"] for o in spec_options)
            raise DriverError(f"/{command} needs a subcommand: one of {subs}")
        known = {o["name"]: o for o in spec_options}
        for key in values:
            if key not in known:
                raise DriverError(f"/{command} has no option {key!r} (options: {', '.join(known) or 'none'})")
        for opt in spec_options:
            if focused is not None and opt["name"] == focused[0]:
                holder.append({"name": opt["name"], "type": opt["type"], "value": focused[1], "focused": True})
                continue
            if opt["name"] not in values:
                if opt.get("required") and focused is None:
                    raise DriverError(f"/{command} needs option {opt['name']!r}")
                continue
            holder.append({"name": opt["name"], "type": opt["type"],
                           "value": self._option_value(opt, values[opt["name"]], channel, resolved, command)})
        data: dict[str, Any] = {"id": cmd["id"], "name": name, "type": 1, "options": options}
        if cmd.get("guild_id"):
            data["guild_id"] = cmd["guild_id"]
        if resolved:
            data["resolved"] = resolved
        return data, cmd

    def _option_value(self, opt: dict[str, Any], value: Any, channel: Channel,
                      resolved: dict[str, dict[str, Any]], command: str) -> Any:
        kind = opt["type"]
        g = self.world.guilds.get(channel.guild_id or 0)
        try:
            if kind == 3:
                value = str(value)
            elif kind == 4:
                value = int(value)
            elif kind == 10:
                value = float(value)
            elif kind == 5:
                value = value if isinstance(value, bool) else str(value).lower() in ("1", "true", "yes", "on")
        except ValueError:
            raise DriverError(f"/{command} option {opt['name']!r} wants a number, got {value!r}") from None
        if kind in (4, 10):
            low, high = opt.get("min_value"), opt.get("max_value")
            if (low is not None and value < low) or (high is not None and value > high):
                raise DriverError(f"Discord refuses {opt['name']}={value}: allowed range is {low}..{high}")
        if kind == 3:
            low, high = opt.get("min_length"), opt.get("max_length")
            if (low is not None and len(value) < low) or (high is not None and len(value) > high):
                raise DriverError(f"Discord refuses {opt['name']}: length must be {low}..{high}")
        if opt.get("choices") and kind in (3, 4, 10):
            allowed = {c["value"]: c["name"] for c in opt["choices"]}
            by_name = {c["name"]: c["value"] for c in opt["choices"]}
            if value not in allowed:
                if str(value) in by_name:
                    return by_name[str(value)]
                raise DriverError(f"{opt['name']} must be one of {sorted(map(str, allowed))}, got {value!r}")
        if kind == 9:
            is_role = isinstance(value, Role) or (isinstance(value, str) and g is not None and any(
                r.name in (value, value.lstrip("@")) for r in g.roles.values()))
            kind = 8 if is_role else 6
        if kind == 6 and isinstance(value, User) and (g is None or value.id not in g.members):
            # a user who is not a member (left, or never joined): Discord resolves the user alone
            resolved.setdefault("users", {})[str(value.id)] = value.payload()
            return str(value.id)
        if kind == 6:
            member = self.member(value, g)
            resolved.setdefault("users", {})[str(member.user.id)] = member.user.payload()
            resolved.setdefault("members", {})[str(member.user.id)] = member.payload(
                with_user=False, permissions=g.permissions_in(member, channel) if g else 0)
            return str(member.user.id)
        if kind == 8:
            role = self.role(value, g)
            resolved.setdefault("roles", {})[str(role.id)] = role.payload()
            return str(role.id)
        if kind == 7:
            chan = self.channel(value, g)
            resolved.setdefault("channels", {})[str(chan.id)] = {
                **chan.payload(), "permissions": str(Perm.ALL)}
            return str(chan.id)
        if kind == 11:
            filename, blob = value
            attachment = self.world.new_attachment(filename, blob, None)
            resolved.setdefault("attachments", {})[str(attachment.id)] = attachment.payload()
            return str(attachment.id)
        return value

    def _find_component(self, message: Message, target: str | int, kinds: tuple[int, ...]) -> dict[str, Any]:
        candidates = [c for c in components_of(message.components) if c.get("type") in kinds]
        if isinstance(target, int):
            if not 1 <= target <= len(candidates):
                raise DriverError(f"there is no component #{target}; the message has {len(candidates)}")
            return candidates[target - 1]
        for comp in candidates:
            if target in (comp.get("custom_id"), comp.get("label"), comp.get("placeholder")):
                return comp
        shown = ", ".join(repr(c.get("label") or c.get("placeholder") or c.get("custom_id")) for c in candidates)
        raise DriverError(f"no component {target!r} on the message (it has: {shown or 'none'})")

    async def click(self, message: Message, target: str | int, *, as_: MemberRef,
                    timeout: float | None = None) -> Reply:
        """Click a button by label, custom_id or 1-based position; return the bot's answer."""
        button = self._find_component(message, target, (2,))
        if button.get("disabled"):
            raise DriverError(f"button {button.get('label')!r} is disabled")
        if button.get("style") == 5 or not button.get("custom_id"):
            raise DriverError(f"button {button.get('label')!r} is a link to {button.get('url')}, not a bot button")
        chan = self.world.channels[message.channel_id]
        member = self.member(as_, self.world.guilds.get(chan.guild_id or 0))
        data = {"custom_id": button["custom_id"], "component_type": 2}
        if "id" in button:
            data["id"] = button["id"]
        await self._until_listened(message, 2, button["custom_id"])
        return await self._interact(3, data, member, chan, what=f"a click on {button.get('label')!r}",
                                    message=message, timeout=timeout)

    async def select(self, message: Message, target: str | int, values: list[str] | str, *, as_: MemberRef,
                     timeout: float | None = None) -> Reply:
        """Pick option value(s) (or labels) in a select menu."""
        menu = self._find_component(message, target, (3, 5, 6, 7, 8))
        picked = [values] if isinstance(values, str) else list(values)
        if menu["type"] == 3:
            options = menu.get("options") or []
            by_label = {o["label"]: o["value"] for o in options}
            valid = {o["value"] for o in options}
            picked = [v if v in valid else by_label.get(v, v) for v in picked]
            bad = [v for v in picked if v not in valid]
            if bad:
                raise DriverError(f"select {menu.get('custom_id')!r} has no option(s) {bad}; options: {sorted(valid)}")
        low, high = menu.get("min_values", 1), menu.get("max_values", 1)
        if not low <= len(picked) <= high:
            raise DriverError(f"select {menu.get('custom_id')!r} takes {low}..{high} values, got {len(picked)}")
        chan = self.world.channels[message.channel_id]
        member = self.member(as_, self.world.guilds.get(chan.guild_id or 0))
        data = {"custom_id": menu["custom_id"], "component_type": menu["type"], "values": picked}
        await self._until_listened(message, menu["type"], menu["custom_id"])
        return await self._interact(3, data, member, chan, what=f"a pick in {menu.get('custom_id')!r}",
                                    message=message, timeout=timeout)

    async def submit_modal(self, reply: Reply, values: dict[str, str], *, as_: MemberRef,
                           timeout: float | None = None) -> Reply:
        """Fill the modal the bot opened (fields by custom_id or label) and submit it."""
        if reply.modal is None:
            raise DriverError("the bot did not open a modal")
        modal = reply.modal
        inputs = [c for c in components_of(modal.get("components") or []) if c.get("type") == 4]
        labels: dict[Any, Any] = {c.get("label"): c["custom_id"] for c in inputs}
        for wrapper in components_of(modal.get("components") or []):
            if wrapper.get("type") == 18 and isinstance(wrapper.get("component"), dict):
                labels[wrapper.get("label")] = wrapper["component"].get("custom_id")
        filled = {labels.get(k, k): v for k, v in values.items()}
        unknown = set(filled) - {c["custom_id"] for c in inputs}
        if unknown:
            raise DriverError(f"the modal has no field(s) {sorted(unknown)}; fields: {sorted(labels)}")
        for comp in inputs:
            value = filled.get(comp["custom_id"], comp.get("value") or "")
            if comp.get("required", True) and not value:
                raise DriverError(f"modal field {comp.get('label') or comp['custom_id']!r} is required")
            if comp.get("max_length") is not None and len(value) > comp["max_length"]:
                raise DriverError(f"modal field {comp['custom_id']!r} allows {comp['max_length']} characters")

        def answer(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
            out = []
            for comp in rows:
                if comp.get("type") == 4:
                    out.append({"type": 4, "custom_id": comp["custom_id"], "id": comp.get("id", 0),
                                "value": filled.get(comp["custom_id"], comp.get("value") or "")})
                elif comp.get("type") == 18 and isinstance(comp.get("component"), dict):
                    out.append({"type": 18, "id": comp.get("id", 0), "component": answer([comp["component"]])[0]})
                elif comp.get("type") == 1:
                    out.append({"type": 1, "id": comp.get("id", 0), "components": answer(comp.get("components") or [])})
            return out

        chan = self.world.channels[reply.interaction.channel_id]
        member = self.member(as_, self.world.guilds.get(chan.guild_id or 0))
        data = {"custom_id": modal["custom_id"], "components": answer(modal.get("components") or [])}
        return await self._interact(5, data, member, chan, what=f"the modal {modal.get('title')!r}",
                                    message=reply.message, timeout=timeout, opened_by=reply.interaction)

    # -- connection ---------------------------------------------------------------------------

    async def drop_connection(self, *, resumable: bool = True) -> int:
        """Close the bot's gateway connection(s): 4000 lets it RESUME; 4009 makes it identify again."""
        if not resumable:
            for session in self.server.gateway.sessions.values():
                session.sent.clear()
            self.server.gateway.sessions.clear()
        return await self.server.gateway.drop(code=4000 if resumable else 4009)
