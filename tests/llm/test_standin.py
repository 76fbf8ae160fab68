"""The stand-in model server itself: rules, schema replies, scripting over HTTP, and its command."""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest
from typer.testing import CliRunner

from guildkeep.cli import app
from guildkeep.llm import ChatMessage, LLMClient, LLMRequestRejected
from guildkeep.llm.standin import StandinModel, rule_reply


def test_rule_replies_are_deterministic_and_quote_the_message() -> None:
    line = rule_reply("I   light the\nlantern")
    assert "“I light the lantern”" in line
    assert rule_reply("I light the lantern") == line
    assert rule_reply("hello narrator").startswith("Well met!")
    assert rule_reply("Where is the key?").startswith("A fine question")
    assert rule_reply("   ") == "The stand-in narrator waits for you to say something."
    long = rule_reply("word " * 100)
    assert "…”" in long
    assert len(long) < 200


async def test_models_and_json_object_replies(standin: StandinModel) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{standin.base_url}/models") as resp:
            body = await resp.json()
        assert body["object"] == "list"
        assert body["data"][0]["id"] == "guildkeep-standin"
        request = {
            "model": "any",
            "messages": [{"role": "user", "content": [{"type": "text", "text": "the moon rises"}]}],
            "response_format": {"type": "json_object"},
        }
        async with http.post(f"{standin.base_url}/chat/completions", json=request) as resp:
            reply = await resp.json()
        assert reply["object"] == "chat.completion"
        assert reply["choices"][0]["message"]["content"] == '{"reply": "the moon rises"}'
        bad_schema = {
            "model": "any",
            "messages": [{"role": "user", "content": "x"}],
            "response_format": {"type": "json_schema", "json_schema": {"name": "s", "schema": {"oneOf": []}}},
        }
        async with http.post(f"{standin.base_url}/chat/completions", json=bad_schema) as resp:
            assert resp.status == 400
            assert "Invalid schema" in (await resp.json())["error"]["message"]
        async with http.post(f"{standin.base_url}/chat/completions", data=b"not json") as resp:
            assert resp.status == 400


async def test_scripting_over_http(standin: StandinModel) -> None:
    root = standin.base_url.removesuffix("/v1")
    async with aiohttp.ClientSession() as http:
        script = [
            {"error": 429, "retry_after_ms": 20},
            {"reply": "From the script."},
            {"error": 418, "message": "I am a teapot"},
        ]
        async with http.post(f"{root}/_standin/script", json=script) as resp:
            assert (await resp.json()) == {"queued": 3}
        async with http.post(f"{root}/_standin/script", json={"nope": 1}) as resp:
            assert resp.status == 400
        async with LLMClient(standin.base_url, "m") as client:
            assert (await client.chat([ChatMessage.user("hi")])).content == "From the script."
            with pytest.raises(LLMRequestRejected) as info:
                await client.chat([ChatMessage.user("hi")])
            assert info.value.status == 418
        async with http.get(f"{root}/_standin/requests") as resp:
            seen = await resp.json()
        assert [(r["path"], r["status"]) for r in seen] == [
            ("/v1/chat/completions", 429),
            ("/v1/chat/completions", 200),
            ("/v1/chat/completions", 418),
        ]
        assert seen[1]["body"]["messages"] == [{"role": "user", "content": "hi"}]
        async with http.delete(f"{root}/_standin/requests") as resp:
            assert resp.status == 200
    assert standin.requests == []


@pytest.fixture
def standin_process(isolated_env: Path) -> Iterator[str]:
    """``guildkeep llm standin --port 0`` in its own process; yields the base URL it prints."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "COLUMNS": "400"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "guildkeep", "llm", "standin", "--port", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=isolated_env,
    )
    try:
        ready, _, _ = select.select([proc.stdout], [], [], 30)
        assert ready, "the stand-in printed nothing within 30 s"
        assert proc.stdout is not None
        line = proc.stdout.readline().decode()
        assert line.startswith("stand-in model on http://127.0.0.1:"), line
        yield line.split()[3]
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=20) == 130  # Ctrl-C ends it cleanly


def test_standin_command_serves_and_check_talks_to_it(standin_process: str) -> None:
    runner = CliRunner()
    env = {"GUILDKEEP_LLM_BASE_URL": standin_process, "GUILDKEEP_LLM_MODEL": "guildkeep-standin",
           "GUILDKEEP_LOG_LEVEL": "WARNING"}
    result = runner.invoke(app, ["llm", "check"], env=env)
    assert result.exit_code == 0, result.output
    assert "models guildkeep-standin" in result.output
    assert "guildkeep-standin says: " in result.output
    unconfigured = runner.invoke(app, ["llm", "check"], env={"GUILDKEEP_LOG_LEVEL": "WARNING"})
    assert unconfigured.exit_code == 1
    assert "no language model configured" in unconfigured.output
