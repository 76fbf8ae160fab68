"""``guildkeep playground --script`` and ``guildkeep run`` without a token, end to end on each backend."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from guildkeep.cli import app

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
:voice join Lounge mute
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
    assert "** Core commands **" in out
    assert "[#general] Alice: hello @guildkeep" in out
    assert "Hi Alice! Type `/help`" in out
    assert "bob in #general> /help command:ping" in out
    assert "** /ping **" in out
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
    assert "** guildkeep **" in result.output
    assert "Database: sqlite" in result.output or "Database: postgresql" in result.output


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
