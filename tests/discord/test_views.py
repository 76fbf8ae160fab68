"""Paginator state: the page it opens on and the buttons it enables."""

from __future__ import annotations

import pytest

from guildkeep.discord.views import Paginator


@pytest.mark.parametrize(("start", "index", "previous_disabled", "next_disabled"),
                         [(0, 0, True, False), (1, 1, False, False), (2, 2, False, True), (9, 2, False, True),
                          (-3, 0, True, False)])
async def test_paginator_opens_on_the_requested_page(start: int, index: int, previous_disabled: bool,
                                                     next_disabled: bool) -> None:
    view = Paginator(["one", "two", "three"], start=start)
    assert view.index == index
    assert view.current.content == ["one", "two", "three"][index]
    assert view.counter.label == f"{index + 1}/3"
    assert (view.previous_page.disabled, view.next_page.disabled) == (previous_disabled, next_disabled)


async def test_a_paginator_needs_a_page() -> None:
    with pytest.raises(ValueError, match="at least one page"):
        Paginator([])
