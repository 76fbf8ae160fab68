"""Where discord.py sends its requests. Only the sandbox changes them, and only while it runs.

discord.py builds every REST URL (webhooks included) from ``discord.http.Route.BASE`` and opens the
gateway at ``DiscordWebSocket.DEFAULT_GATEWAY`` (READY's ``resume_gateway_url`` is used for resumes).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import yarl
from discord.gateway import DiscordWebSocket
from discord.http import Route


@contextmanager
def pointed_at(api_base: str, gateway_url: str) -> Iterator[None]:
    """Point discord.py at a local Discord (``http://127.0.0.1:PORT/api/v10``) and restore it afterwards."""
    old_base, old_gateway = Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY
    Route.BASE = api_base
    DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(gateway_url)
    try:
        yield
    finally:
        Route.BASE = old_base
        DiscordWebSocket.DEFAULT_GATEWAY = old_gateway
