"""Public pages and their JSON on both databases: keyset pages, profiles, cards, gacha, isolation, 404s."""

from __future__ import annotations

import httpx
import pytest

from guildkeep.db import Database
from guildkeep.errors import ValidationError
from guildkeep.gacha.service import GachaService
from guildkeep.identity.service import IdentityService
from guildkeep.leveling import queries
from guildkeep.leveling.service import LevelingService
from guildkeep.web.service import WebService
from tests.web.conftest import CURVE, GUILD, OTHER, seed_levels

# 23 members, with ties on XP (and three at zero) so the tie-break by user id is exercised across pages.
XPS = [900, 500, 500, 500, 320, 320, 200, 150, 150, 150, 150, 99, 80, 80, 60, 40, 40, 20, 10, 5, 0, 0, 0]
MEMBERS = [(1000 + i * 7 % 23, f"member{i}", xp) for i, xp in enumerate(XPS)]


def expected_order(members: list[tuple[int, str, int]]) -> list[int]:
    return [uid for uid, _n, _xp in sorted(members, key=lambda m: (-m[2], m[0]))]


@pytest.mark.parametrize("limit", [1, 4, 5, 23, 50])
async def test_keyset_pages_cover_every_member_once_in_order(db: Database, limit: int) -> None:
    await seed_levels(db, GUILD, MEMBERS)
    await seed_levels(db, OTHER, [(5000, "elsewhere", 10_000)])
    seen, ranks, after = [], [], None
    while True:
        page = await queries.leaderboard_after(db, GUILD, after, limit=limit)
        assert page.total == len(MEMBERS)
        seen += [r.user_id for r in page.rows]
        ranks += [r.rank for r in page.rows]
        if page.next is None:
            break
        after = page.next
    assert seen == expected_order(MEMBERS)
    assert ranks == list(range(1, len(MEMBERS) + 1))


async def test_a_member_gaining_xp_between_pages_is_not_shown_twice(db: Database) -> None:
    await seed_levels(db, GUILD, MEMBERS)
    first = await queries.leaderboard_after(db, GUILD, None, limit=5)
    # Someone from further down overtakes the whole first page before page 2 is loaded.
    climber = expected_order(MEMBERS)[10]
    await LevelingService(db).set_xp(GUILD, climber, 10_000)
    second = await queries.leaderboard_after(db, GUILD, first.next, limit=5)
    assert not {r.user_id for r in first.rows} & {r.user_id for r in second.rows}
    assert climber not in [r.user_id for r in second.rows]


def test_cursor_parsing() -> None:
    assert str(queries.Cursor.parse("150:1003")) == "150:1003"
    assert queries.Cursor.parse(None) is None
    for bad in ("150", "x:1", "1:-2", "1:2:3", "9" * 20 + ":1", " 1:2"):
        with pytest.raises(ValidationError):
            queries.Cursor.parse(bad)


async def test_leaderboard_api_pages_by_cursor(db: Database, client: httpx.AsyncClient) -> None:
    many = [(2000 + i, f"p{i}", (i % 7) * 100) for i in range(120)]  # 50 + 50 + 20, heavy ties
    await seed_levels(db, GUILD, many)
    seen, url = [], f"/api/guilds/{GUILD}/leaderboard"
    while url:
        resp = await client.get(url)
        assert resp.status_code == 200
        data = resp.json()
        assert data["guild_id"] == str(GUILD)
        assert data["total"] == 120
        seen += [int(e["user_id"]) for e in data["entries"]]
        url = f"/api/guilds/{GUILD}/leaderboard?after={data['next']}" if data["next"] else ""
    assert seen == expected_order(many)
    first = (await client.get(f"/api/guilds/{GUILD}/leaderboard")).json()["entries"][0]
    assert first["level"] == CURVE.level_for_xp(600) == 3
    assert first["xp"] == 600
    assert 0 < first["progress"] < 100
    assert first["xp_into_level"] == 600 - 475
    assert first["initials"] == "P"  # one word, one letter
    assert first["avatar_url"] is None


async def test_leaderboard_page_renders_rows_and_the_next_link(db: Database, client: httpx.AsyncClient) -> None:
    await seed_levels(db, GUILD, [(3000 + i, f"name{i}", 1000 - i) for i in range(60)], guild_name="Cozy Corner")
    resp = await client.get(f"/guilds/{GUILD}")
    assert resp.status_code == 200
    html = resp.text
    assert "Cozy Corner" in html
    assert "60 members ranked by XP" in html
    assert html.count('class="row"') == 50
    assert "name0" in html
    assert "name49" in html
    assert "name50" not in html
    assert f'href="/guilds/{GUILD}?after=951:3049"' in html
    assert 'class="avatar initials' in html
    assert 'role="progressbar"' in html
    second = await client.get(f"/guilds/{GUILD}?after=951:3049")
    assert second.text.count('class="row"') == 10
    assert "name50" in second.text
    assert "#51" in second.text
    assert 'id="next"' not in second.text


async def test_avatars_come_from_the_lookup_when_there_is_one(db: Database, ctx: object) -> None:
    from guildkeep.web.app import create_app

    await seed_levels(db, GUILD, [(11, "has-avatar", 10), (12, "no-avatar", 5)])
    ctx.avatar_url = lambda uid: "https://cdn.discordapp.com/avatars/11/abc.png" if uid == 11 else None  # type: ignore[attr-defined]
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(ctx)),  # type: ignore[arg-type]
                                 base_url="http://testserver") as c:
        entries = (await c.get(f"/api/guilds/{GUILD}/leaderboard")).json()["entries"]
        page = (await c.get(f"/guilds/{GUILD}")).text
    assert entries[0]["avatar_url"] == "https://cdn.discordapp.com/avatars/11/abc.png"
    assert entries[1]["avatar_url"] is None
    assert entries[1]["initials"] == "NA"
    assert '<img class="avatar' in page
    assert ">NA</span>" in page


async def test_bad_cursor_is_a_clear_400(db: Database, client: httpx.AsyncClient) -> None:
    await seed_levels(db, GUILD, MEMBERS)
    resp = await client.get(f"/api/guilds/{GUILD}/leaderboard?after=abc")
    assert resp.status_code == 400
    assert "cursor" in resp.json()["error"]
    assert (await client.get(f"/guilds/{GUILD}?after=1;drop")).status_code == 400


async def test_profile_card_quests_and_achievements(db: Database, client: httpx.AsyncClient,
                                                    leveling: LevelingService) -> None:
    await seed_levels(db, GUILD, MEMBERS)
    top = expected_order(MEMBERS)[0]
    await leveling.create_achievement(GUILD, "Chatterbox", "Reach level 1", "level", 1)
    await leveling.check_achievement_progress(GUILD, top)
    await leveling.create_quest(GUILD, "Say hello", "Send 5 messages", "special", "total_messages", 5, 50)
    resp = await client.get(f"/guilds/{GUILD}/members/{top}")
    assert resp.status_code == 200
    assert "Rank #1" in resp.text
    assert "Say hello" in resp.text
    assert "Chatterbox" in resp.text
    data = (await client.get(f"/api/guilds/{GUILD}/members/{top}")).json()
    assert data["rank"] == 1
    assert data["xp"] == 900
    assert data["achievements"][0]["name"] == "Chatterbox"
    assert data["quests"][0]["goal"] == 5
    card = await client.get(f"/guilds/{GUILD}/members/{top}/card.png")
    assert card.status_code == 200
    assert card.headers["content-type"] == "image/png"
    assert card.content.startswith(b"\x89PNG\r\n\x1a\n")


async def test_no_server_is_reachable_with_another_servers_id(db: Database, client: httpx.AsyncClient) -> None:
    await seed_levels(db, GUILD, [(1, "mine", 100)])
    await seed_levels(db, OTHER, [(2, "theirs", 100)])
    assert (await client.get(f"/guilds/{OTHER}/members/1")).status_code == 404
    assert (await client.get(f"/api/guilds/{OTHER}/members/1")).status_code == 404
    assert (await client.get(f"/guilds/{OTHER}/members/1/card.png")).status_code == 404
    assert (await client.get(f"/guilds/{GUILD}/members/2")).status_code == 404
    board = (await client.get(f"/api/guilds/{OTHER}/leaderboard")).json()
    assert [e["user_id"] for e in board["entries"]] == ["2"]
    # A cursor taken from one server's page gives nothing of that server on another's.
    page = (await client.get(f"/api/guilds/{GUILD}/leaderboard?after=101:0")).json()
    assert [e["user_id"] for e in page["entries"]] == ["1"]


PUBLIC_PATHS = ["/guilds/{g}", "/guilds/{g}/members/1", "/guilds/{g}/members/1/card.png", "/guilds/{g}/gacha",
                "/guilds/{g}/auctions", "/api/guilds/{g}/leaderboard", "/api/guilds/{g}/members/1",
                "/api/guilds/{g}/gacha/leaderboard", "/api/guilds/{g}/auctions"]


async def test_unknown_and_disabled_servers_are_404_everywhere(db: Database, client: httpx.AsyncClient) -> None:
    await seed_levels(db, GUILD, [(1, "mine", 100)])
    for path in PUBLIC_PATHS:
        assert (await client.get(path.format(g=GUILD))).status_code == 200, path
        assert (await client.get(path.format(g=OTHER))).status_code == 404, path
    await WebService(db).set_public_pages(GUILD, False)
    for path in PUBLIC_PATHS:
        resp = await client.get(path.format(g=GUILD))
        assert resp.status_code == 404, path
        assert "mine" not in resp.text
    assert (await client.get(f"/api/guilds/{GUILD}/leaderboard")).json() == {
        "error": "There is no public page for that server."}
    await WebService(db).set_public_pages(GUILD, True)
    assert (await client.get(f"/guilds/{GUILD}")).status_code == 200
    await IdentityService(db).mark_guild_left(GUILD)  # the bot was removed from the server
    assert (await client.get(f"/guilds/{GUILD}")).status_code == 404
    assert (await client.get(f"/api/guilds/{GUILD}/leaderboard")).status_code == 404


async def test_public_pages_set_no_cookie(db: Database, client: httpx.AsyncClient) -> None:
    await seed_levels(db, GUILD, [(1, "mine", 100)])
    for path in PUBLIC_PATHS:
        resp = await client.get(path.format(g=GUILD))
        assert "set-cookie" not in resp.headers, path


async def test_gacha_leaderboards_and_open_auctions(db: Database, client: httpx.AsyncClient,
                                                    gacha: GachaService) -> None:
    await seed_levels(db, GUILD, [])
    await seed_levels(db, OTHER, [])
    for uid in (1, 2, 3):
        await gacha.start(GUILD, uid, username=f"player{uid}")
    await gacha.start(OTHER, 9, username="outsider")
    await gacha.grant(GUILD, 99, 2, amount=5000, currency=None, reason="test")
    await gacha.summon(GUILD, 2, 1)
    copy = next(e for e in (await gacha.inventory(GUILD, 2)).items if not e.is_active)
    listing = await gacha.list_for_sale(GUILD, 2, copy.copy_id, 300)
    board = (await client.get(f"/api/guilds/{GUILD}/gacha/leaderboard?by=currency")).json()
    assert board["total"] == 3
    assert board["entries"][0]["user_id"] == "2"
    assert {e["user_id"] for e in board["entries"]} == {"1", "2", "3"}
    assert board["label"] == gacha.config.currency(board["currency"]).name
    assert (await client.get(f"/api/guilds/{GUILD}/gacha/leaderboard?by=nope")).status_code == 400
    bad = await client.get(f"/api/guilds/{GUILD}/gacha/leaderboard?by=currency&currency=beans")
    assert bad.status_code == 400
    assert "Unknown currency" in bad.json()["error"]
    html = (await client.get(f"/guilds/{GUILD}/gacha?by=level")).text
    assert "player1" in html
    assert "outsider" not in html
    auctions = (await client.get(f"/api/guilds/{GUILD}/auctions")).json()
    assert [x["listing_id"] for x in auctions["listings"]] == [listing.listing_id]
    assert auctions["listings"][0]["price"] == 300
    assert auctions["listings"][0]["seller"] == "player2"
    assert (await client.get(f"/api/guilds/{OTHER}/auctions")).json()["listings"] == []
    assert copy.name in (await client.get(f"/guilds/{GUILD}/auctions")).text


async def test_pages_fit_a_phone(db: Database, client: httpx.AsyncClient) -> None:
    await seed_levels(db, GUILD, [(1, "mine", 100)])
    html = (await client.get(f"/guilds/{GUILD}")).text
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in html
    css = (await client.get("/static/style.css")).text
    assert "@media (max-width: 600px)" in css
    js = await client.get("/static/app.js")
    assert js.status_code == 200
    assert "fetch(" in js.text
