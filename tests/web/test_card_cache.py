"""The public rank card on both databases: rendered once per look, revalidated by ETag, bounded."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest
from starlette.applications import Starlette

import guildkeep.web.app as web_app
from guildkeep.db import Database
from guildkeep.leveling.cards import RankCardData
from guildkeep.leveling.service import LevelingService
from guildkeep.web.app import WebContext, create_app
from guildkeep.web.cardcache import CardCache
from tests.web.conftest import GUILD, seed_levels

A, B, C = 11, 12, 13


@pytest.fixture
def renders(monkeypatch: pytest.MonkeyPatch) -> list[RankCardData]:
    """The cards actually drawn (the real renderer, counted)."""
    drawn: list[RankCardData] = []
    real = web_app.render_rank_card_async

    async def counted(data: RankCardData) -> bytes:
        drawn.append(data)
        return await real(data)

    monkeypatch.setattr(web_app, "render_rank_card_async", counted)
    return drawn


@pytest.fixture
def app(ctx: WebContext, renders: list[RankCardData]) -> Starlette:
    return create_app(ctx)


@pytest.fixture
async def web(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as c:
        yield c


def card_url(uid: int) -> str:
    return f"/guilds/{GUILD}/members/{uid}/card.png"


async def test_a_card_is_drawn_once_until_what_it_shows_changes(
    db: Database, ctx: WebContext, leveling: LevelingService, web: httpx.AsyncClient, renders: list[RankCardData]
) -> None:
    await seed_levels(db, GUILD, [(A, "alice", 500), (B, "bob", 300)])
    first = await web.get(card_url(A))
    assert first.status_code == 200
    assert first.content.startswith(b"\x89PNG\r\n\x1a\n")
    assert "max-age" in first.headers["cache-control"]
    etag = first.headers["etag"]
    second = await web.get(card_url(A))
    assert (second.content, second.headers["etag"]) == (first.content, etag)
    assert len(renders) == 1  # the second request was served from the cache
    # a browser revalidating an unchanged card: 304, no body, no render
    again = await web.get(card_url(A), headers={"If-None-Match": f'W/"other", {etag}'})
    assert (again.status_code, again.content, again.headers["etag"]) == (304, b"", etag)
    assert len(renders) == 1

    # more XP: a new image and a new tag (an old tag no longer matches)
    await leveling.add_xp(GUILD, A, 1000)
    changed = await web.get(card_url(A), headers={"If-None-Match": etag})
    assert changed.status_code == 200
    assert changed.headers["etag"] != etag
    assert len(renders) == 2
    assert renders[-1].total_xp == 1500

    # a new look of the card
    await leveling.update_card(GUILD, A, primary_color="#ff0000")
    recoloured = await web.get(card_url(A))
    assert len(renders) == 3
    assert recoloured.content != changed.content
    assert renders[-1].card.primary_color == "#ff0000"

    # a new avatar
    ctx.avatar_url = lambda uid: "https://cdn.example/avatars/new.png"
    assert (await web.get(card_url(A))).headers["etag"] != recoloured.headers["etag"]
    assert len(renders) == 4

    # another member overtaking A changes A's rank, which the card shows
    await web.get(card_url(A))
    assert len(renders) == 4
    await leveling.add_xp(GUILD, B, 5000)
    await web.get(card_url(A))
    assert len(renders) == 5
    assert renders[-1].rank == 2


async def test_cards_of_different_members_and_servers_never_mix(
    db: Database, web: httpx.AsyncClient, renders: list[RankCardData]
) -> None:
    await seed_levels(db, GUILD, [(A, "alice", 500), (B, "bob", 500)])
    a, b = await web.get(card_url(A)), await web.get(card_url(B))
    assert len(renders) == 2
    assert a.headers["etag"] != b.headers["etag"]
    assert [r.name for r in renders] == ["alice", "bob"]


async def test_the_cache_is_bounded_and_concurrent_requests_draw_once(
    db: Database, app: Starlette, web: httpx.AsyncClient, renders: list[RankCardData]
) -> None:
    cache: CardCache = app.state.card_cache
    cache.max_entries = 2
    await seed_levels(db, GUILD, [(A, "alice", 500), (B, "bob", 400), (C, "carol", 300)])
    replies = await asyncio.gather(*(web.get(card_url(A)) for _ in range(5)))
    assert {r.status_code for r in replies} == {200}
    assert len({r.content for r in replies}) == 1
    assert len(renders) == 1  # five requests at once: one drawing
    await web.get(card_url(B))
    await web.get(card_url(C))  # the least recently used card (A's) leaves
    assert len(cache) == 2
    await web.get(card_url(C))
    assert len(renders) == 3
    await web.get(card_url(A))
    assert len(renders) == 4  # drawn again after eviction


async def test_a_failed_drawing_is_not_cached() -> None:
    cache = CardCache(max_entries=4)
    calls = 0

    async def broken() -> bytes:
        nonlocal calls
        calls += 1
        raise OSError("no font")

    for _ in range(2):
        with pytest.raises(OSError, match="no font"):
            await cache.get("k", broken)
    assert (calls, len(cache)) == (2, 0)
    with pytest.raises(ValueError, match="at least one"):
        CardCache(max_entries=0)
