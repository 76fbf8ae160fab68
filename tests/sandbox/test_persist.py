"""The playground's world on disk: same ids after a restart; the bot's data of a world can be forgotten."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from guildkeep.db import Database
from guildkeep.gacha.models import Player
from guildkeep.gacha.service import GachaService
from guildkeep.identity.models import Guild as GuildRow
from guildkeep.identity.models import User as UserRow
from guildkeep.leveling.models import Level
from guildkeep.leveling.service import LevelingService
from guildkeep.playground.reset import forget
from guildkeep.sandbox.demo import build_demo_guild
from guildkeep.sandbox.driver import Driver
from guildkeep.sandbox.persist import StateError, WorldFile, state_path
from guildkeep.sandbox.server import SandboxServer
from guildkeep.sandbox.state import Webhook


def test_state_path_sits_beside_the_database(tmp_path: Path) -> None:
    assert state_path(make_url("sqlite+aiosqlite:///data/guildkeep.db")) == Path("data/guildkeep.playground.json")
    assert state_path(make_url("sqlite+aiosqlite:///:memory:")) is None
    assert state_path(make_url("postgresql+asyncpg://u@h/bots"), tmp_path) == tmp_path / "data/bots.playground.json"


def _leftovers(folder: Path) -> list[Path]:
    return [p for p in folder.iterdir() if p.name.endswith(".tmp")]


async def _world(server: SandboxServer) -> Driver:
    d = Driver(server)
    await build_demo_guild(d)
    bob = d.member("bob")
    await d.send("general", f"hello {d.mention(bob)}", as_="alice", files=[("a.png", b"\x89PNG\r\n\x1a\nxyz")])
    sent = await d.send("general", "second", as_="bob")
    await d.react(sent, "👍", as_="carol")
    await d.join_voice("carol", "Lounge", mute=True)
    g = d._guild()
    general = d.channel("general")
    server.world.webhooks[1] = Webhook(server.world.snowflake(), "tok", g.id, general.id, "Narrator",
                                       server.bot_user, application_id=server.application_id)
    return d


async def test_a_saved_world_comes_back_with_the_same_ids(tmp_path: Path) -> None:
    store = WorldFile(tmp_path / "guildkeep.playground.json")
    async with SandboxServer() as first:
        d = await _world(first)
        store.save(first, clock_offset=86400.0)
        before_guild = d._guild().payload()
        before_messages = [first.message_payload(m) for m in first.world.channel_messages(d.channel("general").id)]
        bot_id, last = first.bot_user.id, first.world.snowflake._last

    assert not _leftovers(tmp_path)
    data = store.load()
    assert data is not None
    assert data["clock_offset"] == 86400.0
    assert b"xyz" not in store.path.read_bytes()  # attachment bytes live beside the JSON, not in it

    async with SandboxServer() as second:
        store.restore(second, data)
        d2 = Driver(second, guild=next(iter(second.world.guilds.values())))
        after_guild = d2._guild().payload()
        for payload in (before_guild, after_guild):
            payload.pop("joined_at")
            for thread in payload["threads"]:
                thread.pop("thread_metadata")  # its timestamps say "now"
        assert after_guild == before_guild
        general = d2.channel("general")
        after = [second.message_payload(m) for m in second.world.channel_messages(general.id)]
        for payload in after + before_messages:
            for attachment in payload["attachments"]:
                attachment.pop("url"), attachment.pop("proxy_url")
        assert after == before_messages
        assert second.bot_user.id == bot_id
        assert d2.member("bob").user is second.world.users[d2.member("bob").user.id]
        assert general is second.world.channels[general.id]
        message = second.world.channel_messages(general.id)[0]
        assert message.attachments[0].data == b"\x89PNG\r\n\x1a\nxyz"
        assert message.attachments[0].url.startswith(second.base_url)
        assert message.mentions == [d2.member("bob").user]
        assert d2.member("carol").voice is not None
        assert d2.member("carol").voice.self_mute
        assert second.world.snowflake() > last
        assert [w.name for w in second.world.webhooks.values()] == ["Narrator"]
        # the restored world keeps working: a new message, saved again
        await d2.send("general", "after the restart", as_="bob")
        store.save(second)
    assert "after the restart" in store.path.read_text()


async def test_ephemeral_and_deleted_messages_are_not_kept(tmp_path: Path) -> None:
    store = WorldFile(tmp_path / "w.playground.json")
    async with SandboxServer() as server:
        d = await _world(server)
        messages = server.world.channel_messages(d.channel("general").id)
        store.save(server)
        assert len(list(store.files.iterdir())) == 1
        messages[0].deleted = True
        messages[1].visible_to = d.member("bob").user.id
        store.save(server)
    assert store.load()["messages"] == []  # type: ignore[index]
    assert not list(store.files.iterdir())  # the deleted message's file went with it


def test_a_damaged_state_file_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "guildkeep.playground.json"
    path.write_text("{not json", encoding="utf-8")
    with pytest.raises(StateError, match=r"cannot read the playground state .*move it away"):
        WorldFile(path).load()


async def test_restoring_a_damaged_state_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "guildkeep.playground.json"
    path.write_text(json.dumps({"format": 1, "users": []}), encoding="utf-8")
    store = WorldFile(path)
    async with SandboxServer() as server:
        with pytest.raises(StateError, match="damaged"):
            store.restore(server, store.load())  # type: ignore[arg-type]


async def _count(db: Database, column, where) -> int:  # type: ignore[no-untyped-def]
    async with db.session(read_only=True) as s:
        return int(await s.scalar(select(func.count(column)).where(where)) or 0)


async def test_forget_deletes_only_that_worlds_rows(db: Database) -> None:
    leveling, gacha = LevelingService(db), GachaService(db)
    await gacha.seed_catalogue()
    gone, kept = 1001, 2002
    for guild in (gone, kept):
        await leveling.add_xp(guild, guild + 1, 50)
        await gacha.start(guild, guild + 1, username="p")
        await gacha.daily(guild, guild + 1)
    removed = await forget(db, {gone}, {gone + 1})
    assert removed >= 4
    assert await _count(db, Level.user_id, Level.guild_id == gone) == 0
    assert await _count(db, Player.id, Player.guild_id == gone) == 0
    assert await _count(db, GuildRow.id, GuildRow.id == gone) == 0
    assert await _count(db, UserRow.id, UserRow.id == gone + 1) == 0
    assert await _count(db, Level.user_id, Level.guild_id == kept) == 1
    assert await _count(db, Player.id, Player.guild_id == kept) == 1
    assert (await leveling.get_user_level(kept, kept + 1)).xp == 50
