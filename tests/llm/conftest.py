"""Fixtures: the stand-in model on 127.0.0.1 and a real `LLMClient` pointed at it (no mocking)."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator

import pytest

from guildkeep.llm import LLMClient
from guildkeep.llm.standin import DEFAULT_MODEL, StandinModel

BACKOFF_BASE = 0.05


@pytest.fixture
async def standin() -> AsyncIterator[StandinModel]:
    """The stand-in model server on a free port, stopped after the test."""
    async with StandinModel() as model:
        yield model


def make_client(base_url: str, **kwargs: object) -> LLMClient:
    """A client with fast, seeded backoff so retry tests take milliseconds, not seconds."""
    options: dict[str, object] = {
        "timeout": 5.0, "backoff_base": BACKOFF_BASE, "backoff_cap": 1.0, "rng": random.Random(11),
    }
    options.update(kwargs)
    return LLMClient(base_url, DEFAULT_MODEL, **options)  # type: ignore[arg-type]


@pytest.fixture
async def llm(standin: StandinModel) -> AsyncIterator[LLMClient]:
    """A client for the stand-in."""
    client = make_client(standin.base_url)
    try:
        yield client
    finally:
        await client.close()
