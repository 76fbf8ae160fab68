"""Core commands: /help (every command, grouped by module), /ping, /about; a reply when the bot is mentioned."""

from __future__ import annotations

import logging
import math
import time
from collections import defaultdict
from collections.abc import Iterable
from typing import TYPE_CHECKING

from discord.ext import commands

import discord
from discord import app_commands
from guildkeep import __version__
from guildkeep.discord.errors import MISSING_PERMISSIONS
from guildkeep.discord.limits import FIELD_VALUE, clip, respond, send
from guildkeep.discord.views import Paginator
from guildkeep.errors import NotFoundError
from guildkeep.identity.service import IdentityService
from guildkeep.text import echo

if TYPE_CHECKING:
    from guildkeep.discord.bot import GuildkeepBot

AppCommand = app_commands.Command | app_commands.Group
COLOR = discord.Color.blurple()
FIELDS_PER_PAGE = 20

log = logging.getLogger(__name__)


def module_name(command: AppCommand, cogs: Iterable[commands.Cog] = ()) -> str:
    """The cog a command belongs to ("Core", "Leveling", ...): its binding, a group's first bound child, or
    the cog defined in the same Python module as the command."""
    binding = getattr(command, "binding", None)
    if binding is None and isinstance(command, app_commands.Group):
        binding = next((b for c in command.walk_commands() if (b := getattr(c, "binding", None)) is not None), None)
    if isinstance(binding, commands.Cog):
        return binding.qualified_name
    module = getattr(command, "module", None)
    owner = next((cog for cog in cogs if type(cog).__module__ == module), None)
    return owner.qualified_name if owner is not None else "Other"


def leaf_commands(command: AppCommand) -> list[app_commands.Command]:
    if isinstance(command, app_commands.Group):
        return [c for c in command.walk_commands() if isinstance(c, app_commands.Command)]
    return [command]


def describe(command: app_commands.Command) -> str:
    params = " ".join(f"<{p.display_name}>" if p.required else f"[{p.display_name}]" for p in command.parameters)
    return f"/{command.qualified_name} {params}".rstrip()


class Core(commands.Cog):
    """Help, latency and information about the bot."""

    def __init__(self, bot: GuildkeepBot) -> None:
        self.bot = bot
        self.identity = IdentityService(bot.db)
        self._ready_once = False  # guilds announced before the first READY are recorded in one batch by on_ready

    def commands_by_module(self) -> dict[str, list[app_commands.Command]]:
        found: dict[str, list[app_commands.Command]] = defaultdict(list)
        for command in self.bot.tree.get_commands(type=discord.AppCommandType.chat_input):
            found[module_name(command, self.bot.cogs.values())].extend(leaf_commands(command))  # type: ignore[arg-type]
        ordered = sorted(found.items(), key=lambda item: (item[0] != "Core", item[0]))  # Core first, then A-Z
        return {name: sorted(cmds, key=lambda c: c.qualified_name) for name, cmds in ordered}

    def help_pages(self) -> list[discord.Embed]:
        modules = self.commands_by_module()
        overview = discord.Embed(
            title="guildkeep help",
            description="Slash commands by module. Use the buttons to page through them, "
            "or `/help command:<name>` for one command.",
            color=COLOR,
        )
        for name, cmds in modules.items():
            overview.add_field(name=name, value=clip(", ".join(f"`/{c.qualified_name}`" for c in cmds), FIELD_VALUE),
                               inline=False)
        pages = [overview]
        for name, cmds in modules.items():
            for start in range(0, len(cmds), FIELDS_PER_PAGE):
                page = discord.Embed(title=f"{name} commands", color=COLOR)
                for cmd in cmds[start:start + FIELDS_PER_PAGE]:
                    page.add_field(name=describe(cmd), value=cmd.description or "-", inline=False)
                pages.append(page)
        for number, page in enumerate(pages, 1):
            page.set_footer(text=f"Page {number}/{len(pages)}")
        return pages

    def find(self, name: str) -> app_commands.Command:
        wanted = name.strip().lstrip("/").lower()
        for cmds in self.commands_by_module().values():
            for cmd in cmds:
                if cmd.qualified_name == wanted:
                    return cmd
        raise NotFoundError(f"There is no command called /{echo(wanted)}. Try /help to see them all.")

    @app_commands.command(name="help", description="List the bot's commands, or explain one.")
    @app_commands.describe(command="A command to explain, e.g. ping")
    async def help_command(self, interaction: discord.Interaction, command: str | None = None) -> None:
        if command:
            await respond(interaction, embed=self.command_help(self.find(command)), ephemeral=True)
            return
        await Paginator(self.help_pages(), owner_id=interaction.user.id).send(interaction, ephemeral=True)

    def command_help(self, cmd: app_commands.Command) -> discord.Embed:
        """One command explained: its name as the title, the usage line under its description, one field per option."""
        embed = discord.Embed(title=f"/{cmd.qualified_name}",
                              description=f"{cmd.description}\n\nUsage: `{describe(cmd)}`", color=COLOR)
        for param in cmd.parameters:
            req = "required" if param.required else "optional"
            embed.add_field(name=param.display_name, value=f"{param.description or '-'} ({req})", inline=False)
        embed.set_footer(text=f"Module: {module_name(cmd, self.bot.cogs.values())}")
        return embed

    @help_command.autocomplete("command")
    async def help_autocomplete(
        self, _interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        typed = current.lower().lstrip("/")
        names = [c.qualified_name for cmds in self.commands_by_module().values() for c in cmds]
        return [app_commands.Choice(name=f"/{n}", value=n) for n in names if typed in n][:25]

    @app_commands.command(name="ping", description="Check that the bot is alive and how fast it answers.")
    async def ping(self, interaction: discord.Interaction) -> None:
        latency = self.bot.latency
        gateway = "unknown yet" if math.isnan(latency) or math.isinf(latency) else f"{latency * 1000:.0f} ms"
        await respond(interaction, f"Pong! Gateway latency: {gateway}.")

    @app_commands.command(name="about", description="What this bot is and how it is running.")
    async def about(self, interaction: discord.Interaction) -> None:
        uptime = int(time.monotonic() - self.bot.started_at)
        embed = discord.Embed(
            title="guildkeep",
            description="A self-hosted community bot whose modules share one durable, per-server data layer. "
            "Loaded modules are listed below; `/help` shows their commands.",
            color=COLOR,
        )
        embed.add_field(name="Version", value=__version__)
        embed.add_field(name="Database", value=self.bot.db.backend)
        embed.add_field(name="Servers", value=str(len(self.bot.guilds)))
        embed.add_field(name="Uptime", value=f"{uptime // 3600}h {uptime % 3600 // 60}m {uptime % 60}s")
        embed.add_field(name="Modules", value=", ".join(sorted(self.bot.cogs)) or "-", inline=False)
        await respond(interaction, embed=embed)

    # --- the servers the bot is in, recorded in the identity tables --------------------------------------

    @commands.Cog.listener()
    async def on_ready(self) -> None:
        """Record every server of this connection (new ones, renamed ones, ones joined while offline)."""
        self._ready_once = True
        try:
            count = await self.identity.sync_guilds((g.id, g.name) for g in self.bot.guilds)
        except Exception:
            log.exception("could not record the servers the bot is in")
            return
        log.info("recorded %d server(s)", count)

    @commands.Cog.listener()
    async def on_guild_join(self, guild: discord.Guild) -> None:
        """Record a server the bot was just added to."""
        await self.identity.sync_guilds([(guild.id, guild.name)])

    @commands.Cog.listener()
    async def on_guild_available(self, guild: discord.Guild) -> None:
        """Record a server that (re)appears after the start: the gateway announces a server the bot was added to
        this way too. Those announced while connecting are recorded together by `on_ready`."""
        if self._ready_once:
            await self.identity.sync_guilds([(guild.id, guild.name)])

    @commands.Cog.listener()
    async def on_guild_update(self, before: discord.Guild, after: discord.Guild) -> None:
        """Keep the recorded name current."""
        if before.name != after.name:
            await self.identity.sync_guilds([(after.id, after.name)])

    @commands.Cog.listener()
    async def on_guild_remove(self, guild: discord.Guild) -> None:
        """The bot left or was removed: the server's row stays, marked inactive (its data is kept)."""
        await self.identity.mark_guild_left(guild.id)

    @commands.Cog.listener()
    async def on_message(self, message: discord.Message) -> None:
        """Answer a mention with a pointer to /help."""
        me = self.bot.user
        if message.author.bot or me is None or message.guild is None or not me.mentioned_in(message):
            return
        if message.mention_everyone:
            return
        for cog in self.bot.cogs.values():  # a cog that answers mentions itself (the companion) takes precedence
            claims = getattr(cog, "claims_mention", None)
            if claims is not None and await claims(message):
                return
        text = f"Hi {message.author.display_name}! Type `/help` to see what I can do."
        me_here = message.guild.me
        if me_here is None or message.channel.permissions_for(me_here).read_message_history:
            try:
                await send(message.channel, text, reference=message, mention_author=False)
                return
            except discord.Forbidden as exc:
                if exc.code != MISSING_PERMISSIONS:
                    raise
        # Discord refuses a reply where the bot cannot read the message history: a plain message, mentioning
        # the member instead.
        await send(message.channel, f"{message.author.mention} {text}",
                   allowed_mentions=discord.AllowedMentions(everyone=False, roles=False, users=[message.author]))


async def setup(bot: GuildkeepBot) -> None:
    await bot.add_cog(Core(bot))
