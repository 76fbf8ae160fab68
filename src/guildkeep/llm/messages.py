"""What goes to the model and what comes back: small frozen dataclasses, no wire-format dicts."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

Role = Literal["system", "user", "assistant"]
ROLES: tuple[Role, ...] = ("system", "user", "assistant")


@dataclass(frozen=True, slots=True)
class ChatMessage:
    """One message of a conversation."""

    role: Role
    content: str

    def __post_init__(self) -> None:
        if self.role not in ROLES:
            raise ValueError(f"role must be one of {', '.join(ROLES)}, not {self.role!r}")

    @classmethod
    def system(cls, content: str) -> ChatMessage:
        return cls("system", content)

    @classmethod
    def user(cls, content: str) -> ChatMessage:
        return cls("user", content)

    @classmethod
    def assistant(cls, content: str) -> ChatMessage:
        return cls("assistant", content)

    def to_wire(self) -> dict[str, str]:
        return {"role": self.role, "content": self.content}


@dataclass(frozen=True, slots=True)
class Usage:
    """Token counts as the server reported them (absent on some local servers)."""

    prompt_tokens: int
    completion_tokens: int

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass(frozen=True, slots=True)
class ChatReply:
    """A complete reply. ``finish_reason`` is ``"length"`` when ``max_tokens`` cut it short."""

    content: str
    model: str
    finish_reason: str | None = None
    usage: Usage | None = None
    attempts: int = 1

    @property
    def truncated(self) -> bool:
        return self.finish_reason == "length"


@dataclass(frozen=True, slots=True)
class ChatChunk:
    """One piece of a streamed reply; the last one carries ``finish_reason``."""

    content: str
    finish_reason: str | None = None


@dataclass(frozen=True, slots=True)
class StructuredReply:
    """A reply parsed as JSON and valid against the requested schema."""

    data: Any
    raw: str
    model: str
    usage: Usage | None = None
    attempts: int = 1
