"""Run every benchmark: ``python -m benchmarks [--backend sqlite|postgresql|both] [--only NAME]``.

Each ``bench_*.py`` module defines ``async def run(db) -> list[Result]``; a result names what was
measured, the baseline measured in the same run, and the ratio. Results are written to
``benchmarks/results/latest.json`` (ignored by git) and printed as a table.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import os
import pkgutil
import tempfile
import uuid
from dataclasses import asdict
from pathlib import Path

import asyncpg
from sqlalchemy.engine import make_url

import benchmarks
from benchmarks.common import Result
from guildkeep.db import Database, migrate
from guildkeep.runtime import tune_collector

PG = os.environ.get("GUILDKEEP_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres")


async def _pg_db(name: str, create: bool) -> None:
    conn = await asyncpg.connect(make_url(PG).set(drivername="postgresql").render_as_string(hide_password=False))
    try:
        if create:
            await conn.execute(f'CREATE DATABASE "{name}"')
        else:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


async def run_backend(backend: str, modules: list[str]) -> list[Result]:
    results: list[Result] = []
    for name in modules:
        module = importlib.import_module(f"benchmarks.{name}")
        with tempfile.TemporaryDirectory() as tmp:
            if backend == "sqlite":
                url = f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}"
                dbname = None
            else:
                dbname = f"gk_bench_{uuid.uuid4().hex[:8]}"
                await _pg_db(dbname, create=True)
                url = make_url(PG).set(database=dbname).render_as_string(hide_password=False)
            db = Database(url, pool_size=10, max_overflow=20)
            try:
                await migrate.upgrade(db)
                for result in await module.run(db):
                    result.backend = backend
                    result.benchmark = name
                    results.append(result)
            finally:
                await db.dispose()
                if dbname:
                    await _pg_db(dbname, create=False)
    return results


def main() -> None:
    tune_collector()  # as the bot's process does (guildkeep.runtime)
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--only", help="run only benchmarks whose module name contains this")
    args = parser.parse_args()
    modules = sorted(
        m.name for m in pkgutil.iter_modules(benchmarks.__path__) if m.name.startswith("bench_")
        and (not args.only or args.only in m.name)
    )
    backends = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
    results: list[Result] = []
    for backend in backends:
        results.extend(asyncio.run(run_backend(backend, modules)))
    out = Path(__file__).parent / "results"
    out.mkdir(exist_ok=True)
    (out / "latest.json").write_text(json.dumps([asdict(r) for r in results], indent=2))
    print(f"{'benchmark':<22} {'backend':<11} {'measured':<44} {'value':>12} {'baseline':>12} {'ratio':>8}  target")
    for r in results:
        verdict = "" if r.target is None else ("ok" if r.meets_target else "MISSED")
        print(
            f"{r.benchmark:<22} {r.backend:<11} {r.name:<44} {r.value:>12.1f} {r.baseline:>12.1f} "
            f"{r.ratio:>7.1f}x  {'' if r.target is None else f'>={r.target}x '}{verdict}"
        )


if __name__ == "__main__":
    main()
