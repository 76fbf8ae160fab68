"""A process running the write-behind path, for the signal tests.

``python -m tests.leveling.ingest_worker URL FLUSH_SECONDS`` reads ``user message_id`` lines from stdin, scores
each as a message in guild 7001 and prints ``ok N`` once the N-th is applied in memory. SIGTERM/SIGINT stop it
through `guildkeep.signals` (flush, dispose, exit 0); at EOF it waits for a signal.
"""

from __future__ import annotations

import asyncio
import sys

from guildkeep.db import Database
from guildkeep.leveling.ingest import XpIngestor
from guildkeep.leveling.service import LevelingService
from guildkeep.signals import install_shutdown_handlers, stdin_lines

GUILD = 7001


async def main(url: str, flush_seconds: float) -> None:
    db = Database(url)
    ingestor = XpIngestor(LevelingService(db), flush_seconds=flush_seconds)
    ingestor.start()
    task = asyncio.current_task()
    assert task is not None
    remove = install_shutdown_handlers(task.cancel)
    count = 0
    try:
        sys.stdout.write("ready\n")
        sys.stdout.flush()
        async for line in stdin_lines():
            user, message_id = (int(v) for v in line.split())
            await ingestor.message(GUILD, user, message_id=message_id)
            count += 1
            sys.stdout.write(f"ok {count}\n")
            sys.stdout.flush()
        await asyncio.Event().wait()
    except asyncio.CancelledError:
        pass
    finally:
        await ingestor.stop()
        await db.dispose()
        remove()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], float(sys.argv[2])))
