"""``guildkeep privacy …``: export or forget a user's data for a request that did not come through Discord."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

privacy_app = typer.Typer(help="A user's data: export it as JSON, or forget it.", no_args_is_help=True)

UserId = Annotated[int, typer.Argument(help="The user's Discord id.", min=1)]


@privacy_app.command("export")
def privacy_export(
    user_id: UserId,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Write the JSON here instead of to stdout.")] = None,
) -> None:
    """Everything stored about the user, in every server, as JSON (the file /privacy export sends)."""
    from guildkeep.clitools import console, with_db
    from guildkeep.privacy.service import PrivacyService

    info = with_db(lambda db, _s: PrivacyService(db).export_file(user_id))
    if out is None:
        typer.echo(info.data.decode())
        return
    out.write_bytes(info.data)
    console.print(f"wrote {len(info.data):,} bytes to {out}", markup=False, highlight=False)


@privacy_app.command("forget")
def privacy_forget(
    user_id: UserId,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> None:
    """Remove everything stored about the user in every server; ledgers keep their lines, anonymised."""
    from guildkeep.clitools import console, with_db
    from guildkeep.privacy.service import PrivacyService

    if not yes:
        typer.confirm(f"Remove everything stored about user {user_id}, in every server? This cannot be undone",
                      abort=True)
    result = with_db(lambda db, _s: PrivacyService(db).forget_user(user_id))
    lines = result.summary_lines()
    if not lines:
        console.print("nothing was stored about that user", markup=False, highlight=False)
        return
    console.print(f"removed {result.total_deleted} row(s), kept {result.total_anonymised} anonymised:",
                  markup=False, highlight=False)
    for line in lines:
        console.print(f"  {line}", markup=False, highlight=False)
