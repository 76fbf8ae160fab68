"""What a benchmark reports."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass


@dataclass
class Result:
    name: str
    unit: str
    value: float  # the thing measured (higher is better, e.g. operations per second)
    baseline: float  # the baseline measured in the same run, same unit
    target: float | None = None  # the ratio value/baseline we hold ourselves to
    backend: str = ""
    benchmark: str = ""

    @property
    def ratio(self) -> float:
        return self.value / self.baseline if self.baseline else float("inf")

    @property
    def meets_target(self) -> bool:
        return self.target is None or self.ratio >= self.target


async def rate(count: int, work: Callable[[], Awaitable[object]]) -> float:
    """Run ``work`` once and return ``count`` divided by the seconds it took."""
    start = time.perf_counter()
    await work()
    return count / (time.perf_counter() - start)
