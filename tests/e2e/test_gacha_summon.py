"""/summon with a catalogue whose multi-summon is not 10, and a summon refused after its public "thinking...":
the real bot on the sandbox, on both databases."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from guildkeep.config import Settings, load_settings
from guildkeep.gacha.config import DATA_DIR
from guildkeep.testing.harness import SandboxEnv
from tests.e2e.test_gacha import gacha_service, guild_id, start

pytestmark = pytest.mark.e2e

MULTI = 5


@pytest.fixture
def discord_settings(database_url: str, tmp_path: Path) -> Settings:
    config = tmp_path / "gacha"
    shutil.copytree(DATA_DIR, config)
    settings = json.loads((config / "game_settings.json").read_text(encoding="utf-8"))
    settings["summon"]["multi_count"] = MULTI
    (config / "game_settings.json").write_text(json.dumps(settings), encoding="utf-8")
    return load_settings(database_url=database_url, discord_token=None, auto_migrate=False, backup_interval_hours=0,
                         backup_dir=tmp_path / "backups", gacha_config_dir=config)


async def test_the_multi_summon_count_comes_from_the_config(discord_env: SandboxEnv) -> None:
    d = discord_env.driver
    choices = await d.autocomplete("summon", "count", "", as_="bob")
    assert [c["value"] for c in choices] == [1, MULTI]
    await start(discord_env, "bob")
    multi = await d.slash("summon", as_="bob", count=MULTI)
    assert not multi.ephemeral
    assert f"Summon 1/{MULTI}" in multi.text
    ten = await d.slash("summon", as_="bob", count=10)
    assert ten.ephemeral
    assert ten.text == f"You can summon 1 or {MULTI} at a time."


async def test_a_summon_refused_after_the_public_thinking_answers_privately(
    discord_env: SandboxEnv, monkeypatch: pytest.MonkeyPatch,
) -> None:
    d = discord_env.driver
    await start(discord_env, "bob")
    service = gacha_service(discord_env)
    check = service.check_summon

    async def check_then_spend(guild: int, user: int, count: int) -> None:
        await check(guild, user, count)
        await service.summon(guild, user, MULTI, key="a concurrent request")  # 1000 - 900 = 100 left

    monkeypatch.setattr(service, "check_summon", check_then_spend)
    before = [m.id for m in d.read("bot-commands", as_="carol")]
    reply = await d.slash("summon", as_="bob", count=MULTI)
    answer = await reply.wait_followup()
    assert answer.ephemeral
    assert answer.content == "That costs 900 Faylen, but you only have 100 Faylen."
    public = [m for m in d.read("bot-commands", as_="carol") if m.id not in before]
    assert public == []  # neither the error nor the "thinking..." is left for everyone to see
    balance = await service.balance(guild_id(discord_env), d.member("bob").user.id)
    assert balance.balances["faylen"] == 100
