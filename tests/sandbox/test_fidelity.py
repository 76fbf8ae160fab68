"""Requests Discord rejects, sent raw, and the sandbox's answers checked against what Discord answers."""

from __future__ import annotations

import secrets
from typing import Any

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
