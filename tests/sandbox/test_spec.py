"""What the real bot sends, and what the sandbox answers, checked against Discord's OpenAPI description."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from guildkeep.sandbox import spec
from guildkeep.sandbox.driver import Driver
from guildkeep.sandbox.limits import RateLimits
from guildkeep.sandbox.server import RecordedRequest, SandboxServer
from guildkeep.testing.harness import SandboxEnv
from tests.sandbox.conftest import Api
from tests.sandbox.test_fidelity import pending_interaction


def test_the_spec_is_found_and_routes_resolve() -> None:
    assert spec.find_spec().name in {"openapi.json", "openapi.json.gz"}
    op = spec.operation("POST", "/channels/{channel_id}/messages")
    assert op is not None
    assert op.request_schema() is not None
    assert spec.operation("POST", "/webhooks/{webhook_id}/{token}") is not None
    assert spec.operation("GET", "/no/such/route") is None


def test_the_bundled_copy_is_used_when_no_other_is_found(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv(spec.ENV_VAR, raising=False)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(spec, "SPEC_RELATIVE", Path("no-such-dir/openapi.json"))
    assert spec.find_spec() == spec.BUNDLED
    bundled = spec.load_spec(str(spec.BUNDLED))
    assert bundled["openapi"].startswith("3.")
    assert "/channels/{channel_id}/messages" in bundled["paths"]


def test_an_explicit_path_must_exist(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(spec.ENV_VAR, str(tmp_path / "missing.json"))
    with pytest.raises(spec.SpecNotFoundError, match="is not a file"):
        spec.find_spec()


def test_validation_reports_what_is_wrong() -> None:
    op = spec.operation("PUT", "/applications/{application_id}/commands")
    assert op is not None
    schema = op.request_schema()
    assert schema is not None
    assert spec.validate(schema, [{"name": "ok", "description": "fine", "type": 1}]) == []
    assert spec.validate(schema, [{"name": 5}])


def problems(requests: list[RecordedRequest]) -> tuple[list[str], set[str]]:
    found, checked = [], set()
    for req in requests:
        op = spec.operation(req.method, req.route)
        assert op is not None, f"{req.method} {req.route} is not in Discord's API description"
        request_schema = op.request_schema()
        if req.body is not None and request_schema is not None:
            checked.add(f"{req.method} {op.path} (request)")
            found += [f"{req.method} {req.path} request {p}" for p in spec.validate(request_schema, req.body,
                                                                                           integer_snowflakes=True)]
        response_schema = op.response_schema(req.status)
        if req.response is not None and response_schema is not None:
            checked.add(f"{req.method} {op.path} ({req.status})")
            found += [f"{req.method} {req.path} answer {p}" for p in spec.validate(response_schema, req.response)]
    return found, checked


@pytest.mark.e2e
@pytest.mark.discord_extensions("tests.e2e.probe")
async def test_bot_traffic_matches_the_spec(discord_env: SandboxEnv) -> None:
    driver = discord_env.driver
    help_reply = await driver.slash("help", as_="bob")
    await help_reply.click("Next")
    await driver.autocomplete("help", "command", "p", as_="bob")
    await driver.slash("probe-say", as_="alice", channel="general", text="hi", name="Gandalf",
                       avatar="https://example.org/a.png")
    await driver.slash("probe-file", as_="bob")
    modal = await driver.slash("probe-modal", as_="bob")
    await modal.submit({"Name": "Bilbo"})
    await driver.slash("probe-role", as_="alice", member="carol", role="Moderator")
    await driver.slash("probe-dm", as_="carol")
    sent = await driver.send("general", f"hey {driver.bot_mention}", as_="bob")
    await driver.wait_for_bot_message("general", after=sent)
    found, checked = problems([r for r in driver.server.requests if r.status < 400])
    assert not found, "\n".join(found)
    assert len(checked) >= 10, sorted(checked)


def error_tree_problems(tree: Any, where: str = "errors") -> list[str]:
    """Discord's nested 50035 tree: objects keyed by field name or index, ending in ``_errors`` lists of
    ``{"code": "STRING_CODE", "message": "..."}``."""
    if not isinstance(tree, dict) or not tree:
        return [f"{where}: not a non-empty object"]
    found = []
    for key, value in tree.items():
        if key == "_errors":
            if not isinstance(value, list) or not value or not all(
                    isinstance(e, dict) and set(e) == {"code", "message"} and isinstance(e["code"], str)
                    and isinstance(e["message"], str) for e in value):
                found.append(f"{where}._errors: {value!r}")
        else:
            found += error_tree_problems(value, f"{where}.{key}")
    return found


async def oauth_token(api: Api, user_id: int) -> str:
    """An access token for ``user_id`` through the sandbox's authorization-code flow."""
    server, redirect = api.server, "http://127.0.0.1:1/callback"
    async with api.session.get(f"{server.base_url}/oauth2/authorize", allow_redirects=False, params={
            "client_id": str(server.application_id), "response_type": "code", "redirect_uri": redirect,
            "scope": "identify guilds", "user_id": str(user_id)}) as resp:
        code = resp.headers["Location"].split("code=", 1)[1].split("&")[0]
    async with api.session.post(f"{server.base_url}/api/oauth2/token", data={
            "grant_type": "authorization_code", "code": code, "redirect_uri": redirect,
            "client_id": str(server.application_id), "client_secret": server.oauth.client_secret}) as resp:
        return (await resp.json())["access_token"]


async def test_every_route_the_sandbox_serves_answers_as_the_spec_says(api: Api, sandbox: SandboxServer,
                                                                      sdriver: Driver) -> None:
    """Call every REST route with a request Discord accepts; check each status is one the spec lists for the
    route, and each request and answer body against the spec's schemas. A route added to the sandbox without
    a call here fails the test."""
    app, guild = sandbox.application_id, sdriver.guild
    assert guild is not None
    general, bob, carol = sdriver.channel("general").id, sdriver.member("bob").user.id, sdriver.member("carol").user.id
    moderator = sdriver.role("Moderator").id
    sandbox.rate_limits = RateLimits(routes={"reaction": (10, 1.0)})  # this client does not wait between calls
    calls: list[tuple[str, str, Any]] = [
        ("GET", "/gateway", None), ("GET", "/gateway/bot", None), ("GET", "/users/@me", None),
        ("GET", "/users/@me/guilds", None),
        ("GET", f"/users/{bob}", None), ("POST", "/users/@me/channels", {"recipient_id": str(bob)}),
        ("GET", "/oauth2/applications/@me", None), ("GET", "/applications/@me", None),
        ("PUT", f"/applications/{app}/commands", [{"name": "ping", "description": "d", "options": [
            {"type": 3, "name": "text", "description": "d", "choices": [{"name": "a", "value": "a"}]}]}]),
        ("POST", f"/applications/{app}/commands", {"name": "pong", "description": "d"}),
        ("GET", f"/applications/{app}/commands", None),
        ("PUT", f"/applications/{app}/guilds/{guild.id}/commands", [{"name": "local", "description": "d"}]),
        ("POST", f"/applications/{app}/guilds/{guild.id}/commands", {"name": "local2", "description": "d"}),
        ("GET", f"/applications/{app}/guilds/{guild.id}/commands", None),
        ("GET", f"/guilds/{guild.id}", None), ("GET", f"/guilds/{guild.id}/channels", None),
        ("GET", f"/guilds/{guild.id}/roles", None),
        ("GET", f"/guilds/{guild.id}/members?limit=10", None), ("GET", f"/guilds/{guild.id}/members/{bob}", None),
        ("PATCH", f"/guilds/{guild.id}/members/{bob}", {"roles": [str(moderator)]}),
        ("PUT", f"/guilds/{guild.id}/members/{carol}/roles/{moderator}", None),
        ("DELETE", f"/guilds/{guild.id}/members/{carol}/roles/{moderator}", None),
        ("GET", f"/guilds/{guild.id}/webhooks", None),
        ("GET", f"/channels/{general}", None), ("POST", f"/channels/{general}/typing", None),
        ("POST", f"/channels/{general}/threads", {"name": "thread", "type": 11}),
        ("GET", f"/channels/{general}/webhooks", None),
    ]
    for method, path, body in calls:
        status, _ = await api.call(method, path, body)
        assert status < 300, (method, path, status)
    _, role = await api.call("POST", f"/guilds/{guild.id}/roles", {"name": "Champion", "color": 0x112233})
    await api.call("PATCH", f"/guilds/{guild.id}/roles/{role['id']}", {"name": "Hero"})
    await api.call("DELETE", f"/guilds/{guild.id}/roles/{role['id']}")
    _, sent = await api.call("POST", f"/channels/{general}/messages", {"content": "hi", "embeds": [{"title": "t"}]})
    message = f"/channels/{general}/messages/{sent['id']}"
    await api.call("GET", f"/channels/{general}/messages?limit=5")
    await api.call("GET", message)
    await api.call("PATCH", message, {"content": "edited"})
    await api.call("PUT", f"{message}/reactions/%F0%9F%91%8D/@me")
    await api.call("GET", f"{message}/reactions/%F0%9F%91%8D")
    await api.call("DELETE", f"{message}/reactions/%F0%9F%91%8D/@me")
    await api.call("PUT", f"{message}/reactions/%F0%9F%91%8D/@me")
    await api.call("DELETE", f"{message}/reactions/%F0%9F%91%8D/{app}")
    await api.call("DELETE", f"{message}/reactions")
    await api.call("POST", f"{message}/threads", {"name": "from a message"})
    await api.call("DELETE", message)
    _, hook = await api.call("POST", f"/channels/{general}/webhooks", {"name": "hook"})
    with_token = f"/webhooks/{hook['id']}/{hook['token']}"
    await api.call("GET", f"/webhooks/{hook['id']}")
    await api.call("PATCH", f"/webhooks/{hook['id']}", {"name": "renamed"})
    await api.call("GET", with_token, auth=False)
    await api.call("PATCH", with_token, {"name": "again"}, auth=False)
    _, said = await api.call("POST", f"{with_token}?wait=true", {"content": "said", "username": "Gandalf"}, auth=False)
    await api.call("GET", f"{with_token}/messages/{said['id']}", auth=False)
    await api.call("PATCH", f"{with_token}/messages/{said['id']}", {"content": "said again"}, auth=False)
    await api.call("DELETE", f"{with_token}/messages/{said['id']}", auth=False)
    await api.call("DELETE", with_token, auth=False)
    _, other = await api.call("POST", f"/channels/{general}/webhooks", {"name": "other"})
    await api.call("DELETE", f"/webhooks/{other['id']}")
    inter = pending_interaction(sandbox, sdriver, 2)
    await api.call("POST", f"/interactions/{inter.id}/{inter.token}/callback?with_response=true",
                   {"type": 4, "data": {"content": "answer"}}, auth=False)
    # A user's OAuth2 access token (the web dashboard's login) reads that user and their guilds.
    bearer = {"Authorization": f"Bearer {await oauth_token(api, bob)}"}
    for path in ("/users/@me", "/users/@me/guilds"):
        async with api.session.get(sandbox.api_url + path, headers=bearer) as resp:
            assert resp.status == 200
    # Error answers have a shape too (code, message, the errors tree of a 50035).
    assert (await api.call("POST", f"/channels/{general}/messages", {"content": "x" * 2001}))[0] == 400
    assert (await api.call("GET", f"/channels/{general}/messages/1"))[0] == 404
    assert (await api.call("POST", f"/applications/{app}/commands", {"name": "Bad", "description": "d"}))[0] == 400
    sandbox.rate_limits = RateLimits(routes={"message-create": (1, 60.0)})
    assert [(await api.call("POST", f"/channels/{general}/messages", {"content": "x"}))[0] for _ in range(2)] == [
        200, 429]

    failures, answered = [], set()
    for req in sandbox.requests:
        op = spec.operation(req.method, req.route)
        assert op is not None, f"{req.method} {req.route} is not in Discord's API description"
        responses = op.body.get("responses") or {}
        if str(req.status) not in responses and f"{str(req.status)[0]}XX" not in responses:
            failures.append(f"{req.method} {req.path}: status {req.status}, the spec lists {sorted(responses)}")
        request_schema = op.request_schema()
        if req.body is not None and request_schema is not None:
            failures += [f"{req.method} {req.path} request {p}"
                         for p in spec.validate(request_schema, req.body, integer_snowflakes=True)]
        schema = op.response_schema(req.status)
        answer = req.response
        if isinstance(answer, dict) and "errors" in answer:
            # The spec types a field error's code as an integer; Discord's documented trees carry strings
            # ("BASE_TYPE_REQUIRED"): the tree is checked on its own, the rest against the spec.
            failures += [f"{req.method} {req.path} errors {p}" for p in error_tree_problems(answer["errors"])]
            answer = {k: v for k, v in answer.items() if k != "errors"}
        if answer is not None and schema is not None:
            failures += [f"{req.method} {req.path} answer {p}" for p in spec.validate(schema, answer)]
        if req.status < 300:
            answered.add((req.method, req.route))
    assert not failures, "\n".join(failures)
    served = {(method, path) for method, path, _handler in sandbox.api_routes()}
    assert served - answered == set(), "routes no call above exercised"
