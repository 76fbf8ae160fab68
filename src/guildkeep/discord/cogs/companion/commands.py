"""The companion's slash commands. Every rule and write lives in `guildkeep.companion`."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from discord.ext import commands

import discord
from discord import app_commands
from guildkeep.companion import rules
from guildkeep.companion.errors import CompanionValidationError
from guildkeep.companion.service import EVENT_JOB, FACTS_PER_PAGE, CompanionService
from guildkeep.db import utcnow
from guildkeep.discord import checks
from guildkeep.discord.checks import guild_of
from guildkeep.discord.cogs.companion import render
from guildkeep.discord.cogs.companion.listeners import ChatListeners
from guildkeep.discord.cogs.privacy import ask_to_forget
from guildkeep.discord.limits import respond
from guildkeep.discord.views import Paginator
from guildkeep.llm import client_from_settings
from guildkeep.privacy import PrivacyService
from guildkeep.text import parse_id

if TYPE_CHECKING:
    from guildkeep.discord.bot import GuildkeepBot

log = logging.getLogger(__name__)

MAX_CHOICES = 25  # Discord's limit on autocomplete answers
MAX_MEMORY_PAGES = 25
FORGET_ALL = "all"
FORGET_ALL_LABEL = "Everything you know about me (forget all)"


class Companion(ChatListeners, commands.Cog):
    """An AI companion with long-term memory: chat, memory, reminders, birthdays."""

    companion = app_commands.Group(name="companion", description="The AI companion.", guild_only=True)
    birthday = app_commands.Group(name="birthday", description="Your birthday, for a greeting on the day.",
                                  guild_only=True)

    def __init__(self, bot: GuildkeepBot) -> None:
        self.bot = bot
        self.llm = client_from_settings(bot.settings)
        self.service = CompanionService(bot.db, llm=self.llm if self.llm.configured else None,
                                        flush_seconds=bot.settings.write_behind_flush_seconds)
        self.privacy = PrivacyService(bot.db)

    async def cog_load(self) -> None:
        self.service.start()  # the reply counter is written behind
        self.bot.scheduler.register(EVENT_JOB, self.post_event)
        await self.service.ensure_event_jobs(now=utcnow())

    async def cog_unload(self) -> None:
        self.bot.scheduler.unregister(EVENT_JOB)
        await self.service.stop()  # the reply counts not stored yet (the bot's close on SIGTERM unloads cogs)
        await self.llm.close()

    # --- memory ------------------------------------------------------------------------------------

    @app_commands.command(name="memory", description="What I remember about you.")
    @app_commands.describe(page="Page to open first")
    @app_commands.guild_only()
    async def memory(self, interaction: discord.Interaction,
                     page: app_commands.Range[int, 1, MAX_MEMORY_PAGES] = 1) -> None:
        user = interaction.user
        first = await self.service.list_facts(user.id, page=1, per_page=FACTS_PER_PAGE)
        pages = [first]
        for number in range(2, min(first.pages, MAX_MEMORY_PAGES) + 1):
            pages.append(await self.service.list_facts(user.id, page=number, per_page=FACTS_PER_PAGE))
        embeds = render.memory_pages(pages, user.display_name)
        await Paginator(embeds, owner_id=user.id, start=page - 1).send(interaction, ephemeral=True)

    @app_commands.command(name="forget", description="Make me forget one fact about you, or everything.")
    @app_commands.describe(fact="The fact to forget, or 'all' for everything I know about you")
    @app_commands.guild_only()
    async def forget(self, interaction: discord.Interaction, fact: str) -> None:
        user_id = interaction.user.id
        choice = fact.strip()
        if choice.lower() in {FORGET_ALL, FORGET_ALL_LABEL.lower()}:
            # Everything means everything: the platform's forget, for every module's tables, not the companion's alone.
            await ask_to_forget(self.bot, self.privacy, interaction)
            return
        fact_id = parse_id(choice.lstrip("#").split(" ", 1)[0])
        if fact_id is None:
            matches = await self.service.search_facts(user_id, choice, limit=2)
            if len(matches) != 1:
                raise CompanionValidationError("Pick a fact from the list (start typing to search), or `all`.")
            fact_id = matches[0].id
        forgotten = await self.service.forget_fact(user_id, fact_id)
        await respond(interaction, f"Forgotten: {render.clip(forgotten.content, 1800)}", ephemeral=True)

    @forget.autocomplete("fact")
    async def forget_autocomplete(self, interaction: discord.Interaction,
                                  current: str) -> list[app_commands.Choice[str]]:
        facts = await self.service.search_facts(interaction.user.id, current, limit=MAX_CHOICES - 1)
        choices = [app_commands.Choice(name=render.fact_choice_name(f), value=str(f.id)) for f in facts]
        if not current.strip() or FORGET_ALL.startswith(current.strip().lower()):
            choices.insert(0, app_commands.Choice(name=FORGET_ALL_LABEL, value=FORGET_ALL))
        return choices[:MAX_CHOICES]

    # --- reminders and birthdays ---------------------------------------------------------------------

    @app_commands.command(name="remind", description="I'll remind you of something later.")
    @app_commands.describe(when="in 10 minutes, tomorrow 9:00, 2027-03-14 18:30 (UTC)", what="What to remind you of")
    @app_commands.guild_only()
    async def remind(self, interaction: discord.Interaction, when: app_commands.Range[str, 1, 100],
                     what: app_commands.Range[str, 1, 255]) -> None:
        now = utcnow()
        at = rules.parse_when(when, now)
        if at is None:
            raise CompanionValidationError(f"I can't read `{render.clip(when, 100)}` as a future time. "
                                           f"{rules.WHEN_HELP}")
        event = await self.service.schedule_event(
            interaction.user.id, "reminder", what, at, guild_id=interaction.guild_id,
            channel_id=interaction.channel_id, now=now)
        await respond(interaction, render.reminder_text(event), ephemeral=True)

    @birthday.command(name="set", description="Tell me your birthday; I'll greet you on the day.")
    @app_commands.describe(month="Month (1-12)", day="Day of the month")
    async def birthday_set(self, interaction: discord.Interaction, month: app_commands.Range[int, 1, 12],
                           day: app_commands.Range[int, 1, 31]) -> None:
        event = await self.service.set_birthday(interaction.user.id, month, day, guild_id=interaction.guild_id,
                                                channel_id=interaction.channel_id, now=utcnow())
        await respond(
            interaction, f"🎂 Got it! I'll wish you a happy birthday {discord.utils.format_dt(event.trigger_at, 'D')}.",
            ephemeral=True)

    # --- status and config ---------------------------------------------------------------------------

    @companion.command(name="status", description="My mood and our relationship.")
    async def status(self, interaction: discord.Interaction) -> None:
        info = await self.service.status(interaction.user.id, interaction.guild_id, now=utcnow())
        await respond(interaction, embed=render.status_embed(info, interaction.user.display_name), ephemeral=True)

    @companion.command(name="config", description="(Admins) The companion's persona and where it talks.")
    @app_commands.describe(
        persona="Who the companion is (instructions for the model)",
        talk_in="Add a channel where it answers mentions",
        stop_talking_in="Remove a channel",
        every_channel="Answer mentions in every channel again",
        enabled="Turn the companion's chat on or off in this server",
        birthday_hour="Hour (UTC) of birthday greetings",
    )
    @checks.admin_check
    async def config(self, interaction: discord.Interaction, *,
                     persona: app_commands.Range[str, 1, 1500] | None = None,
                     talk_in: discord.TextChannel | None = None,
                     stop_talking_in: discord.TextChannel | None = None,
                     every_channel: bool | None = None,
                     enabled: bool | None = None,
                     birthday_hour: app_commands.Range[int, 0, 23] | None = None) -> None:
        config = await self.service.update_config(
            guild_of(interaction), persona=persona, add_channel=talk_in.id if talk_in else None,
            remove_channel=stop_talking_in.id if stop_talking_in else None, every_channel=bool(every_channel),
            enabled=enabled, birthday_hour_utc=birthday_hour)
        await respond(interaction, embed=render.config_embed(config), ephemeral=True)


async def setup_cog(bot: GuildkeepBot) -> None:
    await bot.add_cog(Companion(bot))
