"""``guildkeep playground``: the sandbox, the demo server and the real bot, driven from a terminal.

Plain text posts a message as the current member; ``/command opt:value ...`` runs a slash command;
lines starting with ``:`` are playground commands (``:help`` lists them). Images and other files the
bot sends are saved under ``playground-out/`` and their paths printed.
"""

from __future__ import annotations

import asyncio
import shlex
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TextIO

from guildkeep.sandbox.driver import DriverError, Reply, components_of
from guildkeep.sandbox.harness import SandboxEnv
from guildkeep.sandbox.server import LOADING
from guildkeep.sandbox.state import MENTION_RE, ChannelType, Message
from guildkeep.signals import read_line_async

HELP = """\
  text                         post a message as the current member (use @guildkeep to mention the bot)
  /command [sub] opt:value     run a slash command; quote values with spaces: name:"Big Bob"
  :as NAME                     speak as another member (alice, bob, carol)
  :channel NAME                switch channel (general, bot-commands, welcome-thread, Lounge)
  :click N|LABEL               click a button on the last message that has buttons
  :select [MENU] VALUE[,VALUE] pick option(s) in the last select menu
  :modal FIELD=VALUE ...       fill and submit the modal the bot opened
  :complete /command OPTION TEXT   what the bot suggests while typing OPTION
  :react EMOJI                 react to the last message in the channel
  :voice join [CHANNEL] [mute] [deaf] | :voice leave
  :read [N]                    show the last N messages of the channel (default 10)
  :who | :channels             members and their roles | channels
  :drop                        drop the bot's gateway connection (it resumes)
  :help | :quit"""


class Playground:
    """One terminal session: who is speaking, where, and what has been shown already."""

    def __init__(self, env: SandboxEnv, out: Callable[[str], None], out_dir: Path = Path("playground-out")) -> None:
        self.env = env
        self.driver = env.driver
        self.out = out
        self.out_dir = out_dir
        self.member = "alice"
        self.channel = "general"
        self._shown: dict[int, Any] = {}
        self._last_with_components: Message | None = None
        self._last_reply: Reply | None = None
        self._saved = 0

    # -- the loop -----------------------------------------------------------------------------

    @property
    def prompt(self) -> str:
        return f"{self.member} in #{self.channel}> "

    async def run_lines(self, lines: Iterable[str], *, echo: bool = True) -> None:
        for raw in lines:
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            if echo:
                self.out(self.prompt + line)
            if not await self.handle(line):
                return

    async def interactive(self) -> None:
        self.out("Type :help for the commands, :quit to leave.")
        while True:
            try:
                line = await read_line_async(self.prompt)  # a daemon thread: Ctrl-C/SIGTERM need not wait for Enter
            except EOFError:
                return
            if line.strip() and not await self.handle(line.strip()):
                return

    async def handle(self, line: str) -> bool:
        """Run one line; False means quit."""
        try:
            if line.startswith(":"):
                return await self._meta(line[1:])
            if line.startswith("/"):
                await self._slash(line[1:])
            else:
                text = line.replace("@guildkeep", self.driver.bot_mention)
                await self.driver.send(self.channel, text, as_=self.member)
            await self._settle()
            self.show_new()
        except (DriverError, ValueError) as exc:
            self.out(f"! {exc}")
        return True

    async def _settle(self, quiet: float = 0.3, limit: float = 5.0) -> None:
        """Let the bot finish reacting: wait until nothing changed for ``quiet`` seconds (at most ``limit``)."""
        world = self.driver.world
        loop = asyncio.get_running_loop()
        deadline = loop.time() + limit
        while loop.time() < deadline:
            before = world.version
            await world.wait_change(quiet)
            if world.version == before:
                return

    # -- slash commands -----------------------------------------------------------------------

    @staticmethod
    def parse_command(text: str) -> tuple[str, dict[str, str]]:
        """``xp give user:bob amount:5`` -> ("xp give", {"user": "bob", "amount": "5"})."""
        words: list[str] = []
        options: dict[str, str] = {}
        for token in shlex.split(text):
            name, sep, value = token.partition(":")
            if sep and name:
                options[name] = value
            elif options:
                raise ValueError(f"{token!r}: options are name:value")
            else:
                words.append(token)
        if not words:
            raise ValueError("which command? e.g. /help")
        return " ".join(words), options

    async def _slash(self, text: str) -> None:
        command, options = self.parse_command(text)
        reply = await self.driver.slash(command, as_=self.member, channel=self.channel, options=options,
                                        as_admin_override=True)
        self._after_reply(reply)

    def _after_reply(self, reply: Reply) -> None:
        self._last_reply = reply
        if reply.modal is not None:
            fields = [c for c in components_of(reply.modal.get("components") or []) if c.get("type") == 4]
            self.out(f"  [modal] {reply.modal.get('title')}: "
                     + ", ".join(f"{c.get('label') or c['custom_id']}" for c in fields)
                     + "  -> submit with :modal FIELD=VALUE ...")

    # -- playground commands ------------------------------------------------------------------

    async def _meta(self, text: str) -> bool:
        word, _, rest = text.strip().partition(" ")
        rest = rest.strip()
        handler = {
            "quit": None, "q": None, "exit": None,
            "help": self._help, "as": self._as, "channel": self._channel, "click": self._click,
            "select": self._select, "modal": self._modal, "complete": self._complete, "react": self._react,
            "voice": self._voice, "read": self._read, "who": self._who, "channels": self._channels,
            "drop": self._drop,
        }
        if word not in handler:
            raise ValueError(f"unknown :{word}; try :help")
        action = handler[word]
        if action is None:
            return False
        await action(rest)
        return True

    async def _help(self, _rest: str) -> None:
        self.out(HELP)

    async def _as(self, rest: str) -> None:
        self.member = self.driver.member(rest).user.username
        self.out(f"  now speaking as {self.member}")

    async def _channel(self, rest: str) -> None:
        self.channel = self.driver.channel(rest).name or rest
        self.out(f"  now in #{self.channel}")

    def _need_components(self) -> Message:
        if self._last_with_components is None:
            raise ValueError("no message with buttons or menus yet")
        return self._last_with_components

    async def _click(self, rest: str) -> None:
        target: str | int = int(rest) if rest.isdigit() else rest
        reply = await self.driver.click(self._need_components(), target, as_=self.member)
        self._after_reply(reply)
        await self._settle()
        self.show_new()

    async def _select(self, rest: str) -> None:
        parts = shlex.split(rest)
        if not parts:
            raise ValueError(":select [MENU] VALUE[,VALUE]")
        message = self._need_components()
        menus = [c for c in components_of(message.components) if c.get("type") in (3, 5, 6, 7, 8)]
        if not menus:
            raise ValueError("the last message has no select menu")
        target: str | int = parts[0] if len(parts) > 1 else 1
        values = (parts[1] if len(parts) > 1 else parts[0]).split(",")
        reply = await self.driver.select(message, target, values, as_=self.member)
        self._after_reply(reply)
        await self._settle()
        self.show_new()

    async def _modal(self, rest: str) -> None:
        if self._last_reply is None or self._last_reply.modal is None:
            raise ValueError("the bot has not opened a modal")
        values = dict(part.split("=", 1) for part in shlex.split(rest) if "=" in part)
        reply = await self.driver.submit_modal(self._last_reply, values, as_=self.member)
        self._after_reply(reply)
        await self._settle()
        self.show_new()

    async def _complete(self, rest: str) -> None:
        parts = shlex.split(rest)
        if len(parts) < 2:
            raise ValueError(":complete /command OPTION [TEXT]")
        command, option, typed = parts[0].lstrip("/"), parts[1], " ".join(parts[2:])
        choices = await self.driver.autocomplete(command, option, typed, as_=self.member, channel=self.channel)
        self.out("  suggestions: " + (", ".join(f"{c['name']}" for c in choices) or "(none)"))

    async def _react(self, rest: str) -> None:
        visible = self.driver.read(self.channel, as_=self.member)
        if not visible:
            raise ValueError("nothing to react to here")
        await self.driver.react(visible[-1].message, rest or "👍", as_=self.member)
        await self._settle()
        self.show_new()

    async def _voice(self, rest: str) -> None:
        words = rest.split()
        if not words or words[0] not in ("join", "leave"):
            raise ValueError(":voice join [CHANNEL] [mute] [deaf] | :voice leave")
        if words[0] == "leave":
            await self.driver.leave_voice(self.member)
            self.out(f"  {self.member} left voice")
        else:
            flags = {w for w in words[1:] if w in ("mute", "deaf")}
            names = [w for w in words[1:] if w not in flags]
            channel = names[0] if names else next(
                c.name for c in self.driver._guild().channels.values() if c.type == ChannelType.VOICE)
            await self.driver.join_voice(self.member, channel or "", mute="mute" in flags, deaf="deaf" in flags)
            self.out(f"  {self.member} joined voice #{channel}" + (f" ({', '.join(sorted(flags))})" if flags else ""))
        await self._settle()
        self.show_new()

    async def _read(self, rest: str) -> None:
        count = int(rest) if rest.isdigit() else 10
        for seen in self.driver.read(self.channel, as_=self.member, limit=count):
            self._print(seen.message, force=True)

    async def _who(self, _rest: str) -> None:
        guild = self.driver._guild()
        for member in guild.members.values():
            roles = sorted((guild.roles[r] for r in member.roles if r in guild.roles), key=lambda r: -r.position)
            voice = ""
            if member.voice and member.voice.channel_id:
                voice = f"  [voice #{guild.channels[member.voice.channel_id].name}]"
            self.out(f"  {member.user.username:<10} {', '.join(r.name for r in roles) or '-'}{voice}")

    async def _channels(self, _rest: str) -> None:
        kinds = {0: "text", 2: "voice", 4: "category", 11: "thread", 12: "thread"}
        for channel in self.driver._guild().channels.values():
            self.out(f"  #{channel.name} ({kinds.get(channel.type, channel.type)})")

    async def _drop(self, _rest: str) -> None:
        await self.driver.drop_connection()
        await self.env.wait_ready()
        self.out("  the bot lost its gateway connection and resumed")

    # -- showing what the member sees ---------------------------------------------------------

    def show_new(self) -> None:
        """Print messages new or changed since the last look: this channel and the member's DMs."""
        driver = self.driver
        member = driver.member(self.member)
        channels = [driver.channel(self.channel)]
        channels += [c for c in driver.world.channels.values()
                     if c.type == ChannelType.DM and any(u.id == member.user.id for u in c.recipients)]
        for channel in channels:
            for message in driver.server.visible(channel.id, member.user.id):
                self._print(message)

    def _print(self, message: Message, *, force: bool = False) -> None:
        state = (message.edited_at, message.flags, len(message.reactions))
        if not force and self._shown.get(message.id) == state:
            return
        edited = message.id in self._shown and not force
        self._shown[message.id] = state
        channel = self.driver.world.channels[message.channel_id]
        seen = next((s for s in self.driver.read(channel, as_=self.member) if s.id == message.id), None) \
            if channel.guild_id else None
        author = seen.author if seen else message.author.username
        where = "DM" if channel.type == ChannelType.DM else f"#{channel.name}"
        tags = []
        if message.author.bot or message.webhook_id:
            tags.append("webhook" if seen and seen.is_webhook else "bot")
        if message.ephemeral:
            tags.append("only you can see this")
        if edited:
            tags.append("edited")
        label = f"[{where}] {author}" + (f" ({', '.join(tags)})" if tags else "") + ":"
        text = f"{self.driver.bot_user.username} is thinking..." if message.flags & LOADING else message.content
        text = MENTION_RE.sub(lambda m: "@" + self._name(int(m.group(1))), text)
        self.out(f"{label} {text}".rstrip())
        if seen and seen.is_webhook and seen.avatar_url:
            self.out(f"  avatar: {seen.avatar_url}")
        for embed in message.embeds:
            self._print_embed(embed)
        self._print_components(message)
        for attachment in message.attachments:
            self._saved += 1
            self.out_dir.mkdir(parents=True, exist_ok=True)
            path = self.out_dir / f"{message.id}-{attachment.filename}"
            path.write_bytes(attachment.data)
            self.out(f"  attachment saved: {path} ({len(attachment.data)} bytes)")
        reactions = [f"{emoji} {len(users)}" for emoji, users in message.reactions.items() if users]
        if reactions:
            self.out("  reactions: " + "  ".join(reactions))

    def _name(self, user_id: int) -> str:
        guild = self.driver.guild
        member = guild.members.get(user_id) if guild else None
        if member is not None:
            return member.display_name
        user = self.driver.world.users.get(user_id)
        return user.username if user else str(user_id)

    def _print_embed(self, embed: dict[str, Any]) -> None:
        bar = "  |"
        if embed.get("author", {}).get("name"):
            self.out(f"{bar} {embed['author']['name']}")
        if embed.get("title"):
            self.out(f"{bar} ** {embed['title']} **")
        for line in (embed.get("description") or "").splitlines():
            self.out(f"{bar} {line}")
        for fld in embed.get("fields") or []:
            self.out(f"{bar} {fld.get('name')}: {fld.get('value')}")
        if embed.get("image", {}).get("url"):
            self.out(f"{bar} [image {embed['image']['url']}]")
        if embed.get("footer", {}).get("text"):
            self.out(f"{bar} -- {embed['footer']['text']}")

    def _print_components(self, message: Message) -> None:
        comps = list(components_of(message.components))
        buttons = [c for c in comps if c.get("type") == 2]
        menus = [c for c in comps if c.get("type") in (3, 5, 6, 7, 8)]
        if not (buttons or menus):
            return
        self._last_with_components = message
        if buttons:
            shown = []
            for n, button in enumerate(buttons, 1):
                label = button.get("label") or button.get("emoji", {}).get("name") or button.get("custom_id")
                shown.append(f"[{n} {label}{' (disabled)' if button.get('disabled') else ''}]")
            self.out("  buttons: " + " ".join(shown) + "   -> :click N")
        for menu in menus:
            options = ", ".join(f"{o.get('label')}={o.get('value')}" for o in menu.get("options") or [])
            self.out(f"  menu '{menu.get('placeholder') or menu.get('custom_id')}': {options}   -> :select VALUE")


def console_writer(stream: TextIO | None = None) -> Callable[[str], None]:
    target = stream or sys.stdout

    def write(line: str) -> None:
        target.write(line + "\n")
        target.flush()

    return write
