"""Requests Discord rejects, sent raw, and the sandbox's answers checked against what Discord answers."""

from __future__ import annotations

import asyncio
import secrets
from typing import Any

import pytest

from guildkeep.sandbox.driver import Driver
from guildkeep.sandbox.server import SandboxServer
from guildkeep.sandbox.state import Interaction, Perm, Webhook
from tests.sandbox.conftest import Api


def form_errors(data: dict[str, Any], *path: str | int) -> list[dict[str, str]]:
    """The ``_errors`` list at ``path`` in a 50035 answer's nested ``errors`` tree."""
    assert data["code"] == 50035, data
    assert data["message"] == "Invalid Form Body"
    node = data["errors"]
    for part in path:
        assert str(part) in node, f"no error at {part!r} of {path}: {data['errors']}"
        node = node[str(part)]
    return node["_errors"]


def form_error(data: dict[str, Any], *path: str | int) -> str:
    return form_errors(data, *path)[0]["code"]


def pending_interaction(sandbox: SandboxServer, sdriver: Driver, kind: int, *, as_: str = "bob",
                        channel: str = "bot-commands", data: dict[str, Any] | None = None,
                        opened_by: Interaction | None = None) -> Interaction:
    """An interaction the sandbox sent (as a member's click or command would), not yet answered."""
    member = sdriver.member(as_)
    inter = Interaction(sandbox.world.snowflake(), f"itoken.{secrets.token_urlsafe(16)}", kind, member.guild_id,
                        sdriver.channel(channel).id, member.user, data or {"name": "x"}, opened_by=opened_by)
    sandbox.world.interactions[inter.id] = inter
    return inter


async def callback(api: Api, inter: Interaction, body: dict[str, Any]) -> tuple[int, Any]:
    return await api.call("POST", f"/interactions/{inter.id}/{inter.token}/callback", body, auth=False)


# -- autocomplete and modal answers --------------------------------------------------------------


async def test_autocomplete_answer_with_more_than_25_choices(api: Api, sandbox: SandboxServer,
                                                             sdriver: Driver) -> None:
    choices = [{"name": f"c{i}", "value": f"c{i}"} for i in range(26)]
    inter = pending_interaction(sandbox, sdriver, 4)
    status, data = await callback(api, inter, {"type": 8, "data": {"choices": choices}})
    assert status == 400
    assert form_errors(data, "data", "choices") == [
        {"code": "BASE_TYPE_MAX_LENGTH", "message": "Must be 25 or fewer in length."}]
    assert inter.response_type is None
    status, _ = await callback(api, inter, {"type": 8, "data": {"choices": choices[:25]}})
    assert status == 204


async def test_modal_title_over_45_characters(api: Api, sandbox: SandboxServer, sdriver: Driver) -> None:
    field = {"type": 1, "components": [{"type": 4, "custom_id": "f", "label": "Name", "style": 1}]}
    inter = pending_interaction(sandbox, sdriver, 2)
    status, data = await callback(api, inter, {"type": 9, "data": {"title": "t" * 46, "custom_id": "m",
                                                                   "components": [field]}})
    assert status == 400
    assert form_errors(data, "data", "title") == [
        {"code": "BASE_TYPE_MAX_LENGTH", "message": "Must be 45 or fewer in length."}]
    status, _ = await callback(api, inter, {"type": 9, "data": {"title": "t" * 45, "custom_id": "m",
                                                                "components": [field]}})
    assert status == 204


# -- embeds ---------------------------------------------------------------------------------------

NONE_SCHEME = {"code": "URL_TYPE_INVALID_SCHEME",
               "message": "Scheme \"none\" is not supported. Scheme must be one of ('http', 'https')."}


@pytest.mark.parametrize(("embed", "path"), [
    ({"title": "t", "url": "None"}, ("url",)),
    ({"image": {"url": "None"}}, ("image", "url")),
    ({"thumbnail": {"url": "None"}}, ("thumbnail", "url")),
    ({"author": {"name": "a", "url": "None"}}, ("author", "url")),
    ({"author": {"name": "a", "icon_url": "None"}}, ("author", "icon_url")),
    ({"footer": {"text": "f", "icon_url": "None"}}, ("footer", "icon_url")),
])
async def test_embed_url_that_is_not_a_url(api: Api, sdriver: Driver, embed: dict[str, Any],
                                           path: tuple[str, ...]) -> None:
    general = sdriver.channel("general").id
    status, data = await api.call("POST", f"/channels/{general}/messages", {"embeds": [{"description": "d"}, embed]})
    assert status == 400
    assert form_errors(data, "embeds", 1, *path) == [NONE_SCHEME]


async def test_embed_urls_discord_accepts_and_refuses(api: Api, sdriver: Driver) -> None:
    general = sdriver.channel("general").id
    good = {"title": "t", "url": "https://example.org/x", "image": {"url": "attachment://card.png"},
            "thumbnail": {"url": "http://example.org/t.png"}, "footer": {"text": "f", "icon_url": "https://e.org/i"}}
    status, _ = await api.call("POST", f"/channels/{general}/messages", {"embeds": [good]})
    assert status == 200
    status, data = await api.call("POST", f"/channels/{general}/messages",
                                  {"embeds": [{"title": "t", "url": "attachment://card.png"}]})
    assert form_error(data, "embeds", 0, "url") == "URL_TYPE_INVALID_SCHEME"
    status, data = await api.call("POST", f"/channels/{general}/messages",
                                  {"embeds": [{"image": {"url": "ftp://example.org/a.png"}}]})
    assert form_errors(data, "embeds", 0, "image", "url")[0]["message"].startswith('Scheme "ftp" is not supported.')
    status, data = await api.call("POST", f"/channels/{general}/messages",
                                  {"embeds": [{"image": {"url": "https://"}}]})
    assert form_errors(data, "embeds", 0, "image", "url") == [
        {"code": "URL_TYPE_INVALID_URL", "message": "Not a well formed URL."}]


@pytest.mark.parametrize(("color", "code", "message"), [
    (0x1000000, "NUMBER_TYPE_MAX", "int value should be less than or equal to 16777215."),
    (-1, "NUMBER_TYPE_MIN", "int value should be greater than or equal to 0."),
])
async def test_embed_colour_out_of_range(api: Api, sdriver: Driver, color: int, code: str, message: str) -> None:
    general = sdriver.channel("general").id
    status, data = await api.call("POST", f"/channels/{general}/messages", {"embeds": [{"title": "t", "color": color}]})
    assert status == 400
    assert form_errors(data, "embeds", 0, "color") == [{"code": code, "message": message}]
    status, _ = await api.call("POST", f"/channels/{general}/messages", {"embeds": [{"title": "t", "color": 0xFFFFFF}]})
    assert status == 200


async def test_embed_checks_apply_to_webhooks_and_edits(api: Api, sdriver: Driver) -> None:
    general = sdriver.channel("general").id
    _, hook = await api.call("POST", f"/channels/{general}/webhooks", {"name": "h"})
    status, data = await api.call("POST", f"/webhooks/{hook['id']}/{hook['token']}?wait=1",
                                  {"embeds": [{"thumbnail": {"url": "None"}}]}, auth=False)
    assert (status, form_errors(data, "embeds", 0, "thumbnail", "url")) == (400, [NONE_SCHEME])
    _, sent = await api.call("POST", f"/channels/{general}/messages", {"content": "hi"})
    status, data = await api.call("PATCH", f"/channels/{general}/messages/{sent['id']}",
                                  {"embeds": [{"title": "t", "color": 1 << 24}]})
    assert (status, form_error(data, "embeds", 0, "color")) == (400, "NUMBER_TYPE_MAX")


# -- component structure --------------------------------------------------------------------------

BUTTON = {"type": 2, "style": 1, "label": "ok", "custom_id": "ok"}


def row(*children: dict[str, Any]) -> dict[str, Any]:
    return {"type": 1, "components": list(children)}


def select(options: list[dict[str, Any]], **more: Any) -> dict[str, Any]:
    return {"type": 3, "custom_id": "menu", "options": options, **more}


OPTIONS = [{"label": "A", "value": "a"}, {"label": "B", "value": "b"}]


@pytest.mark.parametrize(("components", "path", "expected"), [
    ([row(select([]))], (0, "components", 0, "options"),
     {"code": "BASE_TYPE_REQUIRED", "message": "This field is required"}),
    ([row(select([{"label": "A", "value": "a"}, {"label": "A again", "value": "a"}]))],
     (0, "components", 0, "options", 1),
     {"code": "SELECT_COMPONENT_OPTION_VALUE_DUPLICATED", "message": "The specified option value is already used"}),
    ([row(select(OPTIONS, min_values=2, max_values=1))], (0, "components", 0, "min_values"),
     {"code": "NUMBER_TYPE_MAX", "message": "min_values value should be less than or equal to 1."}),
    ([row(select(OPTIONS, max_values=3))], (0, "components", 0, "options"),
     {"code": "BASE_TYPE_MIN_LENGTH", "message": "Must be 3 or more in length."}),
    ([row()], (0, "components"), {"code": "BASE_TYPE_REQUIRED", "message": "This field is required"}),
    ([row(BUTTON), row({**BUTTON, "label": "again"})], (1, "components", 0, "custom_id"),
     {"code": "COMPONENT_CUSTOM_ID_DUPLICATED", "message": "Component custom id cannot be duplicated"}),
    ([row(BUTTON, select(OPTIONS, custom_id="ok"))], (0, "components", 1, "custom_id"),
     {"code": "COMPONENT_CUSTOM_ID_DUPLICATED", "message": "Component custom id cannot be duplicated"}),
    ([row({"type": 2, "style": 5, "label": "web", "url": "https://example.org", "custom_id": "x"})],
     (0, "components", 0, "custom_id"),
     {"code": "BUTTON_COMPONENT_CUSTOM_ID_URL_MUTUALLY_EXCLUSIVE",
      "message": "A custom id and url cannot both be specified"}),
    ([row({"type": 2, "style": 5, "label": "web"})], (0, "components", 0, "url"),
     {"code": "BASE_TYPE_REQUIRED", "message": "This field is required"}),
    ([row({"type": 2, "style": 5, "label": "web", "url": "None"})], (0, "components", 0, "url"),
     {"code": "URL_TYPE_INVALID_SCHEME",
      "message": "Scheme \"none\" is not supported. Scheme must be one of ('http', 'https', 'discord')."}),
    ([row({"type": 2, "style": 1, "label": "no id"})], (0, "components", 0, "custom_id"),
     {"code": "BUTTON_COMPONENT_CUSTOM_ID_REQUIRED", "message": "A custom id is required"}),
    ([BUTTON], (0,), {"code": "UNION_TYPE_CHOICES", "message": 'Value of field "type" must be one of (1,).'}),
])
async def test_component_structure(api: Api, sdriver: Driver, components: list[dict[str, Any]],
                                   path: tuple[str | int, ...], expected: dict[str, str]) -> None:
    general = sdriver.channel("general").id
    status, data = await api.call("POST", f"/channels/{general}/messages", {"content": "hi", "components": components})
    assert status == 400
    assert expected in form_errors(data, "components", *path)


async def test_well_formed_components_pass(api: Api, sdriver: Driver) -> None:
    general = sdriver.channel("general").id
    components = [row(BUTTON, {"type": 2, "style": 5, "label": "web", "url": "https://example.org"},
                      {**BUTTON, "custom_id": "two", "disabled": True}),
                  row(select(OPTIONS, min_values=1, max_values=2))]
    status, sent = await api.call("POST", f"/channels/{general}/messages", {"content": "hi", "components": components})
    assert status == 200, sent
    status, sent = await api.call("POST", f"/channels/{general}/messages",
                                  {"flags": 1 << 15, "components": [{"type": 10, "content": "v2 text"}]})
    assert status == 200, sent


async def test_components_are_checked_on_interaction_replies(api: Api, sandbox: SandboxServer,
                                                             sdriver: Driver) -> None:
    inter = pending_interaction(sandbox, sdriver, 2)
    body = {"type": 4, "data": {"content": "x", "components": [row(BUTTON, BUTTON)]}}
    status, data = await callback(api, inter, body)
    assert (status, form_error(data, "data", "components", 0, "components", 1, "custom_id")) == (
        400, "COMPONENT_CUSTOM_ID_DUPLICATED")
    status, data = await callback(api, inter, {"type": 4, "data": {"content": "x" * 2001}})
    assert (status, form_error(data, "data", "content")) == (400, "BASE_TYPE_MAX_LENGTH")


FIELD = {"type": 4, "custom_id": "name", "label": "Name", "style": 1}


async def test_a_modal_needs_components(api: Api, sandbox: SandboxServer, sdriver: Driver) -> None:
    inter = pending_interaction(sandbox, sdriver, 2)
    status, data = await callback(api, inter, {"type": 9, "data": {"title": "T", "custom_id": "m", "components": []}})
    assert status == 400
    assert form_errors(data, "data", "components") == [
        {"code": "BASE_TYPE_REQUIRED", "message": "This field is required"}]
    status, data = await callback(api, inter, {"type": 9, "data": {"title": "T", "custom_id": "m",
                                                                   "components": [row(BUTTON)]}})
    assert form_errors(data, "data", "components", 0, "components", 0) == [
        {"code": "UNION_TYPE_CHOICES", "message": 'Value of field "type" must be one of (4,).'}]
    status, _ = await callback(api, inter, {"type": 9, "data": {"title": "T", "custom_id": "m",
                                                                "components": [row(FIELD)]}})
    assert status == 204


async def test_a_modal_submit_cannot_be_answered_with_a_modal(api: Api, sandbox: SandboxServer,
                                                               sdriver: Driver) -> None:
    opener = pending_interaction(sandbox, sdriver, 2)
    submit = pending_interaction(sandbox, sdriver, 5, data={"custom_id": "m", "components": []}, opened_by=opener)
    status, data = await callback(api, submit, {"type": 9, "data": {"title": "T", "custom_id": "m2",
                                                                    "components": [row(FIELD)]}})
    assert (status, data) == (400, {"message": "Invalid Form Body", "code": 50035, "errors": {"type": {"_errors": [
        {"code": "INTERACTION_RESPONSE_TYPE_INVALID", "message": "Invalid interaction response type"}]}}})
    status, _ = await callback(api, submit, {"type": 4, "data": {"content": "thanks"}})
    assert status == 204


# -- interaction tokens ---------------------------------------------------------------------------


async def test_interaction_tokens_expire_after_15_minutes(api: Api, sandbox: SandboxServer, sdriver: Driver) -> None:
    inter = pending_interaction(sandbox, sdriver, 2)
    assert (await callback(api, inter, {"type": 4, "data": {"content": "first"}}))[0] == 204
    app, token = sandbox.application_id, inter.token
    status, followup = await api.call("POST", f"/webhooks/{app}/{token}", {"content": "more"}, auth=False)
    assert status == 200
    sandbox.clock.advance(14 * 60)
    status, _ = await api.call("PATCH", f"/webhooks/{app}/{token}/messages/@original", {"content": "edited"},
                               auth=False)
    assert status == 200
    sandbox.clock.advance(60 + 1)
    expired = (401, {"message": "Invalid Webhook Token", "code": 50027})
    assert await api.call("POST", f"/webhooks/{app}/{token}", {"content": "late"}, auth=False) == expired
    assert await api.call("PATCH", f"/webhooks/{app}/{token}/messages/@original", {"content": "late"},
                          auth=False) == expired
    assert await api.call("GET", f"/webhooks/{app}/{token}/messages/@original", auth=False) == expired
    assert await api.call("DELETE", f"/webhooks/{app}/{token}/messages/{followup['id']}", auth=False) == expired


# -- permissions ----------------------------------------------------------------------------------

MISSING_PERMISSIONS = (403, {"message": "Missing Permissions", "code": 50013})


async def test_a_reply_needs_read_message_history(api: Api, sdriver: Driver) -> None:
    general = sdriver.channel("general")
    sent = await sdriver.send(general, "question?", as_="bob")
    await sdriver.set_permissions(general, "guildkeep", deny=["read_message_history"])
    reply = {"content": "answer", "message_reference": {"message_id": str(sent.id)}}
    assert await api.call("POST", f"/channels/{general.id}/messages", reply) == MISSING_PERMISSIONS
    status, _ = await api.call("POST", f"/channels/{general.id}/messages", {"content": "not a reply"})
    assert status == 200
    await sdriver.set_permissions(general, "guildkeep", allow=["read_message_history"])
    status, answer = await api.call("POST", f"/channels/{general.id}/messages", reply)
    assert (status, answer["message_reference"]["message_id"]) == (200, str(sent.id))


async def test_history_without_read_message_history_is_empty(api: Api, sdriver: Driver) -> None:
    general = sdriver.channel("general")
    await sdriver.send(general, "hello", as_="bob")
    status, page = await api.call("GET", f"/channels/{general.id}/messages")
    assert (status, [m["content"] for m in page]) == (200, ["hello"])
    await sdriver.set_permissions(general, "guildkeep", deny=["read_message_history"])
    assert await api.call("GET", f"/channels/{general.id}/messages") == (200, [])
    await sdriver.set_permissions(general, "guildkeep", deny=["view_channel"])
    assert await api.call("GET", f"/channels/{general.id}/messages") == (403, {"message": "Missing Access",
                                                                               "code": 50001})


async def test_member_timeout_needs_moderate_members(api: Api, sdriver: Driver) -> None:
    guild = sdriver.guild
    assert guild is not None
    bob, alice = sdriver.member("bob"), sdriver.member("alice")
    until = "2099-01-01T00:00:00+00:00"
    path = f"/guilds/{guild.id}/members/{bob.user.id}"
    assert await api.call("PATCH", path, {"communication_disabled_until": until}) == MISSING_PERMISSIONS
    assert bob.communication_disabled_until is None
    moderator = sdriver.role("Moderator").id
    assert await api.call("PATCH", path, {"roles": [str(moderator)], "communication_disabled_until": until}) == (
        MISSING_PERMISSIONS)
    assert moderator not in bob.roles, "a refused edit changes nothing"
    bot_role = next(r for r in guild.roles.values() if r.managed)
    bot_role.permissions |= Perm.MODERATE_MEMBERS
    status, member = await api.call("PATCH", path, {"communication_disabled_until": until})
    assert (status, member["communication_disabled_until"]) == (200, until)
    status, fetched = await api.call("GET", path)
    assert fetched["communication_disabled_until"] == until
    status, member = await api.call("PATCH", path, {"communication_disabled_until": None})
    assert (status, member["communication_disabled_until"]) == (200, None)
    owner_path = f"/guilds/{guild.id}/members/{alice.user.id}"
    assert await api.call("PATCH", owner_path, {"communication_disabled_until": until}) == MISSING_PERMISSIONS


# -- application commands -------------------------------------------------------------------------

STRING = {"type": 3, "name": "text", "description": "d"}
SUB = {"type": 1, "name": "sub", "description": "d"}


@pytest.mark.parametrize(("options", "path", "expected"), [
    ([{**STRING, "name": "Text"}], ("options", 0, "name"),
     {"code": "APPLICATION_COMMAND_INVALID_NAME", "message": "Command name is invalid"}),
    ([STRING, {**STRING, "type": 4}], ("options", 1, "name"),
     {"code": "APPLICATION_COMMAND_OPTIONS_NAME_INVALID", "message": "Option name text is already used"}),
    ([{**STRING, "autocomplete": True, "choices": [{"name": "a", "value": "a"}]}], ("options", 0, "autocomplete"),
     {"code": "APPLICATION_COMMAND_OPTION_CHOICES_AUTOCOMPLETE",
      "message": "Autocomplete and choices are mutually exclusive"}),
    ([SUB, STRING], ("options",),
     {"code": "APPLICATION_COMMAND_OPTIONS_TYPE_INVALID",
      "message": "Sub-command and sub-command group option types are mutually exclusive to all other types"}),
    ([{**SUB, "options": [{**STRING, "name": "Loud"}]}], ("options", 0, "options", 0, "name"),
     {"code": "APPLICATION_COMMAND_INVALID_NAME", "message": "Command name is invalid"}),
])
async def test_command_option_rules(api: Api, sandbox: SandboxServer, options: list[dict[str, Any]],
                                    path: tuple[str | int, ...], expected: dict[str, str]) -> None:
    app = sandbox.application_id
    command = {"name": "cmd", "description": "d", "options": options}
    status, data = await api.call("PUT", f"/applications/{app}/commands", [command])
    assert status == 400
    assert expected in form_errors(data, 0, *path)
    status, data = await api.call("POST", f"/applications/{app}/commands", command)
    assert status == 400
    assert expected in form_errors(data, *path)
    assert sandbox.world.commands == {}


async def test_single_command_create_and_overwrite(api: Api, sandbox: SandboxServer) -> None:
    app = sandbox.application_id
    status, created = await api.call("POST", f"/applications/{app}/commands", {"name": "one", "description": "d"})
    assert status == 201
    status, again = await api.call("POST", f"/applications/{app}/commands", {"name": "one", "description": "new"})
    assert (status, again["id"], again["description"]) == (200, created["id"], "new")


async def test_more_than_100_global_commands(api: Api, sandbox: SandboxServer) -> None:
    app = sandbox.application_id
    commands = [{"name": f"c{i}", "description": "d"} for i in range(101)]
    too_many = (400, {"message": "Maximum number of application commands reached", "code": 30032})
    assert await api.call("PUT", f"/applications/{app}/commands", commands) == too_many
    status, _ = await api.call("PUT", f"/applications/{app}/commands", commands[:100])
    assert status == 200
    assert await api.call("POST", f"/applications/{app}/commands", commands[100]) == too_many
    status, _ = await api.call("POST", f"/applications/{app}/commands", {"name": "c0", "description": "edit"})
    assert status == 200


# -- messages: flags, webhook components, application_id ---------------------------------------


async def test_ephemeral_flag_is_ignored_on_channel_messages(api: Api, sdriver: Driver) -> None:
    general = sdriver.channel("general").id
    status, sent = await api.call("POST", f"/channels/{general}/messages", {"content": "for all", "flags": 64})
    assert (status, sent["flags"]) == (200, 0)
    assert [m.content for m in sdriver.read("general", as_="carol")] == ["for all"]
    status, sent = await api.call("POST", f"/channels/{general}/messages", {"content": "quiet", "flags": 64 | 4096})
    assert (status, sent["flags"]) == (200, 4096)


async def test_webhook_components_need_with_components_unless_app_owned(api: Api, sandbox: SandboxServer,
                                                                        sdriver: Driver) -> None:
    general = sdriver.channel("general")
    link = [row({"type": 2, "style": 5, "label": "web", "url": "https://example.org"})]
    user_hook = Webhook(sandbox.world.snowflake(), "tok", general.guild_id or 0, general.id, "Captain",
                        sdriver.member("alice").user)
    sandbox.world.webhooks[user_hook.id] = user_hook
    path = f"/webhooks/{user_hook.id}/{user_hook.token}?wait=1"
    status, sent = await api.call("POST", path, {"content": "x", "components": link}, auth=False)
    assert (status, sent["components"]) == (200, [])
    assert "application_id" not in sent
    status, sent = await api.call("POST", path + "&with_components=true", {"content": "x", "components": link},
                                  auth=False)
    assert (status, sent["components"][0]["components"][0]["url"]) == (200, "https://example.org")
    _, hook = await api.call("POST", f"/channels/{general.id}/webhooks", {"name": "mine"})
    status, sent = await api.call("POST", f"/webhooks/{hook['id']}/{hook['token']}?wait=1&with_components=0",
                                  {"content": "x", "components": [row(BUTTON)]}, auth=False)
    assert (status, len(sent["components"])) == (200, 1)
    assert sent["application_id"] == str(sandbox.application_id)


async def test_interaction_replies_carry_the_application_id(api: Api, sandbox: SandboxServer, sdriver: Driver) -> None:
    inter = pending_interaction(sandbox, sdriver, 2)
    status, answer = await api.call("POST", f"/interactions/{inter.id}/{inter.token}/callback?with_response=true",
                                    {"type": 4, "data": {"content": "hi", "flags": 64}}, auth=False)
    assert status == 200
    message = answer["resource"]["message"]
    assert (message["application_id"], message["flags"]) == (str(sandbox.application_id), 64)
    status, followup = await api.call("POST", f"/webhooks/{sandbox.application_id}/{inter.token}",
                                      {"content": "more"}, auth=False)
    assert (status, followup["application_id"]) == (200, str(sandbox.application_id))
    _, plain = await api.call("POST", f"/channels/{sdriver.channel('general').id}/messages", {"content": "x"})
    assert "application_id" not in plain


async def test_an_interaction_sent_after_the_clock_moved_is_fresh(api: Api, sandbox: SandboxServer,
                                                                  sdriver: Driver) -> None:
    await api.call("PUT", f"/applications/{sandbox.application_id}/commands", [{"name": "x", "description": "d"}])
    sandbox.clock.advance(3600)
    pending = asyncio.create_task(sdriver.slash("x", as_="bob", timeout=5))
    inter = await sdriver.wait_for(lambda: next(iter(sandbox.world.interactions.values()), None), "the interaction")
    assert (await callback(api, inter, {"type": 4, "data": {"content": "in time"}}))[0] == 204
    status, _ = await api.call("POST", f"/webhooks/{sandbox.application_id}/{inter.token}", {"content": "more"},
                               auth=False)
    assert status == 200
    assert (await pending).content == "in time"
