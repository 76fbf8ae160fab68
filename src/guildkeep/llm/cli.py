"""``guildkeep llm …``: the local stand-in model server, and a check of the configured model."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer

llm_app = typer.Typer(help="The language model: a local stand-in server, and a check of the configured one.",
                      no_args_is_help=True)


@llm_app.command("standin")
def standin(
    port: Annotated[int, typer.Option(help="Port on the host (0 picks a free one).", min=0, max=65535)] = 8089,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    model: Annotated[str, typer.Option(help="Model name /v1/models reports.")] = "guildkeep-standin",
    latency: Annotated[float, typer.Option(help="Seconds to wait before each answer.", min=0)] = 0.0,
    api_key: Annotated[str | None, typer.Option(help="Demand this bearer key (default: none).")] = None,
) -> None:
    """Run the stand-in model: an OpenAI-compatible /v1/chat/completions with rule-based replies, until Ctrl-C."""
    from guildkeep.clitools import console
    from guildkeep.llm.standin import StandinModel

    async def serve() -> None:
        server = StandinModel(host=host, port=port, model=model, latency=latency, api_key=api_key)
        await server.start()
        console.print(
            f"stand-in model on {server.base_url} (model {model}); set GUILDKEEP_LLM_BASE_URL={server.base_url} "
            f"GUILDKEEP_LLM_MODEL={model}. Script it with POST {server.base_url[:-3]}/_standin/script; Ctrl-C stops.",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
        try:
            await asyncio.Event().wait()
        finally:
            await server.stop()

    try:
        asyncio.run(serve())
    except (OSError, UnicodeError) as exc:  # UnicodeError: a host name no resolver accepts ("a..b")
        from guildkeep.clitools import err

        err.print(f"guildkeep: cannot listen on {host}:{port}: {exc}", markup=False, highlight=False)
        raise typer.Exit(1) from exc


@llm_app.command("check")
def check() -> None:
    """Ask the configured model server for its models and one short reply; say what works."""
    from guildkeep.clitools import console, err, load_cli_settings
    from guildkeep.llm import ChatMessage, LLMError, client_from_settings

    settings = load_cli_settings()

    async def probe() -> tuple[list[str], str]:
        async with client_from_settings(settings) as client:
            models = await client.models()
            reply = await client.chat([ChatMessage.user("Say hello in five words.")], max_tokens=32)
            return models, reply.content

    try:
        models, content = asyncio.run(probe())
    except LLMError as exc:
        err.print(f"guildkeep: {exc}", markup=False, highlight=False)
        raise typer.Exit(1) from exc
    console.print(f"{settings.llm_base_url}: models {', '.join(models) or '(none listed)'}", markup=False)
    console.print(f"{settings.llm_model} says: {content}", markup=False, highlight=False)
