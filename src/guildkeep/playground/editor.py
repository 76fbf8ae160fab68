"""The playground's line editor on a terminal (prompt_toolkit): history kept in a file, arrow keys,
Tab completion of slash commands, subcommands, options and their values (from the commands the bot
synced, as the sandbox knows them), of ``:`` commands and of member, role and channel names.
Ctrl-C cancels the line, Ctrl-D leaves.
"""

from __future__ import annotations

import asyncio
import shlex
import signal
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from prompt_toolkit import PromptSession
from prompt_toolkit.completion import CompleteEvent, Completer, Completion
from prompt_toolkit.document import Document
from prompt_toolkit.history import FileHistory, History, InMemoryHistory

from guildkeep.sandbox.driver import components_of
from guildkeep.sandbox.state import ChannelType

if TYPE_CHECKING:
    from guildkeep.playground.console import Playground

#: ``:`` commands and what may follow each (for completion).
META_WORDS: dict[str, tuple[str, ...]] = {
    "as": ("<member>",), "channel": ("<text-channel>",), "click": (), "select": (), "modal": (),
    "complete": ("<command>",), "react": (), "read": (), "who": (), "channels": (), "clock": ("+1d", "+2h", "+7d",
    "+30m", "reset"), "reset": (), "drop": (), "help": (), "quit": (), "add": ("member", "role", "channel"),
    "join": ("voice",), "leave": ("voice",), "voice": ("join", "leave"),
}


class PlaygroundCompleter(Completer):
    """Completes what the player types, from the live world (so new members and channels appear at once)."""

    def __init__(self, playground: Playground) -> None:
        self.playground = playground

    # -- what exists ---------------------------------------------------------------------------

    def _guild(self) -> Any:
        return self.playground.driver._guild()

    def members(self) -> list[str]:
        return [m.user.username for m in self._guild().members.values()]

    def roles(self) -> list[str]:
        guild = self._guild()
        return [r.name for r in guild.sorted_roles() if r.id != guild.id and not r.managed]

    def channels(self, *kinds: int) -> list[str]:
        return [c.name or "" for c in self._guild().channels.values() if not kinds or c.type in kinds]

    def commands(self) -> dict[str, dict[str, Any]]:
        world = self.playground.driver.world
        return {c["name"]: c for c in world.commands_for(self._guild().id) if c.get("type", 1) == 1}

    # -- completion ----------------------------------------------------------------------------

    def get_completions(self, document: Document, complete_event: CompleteEvent) -> Iterator[Completion]:
        text = document.text_before_cursor
        words = text.split()
        partial = "" if not text or text[-1].isspace() else words.pop()
        try:
            if text.startswith("/"):
                candidates = self._slash(words, partial)
            elif text.startswith(":"):
                candidates = self._meta(words, partial)
            else:
                candidates = self._text(partial)
            yield from _matching(candidates, partial)
        except (LookupError, ValueError):  # an unknown name typed so far: nothing to suggest
            return

    def _text(self, partial: str) -> Iterable[str]:
        if partial.startswith("@"):
            return ["@" + name for name in self.members()]
        if partial.startswith("#"):
            return ["#" + name for name in self.channels(ChannelType.TEXT, *ChannelType.THREADS)]
        return []

    def _meta(self, words: list[str], partial: str) -> Iterable[str]:
        if not words:
            return [":" + w for w in META_WORDS]
        word = words[0].lstrip(":")
        args = words[1:]
        if word == "as":
            return self.members() if not args else []
        if word == "channel":
            return self.channels(ChannelType.TEXT, *ChannelType.THREADS) if not args else []
        if word in ("click", "select", "modal"):
            return self._components(word) if not args or word == "modal" else []
        if word == "complete":
            return self._slash(["/" + args[0].lstrip("/"), *args[1:]] if args else [], partial, bare=True)
        if word == "add":
            if not args:
                return META_WORDS["add"]
            if args[0] == "member" and len(args) >= 2:
                return self.roles()
            if args[0] == "channel" and len(args) == 2:
                return ["text", "voice"]
            return []
        if word in ("join", "voice"):
            if not args:
                return META_WORDS[word]
            if args[0] in ("voice", "join"):
                return [*self.channels(ChannelType.VOICE), "mute", "deaf"]
            return []
        if not args:
            return META_WORDS.get(word, ())
        return []

    def _components(self, word: str) -> list[str]:
        """Button labels, select option values or modal fields of what the bot showed last."""
        if word == "modal":
            reply = self.playground.last_reply
            modal = reply.modal if reply is not None else None
            fields = [c for c in components_of((modal or {}).get("components") or []) if c.get("type") == 4]
            return [f"{c['custom_id']}=" for c in fields]
        message = self.playground.last_with_components
        if message is None:
            return []
        comps = list(components_of(message.components))
        if word == "click":
            return [str(c.get("label")) for c in comps if c.get("type") == 2 and c.get("label")
                    and c.get("custom_id") and not c.get("disabled")]
        return [str(o.get("value")) for c in comps if c.get("type") == 3 for o in c.get("options") or []]

    def _slash(self, words: list[str], partial: str, *, bare: bool = False) -> Iterable[str]:
        commands = self.commands()
        prefix = "" if bare else "/"
        if not words:  # the commands with most under them first: /lev offers /levels before /level
            ranked = sorted(commands, key=lambda n: (-_leaves(commands[n].get("options") or []), n))
            return [prefix + name for name in ranked]
        name = words[0].lstrip("/")
        options = commands[name].get("options") or []
        given: set[str] = set()
        for word in words[1:]:
            sub = next((o for o in options if o["name"] == word and o.get("type") in (1, 2)), None)
            if sub is not None and not given:
                options = sub.get("options") or []
                continue
            given.add(word.partition(":")[0])
        subs = [o["name"] for o in options if o.get("type") in (1, 2)]
        if subs:
            return subs if not given else []
        plain = [o for o in options if o["name"] not in given]
        if ":" in partial and not bare:
            option_name = partial.partition(":")[0]
            option = next((o for o in options if o["name"] == option_name), None)
            return [f"{option_name}:{_quoted(v)}" for v in self._values(option)] if option else []
        if bare:  # :complete COMMAND ... OPTION [TEXT]: the options the bot suggests values for
            return [o["name"] for o in plain if o.get("autocomplete")] if not given else []
        return [o["name"] + ":" for o in plain]

    def _values(self, option: dict[str, Any]) -> list[str]:
        kind = option.get("type")
        if option.get("choices"):
            return [str(c["name"]) for c in option["choices"]]
        if kind == 5:
            return ["true", "false"]
        if kind == 6:
            return self.members()
        if kind == 7:
            return self.channels()
        if kind == 8:
            return self.roles()
        if kind == 9:
            return [*self.members(), *self.roles()]
        return []


def _leaves(options: list[dict[str, Any]]) -> int:
    """How many runnable commands sit under a command (1 for a command without subcommands)."""
    subs = [o for o in options if o.get("type") in (1, 2)]
    return sum(_leaves(o.get("options") or []) for o in subs) if subs else 1


def _quoted(value: str) -> str:
    return shlex.quote(value) if any(ch.isspace() for ch in value) else value


def _matching(candidates: Iterable[str], partial: str) -> Iterator[Completion]:
    low = partial.lower()
    seen: set[str] = set()
    for candidate in candidates:
        if candidate.lower().startswith(low) and candidate not in seen:
            seen.add(candidate)
            yield Completion(candidate, start_position=-len(partial))


def history_for(state_path: Path | None) -> History:
    """Lines typed before, kept beside the world's state file (in memory when the world is not kept)."""
    if state_path is None:
        return InMemoryHistory()
    state_path.parent.mkdir(parents=True, exist_ok=True)
    return FileHistory(str(state_path.with_name(state_path.name.removesuffix(".json") + "-history")))


async def edit_lines(playground: Playground, history: History) -> None:
    """Read lines with the editor until :quit or Ctrl-D; Ctrl-C drops the line being typed."""
    session: PromptSession[str] = PromptSession(history=history, completer=PlaygroundCompleter(playground),
                                                complete_while_typing=False, enable_history_search=False)
    while True:
        try:
            line = await session.prompt_async(playground.prompt)
        except KeyboardInterrupt:
            continue
        except EOFError:
            return
        if line.strip() and not await run_interruptible(playground, line.strip()):
            return


async def run_interruptible(playground: Playground, line: str) -> bool:
    """Run one line; Ctrl-C while it runs (the bot is slow to answer) stops that line, not the playground."""
    loop = asyncio.get_running_loop()
    task = asyncio.ensure_future(playground.handle(line))
    try:
        loop.add_signal_handler(signal.SIGINT, task.cancel)
    except (NotImplementedError, RuntimeError):  # no signal handlers here (not the main thread, Windows)
        return await task
    try:
        return await task
    except asyncio.CancelledError:
        current = asyncio.current_task()
        if current is not None and current.cancelling():
            raise
        playground.out("! stopped (Ctrl-C)")
        return True
    finally:
        loop.remove_signal_handler(signal.SIGINT)


__all__ = ["META_WORDS", "PlaygroundCompleter", "edit_lines", "history_for", "run_interruptible"]
