"""Durability of the write-behind path in real processes: SIGTERM loses nothing, SIGKILL loses at most the
flush window and never counts an event twice (also when the same events are sent again after a restart)."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from sqlalchemy import func, select

from guildkeep.db import Database
from guildkeep.leveling.ingest import DISCORD_EPOCH_MS
from guildkeep.leveling.models import Level
from tests.leveling.ingest_worker import GUILD

ROOT = Path(__file__).resolve().parents[2]


def _start(url: str, flush_seconds: float) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.leveling.ingest_worker", url, str(flush_seconds)],
        cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "ready"
    return proc


def _events(count: int, start: int = 0) -> list[tuple[int, int]]:
    base = (int(time.time() * 1000) - DISCORD_EPOCH_MS) << 22
    return [(100 + i % 7, base + ((start + i) << 12)) for i in range(count)]


def _send(proc: subprocess.Popen[str], events: list[tuple[int, int]]) -> None:
    assert proc.stdin is not None
    assert proc.stdout is not None
    for i in range(0, len(events), 200):  # in steps, so neither pipe fills up
        chunk = events[i:i + 200]
        for user, message_id in chunk:
            proc.stdin.write(f"{user} {message_id}\n")
        proc.stdin.flush()
        for _ in chunk:
            assert proc.stdout.readline().startswith("ok ")


async def _stored(db: Database) -> int:
    async with db.session(read_only=True) as s:
        return int(await s.scalar(select(func.coalesce(func.sum(Level.total_messages), 0))
                                  .where(Level.guild_id == GUILD)) or 0)


async def test_sigterm_flushes_everything(db: Database, database_url: str) -> None:
    proc = _start(database_url, 300)  # nothing is flushed by time: only the shutdown can store it
    try:
        _send(proc, _events(250))
        assert await _stored(db) == 0
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
    finally:
        proc.kill()
    assert await _stored(db) == 250


async def test_sigkill_loses_at_most_the_window_and_never_counts_twice(db: Database, database_url: str) -> None:
    window = 0.3
    proc = _start(database_url, window)
    assert proc.stdin is not None
    assert proc.stdout is not None
    events = _events(200_000)  # more than 5 s of sending on any machine: the loop ends at the deadline
    acked_at: list[float] = []
    try:
        deadline = time.monotonic() + 5.0
        for user, message_id in events:
            proc.stdin.write(f"{user} {message_id}\n")
            proc.stdin.flush()
            assert proc.stdout.readline().startswith("ok ")
            acked_at.append(time.monotonic())
            if acked_at[-1] > deadline:
                break
        proc.send_signal(signal.SIGKILL)
        killed_at = time.monotonic()
        proc.wait(timeout=30)
    finally:
        proc.kill()
    sent = len(acked_at)
    stored = await _stored(db)
    # Everything acknowledged more than one window (plus the time a flush may take here) before the kill is stored.
    safe = sum(1 for t in acked_at if t < killed_at - window - 2.5)
    assert safe > 0
    assert safe <= stored <= sent, (safe, stored, sent)

    # A restarted process fed the same events again (as a replayed gateway would) counts none of the stored twice.
    again = _start(database_url, window)
    try:
        _send(again, events[:sent])
        again.send_signal(signal.SIGTERM)
        assert again.wait(timeout=60) == 0
    finally:
        again.kill()
    assert await _stored(db) == sent


def test_sigterm_stops_the_playground_bot_and_flushes(tmp_path: Path) -> None:
    """The real bot (the playground: sandbox + bot in one process): SIGTERM closes the bot, the leveling cog's
    unload flushes the chat XP of the window, and the process exits cleanly."""

    path = tmp_path / "play.db"
    env = {k: v for k, v in os.environ.items() if not k.startswith("GUILDKEEP_")}
    env.update(GUILDKEEP_DATABASE_URL=f"sqlite+aiosqlite:///{path}", GUILDKEEP_WRITE_BEHIND_FLUSH_SECONDS="300",
               PYTHONPATH=str(ROOT))
    proc = subprocess.Popen([sys.executable, "-m", "guildkeep", "playground"], cwd=tmp_path, env=env,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            bufsize=1)
    assert proc.stdin is not None
    assert proc.stdout is not None
    try:
        for word in ("hello", "there", "general", "kenobi"):
            proc.stdin.write(f"{word}\n")
        proc.stdin.write(":who\n")
        proc.stdin.flush()
        seen = []
        while not any(line.startswith("alice in #general> :who") for line in seen):
            line = proc.stdout.readline()
            assert line, "".join(seen)
            seen.append(line)
        time.sleep(0.5)  # the bot's listener has run (the :who line comes after four settled messages)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
    finally:
        proc.kill()
    with sqlite3.connect(path) as conn:
        (total,) = conn.execute("SELECT coalesce(sum(total_messages), 0) FROM leveling_levels").fetchone()
    assert total == 4
