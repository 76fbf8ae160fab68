"""The sandbox's REST answers: Discord's limits, status codes, error codes, error shape and permissions."""

from __future__ import annotations

import asyncio

import pytest

from guildkeep.sandbox.driver import Driver
from guildkeep.sandbox.server import SandboxServer
from tests.sandbox.conftest import Api


def form_error(data: dict, *path: str | int) -> str:
    node = data["errors"]
    for part in path:
        node = node[str(part)]
    return node["_errors"][0]["code"]


async def test_requests_need_the_bot_token(api: Api) -> None:
    assert await api.call("GET", "/users/@me", auth=False) == (401, {"message": "401: Unauthorized", "code": 0})
    status, me = await api.call("GET", "/users/@me")
    assert status == 200
    assert me["bot"] is True


async def test_unknown_route_is_a_discord_404(api: Api) -> None:
    assert await api.call("GET", "/nothing/here") == (404, {"message": "404: Not Found", "code": 0})


async def test_content_over_2000_characters_is_invalid_form_body(api: Api, sdriver: Driver) -> None:
    general = sdriver.channel("general").id
    status, data = await api.call("POST", f"/channels/{general}/messages", {"content": "x" * 2001})
    assert status == 400
    assert data["code"] == 50035
    assert data["message"] == "Invalid Form Body"
    assert data["errors"]["content"]["_errors"] == [
        {"code": "BASE_TYPE_MAX_LENGTH", "message": "Must be 2000 or fewer in length."}]
    status, _ = await api.call("POST", f"/channels/{general}/messages", {"content": "x" * 2000})
    assert status == 200


@pytest.mark.parametrize(("embed", "path", "code"), [
    ({"title": "t" * 257}, (0, "title"), "BASE_TYPE_MAX_LENGTH"),
    ({"description": "d" * 4097}, (0, "description"), "BASE_TYPE_MAX_LENGTH"),
    ({"fields": [{"name": "n", "value": "v"}] * 26}, (0, "fields"), "BASE_TYPE_MAX_LENGTH"),
    ({"fields": [{"name": "n", "value": "v" * 1025}]}, (0, "fields", 0, "value"), "BASE_TYPE_MAX_LENGTH"),
    ({"footer": {"text": "f" * 2049}}, (0, "footer", "text"), "BASE_TYPE_MAX_LENGTH"),
])
async def test_embed_limits(api: Api, sdriver: Driver, embed: dict, path: tuple, code: str) -> None:
    status, data = await api.call("POST", f"/channels/{sdriver.channel('general').id}/messages", {"embeds": [embed]})
    assert status == 400
    assert form_error(data, "embeds", *path) == code


async def test_embeds_together_over_6000_characters(api: Api, sdriver: Driver) -> None:
    embeds = [{"description": "d" * 4000}, {"description": "d" * 2001}]
    status, data = await api.call("POST", f"/channels/{sdriver.channel('general').id}/messages", {"embeds": embeds})
    assert status == 400
    assert form_error(data, "embeds") == "MAX_EMBED_SIZE_EXCEEDED"


async def test_component_limits(api: Api, sdriver: Driver) -> None:
    button = {"type": 2, "style": 1, "label": "ok", "custom_id": "b"}
    rows = [{"type": 1, "components": [button]}] * 6
    status, data = await api.call("POST", f"/channels/{sdriver.channel('general').id}/messages",
                                  {"content": "hi", "components": rows})
    assert (status, form_error(data, "components")) == (400, "BASE_TYPE_MAX_LENGTH")
    options = [{"label": str(i), "value": str(i)} for i in range(26)]
    rows = [{"type": 1, "components": [{"type": 3, "custom_id": "s", "options": options}]}]
    status, data = await api.call("POST", f"/channels/{sdriver.channel('general').id}/messages",
                                  {"content": "hi", "components": rows})
    assert form_error(data, "components", 0, "components", 0, "options") == "BASE_TYPE_MAX_LENGTH"


async def test_empty_message_and_unknown_message(api: Api, sdriver: Driver) -> None:
    general = sdriver.channel("general").id
    assert await api.call("POST", f"/channels/{general}/messages", {}) == (
        400, {"message": "Cannot send an empty message", "code": 50006})
    assert await api.call("GET", f"/channels/{general}/messages/123") == (
        404, {"message": "Unknown Message", "code": 10008})
    assert await api.call("GET", "/channels/123") == (404, {"message": "Unknown Channel", "code": 10003})


async def test_cannot_edit_someone_elses_message(api: Api, sdriver: Driver) -> None:
    sent = await sdriver.send("general", "mine", as_="bob")
    status, data = await api.call("PATCH", f"/channels/{sent.channel_id}/messages/{sent.id}", {"content": "x"})
    assert (status, data["code"]) == (403, 50005)


async def test_send_messages_and_view_channel_permissions(api: Api, sdriver: Driver) -> None:
    general = sdriver.channel("general")
    await sdriver.set_permissions(general, "guildkeep", deny=["send_messages"])
    assert await api.call("POST", f"/channels/{general.id}/messages", {"content": "hi"}) == (
        403, {"message": "Missing Permissions", "code": 50013})
    await sdriver.set_permissions(general, "guildkeep", deny=["view_channel"])
    assert await api.call("POST", f"/channels/{general.id}/messages", {"content": "hi"}) == (
        403, {"message": "Missing Access", "code": 50001})
    await sdriver.set_permissions(general, "guildkeep", allow=["send_messages"])
    status, _ = await api.call("POST", f"/channels/{general.id}/messages", {"content": "hi"})
    assert status == 200


async def test_administrator_overrides_overwrites(api: Api, sdriver: Driver) -> None:
    general = sdriver.channel("general")
    await sdriver.set_bot_permissions(["administrator"])
    await sdriver.set_permissions(general, "guildkeep", deny=["send_messages", "view_channel"])
    status, _ = await api.call("POST", f"/channels/{general.id}/messages", {"content": "hi"})
    assert status == 200


async def test_role_hierarchy(api: Api, sdriver: Driver) -> None:
    guild = sdriver.guild
    assert guild is not None
    carol = sdriver.member("carol").user.id
    moderator, admin = sdriver.role("Moderator").id, sdriver.role("Admin").id
    status, _ = await api.call("PUT", f"/guilds/{guild.id}/members/{carol}/roles/{moderator}")
    assert status == 204
    assert moderator in sdriver.member("carol").roles
    assert await api.call("PUT", f"/guilds/{guild.id}/members/{carol}/roles/{admin}") == (
        403, {"message": "Missing Permissions", "code": 50013})
    assert await api.call("PATCH", f"/guilds/{guild.id}/roles/{admin}", {"name": "Boss"}) == (
        403, {"message": "Missing Permissions", "code": 50013})
    status, _ = await api.call("DELETE", f"/guilds/{guild.id}/members/{carol}/roles/{moderator}")
    assert status == 204
    assert await api.call("PUT", f"/guilds/{guild.id}/members/{carol}/roles/1") == (
        404, {"message": "Unknown Role", "code": 10011})


async def test_roles_need_manage_roles_and_cannot_grant_more(api: Api, sdriver: Driver) -> None:
    guild = sdriver.guild
    assert guild is not None
    status, role = await api.call("POST", f"/guilds/{guild.id}/roles", {"name": "Champion", "permissions": "1024"})
    assert status == 200
    assert (role["name"], role["permissions"], role["position"]) == ("Champion", "1024", 1)
    status, data = await api.call("POST", f"/guilds/{guild.id}/roles", {"name": "Root", "permissions": "8"})
    assert (status, data["code"]) == (403, 50013)
    status, edited = await api.call("PATCH", f"/guilds/{guild.id}/roles/{role['id']}", {"name": "Hero"})
    assert (status, edited["name"]) == (200, "Hero")
    assert (await api.call("DELETE", f"/guilds/{guild.id}/roles/{role['id']}"))[0] == 204
    await sdriver.set_bot_permissions(["view_channel", "send_messages"])
    status, data = await api.call("POST", f"/guilds/{guild.id}/roles", {"name": "X"})
    assert (status, data["code"]) == (403, 50013)


async def test_webhooks_limits_and_errors(api: Api, sdriver: Driver) -> None:
    general = sdriver.channel("general").id
    status, data = await api.call("POST", f"/channels/{general}/webhooks", {"name": "n" * 81})
    assert (status, form_error(data, "name")) == (400, "BASE_TYPE_MAX_LENGTH")
    status, data = await api.call("POST", f"/channels/{general}/webhooks", {"name": "my discord hook"})
    assert form_error(data, "name") == "USERNAME_INVALID_CONTAINS"
    hooks = [(await api.call("POST", f"/channels/{general}/webhooks", {"name": f"hook {i}"}))[1] for i in range(15)]
    assert await api.call("POST", f"/channels/{general}/webhooks", {"name": "sixteen"}) == (
        400, {"message": "Maximum number of webhooks reached (15)", "code": 30007})
    hook = hooks[0]
    path = f"/webhooks/{hook['id']}/{hook['token']}"
    status, data = await api.call("POST", path + "?wait=1", {"content": "hi", "username": "u" * 81}, auth=False)
    assert (status, form_error(data, "username")) == (400, "BASE_TYPE_MAX_LENGTH")
    status, sent = await api.call("POST", path + "?wait=1", {"content": "hi", "username": "Gimli"}, auth=False)
    assert (status, sent["author"]["username"], sent["webhook_id"]) == (200, "Gimli", hook["id"])
    status, _ = await api.call("POST", path, {"content": "no wait"}, auth=False)
    assert status == 204
    assert await api.call("POST", f"/webhooks/{hook['id']}/wrong", {"content": "x"}, auth=False) == (
        401, {"message": "Invalid Webhook Token", "code": 50027})
    assert (await api.call("DELETE", f"/webhooks/{hook['id']}"))[0] == 204
    assert await api.call("POST", path, {"content": "x"}, auth=False) == (
        404, {"message": "Unknown Webhook", "code": 10015})


async def test_webhook_thread_id_must_be_a_thread_of_its_channel(api: Api, sdriver: Driver) -> None:
    general, other = sdriver.channel("general").id, sdriver.channel("bot-commands").id
    thread = sdriver.channel("welcome-thread").id
    _, hook = await api.call("POST", f"/channels/{general}/webhooks", {"name": "h"})
    path = f"/webhooks/{hook['id']}/{hook['token']}?wait=1"
    status, sent = await api.call("POST", f"{path}&thread_id={thread}", {"content": "in thread"}, auth=False)
    assert (status, sent["channel_id"]) == (200, str(thread))
    status, data = await api.call("POST", f"{path}&thread_id={other}", {"content": "x"}, auth=False)
    assert (status, data["code"]) == (404, 10003)


async def test_a_webhook_message_in_a_thread_is_reached_only_with_its_thread_id(api: Api, sdriver: Driver) -> None:
    general, thread = sdriver.channel("general").id, sdriver.channel("welcome-thread").id
    _, hook = await api.call("POST", f"/channels/{general}/webhooks", {"name": "h"})
    base = f"/webhooks/{hook['id']}/{hook['token']}"
    _, sent = await api.call("POST", f"{base}?wait=1&thread_id={thread}", {"content": "in thread"}, auth=False)
    message = f"{base}/messages/{sent['id']}"
    for method in ("GET", "PATCH", "DELETE"):  # Discord looks in the webhook's own channel without thread_id
        assert await api.call(method, message, {"content": "x"} if method == "PATCH" else None, auth=False) == (
            404, {"message": "Unknown Message", "code": 10008})
    status, got = await api.call("GET", f"{message}?thread_id={thread}", auth=False)
    assert (status, got["content"], got["channel_id"]) == (200, "in thread", str(thread))
    status, edited = await api.call("PATCH", f"{message}?thread_id={thread}", {"content": "edited"}, auth=False)
    assert (status, edited["content"]) == (200, "edited")
    assert (await api.call("DELETE", f"{message}?thread_id={thread}", auth=False))[0] == 204
    _, in_channel = await api.call("POST", f"{base}?wait=1", {"content": "in channel"}, auth=False)
    status, data = await api.call("GET", f"{base}/messages/{in_channel['id']}?thread_id={thread}", auth=False)
    assert (status, data["code"]) == (404, 10008)  # and a channel message is not in the thread


async def test_manage_webhooks_is_required(api: Api, sdriver: Driver) -> None:
    general = sdriver.channel("general")
    await sdriver.set_permissions(general, "guildkeep", deny=["manage_webhooks"])
    assert await api.call("GET", f"/channels/{general.id}/webhooks") == (
        403, {"message": "Missing Permissions", "code": 50013})
    assert (await api.call("POST", f"/channels/{general.id}/webhooks", {"name": "h"}))[0] == 403


async def test_command_sync_limits_and_string_permissions(api: Api, sandbox: SandboxServer) -> None:
    app = sandbox.application_id
    option = {"type": 3, "name": "o", "description": "d"}
    too_many = [{"name": "big", "description": "d", "options": [{**option, "name": f"o{i}"} for i in range(26)]}]
    status, data = await api.call("PUT", f"/applications/{app}/commands", too_many)
    assert (status, form_error(data, 0, "options")) == (400, "BASE_TYPE_MAX_LENGTH")
    choices = [{"name": str(i), "value": str(i)} for i in range(26)]
    status, data = await api.call("PUT", f"/applications/{app}/commands",
                                  [{"name": "c", "description": "d", "options": [{**option, "choices": choices}]}])
    assert form_error(data, 0, "options", 0, "choices") == "BASE_TYPE_MAX_LENGTH"
    status, data = await api.call("PUT", f"/applications/{app}/commands", [{"name": "Bad Name", "description": "d"}])
    assert form_error(data, 0, "name") == "APPLICATION_COMMAND_INVALID_NAME"
    good = [{"name": "admin", "description": "d", "default_member_permissions": 32}]
    status, first = await api.call("PUT", f"/applications/{app}/commands", good)
    assert status == 200
    assert first[0]["default_member_permissions"] == "32"
    _, again = await api.call("PUT", f"/applications/{app}/commands", good)
    assert again[0]["id"] == first[0]["id"], "overwriting keeps a command's id"


async def test_answering_an_interaction_twice(api: Api, sandbox: SandboxServer, sdriver: Driver) -> None:
    app = sandbox.application_id
    await api.call("PUT", f"/applications/{app}/commands", [{"name": "x", "description": "d"}])
    pending = asyncio.create_task(sdriver.slash("x", as_="bob", timeout=5))
    inter = await sdriver.wait_for(lambda: next(iter(sandbox.world.interactions.values()), None), "the interaction")
    path = f"/interactions/{inter.id}/{inter.token}/callback"
    status, _ = await api.call("POST", path, {"type": 4, "data": {"content": "one"}}, auth=False)
    assert status == 204
    assert await api.call("POST", path, {"type": 4, "data": {"content": "two"}}, auth=False) == (
        400, {"message": "Interaction has already been acknowledged.", "code": 40060})
    assert await api.call("POST", f"/interactions/{inter.id}/nope/callback", {"type": 4}, auth=False) == (
        404, {"message": "Unknown Interaction", "code": 10062})
    reply = await pending
    assert reply.content == "one"


async def test_history_pages_newest_first(api: Api, sdriver: Driver) -> None:
    sent = [await sdriver.send("general", f"m{i}", as_="bob") for i in range(5)]
    general = sdriver.channel("general").id
    _, page = await api.call("GET", f"/channels/{general}/messages?limit=2")
    assert [m["content"] for m in page] == ["m4", "m3"]
    _, older = await api.call("GET", f"/channels/{general}/messages?limit=2&before={sent[3].id}")
    assert [m["content"] for m in older] == ["m2", "m1"]
    _, newer = await api.call("GET", f"/channels/{general}/messages?limit=2&after={sent[0].id}")
    assert [m["content"] for m in newer] == ["m2", "m1"]


async def test_an_interaction_answered_too_late_is_unknown(api: Api, sandbox: SandboxServer, sdriver: Driver) -> None:
    app = sandbox.application_id
    await api.call("PUT", f"/applications/{app}/commands", [{"name": "slow", "description": "d"}])
    sandbox.interaction_deadline = 0.0
    pending = asyncio.create_task(sdriver.slash("slow", as_="bob", timeout=1))
    inter = await sdriver.wait_for(lambda: next(iter(sandbox.world.interactions.values()), None), "the interaction")
    assert await api.call("POST", f"/interactions/{inter.id}/{inter.token}/callback",
                          {"type": 4, "data": {"content": "late"}}, auth=False) == (
        404, {"message": "Unknown Interaction", "code": 10062})
    with pytest.raises(AssertionError, match="did not answer /slow"):
        await pending


async def test_the_bot_creates_threads(api: Api, sdriver: Driver) -> None:
    general = sdriver.channel("general")
    status, thread = await api.call("POST", f"/channels/{general.id}/threads", {"name": "quest log", "type": 11})
    assert (status, thread["type"], thread["parent_id"]) == (201, 11, str(general.id))
    sent = await sdriver.send(general, "start here", as_="bob")
    status, from_message = await api.call("POST", f"/channels/{general.id}/messages/{sent.id}/threads",
                                          {"name": "replies"})
    assert (status, from_message["id"]) == (201, str(sent.id))
    status, data = await api.call("POST", f"/channels/{general.id}/messages/{sent.id}/threads", {"name": "again"})
    assert (status, data["code"]) == (400, 160004)
    await sdriver.set_permissions(general, "@everyone", deny=["create_public_threads"])
    status, data = await api.call("POST", f"/channels/{general.id}/threads", {"name": "nope"})
    assert (status, data["code"]) == (403, 50013)
    assert sdriver.channel("quest log").is_thread
