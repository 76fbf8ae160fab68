"""Token estimate, trimming to the context budget, and the per-server request budget (pure, no I/O)."""

from __future__ import annotations

import pytest

from guildkeep.llm.budget import RequestBudget
from guildkeep.llm.errors import LLMBudgetExceeded, LLMContextTooLong
from guildkeep.llm.messages import ChatMessage
from guildkeep.llm.tokens import (
    MESSAGE_OVERHEAD_TOKENS,
    REPLY_PRIMING_TOKENS,
    estimate_prompt_tokens,
    estimate_tokens,
    trim_messages,
)


def test_estimate_is_four_characters_per_token_rounded_up() -> None:
    assert estimate_tokens("") == 0
    assert estimate_tokens("abc") == 1
    assert estimate_tokens("abcd") == 1
    assert estimate_tokens("abcde") == 2
    assert estimate_tokens("x" * 400) == 100
    messages = [ChatMessage.system("a" * 40), ChatMessage.user("b" * 8)]
    assert estimate_prompt_tokens(messages) == 10 + 2 + 2 * MESSAGE_OVERHEAD_TOKENS + REPLY_PRIMING_TOKENS


def test_trim_keeps_system_and_newest_turns_in_order() -> None:
    system = ChatMessage.system("You are the narrator.")  # 6 + 4
    history = [ChatMessage.user(f"turn {i} " + "x" * 32) for i in range(10)]  # 10 + 4 each
    budget = REPLY_PRIMING_TOKENS + 10 + 14 * 3  # system + three turns
    kept = trim_messages([system, *history], budget)
    assert kept == [system, history[7], history[8], history[9]]
    assert estimate_prompt_tokens(kept) <= budget
    assert trim_messages([system, *history], 10_000) == [system, *history]
    assert trim_messages([], 10) == []


def test_trim_refuses_when_the_newest_message_alone_does_not_fit() -> None:
    with pytest.raises(LLMContextTooLong) as info:
        trim_messages([ChatMessage.user("y" * 4000)], 500)
    assert info.value.limit == 500
    assert "too long for the language model" in info.value.message


def test_message_roles_are_checked() -> None:
    with pytest.raises(ValueError, match="role must be one of"):
        ChatMessage("tool", "x")  # type: ignore[arg-type]


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_budget_refuses_the_extra_request_and_says_when_to_come_back() -> None:
    clock = FakeClock()
    budget = RequestBudget(3, clock=clock)
    for _ in range(3):
        budget.acquire(1)
        clock.now += 10
    assert budget.remaining(1) == 0
    with pytest.raises(LLMBudgetExceeded) as info:
        budget.acquire(1)
    assert info.value.message == (
        "The narrator is resting: this server used its 3 requests this minute; try again in 30 s."
    )
    budget.acquire(2)  # another server has its own budget
    clock.now += 30  # the first request (t=1000) leaves the window at t=1060
    budget.acquire(1)
    with pytest.raises(LLMBudgetExceeded):
        budget.acquire(1)
    assert budget.remaining(1) == 0


def test_refused_requests_do_not_count_and_zero_means_no_limit() -> None:
    clock = FakeClock()
    budget = RequestBudget(1, clock=clock)
    budget.acquire(5)
    for _ in range(5):
        with pytest.raises(LLMBudgetExceeded):
            budget.acquire(5)
    clock.now += 60.001
    budget.acquire(5)  # the refusals did not extend the window
    unlimited = RequestBudget(0)
    for _ in range(1000):
        unlimited.acquire(5)
    assert unlimited.remaining(5) is None
