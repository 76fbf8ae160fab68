"""``guildkeep web``: serve the web pages in their own process, on the bot's database."""

from __future__ import annotations

import asyncio
import sys
from typing import Annotated

import typer

from guildkeep.config import SettingsError, configure_logging, load_settings
from guildkeep.db import Database, migrate

web_app = typer.Typer(help="Serve the public leaderboards and the admin dashboard (docs/web.md).")


@web_app.callback(invoke_without_command=True)
def web(
    host: Annotated[str | None, typer.Option(help="Address to listen on (default: GUILDKEEP_WEB_HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default: GUILDKEEP_WEB_PORT, else 8080).")] = None,
) -> None:
    """Serve the web pages until stopped (Ctrl-C)."""
    try:
        settings = load_settings()
    except SettingsError as exc:
        sys.stderr.write(f"guildkeep: {exc}\n")
        raise typer.Exit(2) from exc
    configure_logging(settings.log_level)
    overrides = {k: v for k, v in (("web_host", host), ("web_port", port)) if v is not None}
    if overrides:
        settings = settings.model_copy(update=overrides)

    async def main() -> None:
        from guildkeep.web.server import serve_standalone

        db = Database.from_settings(settings)
        try:
            if settings.auto_migrate:
                await migrate.upgrade(db)
            await serve_standalone(settings, db)
        finally:
            await db.dispose()

    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
    except (migrate.MigrationError, OSError) as exc:
        sys.stderr.write(f"guildkeep: {exc}\n")
        raise typer.Exit(1) from exc
