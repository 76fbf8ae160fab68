"""``guildkeep playground --script`` and ``guildkeep run`` without a token, end to end on each backend."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from guildkeep.cli import app
from guildkeep.config import load_settings
from guildkeep.db import Database
from guildkeep.leveling.models import Level
from guildkeep.llm import ChatMessage, client_from_settings
from guildkeep.llm.standin import DEFAULT_MODEL, playground_model

pytestmark = pytest.mark.e2e

SCRIPT = """\
# comments and blank lines are skipped

/ping
/help
:click Next
hello @guildkeep
:as bob
/help command:ping
:complete /help command pi
:join voice Lounge mute
:who
:channel bot-commands
:nonsense
/nosuchcommand
:quit
this line is never run
"""


@pytest.fixture
def cli_env(database_url: str, isolated_env: Path) -> dict[str, str]:
    return {"GUILDKEEP_DATABASE_URL": database_url, "GUILDKEEP_LOG_LEVEL": "WARNING",
            "GUILDKEEP_BACKUP_INTERVAL_HOURS": "0"}


def test_playground_script(cli_env: dict[str, str], tmp_path: Path) -> None:
    script = tmp_path / "tour.txt"
    script.write_text(SCRIPT, encoding="utf-8")
    result = CliRunner().invoke(app, ["playground", "--script", str(script)], env=cli_env)
    assert result.exit_code == 0, (result.output, result.exception)
    out = result.output
    assert "alice in #general> /ping" in out
    assert "[#general] guildkeep (bot): Pong!" in out
    # 1/N: the overview plus one page per module's commands, so N grows as modules are added.
    assert re.search(r"buttons: \[1 Previous \(disabled\)\] \[2 1/\d+ \(disabled\)\] \[3 Next\]", out)
    assert re.search(r"│ Core commands +│", out)
    assert "[#general] Alice: hello @guildkeep" in out
    assert "Hi Alice! Type `/help`" in out
    assert "bob in #general> /help command:ping" in out
    assert re.search(r"│ /ping +│", out)
    assert "suggestions: /ping" in out
    assert "bob joined voice #Lounge (mute)" in out
    assert "bob        Member  [voice #Lounge]" in out
    assert "! unknown :nonsense; try :help" in out
    assert "! no slash command /nosuchcommand is registered" in out
    assert "never run" not in out


def test_run_without_a_token_opens_the_playground(cli_env: dict[str, str]) -> None:
    result = CliRunner().invoke(app, ["run"], env=cli_env, input="/about\n:quit\n")
    assert result.exit_code == 0, (result.output, result.exception)
    assert "no Discord token configured" in result.output
    assert "opening the playground" in result.output
    assert re.search(r"│ guildkeep +│", result.output)
    assert re.search(r"│ .*Database.*\n.*│ .*(sqlite|postgresql)", result.output)  # an inline field


def test_playground_saves_attachments(cli_env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                      ) -> None:
    monkeypatch.setattr("guildkeep.discord.bot.discover_extensions",
                        lambda: ["guildkeep.discord.cogs.core", "tests.e2e.probe"])
    result = CliRunner().invoke(app, ["playground"], env=cli_env, input="/probe-file\n")
    assert result.exit_code == 0, (result.output, result.exception)
    saved = next(line for line in result.output.splitlines() if "attachment saved:" in line)
    path = tmp_path / saved.split("attachment saved: ")[1].split(" (")[0]
    assert path.read_bytes().startswith(b"\x89PNG")
    assert path.parent.name == "playground-out"


def _play(cli_env: dict[str, str], tmp_path: Path, *lines: str) -> str:
    script = tmp_path / "script.txt"
    script.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["playground", "--script", str(script)], env=cli_env)
    assert result.exit_code == 0, (result.output, result.exception)
    return result.output


def _guild_id(out: str) -> int:
    found = re.search(r"server 'Guildkeep Sandbox' \(id (\d+), (saved in|restored from) ", out)
    assert found, out
    return int(found.group(1))


def _xp(out: str) -> int:
    found = re.search(r"Alice — level \d+, (\d+) XP", out)
    assert found, out
    return int(found.group(1))


def _stored_xp(database_url: str, guild_id: int) -> int:
    """All the XP the bot stored in a server."""
    async def read() -> int:
        db = Database(database_url)
        try:
            async with db.session(read_only=True) as s:
                return int(await s.scalar(select(func.coalesce(func.sum(Level.xp), 0))
                                          .where(Level.guild_id == guild_id)) or 0)
        finally:
            await db.dispose()

    return asyncio.run(read())


def test_the_world_and_the_bots_data_survive_a_restart_and_reset_starts_over(
        cli_env: dict[str, str], tmp_path: Path, database_url: str) -> None:
    first = _play(cli_env, tmp_path, "hello everyone", "/rank", ":clock +1d")
    guild_id = _guild_id(first)
    assert "saved in" in first
    xp = _xp(first)
    assert xp > 0
    assert _stored_xp(database_url, guild_id) >= xp

    second = _play(cli_env, tmp_path, "/rank", ":read 3", ":who")
    assert _guild_id(second) == guild_id
    assert "restored from" in second
    assert "the bot's clock is at +1d" in second
    assert _xp(second) >= xp  # the same member, with the XP stored under the same ids
    assert "[#general] Alice: hello everyone" in second  # history is there (shown by :read, not as new)
    assert second.count("hello everyone") == 1

    third = _play(cli_env, tmp_path, ":reset", "no", "/rank", ":reset", "yes", "/rank")
    assert "cancelled" in third
    assert re.search(r"deleted \d+ row\(s\) of the bot's data; new server 'Guildkeep Sandbox' \(id (\d+)\)", third)
    new_id = int(re.search(r"new server 'Guildkeep Sandbox' \(id (\d+)\)", third).group(1))  # type: ignore[union-attr]
    assert new_id != guild_id
    assert _guild_id(_play(cli_env, tmp_path, ":who")) == new_id
    assert _stored_xp(database_url, guild_id) == 0


COMPANION_SCRIPT = """\
/companion config enabled:true
:as bob
hello @guildkeep
:quit
"""


def test_without_a_model_the_playground_talks_to_the_local_standin_and_says_so(cli_env: dict[str, str],
                                                                                tmp_path: Path) -> None:
    script = tmp_path / "companion.txt"
    script.write_text(COMPANION_SCRIPT, encoding="utf-8")
    result = CliRunner().invoke(app, ["playground", "--script", str(script)], env=cli_env)
    assert result.exit_code == 0, (result.output, result.exception)
    out = " ".join(result.output.split())  # the console wraps long lines
    found = re.search(r"language model: none configured, so the local stand-in on (http://127\.0\.0\.1:(\d+)/v1) "
                      r"answers", out)
    assert found, out
    assert "[#general] Bob: hello @guildkeep" in out
    assert "[#general] guildkeep (bot): Well met! The stand-in narrator heard “hello” and bows." in out
    assert "No language model is set up" not in out

    async def refused() -> bool:  # stopped on exit: nothing listens on its port any more
        try:
            _reader, writer = await asyncio.open_connection("127.0.0.1", int(found.group(2)))
        except OSError:
            return True
        writer.close()
        return False

    assert asyncio.run(refused())


async def test_a_configured_model_is_kept_and_named_in_the_banner() -> None:
    settings = load_settings(database_url="sqlite+aiosqlite:///unused.db", discord_token=None,
                             llm_base_url="http://127.0.0.1:11434/v1", llm_model="llama3")
    model = await playground_model(settings)
    assert model.standin is None
    assert model.settings is settings
    assert model.banner == "language model: llama3 at http://127.0.0.1:11434/v1."
    await model.stop()

    bare = await playground_model(settings.model_copy(update={"llm_base_url": None, "llm_model": None}))
    try:
        assert bare.standin is not None
        assert (bare.settings.llm_base_url, bare.settings.llm_model) == (bare.standin.base_url, DEFAULT_MODEL)
        async with client_from_settings(bare.settings) as client:
            reply = await client.chat([ChatMessage.user("ping")], max_tokens=32)
        assert "ping" in reply.content
    finally:
        await bare.stop()
