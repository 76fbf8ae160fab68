"""The stand-in model fixtures of tests/llm, for the companion's chat tests."""

from tests.llm.conftest import llm, standin

__all__ = ["llm", "standin"]
