"""The LLM layer's domain errors. Each carries the text a player is shown (ephemeral reply)."""

from __future__ import annotations

import math

from guildkeep.errors import DomainError


class LLMError(DomainError):
    """Base of every language-model failure a player may be shown."""

    default_message = "The narrator cannot answer right now; please try again in a moment."


class LLMNotConfigured(LLMError):
    """No model is configured (``GUILDKEEP_LLM_BASE_URL`` is unset)."""

    default_message = (
        "This bot has no language model configured, so this feature is switched off. "
        "(The bot's owner can set GUILDKEEP_LLM_BASE_URL and GUILDKEEP_LLM_MODEL.)"
    )


class LLMBudgetExceeded(LLMError):
    """The server used its requests for this minute; nothing was sent to the model."""

    def __init__(self, limit: int, retry_after: float) -> None:
        self.limit = limit
        self.retry_after = retry_after
        seconds = max(1, math.ceil(retry_after))
        super().__init__(
            f"The narrator is resting: this server used its {limit} requests this minute; "
            f"try again in {seconds} s."
        )


class LLMUnavailable(LLMError):
    """The model kept failing (429, 5xx, connection) after every attempt, or asked us to wait too long."""

    def __init__(self, detail: str, *, retry_after: float | None = None) -> None:
        self.detail = detail
        self.retry_after = retry_after
        hint = f"try again in {max(1, math.ceil(retry_after))} s" if retry_after else "try again in a moment"
        super().__init__(f"The language model is not answering ({detail}); {hint}.")


class LLMTimeout(LLMUnavailable):
    """One request took longer than ``GUILDKEEP_LLM_TIMEOUT_SECONDS``."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        super().__init__(f"no answer within {seconds:g} s")


class LLMRequestRejected(LLMError):
    """The model server refused the request itself (HTTP 400, 401, 403, 404 ...); retrying would not help."""

    def __init__(self, status: int, detail: str) -> None:
        self.status = status
        self.detail = detail
        super().__init__(
            f"The language model refused the request (HTTP {status}); the bot's owner should check its "
            "LLM settings."
        )


class LLMBadReply(LLMError):
    """The reply could not be read, or did not match the requested form; nothing was changed."""

    def __init__(self, detail: str) -> None:
        self.detail = detail
        super().__init__("The language model's reply was not in the expected form, so nothing was changed; "
                         "please try again.")


class LLMContextTooLong(LLMError):
    """Even the system prompt and the newest message do not fit in the model's context window."""

    def __init__(self, needed: int, limit: int) -> None:
        self.needed = needed
        self.limit = limit
        super().__init__(
            f"That is too long for the language model to read (about {needed} tokens; it can take {limit})."
        )
