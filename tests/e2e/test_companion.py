"""The companion end to end: the real bot on the sandbox, with the local stand-in model and without a model."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from guildkeep.companion.models import BotState
from guildkeep.companion.service import EVENT_JOB, NO_MODEL_REPLY, CompanionService
from guildkeep.config import Settings, load_settings
from guildkeep.db import Database
from guildkeep.llm.standin import DEFAULT_MODEL, StandinModel
from guildkeep.testing.harness import SandboxEnv
from tests.privacy.test_service import rows_naming

pytestmark = pytest.mark.e2e

TOLD = "My birthday is March 14 and I love painting!"
FACTS = {"facts": [
    {"type": "event", "content": "Birthday is March 14", "importance": 0.9, "confidence": 0.9,
     "temporal": "timeless", "birthday": "March 14"},
    {"type": "hobby", "content": "Loves painting", "importance": 0.6, "confidence": 0.8, "temporal": "present",
     "birthday": None},
]}


@pytest.fixture(params=["standin", "no-model"])
async def model(request: pytest.FixtureRequest) -> AsyncIterator[StandinModel | None]:
    """The local stand-in model on a free port, or no model at all."""
    if request.param == "no-model":
        yield None
        return
    async with StandinModel() as standin:
        yield standin


@pytest.fixture
def discord_settings(database_url: str, model: StandinModel | None) -> Settings:
    extra: dict[str, object] = {}
    if model is not None:
        extra = {"llm_base_url": model.base_url, "llm_model": DEFAULT_MODEL}
    return load_settings(database_url=database_url, discord_token=None, auto_migrate=False, backup_interval_hours=0,
                         **extra)


def service(env: SandboxEnv) -> CompanionService:
    return env.bot.get_cog("Companion").service  # type: ignore[union-attr]


async def test_tell_remember_birthday_fires_once_and_forget_all(
    discord_env: SandboxEnv, model: StandinModel | None,
) -> None:
    d = discord_env.driver
    svc = service(discord_env)
    bob = d.member("bob").user.id
    ignored = await d.send("general", f"{d.bot_mention} hello", as_="bob")
    hint = await d.wait_for_bot_message("general", after=ignored)
    assert "/help" in hint.content  # off until an admin turns it on
    turned_on = await d.slash("companion config", as_="alice", enabled=True)
    assert "yes" in turned_on.text
    if model is not None:
        model.reply("What a lovely hobby! Happy early birthday.")
        model.reply_json(FACTS)

    sent = await d.send("general", f"{d.bot_mention} {TOLD}", as_="bob")
    answer = await d.wait_for_bot_message("general", after=sent)

    async def learned() -> bool:
        return (await svc.list_facts(bob)).total == 2

    await d.wait_for(learned, "the two facts to be stored", timeout=45)
    if model is not None:
        assert answer.content == "What a lovely hobby! Happy early birthday."
        chat, extraction = model.chat_requests()
        assert "Stranger" in chat.body["messages"][0]["content"]
        assert chat.body["messages"][-1]["content"] == TOLD
        assert extraction.body["response_format"]["type"] == "json_schema"
    else:
        assert answer.content == NO_MODEL_REPLY

    memory = await d.slash("memory", as_="bob")
    assert memory.ephemeral
    assert "Birthday is March 14" in memory.text
    assert "Loves painting" in memory.text

    [event] = await svc.list_events(bob)
    assert event.event_type == "birthday"
    assert (event.trigger_at.month, event.trigger_at.day) == (3, 14)
    on_the_day = event.trigger_at + timedelta(minutes=1)
    day_before = event.trigger_at - timedelta(days=1)

    def greetings() -> list[str]:
        return [m.content for m in d.world.channel_messages(d.channel("general").id) if "Happy birthday" in m.content]

    # Other modules' recurring jobs (the daily quest reset …) run too as the clock moves months ahead: count
    # the birthday's own job and greetings, not every job.
    birthday_job = await svc.jobs.find(EVENT_JOB, f"event:{event.id}")
    assert birthday_job is not None
    await discord_env.bot.scheduler.run_until_idle(day_before)
    assert greetings() == []
    assert (await svc.jobs.find(EVENT_JOB, f"event:{event.id}")).status == "pending"  # type: ignore[union-attr]
    await discord_env.bot.scheduler.run_until_idle(on_the_day)
    greeting = await d.wait_for_message("general", lambda m: "Happy birthday" in m.content, "the birthday greeting")
    assert f"<@{bob}>" in greeting.content
    await discord_env.bot.scheduler.run_until_idle(on_the_day + timedelta(hours=1))
    assert len(greetings()) == 1
    [next_year] = await svc.list_events(bob)
    assert next_year.trigger_at == datetime(event.trigger_at.year + 1, 3, 14, 9, tzinfo=UTC)
    job = await svc.jobs.find(EVENT_JOB, f"event:{next_year.id}")
    assert job is not None
    assert job.status == "pending"

    choices = await d.autocomplete("forget", "fact", "", as_="bob")
    assert choices[0]["value"] == "all"
    assert len(choices) == 3
    carol = d.member("carol").user.id
    if model is not None:
        model.reply("Bread is the best.")
        model.reply_json({"facts": [{"type": "work", "content": "Works as a baker", "importance": 0.7,
                                     "confidence": 0.9, "temporal": "present", "birthday": None}]})
    await d.send("general", f"{d.bot_mention} I work as a baker", as_="carol")
    await d.wait_for(lambda: _has_facts(svc, carol), "carol's fact to be stored")
    await discord_env.bot.get_cog("Leveling").ingestor.flush()  # type: ignore[union-attr]  # XP held in memory
    carol_before = await rows_naming(discord_env.db, carol)
    assert await rows_naming(discord_env.db, bob)  # companion, identity and leveling rows

    prompt = await d.slash("forget", as_="bob", fact="all")
    assert prompt.ephemeral
    assert "every** server" in prompt.text  # the platform's forget, not the companion's alone
    cancelled = await prompt.click("Cancel", as_="bob")
    assert "nothing was removed" in cancelled.text
    assert (await svc.list_facts(bob)).total == 2

    prompt = await d.slash("forget", as_="bob", fact="all")
    confirmed = await prompt.click("Confirm", as_="bob")
    done = await confirmed.wait_followup()
    assert done.ephemeral
    assert "companion: removed" in done.content
    assert "identity: removed" in done.content
    assert "scheduler: removed 2 scheduler_jobs" in done.content  # this year's birthday job and next year's

    assert await rows_naming(discord_env.db, bob) == {}  # no row of bob's in any module's tables
    assert all(n == 0 for n in (await svc.count_user_rows(bob)).values())
    assert await rows_naming(discord_env.db, carol) == carol_before
    assert await svc.jobs.find(EVENT_JOB, f"event:{next_year.id}") is None
    empty = await d.slash("memory", as_="bob")
    assert "don't remember anything" in empty.text


async def _has_facts(svc: CompanionService, user_id: int) -> bool:
    return (await svc.list_facts(user_id)).total > 0


async def test_commands_remind_birthday_status_config_and_errors(
    discord_env: SandboxEnv, model: StandinModel | None,
) -> None:
    d = discord_env.driver
    svc = service(discord_env)
    bad = await d.slash("remind", as_="bob", when="someday", what="call mom")
    assert bad.ephemeral
    assert "in 10 minutes" in bad.text
    assert await svc.list_events(d.member("bob").user.id) == []
    ok = await d.slash("remind", as_="bob", when="in 10 minutes", what="call mom")
    assert ok.ephemeral
    assert "call mom" in ok.text
    bday = await d.slash("birthday set", as_="bob", month=2, day=30)
    assert bday.ephemeral
    assert "not a date" in bday.text
    bday = await d.slash("birthday set", as_="bob", month=7, day=4)
    assert "happy birthday" in bday.text
    status = await d.slash("companion status", as_="bob")
    assert "Stranger" in status.text
    assert "2 upcoming event(s)" in status.text
    refused = await d.slash("companion config", as_="bob", persona="evil", as_admin_override=True)
    assert refused.ephemeral
    assert "Manage Server" in refused.text
    config = await d.slash("companion config", as_="alice", persona="You are Pip, an owl.", talk_in="bot-commands",
                           enabled=True)
    assert "You are Pip" in config.text
    # Mentions outside its channels are ignored; inside they are answered.
    elsewhere = await d.send("general", f"{d.bot_mention} hello", as_="carol")
    hint = await d.wait_for_bot_message("general", after=elsewhere)
    assert "/help" in hint.content
    asked = await d.send("bot-commands", f"{d.bot_mention} hello", as_="carol")
    answer = await d.wait_for_bot_message("bot-commands", after=asked)
    echoed = "Well met! The stand-in narrator heard “hello” and bows."
    assert answer.content == (NO_MODEL_REPLY if model is None else echoed)
    assert len([m for m in d.world.channel_messages(d.channel("general").id)
                if m.id > elsewhere.id and m.author.id == d.bot_user.id]) == 1
    unknown = await d.slash("forget", as_="bob", fact="something I never said")
    assert unknown.ephemeral
    assert "Pick a fact" in unknown.text


async def test_the_reply_count_is_shown_at_once_and_stored_when_the_bot_closes(
    db: Database, discord_settings: Settings, model: StandinModel | None,
) -> None:
    """The per-server reply counter is written behind: `/companion status` shows it before it is stored, and the
    bot's close (what SIGTERM/SIGINT run) unloads the cog, which stores it."""
    settings = discord_settings.model_copy(update={"write_behind_flush_seconds": 60.0})  # no flush during the test
    env = await SandboxEnv.start(db, settings)
    try:
        d = env.driver
        assert "yes" in (await d.slash("companion config", as_="alice", enabled=True)).text
        if model is not None:
            model.reply("Hello Bob!")
            model.reply_json({"facts": []})
        sent = await d.send("general", f"{d.bot_mention} hello", as_="bob")
        await d.wait_for_bot_message("general", after=sent)
        status = await d.slash("companion status", as_="bob")
        assert "1 reply" in status.text
        assert await _stored_replies(db, d.guild.id) == 0  # type: ignore[union-attr]
        await env.bot.close()
        assert await _stored_replies(db, d.guild.id) == 1  # type: ignore[union-attr]
    finally:
        await env.stop()


async def _stored_replies(db: Database, guild_id: int) -> int:
    async with db.session(read_only=True) as s:
        return int(await s.scalar(select(BotState.total_messages_sent).where(BotState.guild_id == guild_id)) or 0)
