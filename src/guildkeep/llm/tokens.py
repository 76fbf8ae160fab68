"""Token estimates and trimming a conversation to the model's context window.

No tokenizer ships with guildkeep (each model family has its own, and the server may be any of
them), so the count is a documented heuristic: about 4 characters per token for English text
(OpenAI's rule of thumb), rounded up, plus a fixed overhead per message for the role and the
separators the chat template adds. It overestimates for plain English and underestimates for
scripts such as CJK, where one character is often a token or more; that is why the context budget
keeps the reply's ``max_tokens`` free and the window setting should be set a little below the
model's real one.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from guildkeep.llm.errors import LLMContextTooLong
from guildkeep.llm.messages import ChatMessage

CHARS_PER_TOKEN = 4
MESSAGE_OVERHEAD_TOKENS = 4  # role, separators and the template's markers, per message
REPLY_PRIMING_TOKENS = 3  # the assistant turn the template opens for the reply


def estimate_tokens(text: str) -> int:
    """Estimated tokens of ``text``: ``ceil(len / 4)`` (0 for the empty string)."""
    return math.ceil(len(text) / CHARS_PER_TOKEN)


def estimate_message_tokens(message: ChatMessage) -> int:
    """Estimated tokens one message costs in the prompt."""
    return estimate_tokens(message.content) + MESSAGE_OVERHEAD_TOKENS


def estimate_prompt_tokens(messages: Sequence[ChatMessage]) -> int:
    """Estimated tokens of a whole prompt, including the reply's priming."""
    return sum(estimate_message_tokens(m) for m in messages) + REPLY_PRIMING_TOKENS


def trim_messages(messages: Sequence[ChatMessage], budget: int) -> list[ChatMessage]:
    """The conversation cut to ``budget`` estimated tokens, keeping its order.

    Every system message and the last message are always kept; the other messages are kept
    newest first while they fit, so the oldest turns go first. Raises `LLMContextTooLong` when
    the kept messages alone exceed the budget.
    """
    if not messages:
        return []
    last = len(messages) - 1
    required = {i for i, m in enumerate(messages) if m.role == "system"} | {last}
    used = REPLY_PRIMING_TOKENS + sum(estimate_message_tokens(messages[i]) for i in required)
    if used > budget:
        raise LLMContextTooLong(used, budget)
    kept = set(required)
    for i in range(last - 1, -1, -1):
        if i in kept:
            continue
        cost = estimate_message_tokens(messages[i])
        if used + cost > budget:
            break  # older turns than a dropped one are dropped too: no holes in the history
        used += cost
        kept.add(i)
    return [m for i, m in enumerate(messages) if i in kept]
