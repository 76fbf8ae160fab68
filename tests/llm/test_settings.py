"""The LLM settings and `client_from_settings`: unset base URL means no model, and calls say so."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from guildkeep.config import SettingsError, load_settings
from guildkeep.llm import ChatMessage, LLMNotConfigured, client_from_settings


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for key in list(os.environ):
        if key.startswith("GUILDKEEP_"):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)


async def test_no_base_url_means_no_model_and_every_call_says_so() -> None:
    settings = load_settings()
    assert settings.llm_base_url is None
    assert settings.llm_requests_per_minute == 20
    client = client_from_settings(settings)
    assert not client.configured
    with pytest.raises(LLMNotConfigured) as info:
        await client.chat([ChatMessage.user("hello")], guild_id=1)
    assert "no language model configured" in info.value.message
    assert "GUILDKEEP_LLM_BASE_URL" in info.value.message
    with pytest.raises(LLMNotConfigured):
        await client.structured([ChatMessage.user("hi")], {"type": "object"})
    with pytest.raises(LLMNotConfigured):
        async for _ in client.stream([ChatMessage.user("hi")]):
            pass
    with pytest.raises(LLMNotConfigured):
        await client.models()
    await client.close()


def test_settings_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GUILDKEEP_LLM_BASE_URL", "http://127.0.0.1:11434/v1/")
    monkeypatch.setenv("GUILDKEEP_LLM_MODEL", "llama3.2")
    monkeypatch.setenv("GUILDKEEP_LLM_API_KEY", "sk-very-secret")
    monkeypatch.setenv("GUILDKEEP_LLM_TIMEOUT_SECONDS", "12.5")
    monkeypatch.setenv("GUILDKEEP_LLM_MAX_TOKENS", "300")
    monkeypatch.setenv("GUILDKEEP_LLM_REQUESTS_PER_MINUTE", "7")
    settings = load_settings()
    assert settings.llm_base_url == "http://127.0.0.1:11434/v1"
    assert settings.llm_key == "sk-very-secret"
    assert "sk-very-secret" not in repr(settings)
    client = client_from_settings(settings)
    assert client.configured
    assert (client.model, client.timeout, client.max_tokens, client.budget.per_minute) == ("llama3.2", 12.5, 300, 7)
    assert "sk-very-secret" not in repr(client)


@pytest.mark.parametrize(
    ("env", "name", "needle"),
    [
        ({"GUILDKEEP_LLM_BASE_URL": "http://127.0.0.1:8080/v1"}, "GUILDKEEP_LLM_MODEL", "must be set"),
        ({"GUILDKEEP_LLM_BASE_URL": "127.0.0.1:8080"}, "GUILDKEEP_LLM_BASE_URL", "http://"),
        ({"GUILDKEEP_LLM_TIMEOUT_SECONDS": "0"}, "GUILDKEEP_LLM_TIMEOUT_SECONDS", "greater than 0"),
        ({"GUILDKEEP_LLM_REQUESTS_PER_MINUTE": "-1"}, "GUILDKEEP_LLM_REQUESTS_PER_MINUTE", "greater than or equal"),
    ],
)
def test_a_wrong_llm_setting_is_named(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], name: str, needle: str
) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(SettingsError) as info:
        load_settings()
    assert str(info.value).startswith(f"invalid setting {name}:")
    assert needle in str(info.value)
