"""The client against the real stand-in server over HTTP: chat, streaming, structured output, errors."""

from __future__ import annotations

import contextlib
import itertools
import json
import time
from typing import Any

import pytest

from guildkeep.llm import (
    ChatMessage,
    LLMBadReply,
    LLMBudgetExceeded,
    LLMClient,
    LLMRequestRejected,
    LLMTimeout,
    LLMUnavailable,
    RequestBudget,
)
from guildkeep.llm.schema import SchemaError
from guildkeep.llm.standin import DEFAULT_MODEL, StandinModel

from .conftest import BACKOFF_BASE, make_client

SCENE = {
    "type": "object",
    "properties": {
        "title": {"type": "string", "minLength": 1, "maxLength": 40},
        "mood": {"type": "string", "enum": ["calm", "tense", "joyful"]},
        "danger": {"type": "integer", "minimum": 0, "maximum": 10},
    },
    "required": ["title", "mood", "danger"],
    "additionalProperties": False,
}
ASK = [ChatMessage.system("You narrate a fantasy tale."), ChatMessage.user("I open the old door")]


# ----------------------------------------------------------------------------------------- chat


async def test_plain_chat_round_trip(standin: StandinModel, llm: LLMClient) -> None:
    reply = await llm.chat(ASK, temperature=0.2)
    assert "I open the old door" in reply.content  # the stand-in's rule quotes the last user message
    assert reply.finish_reason == "stop"
    assert not reply.truncated
    assert reply.attempts == 1
    assert reply.usage is not None
    assert reply.usage.completion_tokens > 0
    assert await llm.chat(ASK) == reply  # rule-based replies are deterministic
    [sent, _again] = standin.chat_requests()
    assert sent.body == {
        "model": DEFAULT_MODEL,
        "messages": [
            {"role": "system", "content": "You narrate a fantasy tale."},
            {"role": "user", "content": "I open the old door"},
        ],
        "max_tokens": 512,
        "temperature": 0.2,
    }
    assert "Authorization" not in sent.headers
    assert sent.headers["User-Agent"].startswith("guildkeep/")


async def test_scripted_reply_and_max_tokens_cut(standin: StandinModel, llm: LLMClient) -> None:
    standin.reply("The dragon wakes.")
    assert (await llm.chat(ASK)).content == "The dragon wakes."
    reply = await llm.chat(ASK, max_tokens=3)
    assert reply.truncated
    assert len(reply.content) == 12
    assert standin.chat_requests()[-1].body["max_tokens"] == 3


async def test_api_key_is_sent_and_a_wrong_key_is_refused_without_retry() -> None:
    async with StandinModel(api_key="sk-right") as model:
        async with make_client(model.base_url, api_key="sk-right") as good:
            assert (await good.chat(ASK)).content
            assert await good.models() == [DEFAULT_MODEL]
        async with make_client(model.base_url, api_key="sk-wrong") as bad:
            with pytest.raises(LLMRequestRejected) as info:
                await bad.chat(ASK)
        assert info.value.status == 401
        assert "Incorrect API key" in info.value.detail
        assert "sk-wrong" not in info.value.message
        assert [r.status for r in model.chat_requests()] == [200, 401]  # one attempt: a 401 is not retried
        assert model.chat_requests()[0].headers["Authorization"] == "Bearer sk-right"


async def test_old_turns_are_trimmed_to_the_context_window(standin: StandinModel) -> None:
    history = [ChatMessage.user(f"turn {i}: " + "words " * 30) for i in range(40)]
    async with make_client(standin.base_url, context_tokens=600, max_tokens=100) as small:
        await small.chat([ChatMessage.system("Be brief."), *history])
    sent = standin.chat_requests()[0].messages
    assert sent[0] == {"role": "system", "content": "Be brief."}
    assert sent[-1]["content"] == history[-1].content
    assert 1 < len(sent) < 41
    assert [m["content"] for m in sent[1:]] == [m.content for m in history[-(len(sent) - 1):]]


# ------------------------------------------------------------------------------------ streaming


async def test_streaming_yields_the_same_reply_in_pieces(standin: StandinModel, llm: LLMClient) -> None:
    whole = await llm.chat(ASK)
    chunks = [chunk async for chunk in llm.stream(ASK)]
    assert len(chunks) > 3
    assert "".join(c.content for c in chunks) == whole.content
    assert chunks[-1].finish_reason == "stop"
    assert all(c.finish_reason is None for c in chunks[:-1])
    assert standin.chat_requests()[-1].stream


async def test_a_stream_left_early_and_a_stream_cut_off(standin: StandinModel, llm: LLMClient) -> None:
    async with contextlib.aclosing(llm.stream(ASK)) as chunks:
        async for first in chunks:
            assert first.content
            break
    standin.cut_stream("The story begins and then the line goes dead")
    received: list[str] = []
    with pytest.raises(LLMUnavailable) as info:
        async for chunk in llm.stream(ASK):
            received.append(chunk.content)
    assert received  # part of the reply arrived before the break
    assert "broke off" in info.value.message or "before it was finished" in info.value.message
    assert (await llm.chat(ASK)).content  # the client is still usable


async def test_stream_retries_a_429_before_the_first_byte(standin: StandinModel, llm: LLMClient) -> None:
    standin.error(429, retry_after_ms=50)
    standin.reply("Two words")
    assert "".join([c.content async for c in llm.stream(ASK)]) == "Two words"
    assert [r.status for r in standin.chat_requests()] == [429, 200]


# ---------------------------------------------------------------------------- structured output


async def test_structured_reply_is_parsed_and_valid(standin: StandinModel, llm: LLMClient) -> None:
    rule = await llm.structured(ASK, SCENE, name="scene")  # the stand-in builds a minimal valid instance
    assert rule.data == {"title": "I open the old door", "mood": "calm", "danger": 0}
    standin.reply_json({"title": "The Door", "mood": "tense", "danger": 7})
    scripted = await llm.structured(ASK, SCENE, name="scene")
    assert scripted.data == {"title": "The Door", "mood": "tense", "danger": 7}
    standin.reply('```json\n{"title": "Fenced", "mood": "joyful", "danger": 1}\n```')
    assert (await llm.structured(ASK, SCENE, name="scene")).data["title"] == "Fenced"
    wire = standin.chat_requests()[0].response_format
    assert wire == {"type": "json_schema", "json_schema": {"name": "scene", "schema": SCENE, "strict": True}}


@pytest.mark.parametrize(
    ("script", "detail"),
    [
        (lambda m: m.reply("Sure! The door opens onto a misty moor."), "the reply is not JSON"),
        (lambda m: m.invalid_for_schema(), "does not match the schema"),
        (lambda m: m.reply_json({"title": "", "mood": "sleepy", "danger": 99}), "$.mood: must be one of"),
        (lambda m: m.malformed(), "the reply is not JSON"),
    ],
)
async def test_a_reply_that_does_not_parse_or_validate_is_a_bad_reply(
    standin: StandinModel, llm: LLMClient, script: Any, detail: str
) -> None:
    script(standin)
    with pytest.raises(LLMBadReply) as info:
        await llm.structured(ASK, SCENE, name="scene")
    assert detail in info.value.detail
    assert info.value.message == (
        "The language model's reply was not in the expected form, so nothing was changed; please try again."
    )


async def test_a_reply_cut_at_max_tokens_says_so(llm: LLMClient) -> None:
    with pytest.raises(LLMBadReply) as info:
        await llm.structured(ASK, SCENE, name="scene", max_tokens=4)
    assert "cut off at max_tokens" in info.value.detail


async def test_an_unsupported_schema_is_refused_before_any_request(standin: StandinModel, llm: LLMClient) -> None:
    with pytest.raises(SchemaError):
        await llm.structured(ASK, {"type": "string", "pattern": "^a"})
    with pytest.raises(ValueError, match="name must be"):
        await llm.structured(ASK, SCENE, name="has spaces")
    assert standin.chat_requests() == []


# --------------------------------------------------------------------------- retries and timeouts


async def test_429_then_success_honours_retry_after(standin: StandinModel, llm: LLMClient) -> None:
    standin.error(429, retry_after=1)
    started = time.monotonic()
    reply = await llm.chat(ASK, guild_id=5)
    elapsed = time.monotonic() - started
    assert reply.attempts == 2
    first, second = standin.chat_requests()
    assert (first.status, second.status) == (429, 200)
    assert second.at - first.at >= 1.0  # waited what Retry-After asked, not the 50 ms backoff
    assert elapsed >= 1.0


async def test_retry_after_ms_is_preferred(standin: StandinModel, llm: LLMClient) -> None:
    standin.error(429, retry_after=30, retry_after_ms=200)
    assert (await llm.chat(ASK)).attempts == 2
    first, second = standin.chat_requests()
    assert 0.2 <= second.at - first.at < 5


async def test_500_is_retried_with_growing_backoff_then_fails_clearly(standin: StandinModel, llm: LLMClient) -> None:
    standin.error(500, times=4)
    with pytest.raises(LLMUnavailable) as info:
        await llm.chat(ASK)
    assert info.value.message == (
        "The language model is not answering (HTTP 500 after 4 attempts); try again in a moment."
    )
    stamps = [r.at for r in standin.chat_requests()]
    assert len(stamps) == 4
    gaps = [b - a for a, b in itertools.pairwise(stamps)]
    for attempt, gap in enumerate(gaps, start=1):
        assert gap >= BACKOFF_BASE * 2 ** (attempt - 1) * 0.5  # exponential, jitter at most halves it


async def test_500_then_success(standin: StandinModel, llm: LLMClient) -> None:
    standin.error(503, times=2)
    reply = await llm.chat(ASK)
    assert reply.attempts == 3
    assert [r.status for r in standin.chat_requests()] == [503, 503, 200]


async def test_a_long_retry_after_is_not_waited_for(standin: StandinModel, llm: LLMClient) -> None:
    standin.error(429, retry_after=120)
    started = time.monotonic()
    with pytest.raises(LLMUnavailable) as info:
        await llm.chat(ASK)
    assert time.monotonic() - started < 5  # not the 120 s asked for
    assert "try again in 120 s" in info.value.message
    assert len(standin.chat_requests()) == 1


async def test_connection_refused_is_retried_then_fails(standin: StandinModel) -> None:
    url = standin.base_url
    await standin.stop()
    async with make_client(url, max_attempts=3) as client:
        with pytest.raises(LLMUnavailable) as info:
            await client.chat(ASK)
    assert "cannot reach the model server" in info.value.message
    assert "after 3 attempts" in info.value.message


async def test_timeout_is_a_clear_error_and_is_not_retried(standin: StandinModel) -> None:
    standin.reply("too late", latency=3.0)
    async with make_client(standin.base_url, timeout=0.4) as client:
        started = time.monotonic()
        with pytest.raises(LLMTimeout) as info:
            await client.chat(ASK)
        assert time.monotonic() - started < 2.5  # the reply would have come after 3 s
    assert info.value.message == "The language model is not answering (no answer within 0.4 s); try again in a moment."
    assert len(standin.chat_requests()) == 1


async def test_a_stream_that_goes_silent_times_out() -> None:
    async with StandinModel(stream_interval=1.0) as model, make_client(model.base_url, timeout=0.3) as client:
        with pytest.raises(LLMTimeout):
            async for _ in client.stream(ASK):
                pass


# -------------------------------------------------------------------------------------- budget


async def test_budget_exceeded_refuses_before_sending(standin: StandinModel) -> None:
    async with make_client(standin.base_url, budget=RequestBudget(2)) as client:
        standin.error(429, retry_after_ms=10)  # a retried request still counts once
        await client.chat(ASK, guild_id=42)
        await client.chat(ASK, guild_id=42)
        with pytest.raises(LLMBudgetExceeded) as info:
            await client.structured(ASK, SCENE, guild_id=42)
        assert info.value.message.startswith(
            "The narrator is resting: this server used its 2 requests this minute; try again in "
        )
        assert info.value.message.endswith(" s.")
        assert 50 <= info.value.retry_after <= 60
        with pytest.raises(LLMBudgetExceeded):
            async for _ in client.stream(ASK, guild_id=42):
                pass
        await client.chat(ASK, guild_id=43)  # another server is not affected
        await client.chat(ASK)  # nor a call made for no server
    assert len(standin.chat_requests()) == 5  # 429 + 200, 200, then 43 and no-guild: nothing for the refusals


async def test_standin_answers_openai_errors_for_bad_requests(standin: StandinModel, llm: LLMClient) -> None:
    session = llm._http()
    async with session.post(f"{standin.base_url}/chat/completions", json={"model": "m", "messages": []}) as resp:
        assert resp.status == 400
        body = json.loads(await resp.read())
    assert body["error"]["type"] == "invalid_request_error"
    assert body["error"]["param"] == "messages"
