"""The collector settings a long-running process takes (guildkeep.runtime)."""

from __future__ import annotations

import gc

from guildkeep import runtime


def test_tune_collector_freezes_what_exists_and_raises_the_thresholds() -> None:
    before = gc.get_threshold()
    try:
        kept = [object() for _ in range(10)]  # alive now: frozen with the rest
        assert runtime.tune_collector() == before
        assert gc.get_threshold() == (runtime.YOUNG, runtime.MIDDLE, runtime.FULL)
        assert gc.get_freeze_count() > 0
        # Cycles made after the freeze are still found and freed.
        class Node:
            pass

        a, b = Node(), Node()
        a.other, b.other = b, a  # type: ignore[attr-defined]
        del a, b
        assert gc.collect() >= 2
        assert kept
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
