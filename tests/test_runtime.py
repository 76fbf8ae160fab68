"""The collector settings a long-running process takes (guildkeep.runtime)."""

from __future__ import annotations

import asyncio
import contextlib
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


def test_collector_paused_nests_and_restores_what_was_there() -> None:
    assert gc.isenabled()
    with runtime.collector_paused():
        assert not gc.isenabled()
        with runtime.collector_paused():  # another task's pause overlapping
            assert not gc.isenabled()
        assert not gc.isenabled()  # the outer one still holds it
    assert gc.isenabled()

    gc.disable()  # a process that runs without the collector keeps running without it
    try:
        with runtime.collector_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_collector_paused_resumes_when_the_block_raises() -> None:
    with contextlib.suppress(RuntimeError), runtime.collector_paused():
        raise RuntimeError("the flush failed")
    assert gc.isenabled()


async def test_overlapping_pauses_of_tasks_end_with_the_last() -> None:
    first_in, second_out = asyncio.Event(), asyncio.Event()

    async def long() -> None:
        with runtime.collector_paused():
            first_in.set()
            await second_out.wait()
            assert not gc.isenabled()  # the other task ended its pause: this one still holds
        assert gc.isenabled()

    async def short() -> None:
        await first_in.wait()
        with runtime.collector_paused():
            await asyncio.sleep(0)
        second_out.set()

    await asyncio.gather(long(), short())
    assert gc.isenabled()
