"""What the real bot sends, and what the sandbox answers, checked against Discord's OpenAPI description."""

from __future__ import annotations

from pathlib import Path

import pytest

from guildkeep.sandbox import spec
from guildkeep.sandbox.harness import SandboxEnv
from guildkeep.sandbox.server import RecordedRequest


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
