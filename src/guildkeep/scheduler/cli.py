"""``guildkeep jobs …``: list, cancel and retry scheduled jobs."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import typer
from rich.table import Table

from guildkeep.scheduler import rules

jobs_app = typer.Typer(help="Scheduled jobs: list them, cancel one, retry a parked one.", no_args_is_help=True)

ERROR_COLUMN = 60
JOB_ID_MAX = 2**63 - 1  # ids are 64-bit integers on both databases


class Status(StrEnum):
    """The states ``--status`` accepts."""

    pending = rules.PENDING
    running = rules.RUNNING
    done = rules.DONE
    cancelled = rules.CANCELLED
    failed = rules.FAILED


@jobs_app.command("list")
def jobs_list(
    status: Annotated[Status | None, typer.Option("--status", help="Only jobs in this state.")] = None,
    kind: Annotated[str | None, typer.Option("--kind", help="Only jobs of this kind, e.g. core.backup.")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=500, help="At most this many.")] = 50,
) -> None:
    """List jobs in the order they are (or were) due."""
    from guildkeep.clitools import console, with_db
    from guildkeep.scheduler.service import SchedulerService

    jobs = with_db(lambda db, _s: SchedulerService(db).list_jobs(
        status=status.value if status else None, kind=kind, limit=limit))
    if not jobs:
        console.print("no jobs" + (f" with status {status.value}" if status else ""), markup=False)
        return
    table = Table("id", "kind", "guild", "status", "run at (UTC)", "repeats", "attempts", "last error")
    for job in jobs:
        repeats = f"every {job.interval_seconds}s" if job.recurrence == rules.INTERVAL else job.recurrence
        error = job.last_error or ""
        if len(error) > ERROR_COLUMN:
            error = error[: ERROR_COLUMN - 1] + "…"
        table.add_row(str(job.id), job.kind, str(job.guild_id or "-"), job.status,
                      f"{job.run_at:%Y-%m-%d %H:%M:%S}", repeats, f"{job.attempts}/{job.max_attempts}", error)
    console.print(table)


@jobs_app.command("cancel")
def jobs_cancel(job_id: Annotated[int, typer.Argument(help="The job's id (see `guildkeep jobs list`).", min=1,
                                                     max=JOB_ID_MAX)]) -> None:
    """Cancel a pending, running or parked job; a recurring job's series stops with it."""
    from guildkeep.clitools import console, with_db
    from guildkeep.db import utcnow
    from guildkeep.scheduler.service import SchedulerService

    job = with_db(lambda db, _s: SchedulerService(db).cancel(job_id, now=utcnow()))
    console.print(f"cancelled job {job.id} ({job.kind})", markup=False)


@jobs_app.command("retry")
def jobs_retry(job_id: Annotated[int, typer.Argument(help="The id of a failed (parked) job.", min=1,
                                                    max=JOB_ID_MAX)]) -> None:
    """Run a parked job again now, with fresh attempts."""
    from guildkeep.clitools import console, with_db
    from guildkeep.db import utcnow
    from guildkeep.scheduler.service import SchedulerService

    job = with_db(lambda db, _s: SchedulerService(db).retry(job_id, now=utcnow()))
    console.print(f"job {job.id} ({job.kind}) will run again at the next poll", markup=False)
