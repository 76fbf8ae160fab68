"""The gacha game at the edges of its configuration: 30 rarity tiers, names and texts of the longest allowed
length, 25 listings to a page. Every autocomplete stays within Discord's 25 choices of at most 100 characters,
and every embed and message fits Discord's limits (the sandbox refuses anything larger with 50035)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from guildkeep.config import Settings, load_settings
from guildkeep.gacha.config import DATA_DIR, load_config
from guildkeep.testing.harness import SandboxEnv
from tests.e2e.test_gacha import gacha_service, start

pytestmark = pytest.mark.e2e

TIERS = 30
EMOJI = "🟣" * 16  # 16 characters, the longest emoji field allowed


def longest(prefix: str, size: int) -> str:
    return (prefix + " " + "W" * size)[:size]


def write_maximal_config(directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    tiers = [{"id": f"t{i:02d}", "name": longest(f"Tier {i:02d}", 50), "weight": 1, "stars": 10}
             for i in range(TIERS)]
    esprits = [
        {"id": f"e{i:02d}_{n}", "name": longest(f"Esprit {i:02d}{n}", 100), "description": "D" * 1000,
         "rarity": f"t{i:02d}", "element": "E" * 32,
         "base_stats": {"hp": 100_000, "attack": 100_000, "defense": 100_000, "speed": 100_000, "magic": 100_000},
         "image": "x" * 200}
        for i in range(TIERS) for n in range(2)
    ]
    visuals = {t["id"]: {"color": "#123456", "accent": "#abcdef", "emoji": EMOJI} for t in tiers}
    icons = {s: {"label": s[:8].upper().ljust(8, "X"), "emoji": EMOJI}
             for s in ("hp", "attack", "defense", "speed", "magic")}
    settings = json.loads((DATA_DIR / "game_settings.json").read_text(encoding="utf-8"))
    for currency in settings["currencies"]:
        currency.update(name=longest(currency["id"].title(), 32), emoji=EMOJI)
    settings["starting"]["starter_rarities"] = ["t00"]
    settings["pity"].update(guaranteed_rarity="t01", hard_rarity=f"t{TIERS - 1:02d}")
    settings["auction"]["page_size"] = 25
    settings["policy"] = ("By playing you agree that Esprits have no real-world value. " + "P" * 2000)[:2000]
    files = {"rarity_tiers.json": {"tiers": tiers}, "esprits.json": {"esprits": esprits},
             "rarity_visuals.json": visuals, "stat_icons.json": icons, "game_settings.json": settings}
    for name, data in files.items():
        (directory / name).write_text(json.dumps(data), encoding="utf-8")
    load_config(directory)  # valid
    return directory


@pytest.fixture
def discord_settings(database_url: str, tmp_path: Path) -> Settings:
    return load_settings(database_url=database_url, discord_token=None, auto_migrate=False, backup_interval_hours=0,
                         backup_dir=tmp_path / "backups", gacha_config_dir=write_maximal_config(tmp_path / "gacha"))


def embed_size(embed: dict) -> int:
    fields = embed.get("fields", [])
    footer = embed.get("footer", {}).get("text", "")
    return (len(embed.get("title", "")) + len(embed.get("description", "")) + len(footer)
            + sum(len(f["name"]) + len(f["value"]) for f in fields))


def assert_fits(reply) -> None:  # a sandbox Reply
    assert "something went wrong" not in reply.text
    assert len(reply.content or "") <= 2000
    for embed in reply.embeds:
        assert len(embed.get("title", "")) <= 256
        assert len(embed.get("description", "")) <= 4096
        assert len(embed.get("fields", [])) <= 25
        assert embed_size(embed) <= 6000


async def test_every_autocomplete_answers_at_most_25_choices_of_at_most_100_characters(
    discord_env: SandboxEnv,
) -> None:
    d = discord_env.driver
    await start(discord_env, "bob")
    await d.slash("gacha grant", as_="alice", member="bob", amount=5_000, currency="faylen", reason="test")
    for _ in range(3):
        await d.slash("summon", as_="bob", count=10)
    service = gacha_service(discord_env)
    guild = d.member("bob").guild_id
    bob = d.member("bob").user.id
    await start(discord_env, "carol")
    for copy in (await service.owned_choices(guild, bob, tradable_only=True))[:3]:
        await service.list_for_sale(guild, bob, copy.copy_id, 5)

    asks = [
        ("inventory", "rarity", ""), ("inventory", "rarity", "tier"), ("auction browse", "rarity", ""),
        ("gacha-leaderboard", "currency", ""), ("auction list", "currency", ""), ("gacha grant", "currency", ""),
        ("esprit show", "esprit", ""), ("esprit set-active", "esprit", "esprit"), ("auction list", "esprit", ""),
        ("auction buy", "listing", ""), ("auction cancel", "listing", ""),
    ]
    for command, option, typed in asks:
        who = "carol" if command == "auction buy" else ("alice" if command.startswith("gacha ") else "bob")
        choices = await d.autocomplete(command, option, typed, as_=who)
        assert choices, (command, option)
        assert len(choices) <= 25, (command, option, len(choices))
        assert all(1 <= len(c["name"]) <= 100 for c in choices), (command, option)
    assert len(await d.autocomplete("inventory", "rarity", "", as_="bob")) == 25
    assert len(await d.autocomplete("esprit show", "esprit", "", as_="bob")) == 25

    # A refusal that lists the valid values stays short too.
    refused = await d.slash("inventory", as_="bob", rarity="b" * 4000)
    assert refused.ephemeral
    assert refused.text.startswith("Unknown rarity 'bbb")
    assert len(refused.text) < 2000


async def test_every_gacha_reply_fits_discords_limits_with_the_longest_data(discord_env: SandboxEnv) -> None:
    d = discord_env.driver
    prompt = await d.slash("start", as_="bob")
    assert_fits(prompt)
    assert_fits(await prompt.click("Accept", as_="bob"))
    await start(discord_env, "carol")
    big = 999_999_999
    assert_fits(await d.slash("gacha grant", as_="alice", member="bob", amount=big - 1000, currency="faylen",
                              reason="R" * 200))
    assert_fits(await d.slash("balance", as_="bob"))
    assert_fits(await d.slash("daily", as_="bob"))
    for _ in range(3):
        summon = await d.slash("summon", as_="bob", count=10)
        assert_fits(summon)
        page = summon
        for _ in range(9):
            page = await page.click("Next")
            assert_fits(page)

    service = gacha_service(discord_env)
    guild = d.member("bob").guild_id
    bob = d.member("bob").user.id
    tradable = await service.owned_choices(guild, bob, tradable_only=True)
    assert len(tradable) == 25
    for copy in tradable:
        await service.list_for_sale(guild, bob, copy.copy_id, 100_000_000, "gems" if copy.copy_id % 2 else "faylen")
    for command, options in [
        ("inventory", {}), ("inventory", {"rarity": "t00"}), ("inventory", {"page": 2}),
        ("auction browse", {}), ("auction browse", {"rarity": "t05"}),
        ("gacha-leaderboard", {"by": "currency", "currency": "faylen"}), ("gacha-leaderboard", {"by": "level"}),
        ("esprit show", {}),
    ]:
        reply = await d.slash(command, as_="bob", **options)
        assert not reply.ephemeral, (command, reply.text[:200])
        assert_fits(reply)
    browse = await d.slash("auction browse", as_="carol")
    assert browse.embed["footer"]["text"].startswith("Page 1/1 · 25 listings")
    assert browse.embed["description"].count("\n") == 24  # every listing of the page is shown
    listing = int(browse.embed["description"].split("**#", 1)[1].split("**", 1)[0])
    await d.slash("gacha grant", as_="alice", member="carol", amount=big, currency="gems", reason="test")
    await d.slash("gacha grant", as_="alice", member="carol", amount=big, currency="faylen", reason="test")
    assert_fits(await d.slash("auction buy", as_="carol", listing=listing))
    mine = (await service.browse(guild, seller_id=bob)).items[0]
    assert_fits(await d.slash("auction cancel", as_="bob", listing=mine.listing_id))
    owned = await service.owned_choices(guild, bob, tradable_only=True)
    assert_fits(await d.slash("auction list", as_="bob", esprit=str(owned[0].copy_id), price=100_000_000,
                              currency="virelite"))
    assert_fits(await d.slash("esprit set-active", as_="bob", esprit=str(owned[1].copy_id)))
