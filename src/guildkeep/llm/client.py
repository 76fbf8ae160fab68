"""`LLMClient`: one async client for any OpenAI-compatible ``/v1/chat/completions`` endpoint.

A thin aiohttp client (docs/llm.md says why not the ``openai`` package). It speaks the part of
the protocol hosted APIs, Ollama, llama.cpp's server and vLLM share: ``POST {base}/chat/completions``
with ``model``, ``messages``, ``max_tokens``, optional ``temperature``, ``stream`` and
``response_format``; ``GET {base}/models``. ``base`` is the API root including ``/v1``.

Never await it inside a database unit of work: read, call the model, then write conditionally.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import re
from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import aiohttp

from guildkeep import __version__
from guildkeep.llm.budget import RequestBudget
from guildkeep.llm.errors import (
    LLMBadReply,
    LLMNotConfigured,
    LLMRequestRejected,
    LLMTimeout,
    LLMUnavailable,
)
from guildkeep.llm.messages import ChatChunk, ChatMessage, ChatReply, StructuredReply, Usage
from guildkeep.llm.schema import check_schema, validate
from guildkeep.llm.tokens import estimate_tokens, trim_messages

log = logging.getLogger(__name__)

_SCHEMA_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_FENCE = re.compile(r"^```(?:json)?\s*\n?(.*?)\n?```$", re.DOTALL)


class LLMClient:
    """Chat, streaming and schema-checked replies with retries, timeouts, trimming and a per-server budget.

    ``base_url=None`` makes a client that is not configured: every call raises `LLMNotConfigured`.
    One client (and its connection pool) is meant to live as long as the bot; `close` it at the end.
    """

    def __init__(
        self,
        base_url: str | None,
        model: str | None = None,
        *,
        api_key: str | None = None,
        timeout: float = 60.0,
        max_tokens: int = 512,
        context_tokens: int = 8192,
        budget: RequestBudget | None = None,
        max_attempts: int = 4,
        backoff_base: float = 0.5,
        backoff_cap: float = 8.0,
        max_retry_wait: float = 30.0,
        rng: random.Random | None = None,
    ) -> None:
        if base_url and not model:
            raise ValueError("a model name is required with a base URL")
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self.base_url = base_url.rstrip("/") if base_url else None
        self.model = model or ""
        self.timeout = timeout
        self.max_tokens = max_tokens
        self.context_tokens = context_tokens
        self.budget = budget or RequestBudget(0)
        self.max_attempts = max_attempts
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self.max_retry_wait = max_retry_wait
        self._api_key = api_key
        self._rng = rng or random.Random()
        self._session: aiohttp.ClientSession | None = None

    def __repr__(self) -> str:  # never the key
        return f"LLMClient(base_url={self.base_url!r}, model={self.model!r})"

    @property
    def configured(self) -> bool:
        """Whether a model endpoint is set; when not, every call raises `LLMNotConfigured`."""
        return self.base_url is not None

    async def __aenter__(self) -> LLMClient:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the connection pool."""
        if self._session is not None and not self._session.closed:
            await self._session.close()
        self._session = None

    # ----------------------------------------------------------------------------------- public API

    async def models(self) -> list[str]:
        """The model names the server offers (``GET /models``); useful to check a configuration."""
        base = self._require()
        url = f"{base}/models"
        try:
            async with self._http().get(
                url, headers=self._headers(), timeout=aiohttp.ClientTimeout(total=self.timeout)
            ) as resp:
                if resp.status != 200:
                    raise LLMRequestRejected(resp.status, await _error_detail(resp))
                body = await resp.json(content_type=None)
        except TimeoutError as exc:
            raise LLMTimeout(self.timeout) from exc
        except aiohttp.ClientError as exc:
            raise LLMUnavailable("cannot reach the model server") from exc
        except ValueError as exc:
            raise LLMBadReply("the model list is not JSON") from exc
        try:
            return [str(item["id"]) for item in body["data"]]
        except (KeyError, TypeError) as exc:
            raise LLMBadReply("the model list has no data[].id") from exc

    async def chat(
        self,
        messages: Sequence[ChatMessage],
        *,
        guild_id: int | None = None,
        max_tokens: int | None = None,
        temperature: float | None = None,
    ) -> ChatReply:
        """One complete reply. Counts one request against ``guild_id``'s budget (none without a guild)."""
        base = self._require()
        payload = self._payload(messages, max_tokens=max_tokens, temperature=temperature)
        self._acquire(guild_id)
        body, attempts = await self._post_json(base, payload)
        content, finish = _message_of(body)
        return ChatReply(
            content=content,
            model=str(body.get("model") or self.model),
            finish_reason=finish,
            usage=_usage(body),
            attempts=attempts,
        )

    async def structured(
        self,
        messages: Sequence[ChatMessage],
        schema: Mapping[str, Any],
        *,
        name: str = "reply",
        strict: bool = True,
        guild_id: int | None = None,
        max_tokens: int | None = None,
        temperature: float | None = None,
    ) -> StructuredReply:
        """A reply that is JSON valid against ``schema`` (the subset of `guildkeep.llm.schema`).

        Asks with ``response_format={"type": "json_schema", ...}`` and checks the reply itself,
        since many servers treat the schema as a hint. A reply that does not parse or does not
        validate raises `LLMBadReply`: callers write only after this returns.
        """
        check_schema(schema)
        if not _SCHEMA_NAME.match(name):
            raise ValueError("name must be 1-64 letters, digits, _ or -")
        base = self._require()
        response_format = {
            "type": "json_schema",
            "json_schema": {"name": name, "schema": dict(schema), "strict": strict},
        }
        payload = self._payload(
            messages,
            max_tokens=max_tokens,
            temperature=temperature,
            reserve=estimate_tokens(json.dumps(response_format)),
        )
        payload["response_format"] = response_format
        self._acquire(guild_id)
        body, attempts = await self._post_json(base, payload)
        content, finish = _message_of(body)
        data = parse_json_reply(content, schema, truncated=finish == "length")
        return StructuredReply(
            data=data, raw=content, model=str(body.get("model") or self.model), usage=_usage(body), attempts=attempts
        )

    async def stream(
        self,
        messages: Sequence[ChatMessage],
        *,
        guild_id: int | None = None,
        max_tokens: int | None = None,
        temperature: float | None = None,
    ) -> AsyncIterator[ChatChunk]:
        """The reply as it is generated (server-sent events). Retries apply until the first byte.

        Use ``async with contextlib.aclosing(client.stream(...)) as chunks`` when you may stop early.
        The timeout is the longest silence between two pieces, not the whole reply.
        """
        base = self._require()
        payload = self._payload(messages, max_tokens=max_tokens, temperature=temperature)
        payload["stream"] = True
        self._acquire(guild_id)
        resp, _attempts = await self._open(base, payload, stream=True)
        finished = False
        try:
            async for data in _sse_data(resp):
                if data == "[DONE]":
                    return
                event = _loads_object(data, "a stream event")
                if "error" in event:
                    raise LLMUnavailable(f"the model failed mid-reply: {_error_text(event)}")
                choices = event.get("choices") or []
                if not choices:
                    continue  # e.g. a usage-only event
                choice = choices[0] if isinstance(choices[0], dict) else {}
                delta = choice.get("delta") or {}
                text = delta.get("content") or ""
                finish = choice.get("finish_reason")
                finished = finished or finish is not None
                if text or finish:
                    yield ChatChunk(content=str(text), finish_reason=finish)
            if not finished:
                raise LLMUnavailable("the reply stopped before it was finished")
        except TimeoutError as exc:
            raise LLMTimeout(self.timeout) from exc
        except aiohttp.ClientError as exc:
            raise LLMUnavailable("the reply stream broke off") from exc
        finally:
            resp.release()

    # ------------------------------------------------------------------------------------ internals

    def _require(self) -> str:
        if self.base_url is None:
            raise LLMNotConfigured
        return self.base_url

    def _acquire(self, guild_id: int | None) -> None:
        if guild_id is not None:
            self.budget.acquire(guild_id)

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(headers={"User-Agent": f"guildkeep/{__version__}"})
        return self._session

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._api_key}"} if self._api_key else {}

    def _payload(
        self,
        messages: Sequence[ChatMessage],
        *,
        max_tokens: int | None,
        temperature: float | None,
        reserve: int = 0,
    ) -> dict[str, Any]:
        if not messages:
            raise ValueError("at least one message is needed")
        limit = max_tokens or self.max_tokens
        kept = trim_messages(messages, self.context_tokens - limit - reserve)
        if len(kept) < len(messages):
            log.debug("trimmed %d old message(s) to fit the context window", len(messages) - len(kept))
        payload: dict[str, Any] = {
            "model": self.model,
            "messages": [m.to_wire() for m in kept],
            "max_tokens": limit,
        }
        if temperature is not None:
            payload["temperature"] = temperature
        return payload

    def _backoff(self, attempt: int) -> float:
        """Exponential backoff with jitter: base·2^(attempt-1), capped, times a random 0.5-1.0."""
        step: float = min(self.backoff_cap, self.backoff_base * 2 ** (attempt - 1))
        return step * (0.5 + self._rng.random() / 2)

    async def _post_json(self, base: str, payload: dict[str, Any]) -> tuple[dict[str, Any], int]:
        resp, attempts = await self._open(base, payload, stream=False)
        try:
            raw = await resp.read()
        except TimeoutError as exc:
            raise LLMTimeout(self.timeout) from exc
        except aiohttp.ClientError as exc:
            raise LLMUnavailable("the connection broke while the reply was read") from exc
        finally:
            resp.release()
        return _loads_object(raw, "the reply"), attempts

    async def _open(
        self, base: str, payload: dict[str, Any], *, stream: bool
    ) -> tuple[aiohttp.ClientResponse, int]:
        """POST the request, retrying 429, 5xx and connection errors; the 200 response (unread) and attempts."""
        url = f"{base}/chat/completions"
        timeout = (
            aiohttp.ClientTimeout(total=None, sock_connect=self.timeout, sock_read=self.timeout)
            if stream
            else aiohttp.ClientTimeout(total=self.timeout)
        )
        for attempt in range(1, self.max_attempts + 1):
            retry_after: float | None = None
            try:
                resp = await self._http().post(url, json=payload, headers=self._headers(), timeout=timeout)
            except TimeoutError as exc:
                raise LLMTimeout(self.timeout) from exc
            except aiohttp.ClientError as exc:
                failure = f"cannot reach the model server: {type(exc).__name__}"
            else:
                if resp.status == 200:
                    return resp, attempt
                try:
                    detail = await _error_detail(resp)
                except (TimeoutError, aiohttp.ClientError):
                    detail = ""
                finally:
                    resp.release()
                if resp.status != 429 and resp.status < 500:
                    log.warning("model request refused: HTTP %s %s", resp.status, detail)
                    raise LLMRequestRejected(resp.status, detail)
                failure = f"HTTP {resp.status}"
                retry_after = retry_after_seconds(resp.headers)
            if attempt == self.max_attempts:
                raise LLMUnavailable(f"{failure} after {attempt} attempts", retry_after=retry_after)
            wait = retry_after if retry_after is not None else self._backoff(attempt)
            if wait > self.max_retry_wait:
                raise LLMUnavailable(f"{failure}; the server asked to wait {wait:.0f} s", retry_after=wait)
            log.warning("model request attempt %d failed (%s); retrying in %.2f s", attempt, failure, wait)
            await asyncio.sleep(wait)
        raise AssertionError("unreachable")  # pragma: no cover


# ------------------------------------------------------------------------------------------ helpers


def retry_after_seconds(headers: Mapping[str, str]) -> float | None:
    """The wait a 429/503 asks for: ``retry-after-ms``, else ``Retry-After`` (seconds or an HTTP date)."""
    ms = headers.get("retry-after-ms")
    if ms is not None:
        try:
            return max(0.0, float(ms) / 1000)
        except ValueError:
            pass
    value = headers.get("Retry-After")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def parse_json_reply(content: str, schema: Mapping[str, Any], *, truncated: bool = False) -> Any:
    """``content`` parsed as JSON and valid against ``schema``, or `LLMBadReply` (a ```json fence is allowed)."""
    text = content.strip()
    fenced = _FENCE.match(text)
    if fenced:
        text = fenced.group(1).strip()
    try:
        data = json.loads(text)
    except ValueError as exc:
        cut = " (cut off at max_tokens)" if truncated else ""
        raise LLMBadReply(f"the reply is not JSON{cut}: {exc}") from exc
    problems = validate(data, schema)
    if problems:
        raise LLMBadReply("the reply does not match the schema: " + "; ".join(problems[:5]))
    return data


def _loads_object(raw: bytes | str, what: str) -> dict[str, Any]:
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise LLMBadReply(f"{what} is not JSON") from exc
    if not isinstance(data, dict):
        raise LLMBadReply(f"{what} is not a JSON object")
    return data


def _message_of(body: dict[str, Any]) -> tuple[str, str | None]:
    try:
        choice = body["choices"][0]
        message = choice["message"]
    except (KeyError, IndexError, TypeError) as exc:
        raise LLMBadReply("the reply has no choices[0].message") from exc
    content = message.get("content") if isinstance(message, dict) else None
    if not isinstance(content, str):
        refusal = message.get("refusal") if isinstance(message, dict) else None
        raise LLMBadReply(f"the model refused: {refusal}" if refusal else "the reply has no text content")
    return content, choice.get("finish_reason")


def _usage(body: dict[str, Any]) -> Usage | None:
    usage = body.get("usage")
    if not isinstance(usage, dict):
        return None
    try:
        return Usage(int(usage.get("prompt_tokens", 0)), int(usage.get("completion_tokens", 0)))
    except (TypeError, ValueError):
        return None


def _error_text(body: Any) -> str:
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        return str(body["error"].get("message", ""))[:300]
    if isinstance(body, dict) and isinstance(body.get("error"), str):
        return str(body["error"])[:300]
    return ""


async def _error_detail(resp: aiohttp.ClientResponse) -> str:
    raw = await resp.read()
    try:
        text = _error_text(json.loads(raw))
    except ValueError:
        text = ""
    return text or raw[:300].decode("utf-8", "replace")


async def _sse_data(resp: aiohttp.ClientResponse) -> AsyncIterator[str]:
    """The ``data`` of each server-sent event (multi-line data joined by newlines; comments skipped)."""
    lines: list[str] = []
    async for raw in resp.content:
        line = raw.decode("utf-8").rstrip("\r\n")
        if not line:
            if lines:
                yield "\n".join(lines)
                lines = []
            continue
        if line.startswith(":"):
            continue
        field, _, value = line.partition(":")
        if field == "data":
            lines.append(value[1:] if value.startswith(" ") else value)
    if lines:
        yield "\n".join(lines)
