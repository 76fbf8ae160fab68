"""``guildkeep playground``: the sandbox, the demo server and the real bot, driven from a terminal.

Plain text posts a message as the current member; ``/command opt:value ...`` runs a slash command;
lines starting with ``:`` are playground commands (``:help`` lists them). Images and other files the
bot sends are saved under ``playground-out/`` and their paths printed.
"""

from __future__ import annotations

import asyncio
import re
import shlex
import sys
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import Any, TextIO

from prompt_toolkit.history import History, InMemoryHistory
from rich.console import Console, RenderableType
from rich.constrain import Constrain
from rich.padding import Padding
from rich.style import Style
from rich.text import Text

from guildkeep.clock import CLOCK, describe, parse_shift
from guildkeep.playground.reset import forget
from guildkeep.sandbox.driver import Driver, DriverError, Reply, components_of
from guildkeep.sandbox.persist import WorldFile
from guildkeep.sandbox.render import Names, embed_panel, render_text
from guildkeep.sandbox.server import LOADING
from guildkeep.sandbox.state import Channel, ChannelType, Member, Message, Role
from guildkeep.signals import read_line_async
from guildkeep.testing.harness import SandboxEnv

HELP = """\
  The bot's own commands: /help lists them, /help command:NAME explains one.
  text                         post a message as the current member; @name and #channel become mentions
  /command [sub] opt:value     run a slash command; quote values with spaces: name:"Big Bob"
  :as NAME                     speak as another member ({members})
  :channel NAME                switch channel ({channels})
  :click N|LABEL               click a button on the last message that has buttons
  :select [MENU] VALUE[,VALUE] pick option(s) in the last select menu
  :modal FIELD=VALUE ...       fill and submit the modal the bot opened
  :complete COMMAND [SUB ...] OPTION [TEXT]   what the bot suggests while you type TEXT in OPTION
  :react EMOJI [N|ID]          react to the latest message everyone sees (not an ephemeral reply),
                               or the N-th latest (:read numbers them), or a message by id
  :join voice [CHANNEL] [mute] [deaf] | :leave voice   join or leave a voice channel (the bot sees it)
  :add member NAME [ROLE ...]  a new member joins the server (with those roles)
  :add role NAME               a new role (placed just above @everyone)
  :add channel NAME [text|voice]   a new channel
  :read [N]                    show the last N messages of the channel (default 10)
  :who | :channels             members and their roles | channels
  :clock [+1d|+2h|+30m|reset]  show or move the bot's clock (daily rewards, streaks, quest resets, cooldowns)
  :reset                       start over: a new server, the bot's data about the old one deleted (asks first)
  :drop                        drop the bot's gateway connection (it resumes)
  :help | :quit"""


StartEnv = Callable[[], Awaitable[SandboxEnv]]
Out = Callable[[RenderableType], None]
EMBED_WIDTH = 80
USERNAME_RE = re.compile(r"[a-z0-9_.]{2,32}")
MEMBER_WORD = re.compile(r"(?<![\w<@&!])@([\w.]+\w)")
CHANNEL_WORD = re.compile(r"(?<![\w<&])#([\w-]+)")



def _handlers_running() -> bool:
    """Whether one of the bot's event handlers (discord.py runs each as a task of that name) is still running."""
    return any(not t.done() and t.get_name().startswith("discord.py: ") for t in asyncio.all_tasks())

class Playground:
    """One terminal session: who is speaking, where, and what has been shown already.

    With ``store`` the world is saved after every line (and the clock's offset with it); with ``start``
    (which starts a fresh sandbox and bot) ``:reset`` can start over.
    """

    def __init__(self, env: SandboxEnv, out: Out, out_dir: Path = Path("playground-out"), *,
                 store: WorldFile | None = None, start: StartEnv | None = None) -> None:
        self.env = env
        self.out = out
        self.store = store
        self._start = start
        self._confirm: Callable[[], Awaitable[None]] | None = None
        self.out_dir = out_dir
        self.member = "alice"
        self.channel = "general"
        self._shown: dict[int, Any] = {}
        self._last_with_components: Message | None = None
        self._last_reply: Reply | None = None
        self._saved = 0
        self._mark_seen()

    def _mark_seen(self) -> None:
        """What the world already holds (a restored one) is history: shown by :read, not as new."""
        for messages in self.driver.world.messages.values():
            for message in messages:
                self._shown[message.id] = (message.edited_at, message.flags, len(message.reactions))

    @property
    def driver(self) -> Driver:
        return self.env.driver

    @property
    def last_with_components(self) -> Message | None:
        """The last message shown that has buttons or menus (what :click and :select act on)."""
        return self._last_with_components

    @property
    def last_reply(self) -> Reply | None:
        """The bot's last answer to an interaction (a modal it opened is here)."""
        return self._last_reply

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

    async def interactive(self, history: History | None = None) -> None:
        """Prompt on the terminal: the line editor (history, arrows, Tab completion) when stdin and stdout
        are terminals, a plain line reader otherwise."""
        if sys.stdin.isatty() and sys.stdout.isatty():
            from guildkeep.playground.editor import edit_lines

            self.out("Type :help for the commands, Tab to complete, :quit or Ctrl-D to leave.")
            await edit_lines(self, history or InMemoryHistory())
            return
        self.out("Type :help for the commands, :quit to leave.")
        while True:
            try:
                line = await read_line_async(self.prompt)  # a daemon thread: Ctrl-C/SIGTERM need not wait
            except EOFError:
                return
            if line.strip() and not await self.handle(line.strip()):
                return

    async def handle(self, line: str) -> bool:
        """Run one line; False means quit. The world is saved afterwards (when there is a store)."""
        try:
            return await self._handle(line)
        finally:
            self.save()

    def save(self) -> None:
        if self.store is None:
            return
        try:
            self.store.save(self.env.server, clock_offset=CLOCK.offset.total_seconds())
        except OSError as exc:
            self.out(f"! the world could not be saved to {self.store.path}: {exc}")

    async def _handle(self, line: str) -> bool:
        try:
            if self._confirm is not None:
                action, self._confirm = self._confirm, None
                if line.strip().lower() in ("y", "yes"):
                    await action()
                else:
                    self.out("  cancelled")
                return True
            if line.startswith(":"):
                return await self._meta(line[1:])
            if line.startswith("/"):
                await self._slash(line[1:])
            else:
                await self.driver.send(self.channel, self.with_mentions(line), as_=self.member)
            await self._settle()
            self.show_new()
        except (DriverError, ValueError) as exc:
            self.out(f"! {exc}")
        return True

    def with_mentions(self, text: str) -> str:
        """``@bob`` and ``#general`` typed in a message become the mentions a client would send."""
        guild = self.driver._guild()

        def member(match: re.Match[str]) -> str:
            name = match.group(1).lower()
            for m in guild.members.values():
                if name in {n.lower() for n in (m.user.username, m.nick, m.user.global_name) if n}:
                    return f"<@{m.user.id}>"
            return match.group(0)

        def channel(match: re.Match[str]) -> str:
            found = next((c for c in guild.channels.values() if (c.name or "").lower() == match.group(1).lower()),
                         None)
            return f"<#{found.id}>" if found else match.group(0)

        return CHANNEL_WORD.sub(channel, MEMBER_WORD.sub(member, text))

    async def _settle(self, quiet: float = 0.3, limit: float = 5.0) -> None:
        """Let the bot finish reacting: wait until nothing changed for ``quiet`` seconds and none of its event
        handlers is still running (a reply waiting for the model shows nothing for a while), at most ``limit``."""
        world = self.driver.world
        loop = asyncio.get_running_loop()
        deadline = loop.time() + limit
        while loop.time() < deadline:
            before = world.version
            await world.wait_change(quiet)
            if world.version == before and not _handlers_running():
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
            "drop": self._drop, "clock": self._clock, "reset": self._reset, "add": self._add,
            "join": self._join, "leave": self._leave,
        }
        if word not in handler:
            raise ValueError(f"unknown :{word}; try :help")
        action = handler[word]
        if action is None:
            return False
        await action(rest)
        return True

    async def _help(self, _rest: str) -> None:
        channels = ", ".join(c.name or "" for c in self.driver._guild().channels.values()
                             if c.type != ChannelType.CATEGORY)
        self.out(HELP.format(members=self._member_names(), channels=channels))

    async def _as(self, rest: str) -> None:
        if not rest:
            raise ValueError(f":as NAME: one of {self._member_names()}")
        self.member = self._find_member(rest).user.username
        self.out(f"  now speaking as {self.member}")

    def _find_member(self, name: str) -> Member:
        wanted = name.strip().lstrip("@").lower()
        for member in self.driver._guild().members.values():
            if wanted in {n.lower() for n in (member.user.username, member.nick, member.user.global_name) if n}:
                return member
        raise ValueError(f"no member {name!r} (members: {self._member_names()}); add one with :add member NAME")

    def _member_names(self) -> str:
        return ", ".join(m.user.username for m in self.driver._guild().members.values() if not m.user.bot)

    def _find_role(self, name: str) -> Role:
        guild = self.driver._guild()
        wanted = name.strip().lstrip("@").lower()
        found = next((r for r in guild.roles.values() if r.name.lower() == wanted and r.id != guild.id), None)
        if found is None:
            names = ", ".join(r.name for r in guild.sorted_roles() if r.id != guild.id and not r.managed)
            raise ValueError(f"no role {name!r} (roles: {names}); add one with :add role NAME")
        return found

    def _find_channel(self, name: str) -> Channel:
        guild = self.driver._guild()
        wanted = name.strip().lstrip("#").lower()
        found = next((c for c in guild.channels.values() if (c.name or "").lower() == wanted), None)
        if found is None:
            names = ", ".join(c.name or "" for c in guild.channels.values() if c.type != ChannelType.CATEGORY)
            raise ValueError(f"no channel {name!r} (channels: {names}); add one with :add channel NAME")
        return found

    # -- building the server ------------------------------------------------------------------

    async def _add(self, rest: str) -> None:
        words = shlex.split(rest)
        kind, args = (words[0], words[1:]) if words else ("", [])
        if kind == "member" and args:
            await self._add_member(args[0], args[1:])
        elif kind == "role" and len(args) == 1:
            await self._add_role(args[0])
        elif kind == "channel" and args and len(args) <= 2:
            await self._add_channel(args[0], args[1] if len(args) > 1 else "text")
        else:
            raise ValueError(":add member NAME [ROLE ...] | :add role NAME | :add channel NAME [text|voice]")
        await self._settle()

    async def _add_member(self, name: str, role_names: list[str]) -> None:
        username = name.lower()
        if not USERNAME_RE.fullmatch(username):
            raise ValueError("a member name is 2-32 letters, digits, '_' or '.', e.g. dave")
        guild = self.driver._guild()
        if any(username == m.user.username for m in guild.members.values()):
            raise ValueError(f"{username} is already a member; :as {username} to speak as them")
        roles = [self._find_role(r) for r in role_names]
        if any(r.managed for r in roles):
            raise ValueError("a bot's own role cannot be given to a member")
        member = await self.driver.add_member(username, roles=roles, global_name=name if name != username else None)
        shown = f" with {', '.join(r.name for r in roles)}" if roles else ""
        self.out(f"  {member.display_name} joined the server{shown}; :as {username} to speak as them")

    async def _add_role(self, name: str) -> None:
        guild = self.driver._guild()
        if not 1 <= len(name) <= 100:
            raise ValueError("a role name is 1-100 characters")
        if any(r.name.lower() == name.lower() for r in guild.roles.values()):
            raise ValueError(f"there is already a role {name!r}")
        # Discord puts a new role just above @everyone; the bot can manage it.
        role = await self.driver.create_role(name, position=1)
        self.out(f"  role @{role.name} created; give it with :add member NAME {shlex.quote(role.name)}")

    async def _add_channel(self, name: str, kind: str) -> None:
        if kind not in ("text", "voice"):
            raise ValueError(":add channel NAME [text|voice]")
        guild = self.driver._guild()
        if kind == "text":  # Discord's rule for text channel names: lower case, no spaces
            name = re.sub(r"\s+", "-", name.strip().lower())
        if not 1 <= len(name) <= 100:
            raise ValueError("a channel name is 1-100 characters")
        if any((c.name or "").lower() == name.lower() for c in guild.channels.values()):
            raise ValueError(f"there is already a channel #{name}")
        parent = next((c for c in guild.channels.values()
                       if c.type == ChannelType.CATEGORY and kind == "text"), None)
        channel = await self.driver.create_channel(
            name, kind=ChannelType.TEXT if kind == "text" else ChannelType.VOICE, parent=parent)
        hint = f":channel {channel.name}" if kind == "text" else f":join voice {channel.name}"
        self.out(f"  {kind} channel #{channel.name} created; {hint}")

    async def _join(self, rest: str) -> None:
        words = rest.split()
        if not words or words[0] != "voice":
            raise ValueError(":join voice [CHANNEL] [mute] [deaf]")
        await self._voice("join " + " ".join(words[1:]))

    async def _leave(self, rest: str) -> None:
        if rest.strip() != "voice":
            raise ValueError(":leave voice")
        await self._voice("leave")

    async def _channel(self, rest: str) -> None:
        channel = self._find_channel(rest)
        if channel.type not in (ChannelType.TEXT, *ChannelType.THREADS):
            raise ValueError(f"#{channel.name} is not a text channel or thread")
        self.channel = channel.name or rest
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
        """``:complete levels config setting [TEXT]`` (or ``/levels config setting:TEXT``): what the bot
        suggests while the member types TEXT into that option."""
        usage = ":complete COMMAND [SUBCOMMAND ...] OPTION [TEXT]  e.g. :complete levels config setting xp"
        words = [w for part in shlex.split(rest) for w in (part.split() if part.startswith("/") else [part])]
        if not words:
            raise ValueError(usage)
        path, options, used = self.command_path(words)
        known = {o["name"]: o for o in options if o.get("type") not in (1, 2)}
        if not known:
            subs = ", ".join(o["name"] for o in options)
            raise ValueError(f"/{' '.join(path)} needs a subcommand: one of {subs}" if subs
                             else f"/{' '.join(path)} has no options")
        filled: dict[str, str] = {}
        focused: tuple[str, str] | None = None
        rest_words = words[used:]
        for n, word in enumerate(rest_words):
            name, sep, value = word.partition(":")
            if name in known and not sep:
                focused = (name, " ".join(rest_words[n + 1:]))
                break
            if name in known and sep:
                filled[name] = value
                continue
            raise ValueError(f"/{' '.join(path)} has no option {word!r} (options: {', '.join(known)})")
        if focused is None:
            if not filled:
                raise ValueError(f"which option? /{' '.join(path)} has {', '.join(known)}")
            name = list(filled)[-1]
            focused = (name, filled.pop(name))
        if not known[focused[0]].get("autocomplete"):
            raise ValueError(f"option {focused[0]!r} of /{' '.join(path)} has no suggestions from the bot"
                             + (f" (choices: {', '.join(c['name'] for c in known[focused[0]]['choices'])})"
                                if known[focused[0]].get("choices") else ""))
        choices = await self.driver.autocomplete(" ".join(path), focused[0], focused[1], as_=self.member,
                                                 channel=self.channel, options=filled)
        self.out("  suggestions: " + (", ".join(f"{c['name']}" for c in choices) or "(none)"))

    def command_path(self, words: list[str]) -> tuple[list[str], list[dict[str, Any]], int]:
        """Walk the bot's synced commands along ``words`` (``/levels config ...``): the command and
        subcommand names found, the options at that level, and how many words they took."""
        name = words[0].lstrip("/")
        commands = {c["name"]: c for c in self.driver.world.commands_for(self.driver._guild().id)
                    if c.get("type", 1) == 1}
        if name not in commands:
            raise ValueError(f"no slash command /{name} (try /help)")
        path, options, used = [name], commands[name].get("options") or [], 1
        for word in words[1:]:
            sub = next((o for o in options if o["name"] == word and o.get("type") in (1, 2)), None)
            if sub is None:
                break
            path.append(word)
            options = sub.get("options") or []
            used += 1
        return path, options, used

    async def _react(self, rest: str) -> None:
        """``:react EMOJI [N|MESSAGE_ID]``: the latest message everyone can see (not an ephemeral reply),
        the N-th latest (as ``:read`` numbers them), or a message by id."""
        words = rest.split()
        if not words or len(words) > 2:
            raise ValueError(":react EMOJI [N|MESSAGE_ID]  (N=1 is the latest message, as :read numbers them)")
        emoji, target = words[0], words[1] if len(words) > 1 else "1"
        if not target.isdigit() or int(target) == 0:
            raise ValueError(f"{target!r}: give N (1 is the latest message) or a message id")
        seen = self.driver.read(self.channel, as_=self.member)
        visible = [s.message for s in seen if not s.ephemeral]
        number = int(target)
        if number >= 1_000_000:  # a message id
            found = next((s for s in seen if s.id == number), None)
            if found is None:
                raise ValueError(f"no message {number} in #{self.channel}")
            if found.ephemeral:
                raise ValueError("that reply is ephemeral (only you can see it): it takes no reactions")
            message = found.message
        elif number <= len(visible):
            message = visible[-number]
        else:
            raise ValueError(f"#{self.channel} has {len(visible)} message(s) everyone can see" if visible
                             else f"nothing to react to in #{self.channel}")
        await self.driver.react(message, emoji, as_=self.member)
        await self._settle()
        self.show_new()

    async def _voice(self, rest: str) -> None:
        words = shlex.split(rest)
        if not words or words[0] not in ("join", "leave"):
            raise ValueError(":join voice [CHANNEL] [mute] [deaf] | :leave voice")
        member = self._find_member(self.member)
        if words[0] == "leave":
            if member.voice is None or member.voice.channel_id is None:
                raise ValueError(f"{self.member} is not in a voice channel")
            await self.driver.leave_voice(member)
            self.out(f"  {self.member} left voice")
        else:
            flags = {w for w in words[1:] if w in ("mute", "deaf")}
            names = [w for w in words[1:] if w not in flags]
            if len(names) > 1:
                raise ValueError(":join voice [CHANNEL] [mute] [deaf] (quote a name with spaces)")
            voice = [c for c in self.driver._guild().channels.values() if c.type == ChannelType.VOICE]
            if names:
                channel = self._find_channel(names[0])
                if channel.type != ChannelType.VOICE:
                    raise ValueError(f"#{channel.name} is not a voice channel")
            elif voice:
                channel = voice[0]
            else:
                raise ValueError("there is no voice channel; add one with :add channel NAME voice")
            await self.driver.join_voice(member, channel, mute="mute" in flags, deaf="deaf" in flags)
            self.out(f"  {self.member} joined voice #{channel.name}"
                     + (f" ({', '.join(sorted(flags))})" if flags else ""))
        await self._settle()
        self.show_new()

    async def _read(self, rest: str) -> None:
        """The last N messages; each everyone can see is numbered (1 = latest) for ``:react EMOJI N``."""
        count = int(rest) if rest.isdigit() else 10
        seen = self.driver.read(self.channel, as_=self.member)
        public = [s.id for s in seen if not s.ephemeral]
        for item in seen[-count:]:
            number = len(public) - public.index(item.id) if item.id in public else None
            self._print(item.message, force=True, number=number)

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

    async def _clock(self, rest: str) -> None:
        """``:clock`` shows the bot's time; ``:clock +1d`` moves it; ``:clock reset`` goes back to real time."""
        if rest == "reset":
            CLOCK.reset()
        elif rest:
            CLOCK.advance(parse_shift(rest))
        if rest:
            await self.env.run_periodic_jobs()  # quest resets and voice time catch up with the new time
            await self._settle()
            self.show_new()
        self.out(f"  bot time: {CLOCK.now():%a %Y-%m-%d %H:%M} UTC ({describe(CLOCK.offset)})")

    async def _reset(self, _rest: str) -> None:
        if self._start is None:
            raise ValueError(":reset is not available in this session")
        guild = self.driver._guild()
        self.out(f"  :reset deletes the server '{guild.name}' (id {guild.id}) with its channels, members and "
                 "messages, and everything the bot stored about them (XP, quests, wallets, ...), then starts a "
                 "new server. Type yes to go on, anything else to keep it.")
        self._confirm = self._do_reset

    async def _do_reset(self) -> None:
        assert self._start is not None
        world = self.driver.world
        guild_ids, user_ids = set(world.guilds), set(world.users)
        db = self.env.db
        await self.env.stop()
        removed = await forget(db, guild_ids, user_ids)
        CLOCK.reset()
        if self.store is not None:
            self.store.remove()
        self.env = await self._start()
        self.member, self.channel = "alice", "general"
        self._shown.clear()
        self._mark_seen()
        self._last_with_components = None
        self._last_reply = None
        guild = self.driver._guild()
        self.out(f"  deleted {removed} row(s) of the bot's data; new server '{guild.name}' (id {guild.id}), "
                 "the clock is back to real time")

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

    def _names(self, channel: Channel) -> Names:
        return Names(self.driver.world, self.driver.world.channel_guild(channel) or self.driver.guild, CLOCK.now)

    def _print(self, message: Message, *, force: bool = False, number: int | None = None) -> None:
        state = (message.edited_at, message.flags, len(message.reactions))
        if not force and self._shown.get(message.id) == state:
            return
        before = self._shown.get(message.id)
        edited = before is not None and before[:2] != state[:2] and not force  # not just new reactions
        self._shown[message.id] = state
        channel = self.driver.world.channels[message.channel_id]
        names = self._names(channel)
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
        line = Text()
        if number is not None:
            line.append(f"({number}) ", style="dim")
        line.append(f"[{where}] ", style="dim")
        colour = None if seen and seen.is_webhook else names.member_colour(message.author.id)
        line.append(author, style=Style(bold=True) + colour if colour else "bold")
        if tags:
            line.append(f" ({', '.join(tags)})", style="dim")
        line.append(":")
        if message.flags & LOADING:
            line.append(f" {self.driver.bot_user.username} is thinking...", style="italic dim")
        elif message.content:
            line.append(" ")
            line.append_text(render_text(message.content, names))
        self.out(line)
        if seen and seen.is_webhook and seen.avatar_url:
            self.out(f"  avatar: {seen.avatar_url}")
        for embed in message.embeds:
            self.out(Padding(Constrain(embed_panel(embed, names), EMBED_WIDTH), (0, 0, 0, 2), expand=False))
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


def console_writer(stream: TextIO | None = None, *, color: bool | None = None, width: int | None = None) -> Out:
    """Print lines and renderables on ``stream`` (stdout). Colour only on a terminal and without NO_COLOR
    (rich decides), unless ``color`` forces it on or off."""
    console = Console(file=stream or sys.stdout, highlight=False, soft_wrap=True, emoji=False, width=width,
                      force_terminal=color, no_color=None if color is None else not color)

    def write(item: RenderableType) -> None:
        # Lines flow as the terminal wraps them; boxes wrap their text inside.
        console.print(item, markup=False, soft_wrap=isinstance(item, str | Text))

    return write
