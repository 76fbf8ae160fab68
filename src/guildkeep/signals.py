"""Clean shutdown on SIGTERM and SIGINT (systemd, ``docker stop``, Ctrl-C): the running program's own shutdown
runs (the bot closes, its cogs unload, the write-behind buffers are flushed) before the database is disposed."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
import threading
from collections.abc import AsyncIterator, Callable

log = logging.getLogger(__name__)

SHUTDOWN_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def install_shutdown_handlers(shutdown: Callable[[], object]) -> Callable[[], None]:
    """Call ``shutdown`` (once) on SIGTERM or SIGINT, from the running loop; returns a function that removes the
    handlers. Where the loop cannot take signal handlers (Windows), nothing is installed."""
    loop = asyncio.get_running_loop()
    installed = []
    fired = False

    def handle(sig: signal.Signals) -> None:
        nonlocal fired
        if fired:
            log.info("%s received again; still shutting down", sig.name)
            return
        fired = True
        log.info("%s received: flushing and shutting down", sig.name)
        shutdown()

    for sig in SHUTDOWN_SIGNALS:
        try:
            loop.add_signal_handler(sig, handle, sig)
        except (NotImplementedError, RuntimeError, ValueError):  # not the main thread, or no support
            continue
        installed.append(sig)

    def remove() -> None:
        for sig in installed:
            loop.remove_signal_handler(sig)

    return remove


def read_line_async(prompt: str | None = None) -> asyncio.Future[str]:
    """``input()`` (or one line of stdin) on a daemon thread: a signal can end the program while it waits, and the
    thread does not keep the process alive. EOF sets ``EOFError`` on the future."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[str] = loop.create_future()

    def deliver(value: str | None, exc: BaseException | None) -> None:
        if future.done():
            return
        if exc is not None:
            future.set_exception(exc)
        else:
            future.set_result(value or "")

    def read() -> None:
        try:
            if prompt is not None:
                line = input(prompt)
            else:
                line = sys.stdin.readline()
                if not line:
                    raise EOFError
        except BaseException as exc:
            result: tuple[str | None, BaseException | None] = (None, exc)
        else:
            result = (line, None)
        with contextlib.suppress(RuntimeError):  # the loop closed while this thread waited
            loop.call_soon_threadsafe(deliver, *result)

    threading.Thread(target=read, name="stdin-reader", daemon=True).start()
    return future


async def stdin_lines() -> AsyncIterator[str]:
    """The lines of stdin as they arrive, until EOF."""
    while True:
        try:
            yield await read_line_async()
        except EOFError:
            return
