"""The real bot, through discord.py, on the sandbox: core commands and events."""

from __future__ import annotations

import pytest

from guildkeep.sandbox.harness import SandboxEnv

pytestmark = pytest.mark.e2e


async def test_ping_answers(discord_env: SandboxEnv) -> None:
    reply = await discord_env.driver.slash("ping", as_="bob")
    assert reply.content.startswith("Pong!")
    assert not reply.ephemeral


async def test_help_with_an_option_explains_one_command(discord_env: SandboxEnv) -> None:
    reply = await discord_env.driver.slash("help", as_="carol", command="ping")
    assert reply.ephemeral
    assert reply.embed["title"] == "/ping"
    assert "alive" in reply.embed["description"]


async def test_help_suggests_commands_while_typing(discord_env: SandboxEnv) -> None:
    choices = await discord_env.driver.autocomplete("help", "command", "pi", as_="bob")
    assert choices == [{"name": "/ping", "value": "ping"}]


async def test_mentioning_the_bot_gets_a_reply(discord_env: SandboxEnv) -> None:
    driver = discord_env.driver
    sent = await driver.send("general", f"hello {driver.bot_mention}", as_="bob")
    reply = await driver.wait_for_bot_message("general", after=sent)
    assert reply.reference_id == sent.id
    assert "Hi Bob!" in reply.content
    seen = driver.read("general", as_="carol")
    assert [m.author for m in seen] == ["Bob", "guildkeep"]


async def test_help_pages_turn_with_the_buttons(discord_env: SandboxEnv) -> None:
    reply = await discord_env.driver.slash("help", as_="alice")
    assert reply.embed["title"] == "guildkeep help"
    assert [b["label"] for b in reply.buttons] == ["Previous", "1/2", "Next"]
    turned = await reply.click("Next")
    assert turned.embed["title"] == "Core commands"
    assert "/ping" in turned.text
    assert [b.get("disabled", False) for b in turned.buttons] == [False, True, True]
    back = await turned.click("Previous")
    assert back.embed["title"] == "guildkeep help"
