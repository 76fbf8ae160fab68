"""A local stand-in for a language model: OpenAI's ``/v1/chat/completions`` and ``/v1/models`` on 127.0.0.1.

Like the sandbox stands in for Discord, the stand-in stands in for a model server, so tests and
the playground need no GPU, no key and no network. It answers:

- from a **script** when one is queued (`reply`, `reply_json`, `error`, `malformed`,
  `invalid_for_schema`, `cut_stream`), one item per chat request, in order;
- otherwise by **rule**: a deterministic line that quotes the last user message, or, when the
  request asks for a JSON schema, the minimal valid instance of that schema (strings filled with
  the quoted words).

It streams (server-sent events ending in ``data: [DONE]``) when asked, honours ``max_tokens``
(cutting the reply with ``finish_reason: "length"``), can demand an API key, can add latency,
and records every request (`requests`) for assertions. ``guildkeep llm standin --port N`` runs it;
then ``POST /_standin/script`` queues items and ``GET /_standin/requests`` lists what arrived.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from aiohttp import web

from guildkeep.config import Settings
from guildkeep.llm.messages import ChatMessage
from guildkeep.llm.schema import SchemaError, minimal_instance
from guildkeep.llm.tokens import estimate_prompt_tokens, estimate_tokens

DEFAULT_MODEL = "guildkeep-standin"
_CONTROL = "/_standin"
_WIRE_ROLES = ("system", "user", "assistant", "developer", "tool")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Kind = Literal["reply", "json", "error", "malformed", "invalid", "cut"]


@dataclass(frozen=True, slots=True)
class Scripted:
    """One queued behaviour for the next chat request."""

    kind: Kind
    content: str = ""
    status: int = 200
    retry_after: float | None = None
    retry_after_ms: float | None = None
    message: str = ""
    latency: float = 0.0
    finish_reason: str = "stop"


@dataclass(slots=True)
class RecordedRequest:
    """A request as the stand-in received it."""

    method: str
    path: str
    headers: dict[str, str]
    body: Any
    at: float = field(default_factory=time.monotonic)
    status: int = 0

    @property
    def messages(self) -> list[dict[str, Any]]:
        return list(self.body.get("messages", [])) if isinstance(self.body, dict) else []

    @property
    def last_user(self) -> str:
        return next((_text(m.get("content")) for m in reversed(self.messages) if m.get("role") == "user"), "")

    @property
    def response_format(self) -> dict[str, Any] | None:
        return self.body.get("response_format") if isinstance(self.body, dict) else None

    @property
    def stream(self) -> bool:
        return bool(isinstance(self.body, dict) and self.body.get("stream"))


class StandinModel:
    """The stand-in server. ``async with StandinModel() as model:`` then point a client at ``model.base_url``."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        model: str = DEFAULT_MODEL,
        latency: float = 0.0,
        stream_interval: float = 0.0,
        api_key: str | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.model = model
        self.latency = latency
        self.stream_interval = stream_interval
        self.api_key = api_key
        self.script: deque[Scripted] = deque()
        self.requests: list[RecordedRequest] = []
        self.app = web.Application(middlewares=[self._record])
        self.app.router.add_post("/v1/chat/completions", self._chat)
        self.app.router.add_get("/v1/models", self._models)
        self.app.router.add_post(f"{_CONTROL}/script", self._control_script)
        self.app.router.add_get(f"{_CONTROL}/requests", self._control_requests)
        self.app.router.add_delete(f"{_CONTROL}/requests", self._control_reset)
        self._runner: web.AppRunner | None = None
        self._sequence = 0
        self._pending: dict[int, RecordedRequest] = {}  # id(request) -> its record, while it is handled

    # ------------------------------------------------------------------------------------ lifecycle

    @property
    def base_url(self) -> str:
        """The API root a client is configured with (``GUILDKEEP_LLM_BASE_URL``)."""
        return f"http://{self.host}:{self.port}/v1"

    async def start(self) -> StandinModel:
        self._runner = web.AppRunner(
            self.app, handle_signals=False, access_log=None, shutdown_timeout=0.5, handler_cancellation=True
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        addresses = self._runner.addresses
        if not addresses:
            raise RuntimeError("the stand-in model could not bind a port")
        self.port = int(addresses[0][1])
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> StandinModel:
        return await self.start()

    async def __aexit__(self, *_exc: object) -> None:
        await self.stop()

    # -------------------------------------------------------------------------------------- script

    def reply(self, content: str, *, latency: float = 0.0, finish_reason: str = "stop") -> None:
        """The next chat request gets ``content`` (streamed if it asks for a stream)."""
        self.script.append(Scripted("reply", content=content, latency=latency, finish_reason=finish_reason))

    def reply_json(self, data: Any, *, latency: float = 0.0) -> None:
        """The next chat request gets ``data`` serialised as JSON text."""
        self.script.append(Scripted("json", content=json.dumps(data), latency=latency))

    def error(
        self,
        status: int,
        *,
        retry_after: float | None = None,
        retry_after_ms: float | None = None,
        message: str = "",
        times: int = 1,
        latency: float = 0.0,
    ) -> None:
        """The next ``times`` chat requests fail with HTTP ``status`` (OpenAI's error body), optionally Retry-After."""
        for _ in range(times):
            self.script.append(Scripted(
                "error", status=status, retry_after=retry_after, retry_after_ms=retry_after_ms,
                message=message, latency=latency,
            ))

    def malformed(self) -> None:
        """The next chat request gets HTTP 200 with a body that is not JSON."""
        self.script.append(Scripted("malformed"))

    def invalid_for_schema(self) -> None:
        """The next chat request gets well-formed JSON that breaks the schema it asked for."""
        self.script.append(Scripted("invalid"))

    def cut_stream(self, content: str = "The story begins and then") -> None:
        """The next (streamed) request sends part of ``content`` and hangs up without finishing."""
        self.script.append(Scripted("cut", content=content))

    def chat_requests(self) -> list[RecordedRequest]:
        """The recorded ``/v1/chat/completions`` requests, oldest first."""
        return [r for r in self.requests if r.path == "/v1/chat/completions"]

    # ------------------------------------------------------------------------------------ handlers

    @web.middleware
    async def _record(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path.startswith(_CONTROL):
            return await handler(request)
        raw = await request.read()
        try:
            body: Any = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode("utf-8", "replace")
        record = RecordedRequest(request.method, request.path, dict(request.headers), body)
        self.requests.append(record)
        if self.api_key is not None and request.headers.get("Authorization") != f"Bearer {self.api_key}":
            record.status = 401
            return _error(401, "Incorrect API key provided.", code="invalid_api_key")
        self._pending[id(request)] = record
        try:
            response = await handler(request)
        finally:
            del self._pending[id(request)]
        record.status = response.status
        return response

    async def _models(self, _request: web.Request) -> web.Response:
        return web.json_response(
            {"object": "list", "data": [{"id": self.model, "object": "model", "created": 0, "owned_by": "guildkeep"}]}
        )

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        body = self._pending[id(request)].body
        problem = _check_request(body)
        if problem is not None:
            return _error(400, problem[1], param=problem[0])
        item = self.script.popleft() if self.script else None
        delay = self.latency + (item.latency if item else 0.0)
        if delay > 0:
            await asyncio.sleep(delay)
        if item is not None and item.kind == "error":
            return _scripted_error(item)
        if item is not None and item.kind == "malformed":
            broken = '{"id": "chatcmpl-broken", "choices": ['
            return web.Response(status=200, text=broken, content_type="application/json")
        schema = _requested_schema(body)
        if item is not None and item.kind in ("reply", "json", "cut"):
            content, finish = item.content, item.finish_reason
        elif item is not None and item.kind == "invalid":
            content, finish = json.dumps(_breaking_instance(schema)), "stop"
        else:
            try:
                content, finish = self._rule_reply(body, schema), "stop"
            except SchemaError as exc:
                return _error(400, f"Invalid schema for response_format: {exc}", param="response_format")
        limit = body.get("max_tokens") or body.get("max_completion_tokens")
        if isinstance(limit, int) and estimate_tokens(content) > limit:
            content, finish = content[: limit * 4], "length"
        self._sequence += 1
        ident = f"chatcmpl-standin-{self._sequence}"
        if body.get("stream"):
            return await self._stream(request, ident, content, finish, cut=item is not None and item.kind == "cut")
        messages = _messages(body)
        return web.json_response({
            "id": ident,
            "object": "chat.completion",
            "created": int(time.time()),
            "model": str(body.get("model") or self.model),
            "choices": [
                {"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": finish}
            ],
            "usage": {
                "prompt_tokens": estimate_prompt_tokens(messages),
                "completion_tokens": estimate_tokens(content),
                "total_tokens": estimate_prompt_tokens(messages) + estimate_tokens(content),
            },
        })

    async def _stream(
        self, request: web.Request, ident: str, content: str, finish: str, *, cut: bool
    ) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
        await response.prepare(request)
        model = str(self._pending[id(request)].body.get("model") or self.model)
        created = int(time.time())

        def event(delta: dict[str, Any], reason: str | None) -> bytes:
            chunk = {
                "id": ident, "object": "chat.completion.chunk", "created": created, "model": model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": reason}],
            }
            return f"data: {json.dumps(chunk)}\n\n".encode()

        await response.write(event({"role": "assistant", "content": ""}, None))
        pieces = re.findall(r"\S+\s*|\s+", content)
        if cut:
            pieces = pieces[: max(1, len(pieces) // 2)]
        for piece in pieces:
            if self.stream_interval:
                await asyncio.sleep(self.stream_interval)
            await response.write(event({"content": piece}, None))
        if cut:
            # Hang up mid-reply: no finish_reason, no [DONE].
            if request.transport is not None:
                request.transport.close()
            return response
        await response.write(event({}, finish))
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        return response

    def _rule_reply(self, body: dict[str, Any], schema: dict[str, Any] | None) -> str:
        messages = _messages(body)
        last = next((m.content for m in reversed(messages) if m.role == "user"), "")
        words = _snippet(last)
        fmt = body.get("response_format")
        if schema is not None:
            return json.dumps(minimal_instance(schema, fill=words))
        if isinstance(fmt, dict) and fmt.get("type") == "json_object":
            return json.dumps({"reply": words})
        return rule_reply(last)

    # ------------------------------------------------------------------------------------- control

    async def _control_script(self, request: web.Request) -> web.Response:
        """Queue items: ``[{"reply": "text"}, {"json": {...}}, {"error": 429, "retry_after": 1}, ...]``."""
        try:
            items = await request.json()
            if not isinstance(items, list):
                raise TypeError
            for spec in items:
                self._queue(spec)
        except (ValueError, TypeError, KeyError) as exc:
            return _error(400, f"a script is a JSON list of items such as {{'reply': 'text'}} ({exc})")
        return web.json_response({"queued": len(self.script)})

    def _queue(self, spec: dict[str, Any]) -> None:
        latency = float(spec.get("latency", 0.0))
        if "reply" in spec:
            self.reply(str(spec["reply"]), latency=latency)
        elif "json" in spec:
            self.reply_json(spec["json"], latency=latency)
        elif "error" in spec:
            self.error(
                int(spec["error"]), retry_after=spec.get("retry_after"), retry_after_ms=spec.get("retry_after_ms"),
                message=str(spec.get("message", "")), times=int(spec.get("times", 1)), latency=latency,
            )
        elif spec.get("malformed"):
            self.malformed()
        elif spec.get("invalid"):
            self.invalid_for_schema()
        elif "cut" in spec:
            self.cut_stream(str(spec["cut"]))
        else:
            raise KeyError("reply, json, error, malformed, invalid or cut")

    async def _control_requests(self, _request: web.Request) -> web.Response:
        return web.json_response([
            {"method": r.method, "path": r.path, "status": r.status, "body": r.body} for r in self.requests
        ])

    async def _control_reset(self, _request: web.Request) -> web.Response:
        self.requests.clear()
        self.script.clear()
        return web.json_response({"ok": True})


# ------------------------------------------------------------------------------------------ rules

_TEMPLATES = (
    "The narrator considers “{s}” and nods; the story moves on.",
    "“{s}” echoes through the hall, and somewhere a door creaks open.",
    "The candles flicker as you say “{s}”. Something stirs in the dark.",
    "“{s}”, you say. A cat on the windowsill looks unimpressed.",
)
_GREETING = re.compile(r"^\s*(hello|hi|hey|greetings|good (morning|evening|day))\b", re.IGNORECASE)


def _snippet(text: str, limit: int = 80) -> str:
    words = " ".join(text.split())
    return words if len(words) <= limit else words[: limit - 1].rstrip() + "…"


def rule_reply(last_user: str) -> str:
    """The stand-in's answer to a message: deterministic, and it quotes the message back."""
    s = _snippet(last_user)
    if not s:
        return "The stand-in narrator waits for you to say something."
    if _GREETING.match(s):
        return f"Well met! The stand-in narrator heard “{s}” and bows."
    if s.endswith("?"):
        return f"A fine question: “{s}” Nobody here knows yet, but the tale may tell."
    digest = hashlib.sha256(s.encode("utf-8")).digest()
    return _TEMPLATES[digest[0] % len(_TEMPLATES)].format(s=s)


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # [{"type": "text", "text": "..."}]
        return " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return ""


def _messages(body: dict[str, Any]) -> list[ChatMessage]:
    out = []
    for m in body.get("messages", []):
        role = m.get("role")
        out.append(ChatMessage(role if role in ("system", "user", "assistant") else "user", _text(m.get("content"))))
    return out


def _check_request(body: Any) -> tuple[str | None, str] | None:
    """``(param, message)`` for a request OpenAI would refuse with 400, else ``None``."""
    if not isinstance(body, dict):
        return None, "The request body must be a JSON object."
    if not isinstance(body.get("model"), str) or not body["model"]:
        return "model", "You must provide a model parameter."
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return "messages", "'messages' must be a non-empty array."
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or m.get("role") not in _WIRE_ROLES:
            return f"messages[{i}].role", f"messages[{i}] needs a role among {', '.join(_WIRE_ROLES)}."
        if not isinstance(m.get("content"), str | list):
            return f"messages[{i}].content", f"messages[{i}].content must be a string or an array of parts."
    for key in ("max_tokens", "max_completion_tokens"):
        value = body.get(key)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
            return key, f"'{key}' must be a positive integer."
    if "stream" in body and not isinstance(body["stream"], bool):
        return "stream", "'stream' must be a boolean."
    fmt = body.get("response_format")
    if fmt is not None:
        if not isinstance(fmt, dict) or fmt.get("type") not in ("text", "json_object", "json_schema"):
            return "response_format.type", "response_format.type must be text, json_object or json_schema."
        if fmt["type"] == "json_schema":
            spec = fmt.get("json_schema")
            if not isinstance(spec, dict) or not isinstance(spec.get("name"), str):
                return "response_format.json_schema.name", "json_schema needs a name."
            if not isinstance(spec.get("schema"), dict):
                return "response_format.json_schema.schema", "json_schema needs a schema object."
    return None


def _requested_schema(body: dict[str, Any]) -> dict[str, Any] | None:
    fmt = body.get("response_format")
    if isinstance(fmt, dict) and fmt.get("type") == "json_schema":
        schema: dict[str, Any] = fmt["json_schema"]["schema"]
        return schema
    return None


def _breaking_instance(schema: dict[str, Any] | None) -> Any:
    """JSON that parses but breaks ``schema``: an object missing what it requires, or the wrong type."""
    if schema is not None and schema.get("type") == "object" and schema.get("required"):
        return {"unexpected": True}
    if schema is not None and schema.get("type") in ("string", ["string"]):
        return 42
    return "not what was asked for"


def _error(status: int, message: str, *, param: str | None = None, code: str | None = None,
           headers: dict[str, str] | None = None) -> web.Response:
    kind = {400: "invalid_request_error", 401: "invalid_request_error", 404: "invalid_request_error",
            429: "rate_limit_exceeded"}.get(status, "server_error")
    return web.json_response(
        {"error": {"message": message, "type": kind, "param": param, "code": code}}, status=status, headers=headers
    )


def _scripted_error(item: Scripted) -> web.Response:
    headers: dict[str, str] = {}
    if item.retry_after is not None:
        headers["Retry-After"] = f"{item.retry_after:g}"
    if item.retry_after_ms is not None:
        headers["retry-after-ms"] = f"{item.retry_after_ms:g}"
    default = {429: "Rate limit reached; please try again later.", 503: "The server is overloaded."}
    message = item.message or default.get(item.status, "The server had an error while processing your request.")
    return _error(item.status, message, code="rate_limit_exceeded" if item.status == 429 else None, headers=headers)


# ------------------------------------------------------------------------------------ the playground


@dataclass(slots=True)
class PlaygroundModel:
    """The model the playground's bot talks to: the configured one, or the stand-in started for it."""

    settings: Settings
    standin: StandinModel | None

    @property
    def banner(self) -> str:
        """One line for the playground's banner: which model answers."""
        if self.standin is None:
            return f"language model: {self.settings.llm_model} at {self.settings.llm_base_url}."
        return (f"language model: none configured, so the local stand-in on {self.standin.base_url} answers "
                "(rule-based replies; set GUILDKEEP_LLM_BASE_URL and GUILDKEEP_LLM_MODEL for a real one).")

    async def stop(self) -> None:
        """Stop the stand-in, when one was started."""
        if self.standin is not None:
            await self.standin.stop()


async def playground_model(settings: Settings) -> PlaygroundModel:
    """The playground's model: the configured one, else the stand-in, started here on a free port.

    With no model configured, a copy of ``settings`` points at the stand-in, so the companion and the story
    narrator answer in the playground; otherwise ``settings`` are kept. The caller stops it
    (`PlaygroundModel.stop`) on exit.
    """
    if settings.llm_base_url:
        return PlaygroundModel(settings, None)
    standin = await StandinModel().start()
    pointed = settings.model_copy(update={"llm_base_url": standin.base_url, "llm_model": standin.model})
    return PlaygroundModel(pointed, standin)
