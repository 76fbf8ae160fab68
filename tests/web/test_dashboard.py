"""The admin dashboard on both databases: OAuth2 through the sandbox, Manage Server, CSRF, the same services."""

from __future__ import annotations

import aiohttp
import httpx

from guildkeep.leveling.service import LevelingService
from guildkeep.web.app import Directory, WebContext, create_app
from guildkeep.web.service import WebService
from tests.web.conftest import Discord, csrf_of, log_in, web_settings


async def test_the_owner_changes_the_xp_rate(admin_client: httpx.AsyncClient, discord: Discord,
                                             leveling: LevelingService) -> None:
    done = await log_in(admin_client, discord, discord.alice.id)
    assert done.status_code == 303
    assert done.headers["location"] == "/dashboard"
    listing = await admin_client.get("/dashboard")
    assert "Server A" in listing.text
    assert "Server B" not in listing.text
    page = await admin_client.get(f"/dashboard/{discord.a.id}")
    assert page.status_code == 200
    assert 'value="1"' in page.text  # the current rate
    saved = await admin_client.post(f"/dashboard/{discord.a.id}/config",
                                    data={"csrf": csrf_of(page.text), "xp_rate": "2.5", "message_cooldown": "30"})
    assert saved.status_code == 303
    assert saved.headers["location"] == f"/dashboard/{discord.a.id}?saved=1"
    cfg = await leveling.get_server_config(discord.a.id)
    assert cfg.settings.xp_rate == 2.5
    assert cfg.settings.cooldowns["message"] == 30
    assert cfg.settings.message_xp_min == 15  # untouched fields stay as they were
    assert 'id="saved"' in (await admin_client.get(saved.headers["location"])).text


async def test_a_manage_server_member_may_change_it_too(admin_client: httpx.AsyncClient, discord: Discord,
                                                        leveling: LevelingService) -> None:
    await log_in(admin_client, discord, discord.mod.id)
    page = await admin_client.get(f"/dashboard/{discord.a.id}")
    assert page.status_code == 200
    await admin_client.post(f"/dashboard/{discord.a.id}/config", data={"csrf": csrf_of(page.text), "xp_rate": "3"})
    assert (await leveling.get_server_config(discord.a.id)).settings.xp_rate == 3


async def test_a_member_without_manage_server_is_refused(admin_client: httpx.AsyncClient, discord: Discord,
                                                         leveling: LevelingService) -> None:
    await log_in(admin_client, discord, discord.bob.id)
    assert "Server A" not in (await admin_client.get("/dashboard")).text
    page = await admin_client.get(f"/dashboard/{discord.a.id}")
    assert page.status_code == 403
    assert "Manage Server" in page.text
    csrf = csrf_of(page.text)  # the logout form's token: a valid token for this session
    refused = await admin_client.post(f"/dashboard/{discord.a.id}/config", data={"csrf": csrf, "xp_rate": "9"})
    assert refused.status_code == 403
    assert (await leveling.get_server_config(discord.a.id)).settings.xp_rate == 1.0


async def test_an_admin_of_one_server_cannot_touch_another(admin_client: httpx.AsyncClient, discord: Discord,
                                                           leveling: LevelingService) -> None:
    await log_in(admin_client, discord, discord.mod.id)
    page = await admin_client.get(f"/dashboard/{discord.a.id}")
    for path in (f"/dashboard/{discord.b.id}", f"/dashboard/{discord.b.id}/config"):
        resp = await admin_client.post(path, data={"csrf": csrf_of(page.text), "xp_rate": "7"}) \
            if path.endswith("config") else await admin_client.get(path)
        assert resp.status_code == 403, path
    assert (await leveling.get_server_config(discord.b.id)).settings.xp_rate == 1.0
    assert (await leveling.get_server_config(discord.a.id)).settings.xp_rate == 1.0


async def test_forms_without_the_sessions_csrf_token_change_nothing(admin_client: httpx.AsyncClient,
                                                                    discord: Discord,
                                                                    leveling: LevelingService) -> None:
    await log_in(admin_client, discord, discord.alice.id)
    for data in ({"xp_rate": "4"}, {"xp_rate": "4", "csrf": "forged"}, {"xp_rate": "4", "csrf": ""}):
        resp = await admin_client.post(f"/dashboard/{discord.a.id}/config", data=data)
        assert resp.status_code == 403
        assert "did not come from this site" in resp.text
    assert (await leveling.get_server_config(discord.a.id)).settings.xp_rate == 1.0
    # Another session's valid token does not work in this one.
    other = httpx.AsyncClient(transport=admin_client._transport, base_url="http://testserver")
    async with other:
        await log_in(other, discord, discord.alice.id)
        foreign = csrf_of((await other.get(f"/dashboard/{discord.a.id}")).text)
    resp = await admin_client.post(f"/dashboard/{discord.a.id}/config", data={"xp_rate": "4", "csrf": foreign})
    assert resp.status_code == 403
    assert (await leveling.get_server_config(discord.a.id)).settings.xp_rate == 1.0


async def test_bad_values_get_the_services_message_and_change_nothing(admin_client: httpx.AsyncClient,
                                                                      discord: Discord,
                                                                      leveling: LevelingService) -> None:
    await log_in(admin_client, discord, discord.alice.id)
    csrf = csrf_of((await admin_client.get(f"/dashboard/{discord.a.id}")).text)
    for value, message in (("11", "The XP rate must be between 0 and 10."), ("fast", "The XP rate must be a number.")):
        resp = await admin_client.post(f"/dashboard/{discord.a.id}/config",
                                       data={"csrf": csrf, "xp_rate": value, "message_cooldown": "5"})
        assert resp.status_code == 400
        assert message in resp.text
    resp = await admin_client.post(f"/dashboard/{discord.a.id}/config",
                                   data={"csrf": csrf, "message_xp_min": "50", "message_xp_max": "10"})
    assert "The minimum message XP cannot be above the maximum." in resp.text
    cfg = await leveling.get_server_config(discord.a.id)
    assert cfg.settings.xp_rate == 1.0
    assert cfg.settings.cooldowns["message"] == 60
    assert cfg.settings.message_xp_min == 15


async def test_the_other_dashboard_forms(admin_client: httpx.AsyncClient, discord: Discord,
                                         leveling: LevelingService, admin_ctx: WebContext) -> None:
    await log_in(admin_client, discord, discord.alice.id)
    gid = discord.a.id
    csrf = csrf_of((await admin_client.get(f"/dashboard/{gid}")).text)

    async def post(path: str, **data: str) -> httpx.Response:
        return await admin_client.post(f"/dashboard/{gid}/{path}", data={"csrf": csrf, **data})

    assert (await post("level-roles", role_id="555", level="5", stacked="on")).status_code == 303
    assert [(r.role_id, r.level) for r in await leveling.list_level_roles(gid)] == [(555, 5)]
    assert (await post("level-roles/remove", role_id="555")).status_code == 303
    assert await leveling.list_level_roles(gid) == []
    assert "That role is not a level role." in (await post("level-roles/remove", role_id="555")).text
    await post("no-xp", kind="channel", target_id="777")
    await post("multipliers", kind="role", target_id="888", value="2")
    cfg = await leveling.get_server_config(gid)
    assert cfg.settings.no_xp_channels == (777,)
    assert cfg.settings.role_multipliers == {888: 2.0}
    await post("no-xp", kind="channel", target_id="777", remove="on")
    await post("multipliers", kind="role", target_id="888", value="1")
    cfg = await leveling.get_server_config(gid)
    assert cfg.settings.no_xp_channels == ()
    assert cfg.settings.role_multipliers == {}
    assert "A multiplier must be between 0 and 10." in (await post("multipliers", kind="role", target_id="888",
                                                                   value="12")).text
    await post("quests", name="Chatty", description="Talk", quest_type="special", requirement_type="total_messages",
               requirement_value="10", reward_xp="100")
    quests = await leveling.get_guild_active_quests(gid)
    assert [q.name for q in quests] == ["Chatty"]
    await post("quests/end", quest_id=str(quests[0].id))
    assert await leveling.get_guild_active_quests(gid) == []
    await post("achievements", name="Veteran", description="Level 10", requirement_type="level",
               requirement_value="10", reward_xp="50")
    assert [a.name for a in await leveling.list_achievements(gid)] == ["Veteran"]
    assert (await post("public")).status_code == 303  # the box unticked: public pages off
    assert await WebService(admin_ctx.db).public_pages(gid) is False
    assert (await admin_client.get(f"/guilds/{gid}")).status_code == 404
    await post("public", public_pages="on")
    assert (await admin_client.get(f"/guilds/{gid}")).status_code == 200


async def test_the_oauth_state_must_match(admin_client: httpx.AsyncClient, discord: Discord) -> None:
    start = await admin_client.get("/login")
    assert "state=" in start.headers["location"]
    resp = await admin_client.get("/oauth/callback?code=anything&state=forged")
    assert resp.status_code == 400
    assert "state" in resp.text
    assert (await admin_client.get("/dashboard")).status_code == 303  # still not logged in
    # A callback with no login started at all is refused the same way.
    fresh = httpx.AsyncClient(transport=admin_client._transport, base_url="http://testserver")
    async with fresh:
        assert (await fresh.get("/oauth/callback?code=x&state=y")).status_code == 400


async def test_a_code_is_good_once_and_only_with_the_apps_secret(discord: Discord) -> None:
    server = discord.server
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{server.base_url}/oauth2/authorize", params={
            "client_id": str(server.application_id), "response_type": "code", "scope": "identify guilds",
            "redirect_uri": "http://testserver/oauth/callback", "state": "s1", "user_id": str(discord.bob.id),
        }, allow_redirects=False) as resp:
            assert resp.status == 302
            code = resp.headers["Location"].split("code=")[1].split("&")[0]
        form = {"grant_type": "authorization_code", "code": code, "redirect_uri": "http://testserver/oauth/callback",
                "client_id": str(server.application_id), "client_secret": "wrong"}
        async with http.post(f"{server.base_url}/api/oauth2/token", data=form) as resp:
            assert resp.status == 401
        form["client_secret"] = server.oauth.client_secret
        async with http.post(f"{server.base_url}/api/oauth2/token", data=form) as resp:
            token = await resp.json()
            assert token["token_type"] == "Bearer"
        async with http.post(f"{server.base_url}/api/oauth2/token", data=form) as resp:
            assert resp.status == 400
            assert (await resp.json())["error"] == "invalid_grant"
        bearer = {"Authorization": f"Bearer {token['access_token']}"}
        async with http.get(f"{server.api_url}/users/@me", headers=bearer) as resp:
            assert (await resp.json())["id"] == str(discord.bob.id)
        async with http.get(f"{server.api_url}/users/@me/guilds", headers=bearer) as resp:
            guilds = await resp.json()
        assert [g["id"] for g in guilds] == [str(discord.a.id)]
        assert int(guilds[0]["permissions"]) & (1 << 5) == 0
        async with http.get(f"{server.api_url}/users/@me/guilds", headers={"Authorization": "Bearer nope"}) as resp:
            assert resp.status == 401
        # A user token opens only the two OAuth2 routes.
        async with http.get(f"{server.api_url}/guilds/{discord.a.id}", headers=bearer) as resp:
            assert resp.status == 401


async def test_session_cookie_flags(database_url: str, admin_ctx: WebContext, discord: Discord) -> None:
    for base, secure in (("http://testserver", False), ("https://bot.example.org", True)):
        admin_ctx.settings = web_settings(database_url, discord.server.base_url, web_base_url=base)
        transport = httpx.ASGITransport(app=create_app(admin_ctx))
        async with httpx.AsyncClient(transport=transport, base_url=base) as c:
            resp = await c.get("/login")
        cookie = resp.headers["set-cookie"].lower()
        assert "guildkeep_session=" in cookie
        assert "httponly" in cookie
        assert "samesite=lax" in cookie
        assert ("secure" in cookie.split("; ")) is secure
        assert "redirect_uri=" + ("https%3a%2f%2fbot.example.org" if secure else "http%3a%2f%2ftestserver") in \
            resp.headers["location"].lower()


async def test_logout_needs_the_token_and_ends_the_session(admin_client: httpx.AsyncClient,
                                                          discord: Discord) -> None:
    await log_in(admin_client, discord, discord.alice.id)
    page = await admin_client.get(f"/dashboard/{discord.a.id}")
    assert (await admin_client.post("/logout", data={"csrf": "nope"})).status_code == 403
    assert (await admin_client.get(f"/dashboard/{discord.a.id}")).status_code == 200
    assert (await admin_client.post("/logout", data={"csrf": csrf_of(page.text)})).status_code == 303
    assert (await admin_client.get(f"/dashboard/{discord.a.id}")).status_code == 403


async def test_with_the_bots_directory_channels_and_roles_are_picked_by_name(
        admin_ctx: WebContext, discord: Discord, leveling: LevelingService) -> None:
    admin_ctx.directory = lambda gid: Directory([(777, "general"), (778, "memes")], [(888, "Regulars")]) \
        if gid == discord.a.id else None
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(admin_ctx)),
                                 base_url="http://testserver") as client:
        await log_in(client, discord, discord.alice.id)
        page = (await client.get(f"/dashboard/{discord.a.id}")).text
        assert '<option value="channel:777">#general</option>' in page
        assert '<option value="888">@Regulars</option>' in page
        csrf = csrf_of(page)
        await client.post(f"/dashboard/{discord.a.id}/no-xp", data={"csrf": csrf, "target_id": "channel:778"})
        await client.post(f"/dashboard/{discord.a.id}/multipliers",
                          data={"csrf": csrf, "target_id": "role:888", "value": "1.5"})
        await client.post(f"/dashboard/{discord.a.id}/config", data={"csrf": csrf, "level_up_channel": "777",
                                                                     "level_up_mode": "channel"})
        bad = await client.post(f"/dashboard/{discord.a.id}/no-xp", data={"csrf": csrf, "target_id": "thread:5"})
        assert bad.status_code == 400
        assert "Pick a channel or a role." in bad.text
        page = (await client.get(f"/dashboard/{discord.a.id}")).text
    cfg = await leveling.get_server_config(discord.a.id)
    assert cfg.settings.no_xp_channels == (778,)
    assert cfg.settings.role_multipliers == {888: 1.5}
    assert cfg.settings.level_up_channel == 777
    assert "#memes" in page
    assert "role @Regulars ×1.5" in page
    assert '<option value="777" selected>#general</option>' in page


async def test_a_login_discord_refuses_leaves_the_visitor_logged_out(admin_ctx: WebContext, discord: Discord,
                                                                      database_url: str) -> None:
    admin_ctx.settings = web_settings(database_url, discord.server.base_url, web_client_secret="wrong-secret",
                                      web_client_id=str(discord.server.application_id))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(admin_ctx)),
                                 base_url="http://testserver") as client:
        resp = await log_in(client, discord, discord.alice.id)
        assert resp.status_code == 502
        assert "Discord did not accept the login" in resp.text
        assert (await client.get("/dashboard")).status_code == 303
