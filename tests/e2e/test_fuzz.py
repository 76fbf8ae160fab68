"""Every slash command of the bot's tree, sent through the sandbox with hostile option values.

Each command runs as a member (``bob``; admin commands as a server that granted them to everyone, so the
bot's own checks refuse them) and as an admin (``alice``), with: empty, 4,000-character, zero-width, RTL,
SQL-looking, NUL-bearing and unknown-name text; the extremes of every integer and number range (Discord's
±2^53 where the command sets none); every kind of channel (text, voice, thread, category); roles the bot
cannot manage (@everyone, its own managed role, one above it); and users who are not members (one who
never joined, the bot itself). Every string option with autocomplete is also completed with hostile text.

Asserted for every invocation:

* the bot answers, and never with the generic "something went wrong" error;
* Discord accepted every message the bot sent meanwhile (no 400: content within 2,000 characters, every
  embed within its limits), and the reply itself is checked against the limits;
* a refusal (an error the central handler turned into a message for the player) is ephemeral, and no
  database row changed: every table's row count and a checksum of its contents are equal before and after;
* an autocomplete answers with at most 25 choices.

Runtime is bounded: the hypothesis part runs ``EXAMPLES`` passes over the whole tree (each pass draws a value
set for every command and both members), derandomized, with no deadline and no shrinking, on SQLite. The
PostgreSQL half is covered by ``test_fixed_hostile_inputs_on_postgresql``: a fixed set of the most hostile
values (the longest text with NUL, zero-width and RTL characters, each range's extremes, a thread, a
non-member, a role above the bot) for every command, as both members, on PostgreSQL.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

import discord
from discord import app_commands
from guildkeep.db.registry import load_models
from guildkeep.discord.errors import player_message
from guildkeep.discord.limits import CONTENT, embed_problems
from guildkeep.sandbox.driver import DriverError, Reply, SandboxTimeout
from guildkeep.sandbox.state import User
from guildkeep.scheduler.worker import Scheduler
from guildkeep.testing.harness import SandboxEnv
from tests.e2e.probe import tiny_png

pytestmark = pytest.mark.e2e

EXAMPLES = 6
ANSWER_TIMEOUT = 20.0
SETTLE_TIMEOUT = 20.0
DISCORD_INT = 2**53  # Discord's integer and number options stay within ±2^53
GENERIC = "Sorry, something went wrong"
HOSTILE_TEXT = (
    "",
    " ",
    "x" * 4000,
    "\u200b\u200c\u200d\ufeff",
    "\u202eevil\u202c \u05e9\u05dc\u05d5\u05dd",
    "'; DROP TABLE users; --",
    "\" OR 1=1 --",
    "nul\x00byte",
    "\x00",
    "{mention}{server}{0}{level.__class__}",
    "@everyone <@&1> <#1>",
    "²",
    "①",
    "9" * 25,
    "-1",
    "1e309",
    "banana",
    "mythic",
    "dollars",
    "💥" * 1500,
)
HOSTILE_FILES = [  # (filename, bytes) uploads: a real image, and files that are not what they claim
    ("a.png", tiny_png()),
    ("avatar.png", b"this is not a picture"),
    ("empty.gif", b""),
    ("evil.exe", b"MZ" + bytes(64)),
    ("x" * 200 + ".png", b"\x89PNG\r\n\x1a\n" + bytes(16)),
    ("\u202egnp.exe", b"GIF89a"),
]
MEMBER_NAMES = ("alice", "bob", "carol")
CHANNEL_NAMES = ("general", "bot-commands", "Lounge", "welcome-thread", "Text Channels")
ROLE_NAMES = ("@everyone", "Member", "Moderator", "guildkeep", "Admin")
AS_MEMBER, AS_ADMIN = "bob", "alice"


@dataclass
class Leaf:
    """A command as Discord sees it: its full name, options and whether its default permissions hide it."""

    name: str
    params: list[app_commands.Parameter]
    admin: bool


def leaves(env: SandboxEnv) -> list[Leaf]:
    found = []

    def walk(command: app_commands.Command | app_commands.Group, admin: bool) -> Iterator[Leaf]:
        admin = admin or command.default_permissions is not None
        if isinstance(command, app_commands.Group):
            for child in command.commands:
                yield from walk(child, admin)
        else:
            yield Leaf(command.qualified_name, list(command.parameters), admin)

    for top in env.bot.tree.get_commands(type=discord.AppCommandType.chat_input):
        found.extend(walk(top, False))  # type: ignore[arg-type]
    return sorted(found, key=lambda leaf: leaf.name)


# ------------------------------------------------------------------------------------------ values


def _numbers(param: app_commands.Parameter, integer: bool) -> list[Any]:
    lo = param.min_value if param.min_value is not None else -DISCORD_INT
    hi = param.max_value if param.max_value is not None else DISCORD_INT
    picks = [lo, hi, 0, 1, -1, hi - 1 if integer else hi / 2, 12_345_678_901]
    return [int(v) if integer else float(v) for v in picks if lo <= v <= hi]


def _lengths(param: app_commands.Parameter) -> tuple[int, int]:
    """The lengths Discord allows for a string option (discord.py keeps them in min_value/max_value)."""
    lo = int(param.min_value) if param.min_value is not None else 0
    hi = int(param.max_value) if param.max_value is not None else 6000
    return lo, hi


def _texts(param: app_commands.Parameter) -> list[str]:
    lo, hi = _lengths(param)
    return [t for t in HOSTILE_TEXT if lo <= len(t) <= hi] + [("nul\x00" + "x" * hi)[:hi]]


def ghost(env: SandboxEnv) -> User:
    """A user who shares no server with the bot (a member who left, or never joined)."""
    world = env.driver.world
    existing = next((u for u in world.users.values() if u.username == "ghost"), None)
    return existing or env.driver.create_user("ghost", global_name="Ghost")


def choices_for(env: SandboxEnv, param: app_commands.Parameter) -> list[Any] | None:
    """Every value Discord lets a member pick for ``param`` (None for free text and numbers)."""
    kind = param.type
    if param.choices:
        return [c.value for c in param.choices]
    if kind is discord.AppCommandOptionType.boolean:
        return [True, False]
    if kind is discord.AppCommandOptionType.user:
        return [*MEMBER_NAMES, env.driver.bot_user, ghost(env)]
    if kind is discord.AppCommandOptionType.channel:
        return list(CHANNEL_NAMES)
    if kind is discord.AppCommandOptionType.role:
        return list(ROLE_NAMES)
    if kind is discord.AppCommandOptionType.mentionable:
        return [*MEMBER_NAMES, *ROLE_NAMES]
    if kind is discord.AppCommandOptionType.integer:
        return _numbers(param, True)
    if kind is discord.AppCommandOptionType.number:
        return _numbers(param, False)
    if kind is discord.AppCommandOptionType.attachment:
        return list(HOSTILE_FILES)
    return None


def value_strategy(env: SandboxEnv, param: app_commands.Parameter) -> st.SearchStrategy[Any]:
    picks = choices_for(env, param)
    if picks is not None:
        if param.type is discord.AppCommandOptionType.integer and not param.choices:
            lo = param.min_value if param.min_value is not None else -DISCORD_INT
            hi = param.max_value if param.max_value is not None else DISCORD_INT
            return st.sampled_from(picks) | st.integers(int(lo), int(hi))
        return st.sampled_from(picks)
    lo, hi = _lengths(param)
    return st.sampled_from(_texts(param)) | st.text(min_size=lo, max_size=min(hi, 40))


def options_strategy(env: SandboxEnv, leaf: Leaf) -> st.SearchStrategy[dict[str, Any]]:
    required = {p.display_name: value_strategy(env, p) for p in leaf.params if p.required}
    optional = {p.display_name: value_strategy(env, p) for p in leaf.params if not p.required}
    return st.fixed_dictionaries(required, optional=optional)  # type: ignore[arg-type]


def most_hostile(env: SandboxEnv, leaf: Leaf, variant: int) -> dict[str, Any]:
    """A fixed, deterministic value set: variant 0 takes the first of each list, 1 the last, 2 the middle."""
    out = {}
    for param in leaf.params:
        picks = choices_for(env, param)
        if picks is None:
            picks = _texts(param)
            picks = [picks[-1], picks[2 if len(picks) > 2 else 0], picks[7 if len(picks) > 7 else 0]]
        out[param.display_name] = picks[(0, -1, len(picks) // 2)[variant]]
    return out


# ----------------------------------------------------------------------------------------- checks


async def snapshot(env: SandboxEnv) -> dict[str, tuple[int, str]]:
    """Every table's row count and a checksum of its sorted contents."""
    out = {}
    async with env.db.session(read_only=True) as s:
        for table in load_models().sorted_tables:
            rows = sorted(repr(tuple(r)) for r in (await s.execute(select(table))).all())
            out[table.name] = (len(rows), hashlib.sha256("\n".join(rows).encode()).hexdigest())
    return out


def _in_flight() -> list[asyncio.Task[Any]]:
    """The bot's command invocations and command-completion listeners still running."""
    current = asyncio.current_task()
    return [t for t in asyncio.all_tasks() if t is not current and not t.done()
            and (t.get_name() == "CommandTree-invoker" or t.get_name().startswith("discord.py: on_app_command"))]


async def settle(env: SandboxEnv) -> None:
    """Let the commands already answered finish (their completion listeners credit command XP), run the
    scheduler jobs already due (a server's first quest reset) and write what the bot holds in memory, so a
    snapshot sees only what the next command does."""
    async with asyncio.timeout(SETTLE_TIMEOUT):
        while busy := _in_flight():
            await asyncio.wait(busy)
    for bot in env.bots:  # due jobs run now; one the bot's own loop is running finishes first

        async def idle(scheduler: Scheduler = bot.scheduler) -> bool:
            ran = await scheduler.run_until_idle()
            return not ran and not await scheduler.service.count(status="running")

        await env.driver.wait_for(idle, "the scheduler jobs already due", timeout=SETTLE_TIMEOUT)
    leveling = env.bot.get_cog("Leveling")
    if leveling is not None:
        await leveling.ingestor.flush()  # type: ignore[attr-defined]


@dataclass
class Recorder:
    """What the central error handler saw: interaction id -> the player's message (None: unexpected)."""

    seen: dict[int, str | None] = field(default_factory=dict)


def record_errors(env: SandboxEnv) -> Recorder:
    recorder = Recorder()
    original: Callable[..., Any] = env.bot.tree.on_error

    async def on_error(interaction: discord.Interaction, error: app_commands.AppCommandError) -> None:
        recorder.seen[interaction.id] = player_message(error)
        await original(interaction, error)

    env.bot.tree.on_error = on_error  # type: ignore[method-assign]
    return recorder


def describe(leaf: Leaf, who: str, options: dict[str, Any]) -> str:
    shown = {k: (v if not isinstance(v, str) or len(v) < 40 else f"{v[:20]!r}…({len(v)} chars)")
             for k, v in options.items()}
    return f"/{leaf.name} as {who} {shown}"


async def invoke(env: SandboxEnv, recorder: Recorder, leaf: Leaf, who: str, options: dict[str, Any]) -> list[str]:
    """Run one command; the problems found (empty when every promise held)."""
    d = env.driver
    what = describe(leaf, who, options)
    await settle(env)
    before = await snapshot(env)
    mark = len(env.server.requests)
    try:
        reply = await d.slash(leaf.name, as_=who, options=options, as_admin_override=leaf.admin and who == AS_MEMBER,
                              timeout=ANSWER_TIMEOUT)
    except SandboxTimeout as exc:
        return [f"{what}: no answer ({str(exc).splitlines()[0]})"]
    except DriverError as exc:
        return [f"{what}: the test built an option Discord would refuse: {exc}"]
    problems = [f"{what}: Discord refused a request ({r.status} {r.method} {r.path}): {str(r.response)[:300]}"
                for r in env.server.requests[mark:] if r.status == 400]
    inter_id = reply.interaction.id
    generic = recorder.seen.get(inter_id, "") is None or GENERIC in reply.text or any(
        GENERIC in (m.content or "") for m in reply.followups)
    if generic:
        problems.append(f"{what}: answered with the generic error ({reply.text[:90]!r})")
    problems += check_limits(what, reply)
    if any(b.get("label") == "Cancel" and not b.get("disabled") for b in reply.buttons):
        await reply.click("Cancel", as_=who)  # a confirmation (e.g. a reset) is declined: nothing happens
    if recorder.seen.get(inter_id) is not None:
        if not reply.ephemeral:
            problems.append(f"{what}: the refusal {reply.text[:100]!r} is not ephemeral")
        await settle(env)
        after = await snapshot(env)
        changed = sorted(t for t in before if before[t] != after[t])
        if changed:
            problems.append(f"{what}: refused ({reply.text[:80]!r}) but changed {', '.join(changed)}")
    return problems


def check_limits(what: str, reply: Reply) -> list[str]:
    """The reply and its followups as members see them, against Discord's limits."""
    problems = []
    messages = [reply.message, *reply.followups] if reply.message is not None else list(reply.followups)
    for message in messages:
        if len(message.content or "") > CONTENT:
            problems.append(f"{what}: a message of {len(message.content)} characters")
        for embed in message.embeds or []:
            problems.extend(f"{what}: embed {p}" for p in embed_problems(embed))
    return problems


async def complete(env: SandboxEnv, leaf: Leaf, who: str, param: app_commands.Parameter, typed: str) -> list[str]:
    what = f"autocomplete of /{leaf.name} {param.display_name} as {who} typing {typed[:20]!r}({len(typed)})"
    try:
        choices = await env.driver.autocomplete(leaf.name, param.display_name, typed, as_=who,
                                                timeout=ANSWER_TIMEOUT)
    except SandboxTimeout:
        return [f"{what}: no answer (the callback failed)"]
    except DriverError as exc:
        return [f"{what}: {exc}"]
    return [f"{what}: {len(choices)} choices"] if len(choices) > 25 else []


def autocompleted(leaf: Leaf) -> list[app_commands.Parameter]:
    return [p for p in leaf.params if p.autocomplete]


# ------------------------------------------------------------------------------------------- tests


@pytest.mark.parametrize("backend", ["sqlite"])
@settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
          phases=[Phase.explicit, Phase.generate],
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                 HealthCheck.data_too_large])
@given(data=st.data())
async def test_every_command_survives_hostile_input(discord_env: SandboxEnv, data: st.DataObject) -> None:
    recorder = record_errors(discord_env)
    problems: list[str] = []
    for leaf in leaves(discord_env):
        for who in (AS_MEMBER, AS_ADMIN):
            options = data.draw(options_strategy(discord_env, leaf), label=f"/{leaf.name} as {who}")
            problems += await invoke(discord_env, recorder, leaf, who, options)
            for param in autocompleted(leaf):
                typed = data.draw(st.sampled_from(HOSTILE_TEXT[:12]), label=f"typed in {param.display_name}")
                problems += await complete(discord_env, leaf, who, param, typed[:100])
    assert not problems, f"{len(problems)} problem(s):\n" + "\n".join(problems)


@pytest.mark.parametrize("backend", ["postgresql"])
async def test_fixed_hostile_inputs_on_postgresql(discord_env: SandboxEnv) -> None:
    recorder = record_errors(discord_env)
    problems: list[str] = []
    for leaf in leaves(discord_env):
        for who in (AS_MEMBER, AS_ADMIN):
            for variant in range(3):
                problems += await invoke(discord_env, recorder, leaf, who, most_hostile(discord_env, leaf, variant))
            for param in autocompleted(leaf):
                problems += await complete(discord_env, leaf, who, param, "x" * 100)
    assert not problems, f"{len(problems)} problem(s):\n" + "\n".join(problems)


async def test_the_tree_is_walked_whole(discord_env: SandboxEnv) -> None:
    """The fuzz reaches every registered command (a new command is fuzzed without editing this file)."""
    names = {leaf.name for leaf in leaves(discord_env)}
    registered = {c["name"] for c in discord_env.driver.world.commands_for(discord_env.demo.guild.id)  # type: ignore[union-attr]
                  if c.get("type", 1) == 1}  # slash commands; message menus have no options to fuzz
    assert {n.split()[0] for n in names} == registered
    assert {"help", "levels config", "levels multiplier", "quest create", "rankcard"} <= names
