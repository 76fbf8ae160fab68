"""The ingestion benchmark runs end to end at a tiny scale on both databases (no timing is asserted)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

from typer.testing import CliRunner

from guildkeep.cli import app
from guildkeep.leveling import bench


def test_workload_follows_the_server_sizes() -> None:
    work = bench.make_workload(bench.Scale(events=5_000, members=10_000, guilds=50))
    assert work.sizes[0] == 1_000
    assert work.sizes[1] == round(10_000 * 0.13878 / 2)
    assert len({mid for _, _, mid in work.events}) == 5_000  # every message id is unique
    assert [mid for _, _, mid in work.events] == sorted(mid for _, _, mid in work.events)  # snowflakes in order
    biggest = sum(1 for g, _, _ in work.events if g == work.guild_id(0))
    assert 0.04 < biggest / 5_000 < 0.2


async def test_bench_runs_on_both_databases(backend: str, pg_admin_url: str) -> None:
    scale = bench.Scale(events=3_000, members=2_000, guilds=20, naive_sample=100)
    result = await bench.run_backend(backend, scale, pg_url=pg_admin_url)
    assert result.checks == {"every event stored once": True}
    assert min(result.guildkeep_events_per_s, result.baseline_events_per_s, result.naive_events_per_s) > 0
    assert result.rows_written > 0
    assert result.flushes >= 1
    assert result.bytes_per_member > 0
    assert "guildkeep / baseline" in bench.table([result])
    assert json.loads(bench.to_json([result]))[0]["backend"] == backend


def test_bench_ingest_command(tmp_path: Path, isolated_env: Path) -> None:
    out = tmp_path / "r.json"
    done = CliRunner().invoke(app, ["bench", "ingest", "--backend", "sqlite", "--events", "2000", "--members",
                                    "2000", "--guilds", "10", "--naive-sample", "100", "--json", str(out)])
    assert done.exit_code == 0, done.output
    assert "guildkeep events/s" in done.output
    assert json.loads(out.read_text())[0]["checks"] == {"every event stored once": True}


async def test_members_hold_what_their_totals_earned_unless_the_achievements_are_new(
        backend: str, pg_admin_url: str) -> None:
    """By default the pre-filled members hold the achievements their totals earned ("First words": all of them,
    since each has sent messages), so the run announces only what it earns; with new achievements every member
    who speaks earns "First words" during the run."""
    scale = bench.Scale(events=3_000, members=2_000, guilds=20, naive_sample=100)
    held = await bench.run_backend(backend, scale, pg_url=pg_admin_url)
    new = await bench.run_backend(backend, replace(scale, held_achievements=False), pg_url=pg_admin_url)
    assert (held.servers, new.servers) == ("yes, held", "yes, new achievements")
    speakers = new.announcements["achievements_earned"]
    assert speakers >= new.rows_written // 2 > 0  # "First words" for about every member in the run
    assert held.announcements["achievements_earned"] < speakers // 10  # only "Regular", by a few
    assert held.checks == new.checks == {"every event stored once": True}
