"""The language-model layer: one client for any OpenAI-compatible chat endpoint, and a local stand-in.

See docs/llm.md. Never await a model inside a database unit of work: read, call, then write.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from guildkeep.llm.budget import RequestBudget
from guildkeep.llm.client import LLMClient, parse_json_reply
from guildkeep.llm.errors import (
    LLMBadReply,
    LLMBudgetExceeded,
    LLMContextTooLong,
    LLMError,
    LLMNotConfigured,
    LLMRequestRejected,
    LLMTimeout,
    LLMUnavailable,
)
from guildkeep.llm.messages import ChatChunk, ChatMessage, ChatReply, StructuredReply, Usage
from guildkeep.llm.tokens import estimate_prompt_tokens, estimate_tokens, trim_messages

if TYPE_CHECKING:
    from guildkeep.config import Settings


def client_from_settings(settings: Settings) -> LLMClient:
    """The client the settings describe; without ``GUILDKEEP_LLM_BASE_URL`` every call raises `LLMNotConfigured`."""
    return LLMClient(
        settings.llm_base_url,
        settings.llm_model,
        api_key=settings.llm_key,
        timeout=settings.llm_timeout_seconds,
        max_tokens=settings.llm_max_tokens,
        context_tokens=settings.llm_context_tokens,
        budget=RequestBudget(settings.llm_requests_per_minute),
    )


__all__ = [
    "ChatChunk",
    "ChatMessage",
    "ChatReply",
    "LLMBadReply",
    "LLMBudgetExceeded",
    "LLMClient",
    "LLMContextTooLong",
    "LLMError",
    "LLMNotConfigured",
    "LLMRequestRejected",
    "LLMTimeout",
    "LLMUnavailable",
    "RequestBudget",
    "StructuredReply",
    "Usage",
    "client_from_settings",
    "estimate_prompt_tokens",
    "estimate_tokens",
    "parse_json_reply",
    "trim_messages",
]
