"""The gacha game end to end: the real bot, through discord.py, on the sandbox, on both databases."""

from __future__ import annotations

import asyncio
import io
import re
from pathlib import Path

import pytest
from PIL import Image

from guildkeep.config import Settings, load_settings
from guildkeep.db import Database
from guildkeep.gacha.service import GachaService
from guildkeep.testing.harness import SandboxEnv

pytestmark = pytest.mark.e2e


def gacha_service(env: SandboxEnv) -> GachaService:
    return env.bot.get_cog("Gacha").service  # type: ignore[union-attr]


def guild_id(env: SandboxEnv) -> int:
    return env.driver.member("bob").guild_id


@pytest.fixture
def discord_settings(database_url: str, tmp_path: Path) -> Settings:
    """The plugin's settings, with backups (taken by /gacha reset) in the test's temporary directory."""
    return load_settings(database_url=database_url, discord_token=None, auto_migrate=False, backup_interval_hours=0,
                         backup_dir=tmp_path / "backups")


async def start(env: SandboxEnv, who: str):
    prompt = await env.driver.slash("start", as_=who)
    assert prompt.ephemeral
    assert "no real-world value" in prompt.text
    return await prompt.click("Accept", as_=who)


async def test_a_new_player_starts_claims_summons_sells_and_another_buys(discord_env: SandboxEnv) -> None:
    d = discord_env.driver

    welcome = await start(discord_env, "bob")
    assert "Welcome" in welcome.text
    assert "starter Esprit" in welcome.text
    card = Image.open(io.BytesIO(welcome.attachments[0].data))
    assert card.format == "PNG"

    again = await d.slash("start", as_="bob")
    assert again.ephemeral
    assert "already started" in again.text

    daily = await d.slash("daily", as_="bob")
    assert "Daily reward" in daily.text
    assert "200" in daily.text
    second = await d.slash("daily", as_="bob")
    assert second.ephemeral
    assert "already claimed" in second.text

    summon = await d.slash("summon", as_="bob", count=10)
    assert summon.embed["title"].startswith("Summon 1/10")
    assert [b["label"] for b in summon.buttons] == ["Previous", "1/10", "Next"]
    assert summon.attachments[0].filename.endswith(".png")
    page = summon
    titles = [page.embed["title"]]
    for _ in range(9):
        page = await page.click("Next")
        titles.append(page.embed["title"])
        assert page.attachments
        assert page.attachments[0].data[:8] == b"\x89PNG\r\n\x1a\n"
    assert titles[-1].startswith("Summon 10/10")
    assert len(set(titles)) == 10

    balance = await d.slash("balance", as_="bob")
    assert "300" in balance.text  # 1000 + 200 daily - 900 for the 10-pull

    choices = await d.autocomplete("auction list", "esprit", "", as_="bob")
    assert len(choices) == 10  # the starter is active and not offered
    copy_id = choices[0]["value"]
    listed = await d.slash("auction list", as_="bob", esprit=copy_id, price=250)
    match = re.search(r"#(\d+)", listed.text)
    assert match
    listing_id = int(match.group(1))

    browse = await d.slash("auction browse", as_="carol")
    assert f"#{listing_id}" in browse.text
    offered = await d.autocomplete("auction buy", "listing", "", as_="carol")
    assert [c["value"] for c in offered] == [listing_id]
    assert offered[0]["name"].startswith(f"#{listing_id} ")
    assert await d.autocomplete("auction buy", "listing", "", as_="bob") == []  # not your own listing
    assert await d.autocomplete("auction buy", "listing", "no such esprit", as_="carol") == []

    await start(discord_env, "carol")
    bought = await d.slash("auction buy", as_="carol", listing=listing_id)
    assert "You bought" in bought.text
    assert "750" in bought.text  # 1000 - 250

    late = await d.slash("auction buy", as_="alice", listing=listing_id)
    assert late.ephemeral

    bob = await d.slash("balance", as_="bob")
    carol = await d.slash("balance", as_="carol")
    assert "550" in bob.text  # 300 + 250
    assert "750" in carol.text
    inventory = await d.slash("inventory", as_="carol")
    assert f"#{copy_id}" in inventory.text


async def test_admin_commands_are_refused_to_members_and_work_for_admins(discord_env: SandboxEnv) -> None:
    d = discord_env.driver
    await start(discord_env, "bob")
    refused = await d.slash("gacha grant", as_="bob", as_admin_override=True, member="bob", amount=5,
                            currency="gems", reason="please")
    assert refused.ephemeral
    assert "Manage Server" in refused.text
    granted = await d.slash("gacha grant", as_="alice", member="bob", amount=500, currency="gems", reason="event")
    assert "510" in granted.text

    # The catalogue is shared by every server: a server's admin may not reload it, the bot's operator may.
    refused = await d.slash("gacha reseed", as_="alice")
    assert refused.ephemeral
    assert "operator" in refused.text
    discord_env.bot.settings.operator_ids = [d.member("alice").user.id]
    reseed = await d.slash("gacha reseed", as_="alice")
    assert reseed.ephemeral
    assert "32 unchanged" in reseed.text


async def test_double_clicking_accept_gives_one_starter(discord_env: SandboxEnv) -> None:
    d = discord_env.driver
    prompt = await d.slash("start", as_="bob")
    outcomes = await asyncio.gather(prompt.click("Accept", as_="bob"), prompt.click("Accept", as_="bob"),
                                    return_exceptions=True)
    texts = [o.text for o in outcomes if not isinstance(o, BaseException)]
    assert sum("Welcome" in t for t in texts) == 1
    assert sum("already started" in t for t in texts) == 1
    inventory = await gacha_service(discord_env).inventory(guild_id(discord_env), d.member("bob").user.id)
    assert inventory.total == 1


async def test_inventory_esprit_and_leaderboard(discord_env: SandboxEnv) -> None:
    d = discord_env.driver
    await start(discord_env, "bob")
    await d.slash("gacha grant", as_="alice", member="bob", amount=2_000, currency="faylen", reason="test")
    await d.slash("summon", as_="bob", count=10)
    await d.slash("summon", as_="bob", count=10)
    inventory = await d.slash("inventory", as_="bob")
    assert "Page 1/3" in inventory.text
    assert [b["label"] for b in inventory.buttons] == ["Previous", "1/3", "Next"]
    last = await d.slash("inventory", as_="bob", page=3)
    assert "Page 3/3" in last.text
    commons = await d.slash("inventory", as_="bob", rarity="common")
    assert "Common" in commons.text
    assert "Legendary" not in commons.text

    choices = await d.autocomplete("esprit set-active", "esprit", "", as_="bob")
    target = choices[-1]
    chosen = await d.slash("esprit set-active", as_="bob", esprit=target["value"])
    assert "is now your active Esprit" in chosen.text
    shown = await d.slash("esprit show", as_="bob")
    assert shown.embed["footer"]["text"] == f"Esprit #{target['value']}"
    assert shown.attachments[0].data[:4] == b"\x89PNG"

    await start(discord_env, "carol")
    board = await d.slash("gacha-leaderboard", as_="carol", by="xp")
    assert board.text.index(str(d.member("bob").user.id)) < board.text.index(str(d.member("carol").user.id))


async def test_cancelled_listing_returns_the_esprit(discord_env: SandboxEnv) -> None:
    d = discord_env.driver
    await start(discord_env, "bob")
    await d.slash("summon", as_="bob", count=1)
    [choice] = await d.autocomplete("auction list", "esprit", "", as_="bob")
    listed = await d.slash("auction list", as_="bob", esprit=choice["value"], price=10, currency="virelite")
    listing_id = int(re.search(r"#(\d+)", listed.text).group(1))
    assert await d.autocomplete("auction list", "esprit", "", as_="bob") == []  # in escrow
    assert [c["value"] for c in await d.autocomplete("auction cancel", "listing", "", as_="bob")] == [listing_id]
    assert await d.autocomplete("auction cancel", "listing", "", as_="carol") == []  # only your own
    cancelled = await d.slash("auction cancel", as_="bob", listing=listing_id)
    assert "withdrawn" in cancelled.text
    assert len(await d.autocomplete("auction list", "esprit", "", as_="bob")) == 1


async def test_reset_asks_for_confirmation_and_takes_a_backup(discord_env: SandboxEnv) -> None:
    d = discord_env.driver
    await start(discord_env, "bob")
    ask = await d.slash("gacha reset", as_="alice")
    assert ask.ephemeral
    cancelled = await ask.click("Cancel", as_="alice")
    assert "nothing was changed" in cancelled.text
    assert await gacha_service(discord_env).has_started(guild_id(discord_env), d.member("bob").user.id)

    ask = await d.slash("gacha reset", as_="alice")
    confirm = await ask.click("Confirm", as_="alice")
    done = await ask.wait_followup()
    assert "1 player, 1 Esprit and 0 listings removed" in done.content
    service = gacha_service(discord_env)
    assert not await service.has_started(guild_id(discord_env), d.member("bob").user.id)
    assert await service.reconcile(guild_id(discord_env)) == []

    # The same confirmation delivered again (its interaction id is the key): no second backup, nothing wiped again.
    await start(discord_env, "bob")
    backups = discord_env.bot.settings.backup_dir
    assert len(list(backups.iterdir())) == 1
    again = await service.reset(guild_id(discord_env), d.member("alice").user.id, backups,
                                key=f"interaction:{confirm.interaction.id}")
    assert again.replayed
    assert len(list(backups.iterdir())) == 1
    assert await service.has_started(guild_id(discord_env), d.member("bob").user.id)
    assert await service.reconcile(guild_id(discord_env)) == []


async def snapshot(env: SandboxEnv) -> dict[str, list[tuple]]:
    """Every row of the game's tables, to check that refused input changed nothing."""
    from sqlalchemy import select

    from guildkeep.gacha.models import AuctionListing, LedgerEntry, Player, UserEsprit

    out: dict[str, list[tuple]] = {}
    async with env.db.session(read_only=True) as s:
        for model in (Player, UserEsprit, AuctionListing, LedgerEntry):
            rows = (await s.execute(select(model).order_by(model.id))).scalars().all()
            out[model.__tablename__] = [tuple(sorted((k, str(v)) for k, v in vars(r).items() if not k.startswith("_")))
                                        for r in rows]
    return out


GENERIC = "something went wrong"
BAD_INPUT = [
    ("inventory", {"rarity": "banana"}, ["Unknown rarity 'banana'", "Common", "Legendary"]),
    ("inventory", {"rarity": "mythic"}, ["Unknown rarity 'mythic'", "Common, Uncommon, Rare, Epic, Legendary"]),
    ("inventory", {"rarity": ""}, ["Unknown rarity ''"]),
    ("auction browse", {"rarity": "banana"}, ["Unknown rarity 'banana'"]),
    ("gacha-leaderboard", {"by": "currency", "currency": "dollars"},
     ["Unknown currency 'dollars'", "Faylen, Virelite, Gems"]),
    ("gacha-leaderboard", {"by": "level", "currency": "dollars"}, ["Unknown currency 'dollars'"]),
    ("auction list", {"esprit": "²", "price": 10}, ["Pick an Esprit"]),
    ("auction list", {"esprit": "①", "price": 10}, ["Pick an Esprit"]),
    ("auction list", {"esprit": "1234567890123456789012345", "price": 10}, ["Pick an Esprit"]),
    ("auction list", {"esprit": "0", "price": 10}, ["Pick an Esprit"]),
    ("auction list", {"esprit": "2", "price": 10, "currency": "x" * 2500}, ["Unknown currency 'xxx", "…'"]),
    ("auction list", {"esprit": "2", "price": 10, "currency": "fay\u200blen\u202e"}, ["Unknown currency"]),
    ("auction list", {"esprit": "999999", "price": 10}, ["You do not own Esprit #999999."]),
    ("auction list", {"esprit": "1", "price": 9_007_199_254_740_991}, ["The price must be between"]),
    ("esprit show", {"esprit": "²"}, ["Pick an Esprit"]),
    ("esprit show", {"esprit": "'; DROP TABLE gacha_players; --"}, ["Pick an Esprit"]),
    ("esprit set-active", {"esprit": "①"}, ["Pick an Esprit"]),
    ("esprit set-active", {"esprit": "#9223372036854775807"}, ["You do not own Esprit #9223372036854775807."]),
    ("auction buy", {"listing": 9_007_199_254_740_991}, ["There is no listing"]),
    ("auction cancel", {"listing": 9_007_199_254_740_991}, ["You have no listing"]),
    ("gacha grant", {"member": "bob", "amount": 5, "currency": "dollars", "reason": "r"}, ["Unknown currency"]),
    ("gacha grant", {"member": "bob", "amount": 5, "currency": "gems", "reason": "a\x00b"}, ["control characters"]),
    ("gacha grant", {"member": "bob", "amount": -9_007_199_254_740_991, "currency": "gems", "reason": "r"},
     ["The amount must"]),
    ("gacha grant", {"member": "bob", "amount": -50, "currency": "gems", "reason": "r"},
     ["They only have 10 Gems, so 50 Gems cannot be taken."]),
    ("gacha grant", {"member": "carol", "amount": 5, "currency": "gems", "reason": "r"},
     ["That member has not started playing yet."]),
]


async def test_bad_input_gets_a_clear_private_answer_and_changes_nothing(discord_env: SandboxEnv) -> None:
    d = discord_env.driver
    await start(discord_env, "bob")
    before = await snapshot(discord_env)
    for command, options, expected in BAD_INPUT:
        who = "alice" if command.startswith("gacha ") else "bob"
        reply = await d.slash(command, as_=who, **options)
        label = f"/{command} {options!r}"[:200]
        assert reply.ephemeral, label
        assert GENERIC not in reply.text, label
        assert len(reply.text) < 2000, label
        for part in expected:
            assert part in reply.text, (label, reply.text[:300])
    assert await snapshot(discord_env) == before


async def test_summon_refusals_are_private(discord_env: SandboxEnv) -> None:
    d = discord_env.driver
    not_started = await d.slash("summon", as_="carol", count=1)
    assert not_started.ephemeral
    assert "/start" in not_started.text
    await start(discord_env, "bob")
    await d.slash("summon", as_="bob", count=10)  # 1000 - 900 = 100 left
    poor = await d.slash("summon", as_="bob", count=10)
    assert poor.ephemeral
    assert poor.text == "That costs 900 Faylen, but you only have 100 Faylen."
    assert not [m for m in d.read("bot-commands", as_="carol") if "costs" in m.content]


async def test_inventory_still_renders_an_esprit_whose_rarity_is_no_longer_configured(
    discord_env: SandboxEnv,
) -> None:
    from sqlalchemy import update

    from guildkeep.gacha.models import Esprit

    d = discord_env.driver
    welcome = await start(discord_env, "bob")
    starter = welcome.embed["title"]
    assert starter
    async with discord_env.db.session() as s:  # an entry left behind by a tier an older config had
        await s.execute(update(Esprit).values(rarity="mythic"))
    inventory = await d.slash("inventory", as_="bob")
    assert not inventory.ephemeral
    assert "Mythic" in inventory.text
    shown = await d.slash("esprit show", as_="bob")
    assert "Mythic" in shown.text
    assert shown.attachments[0].data[:4] == b"\x89PNG"


async def test_an_operators_reseed_reaches_every_shard(db: Database, tmp_path: Path) -> None:
    """Two shards (two bots) share the database and Redis: the reseed runs on one, both reload the config."""
    import json
    import shutil

    from guildkeep.gacha.config import DATA_DIR
    from tests.conftest import REDIS_URL, eventually

    config_dir = tmp_path / "gacha"
    config_dir.mkdir()
    for file in DATA_DIR.glob("*.json"):
        shutil.copyfile(file, config_dir / file.name)
    settings = load_settings(database_url=db.url.render_as_string(hide_password=False), discord_token=None,
                             auto_migrate=False, backup_interval_hours=0, backup_dir=tmp_path / "backups",
                             gacha_config_dir=config_dir, redis_url=REDIS_URL)
    env = await SandboxEnv.start(db, settings, shards=2)
    try:
        for bot in env.bots:
            await eventually(lambda bot=bot: bot.cache_bus.connected)
        cogs = [bot.get_cog("Gacha") for bot in env.bots]
        for bot in env.bots:
            bot.settings.operator_ids = [env.driver.member("alice").user.id]
        esprits = json.loads((config_dir / "esprits.json").read_text(encoding="utf-8"))
        esprits["esprits"][0]["name"] = "Renamed on every shard"
        (config_dir / "esprits.json").write_text(json.dumps(esprits), encoding="utf-8")
        assert all(cog.config.esprits[0].name != "Renamed on every shard" for cog in cogs)

        reply = await env.driver.slash("gacha reseed", as_="alice")
        assert "1 changed" in reply.text
        await eventually(lambda: all(cog.config.esprits[0].name == "Renamed on every shard" for cog in cogs))
    finally:
        await env.stop()
