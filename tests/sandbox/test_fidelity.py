"""Requests Discord rejects, sent raw, and the sandbox's answers checked against what Discord answers."""

from __future__ import annotations

import secrets
from typing import Any

import pytest

from guildkeep.sandbox.driver import Driver
from guildkeep.sandbox.server import SandboxServer
from guildkeep.sandbox.state import Interaction
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
