"""The playground's line editor: Tab completion from the live world and the bot's commands, and the real
thing through a pseudo-terminal (history, Ctrl-C, Ctrl-D)."""

from __future__ import annotations

import asyncio
import fcntl
import os
import pty
import re
import select
import signal
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import pytest
from prompt_toolkit.completion import CompleteEvent
from prompt_toolkit.document import Document

from guildkeep.gacha.service import LEADERBOARD_KINDS
from guildkeep.playground.console import Playground
from guildkeep.playground.editor import PlaygroundCompleter, run_interruptible
from guildkeep.testing.harness import SandboxEnv

pytestmark = pytest.mark.e2e


def completions(completer: PlaygroundCompleter, text: str) -> list[str]:
    return [c.text for c in completer.get_completions(Document(text), CompleteEvent(completion_requested=True))]


async def test_tab_completes_commands_options_and_names(discord_env: SandboxEnv) -> None:
    playground = Playground(discord_env, lambda _item: None)
    c = PlaygroundCompleter(playground)
    assert completions(c, "/lev") == ["/levels", "/level"]  # /levels holds more commands: offered first
    assert set(completions(c, "/")) >= {"/help", "/levels", "/daily", "/rank"}
    assert sorted(completions(c, "/levels ")) == ["config", "multiplier", "noxp", "reset", "roles"]
    assert completions(c, "/levels ro") == ["roles"]
    assert completions(c, "/levels roles a") == ["add"]
    assert set(completions(c, "/xp add ")) == {"member:", "amount:"}
    assert completions(c, "/xp add member:bob ") == ["amount:"]
    assert completions(c, "/xp add member:b") == ["member:bob"]
    assert completions(c, "/gacha-leaderboard by:") == [f"by:{kind}" for kind in LEADERBOARD_KINDS]  # fixed choices
    assert completions(c, "/nosuch ") == []
    assert set(completions(c, ":a")) == {":as", ":add"}
    assert completions(c, ":as c") == ["carol"]
    assert completions(c, ":channel gen") == ["general"]
    assert completions(c, ":add ") == ["member", "role", "channel"]
    assert completions(c, ":add member dave M") == ["Member", "Moderator"]
    assert completions(c, ":join voice L") == ["Lounge"]
    assert completions(c, ":complete qu") == ["quest", "quests"]
    assert completions(c, ":complete le") == ["levels", "leaderboard", "level"]
    assert completions(c, ":complete quest e") == ["end"]
    assert completions(c, ":complete quest end ") == ["quest_id"]
    assert completions(c, ":clock +") == ["+1d", "+2h", "+7d", "+30m"]
    assert completions(c, "hello @b") == ["@bob"]
    assert completions(c, "see #gen") == ["#general"]
    await playground.run_lines([":add member dave", ":add channel art"])
    assert completions(c, ":as d") == ["dave"]  # the live world, not a list made at start
    assert completions(c, ":channel a") == ["art"]


ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b[()][A-Z0-9]|\x1b[=>]|\r")


class Terminal:
    """A process on a pseudo-terminal: type into it, wait for what it shows."""

    def __init__(self, args: list[str], env: dict[str, str], cwd: Path) -> None:
        self.master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
        self.proc = subprocess.Popen(args, stdin=slave, stdout=slave, stderr=slave, env=env, cwd=cwd,
                                     start_new_session=True, close_fds=True)
        os.close(slave)
        self.raw = b""

    @property
    def screen(self) -> str:
        return ANSI.sub("", self.raw.decode("utf-8", "replace"))

    def type(self, keys: str) -> None:
        os.write(self.master, keys.encode())

    def expect(self, pattern: str, timeout: float = 60.0, *, after: int = 0) -> int:
        """Wait until ``pattern`` (a regex) shows after position ``after``; return where the match ends."""
        deadline = time.monotonic() + timeout
        while True:
            found = re.compile(pattern).search(self.screen, after)
            if found:
                return found.end()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"{pattern!r} never showed; the terminal showed:\n{self.screen[after:]}")
            ready, _, _ = select.select([self.master], [], [], min(remaining, 0.2))
            if ready:
                try:
                    self.raw += os.read(self.master, 65536)
                except OSError:  # the process ended and closed the terminal
                    if self.proc.poll() is not None:
                        raise AssertionError(f"the process ended before {pattern!r} showed:\n{self.screen}"
                                             ) from None

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        os.close(self.master)


@pytest.fixture
def terminal_env(database_url: str, isolated_env: Path) -> dict[str, str]:
    return {**os.environ, "GUILDKEEP_DATABASE_URL": database_url, "GUILDKEEP_LOG_LEVEL": "WARNING",
            "GUILDKEEP_BACKUP_INTERVAL_HOURS": "0", "TERM": "xterm", "PROMPT_TOOLKIT_NO_CPR": "1",
            "NO_COLOR": "1"}


def test_the_line_editor_on_a_terminal(terminal_env: dict[str, str], isolated_env: Path) -> None:
    term = Terminal([sys.executable, "-m", "guildkeep", "playground"], terminal_env, isolated_env)
    try:
        at = term.expect(r"Tab to complete.*\n.*alice in #general>")
        term.type("/lev\t")  # Tab completes the command's name (/level and /levels: the menu offers both) ...
        at = term.expect(r"/levels", after=at)
        term.type("\t")  # ... the next Tab takes the first, /levels ...
        at = term.expect(r"/levels", after=at)
        term.type("\r")  # ... and the line run is the completed one
        at = term.expect(r"! /levels needs a subcommand: one of ", after=at)
        assert "alice in #general> /levels\n" in term.screen

        at = term.expect(r"alice in #general>", after=at)
        term.type(":as c\t")
        at = term.expect(r":as carol", after=at)
        term.type("\r")
        at = term.expect(r"now speaking as carol\s*\n.*carol in #general>", after=at)

        term.type("a line never sent")
        at = term.expect(r"a line never sent", after=at)
        term.type("\x03")  # Ctrl-C drops the line
        at = term.expect(r"carol in #general>", after=at)
        term.type("\x1b[A")  # up: the last line run
        at = term.expect(r":as carol", after=at)
        term.type("\x1b[A")  # up again: the one before
        at = term.expect(r"/levels", after=at)
        term.type("\r")
        at = term.expect(r"! /levels needs a subcommand.*\n.*carol in #general>", after=at)

        term.type("posted\r")
        at = term.expect(r"Carol: posted\s*\n.*carol in #general>", after=at)
        term.type(":read 5\r")
        read = term.expect(r":read 5", after=at)
        at = term.expect(r"\(1\) \[#general\] Carol: posted\s*\n.*carol in #general>", after=read)
        assert "never sent" not in term.screen[read:at]

        term.type("\x04")  # Ctrl-D leaves
        assert term.proc.wait(60) == 0
    finally:
        term.close()
    history = list(isolated_env.rglob("*-history"))
    assert history
    saved = "".join(path.read_text(encoding="utf-8") for path in history)
    assert "+/levels" in saved
    assert "+:as carol" in saved
    assert "never sent" not in saved
    world = next(isolated_env.rglob("*.playground.json")).read_text(encoding="utf-8")
    assert "posted" in world
    assert "never sent" not in world


async def test_ctrl_c_while_a_line_runs_stops_only_that_line(discord_env: SandboxEnv,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    printed: list[str] = []
    playground = Playground(discord_env, lambda item: printed.append(str(item)))
    started = asyncio.Event()

    async def slow_send(*_args: object, **_kw: object) -> None:
        started.set()
        await asyncio.sleep(30)  # a bot that takes its time

    monkeypatch.setattr(discord_env.driver, "send", slow_send)
    running = asyncio.ensure_future(run_interruptible(playground, "hello"))
    await asyncio.wait_for(started.wait(), 5)
    os.kill(os.getpid(), signal.SIGINT)  # what Ctrl-C sends while no prompt is reading the keys
    assert await asyncio.wait_for(running, 5) is True  # the playground goes on
    assert printed[-1] == "! stopped (Ctrl-C)"
    monkeypatch.undo()
    await run_interruptible(playground, "and on")
    assert any("Alice: and on" in line for line in printed)


@pytest.mark.discord_extensions("tests.e2e.probe")
async def test_tab_completes_what_the_bot_just_showed(discord_env: SandboxEnv) -> None:
    playground = Playground(discord_env, lambda _item: None)
    c = PlaygroundCompleter(playground)
    assert completions(c, ":click ") == []
    await playground.run_lines(["/help"])
    assert completions(c, ":click ") == ["Next"]  # the disabled buttons are not offered
    await playground.run_lines(["/probe-select"])
    assert completions(c, ":select ") == ["v", "c", "m"]
    await playground.run_lines(["/probe-modal"])
    fields = completions(c, ":modal ")
    assert len(fields) == 2  # Name and Story, by custom_id
    assert all(f.endswith("=") for f in fields)
    out: list[str] = []
    playground.out = lambda item: out.append(str(item))
    await playground.run_lines([f":modal {fields[0]}Ava {fields[1]}'A wanderer'"])
    assert any("Ava" in line for line in out), out
