"""The gacha game's slash commands. Every decision and write is the service's; this only talks to Discord.

Idempotency keys come from the interaction id, so a re-delivered interaction changes nothing twice.
Cards are rendered off the event loop (``asyncio.to_thread``).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from discord.ext import commands

import discord
from discord import app_commands
from guildkeep.discord import checks
from guildkeep.discord.cogs.gacha import render
from guildkeep.discord.cogs.gacha.views import StartView
from guildkeep.discord.limits import CONTENT, clip, respond
from guildkeep.discord.views import ConfirmView, Page, Paginator
from guildkeep.errors import PermissionDeniedError, ValidationError
from guildkeep.gacha.config import GachaConfig, GachaConfigError
from guildkeep.gacha.errors import DailyNotReadyError
from guildkeep.gacha.service import LEADERBOARD_KINDS, GachaService
from guildkeep.results import Page as DataPage
from guildkeep.text import parse_id, plural

if TYPE_CHECKING:
    from guildkeep.discord.bot import GuildkeepBot

log = logging.getLogger(__name__)

MAX_PAGES = 25  # pages fetched for one paged reply
MAX_CHOICES = 25  # Discord's limit on autocomplete answers


def interaction_key(interaction: discord.Interaction) -> str:
    return f"interaction:{interaction.id}"


def guild_of(interaction: discord.Interaction) -> int:
    return checks.guild_of(interaction, "The game is played inside a server, not in direct messages.")


def parse_copy_id(value: str) -> int:
    """An Esprit's number as a player typed it (``12`` or ``#12``): ASCII digits only, within a 64-bit id."""
    number = parse_id(value.strip().removeprefix("#"))
    if number is None:
        raise ValidationError("Pick an Esprit from the list, or give its number (for example 12).")
    return number


class Gacha(commands.Cog):
    """Collect Esprits: daily rewards, summons, your inventory, the auction house."""

    esprit = app_commands.Group(name="esprit", description="Look at your Esprits and choose the active one",
                                guild_only=True)
    auction = app_commands.Group(name="auction", description="The auction house: buy and sell Esprits",
                                 guild_only=True)
    admin = app_commands.Group(name="gacha", description="Administer the gacha game",
                               default_permissions=checks.ADMIN, guild_only=True)

    def __init__(self, bot: GuildkeepBot) -> None:
        self.bot = bot
        # The bus tells the other processes (shards) when an operator reseeds the shared catalogue.
        self.service = GachaService(bot.db, config_dir=bot.settings.gacha_config_dir, bus=bot.cache_bus)

    @property
    def config(self) -> GachaConfig:
        return self.service.config

    async def cog_unload(self) -> None:
        self.service.detach()

    def money(self, amount: int, currency: str) -> str:
        """An amount as players read it, under the loaded config."""
        return render.money(self.config, amount, currency)

    async def cog_load(self) -> None:
        report = await self.service.seed_catalogue()
        log.info("gacha catalogue: %d new, %d updated, %d unchanged, %d retired",
                 report.inserted, report.updated, report.unchanged, report.retired)

    @staticmethod
    async def send_pages(interaction: discord.Interaction, pages: list[Page], *, start: int = 0,
                         ephemeral: bool = False) -> None:
        view = Paginator(pages, owner_id=interaction.user.id, start=start)
        await view.send(interaction, ephemeral=ephemeral)

    async def send_listing_pages(self, interaction: discord.Interaction,
                                 fetch: Callable[[int], Awaitable[DataPage[Any]]],
                                 render: Callable[[DataPage[Any]], discord.Embed], *, start: int = 0) -> None:
        """Fetch page 1, then the rest (at most MAX_PAGES), render each as an embed and send them paged."""
        first = await fetch(1)
        data = [first] + [await fetch(number) for number in range(2, min(first.pages, MAX_PAGES) + 1)]
        await self.send_pages(interaction, [Page(embed=render(d)) for d in data], start=start)

    # --- autocomplete --------------------------------------------------------------------------------

    async def _owned_choices(self, interaction: discord.Interaction, current: str,
                             *, tradable_only: bool = False) -> list[app_commands.Choice[str]]:
        if interaction.guild_id is None:
            return []
        owned = await self.service.owned_choices(interaction.guild_id, interaction.user.id, current,
                                                 tradable_only=tradable_only)
        return [
            app_commands.Choice(
                name=render.choice_name(f"#{e.copy_id} {e.name} · {self.config.tier_label(e.rarity)[0]} · "
                                        f"Lv {e.level}"),
                value=str(e.copy_id))
            for e in owned
        ][:MAX_CHOICES]

    async def owned_autocomplete(self, interaction: discord.Interaction, current: str
                                 ) -> list[app_commands.Choice[str]]:
        return await self._owned_choices(interaction, current)

    async def tradable_autocomplete(self, interaction: discord.Interaction, current: str
                                    ) -> list[app_commands.Choice[str]]:
        return await self._owned_choices(interaction, current, tradable_only=True)

    async def _listing_choices(self, interaction: discord.Interaction, current: str, *, mine: bool
                               ) -> list[app_commands.Choice[int]]:
        """Open listings whose number or Esprit name matches what was typed: the player's own (to cancel) or
        everyone else's (to buy)."""
        if interaction.guild_id is None:
            return []
        me = interaction.user.id
        found = await self.service.browse(interaction.guild_id, seller_id=me if mine else None, page_size=100)
        typed = current.strip().lstrip("#").lower()
        return [
            app_commands.Choice(name=render.choice_name(f"#{item.listing_id} {item.esprit.name} · {item.price:,} "
                                                        f"{self.config.currency(item.currency).name}"),
                                value=item.listing_id)
            for item in found.items
            if (mine or item.seller_id != me)
            and (not typed or typed in str(item.listing_id) or typed in item.esprit.name.lower())
        ][:MAX_CHOICES]

    async def buyable_autocomplete(self, interaction: discord.Interaction, current: str
                                   ) -> list[app_commands.Choice[int]]:
        return await self._listing_choices(interaction, current, mine=False)

    async def own_listing_autocomplete(self, interaction: discord.Interaction, current: str
                                       ) -> list[app_commands.Choice[int]]:
        return await self._listing_choices(interaction, current, mine=True)

    async def rarity_autocomplete(self, _interaction: discord.Interaction, current: str
                                  ) -> list[app_commands.Choice[str]]:
        typed = current.strip().casefold()
        return [app_commands.Choice(name=render.choice_name(t.name), value=t.id) for t in self.config.tiers
                if typed in t.name.casefold() or typed in t.id][:MAX_CHOICES]

    async def currency_autocomplete(self, _interaction: discord.Interaction, current: str
                                    ) -> list[app_commands.Choice[str]]:
        typed = current.strip().casefold()
        return [app_commands.Choice(name=render.choice_name(c.name), value=c.id)
                for c in self.config.settings.currencies if typed in c.name.casefold() or typed in c.id][:MAX_CHOICES]

    # --- onboarding and wallet ------------------------------------------------------------------------

    @app_commands.command(name="start", description="Join the Esprit game: accept the rules, get a starter")
    @app_commands.guild_only()
    async def start(self, interaction: discord.Interaction) -> None:
        guild_id = guild_of(interaction)
        if await self.service.has_started(guild_id, interaction.user.id):
            await respond(
                interaction, "You have already started playing. Try /balance, /daily or /summon.", ephemeral=True)
            return
        embed = discord.Embed(title="Before you start", description=self.config.settings.policy,
                              colour=discord.Colour.blurple())
        embed.set_footer(text="Press Accept to create your wallet and receive a starter Esprit.")
        view = StartView(self, interaction.user.id)
        await respond(interaction, embed=embed, view=view, ephemeral=True)
        view.message = await interaction.original_response()

    @app_commands.command(name="balance", description="Your currencies, level and daily streak")
    @app_commands.guild_only()
    async def balance(self, interaction: discord.Interaction) -> None:
        p = await self.service.balance(guild_of(interaction), interaction.user.id)
        embed = render.balance_embed(self.config, interaction.user.display_name, p)
        await respond(interaction, embed=embed)

    @app_commands.command(name="daily", description="Claim your daily reward (every 24 hours)")
    @app_commands.guild_only()
    async def daily(self, interaction: discord.Interaction) -> None:
        try:
            result = await self.service.daily(guild_of(interaction), interaction.user.id,
                                              key=interaction_key(interaction))
        except DailyNotReadyError as exc:
            await respond(
                interaction,
                f"You have already claimed your daily reward. The next one is ready {render.timestamp(exc.next_at)}.",
                ephemeral=True)
            return
        paid = "\n".join(self.money(amount, currency) for currency, amount in result.paid.items())
        embed = discord.Embed(title="Daily reward", description=paid or "Your wallet is full.",
                              colour=discord.Colour.green())
        embed.add_field(name="Streak", value=plural(result.streak, "day"))
        embed.add_field(name="Next claim", value=render.timestamp(result.next_daily_at))
        embed.add_field(name="Wallet", value=render.wallet_line(self.config, result.balances), inline=False)
        await respond(interaction, embed=embed)

    # --- summons -----------------------------------------------------------------------------------------

    async def count_autocomplete(self, _interaction: discord.Interaction, _current: str
                                 ) -> list[app_commands.Choice[int]]:
        """1 or the configured multi-summon: read from the loaded catalogue, so a reseed changes it at once."""
        counts = (1, self.config.settings.summon.multi_count)
        return [app_commands.Choice(name=str(n), value=n) for n in counts]

    @app_commands.command(name="summon", description="Summon Esprits: one, or a multi-summon with a guaranteed rare")
    @app_commands.describe(count="How many to summon: 1, or the multi-summon's count")
    @app_commands.autocomplete(count=count_autocomplete)
    @app_commands.guild_only()
    async def summon(self, interaction: discord.Interaction, count: int = 1) -> None:
        guild_id = guild_of(interaction)
        # A refusal (wrong count, not started, cannot afford) is answered privately before the public "thinking...".
        await self.service.check_summon(guild_id, interaction.user.id, count)
        await interaction.response.defer(thinking=True)
        try:
            result = await self.service.summon(guild_id, interaction.user.id, count, key=interaction_key(interaction))
        except Exception:
            # Refused after all (a concurrent request spent the funds in between): the public "thinking..." goes,
            # so that the error handler's answer is a new, private message rather than an edit of the public one.
            with contextlib.suppress(discord.HTTPException):
                await interaction.delete_original_response()
            raise
        pages = []
        for number, pull in enumerate(result.pulls, start=1):
            title = f"Summon {number}/{len(result.pulls)}: {clip(pull.esprit.name, 200)}"
            page = await render.esprit_page(self.config, pull.esprit, title=title)
            if pull.forced and page.embed is not None:
                page.embed.add_field(name="Pity", value="Guaranteed by pity" if pull.forced == "guaranteed"
                                     else "Hard pity reached", inline=False)
            if page.embed is not None:
                page.embed.set_footer(text=f"Esprit #{pull.esprit.copy_id} · spent "
                                      f"{result.cost:,} {self.config.currency(result.currency).name} · "
                                      f"{result.balance_after:,} left")
            pages.append(page)
        if result.active and result.active[2] > result.active[1] and pages[0].embed is not None:
            pages[0].embed.add_field(name="Your active Esprit grew",
                                     value=f"Esprit #{result.active[0]} is now level {result.active[2]}!", inline=False)
        await self.send_pages(interaction, pages)

    # --- collection -----------------------------------------------------------------------------------------

    @app_commands.command(name="inventory", description="Your Esprits, strongest first")
    @app_commands.describe(rarity="Only this rarity", page="Page to open")
    @app_commands.autocomplete(rarity=rarity_autocomplete)
    @app_commands.guild_only()
    async def inventory(self, interaction: discord.Interaction, rarity: str | None = None,
                        page: app_commands.Range[int, 1, 1000] = 1) -> None:
        guild_id = guild_of(interaction)
        tier = self.service.resolve_rarity(rarity) if rarity is not None else None
        title = f"{interaction.user.display_name}'s Esprits" + (f" ({self.config.tier_label(tier)[0]})" if tier else "")
        await self.send_listing_pages(
            interaction, lambda n: self.service.inventory(guild_id, interaction.user.id, rarity=tier, page=n),
            lambda data: render.inventory_embed(self.config, title, data), start=page - 1)

    @esprit.command(name="show", description="One of your Esprits with its card (your active one by default)")
    @app_commands.describe(esprit="Which Esprit")
    @app_commands.autocomplete(esprit=owned_autocomplete)
    async def esprit_show(self, interaction: discord.Interaction, esprit: str | None = None) -> None:
        copy_id = parse_copy_id(esprit) if esprit else None
        view = await self.service.show(guild_of(interaction), interaction.user.id, copy_id)
        await respond(interaction, embed=render.esprit_embed(self.config, view),
                      file=await render.card_file(self.config, view))

    @esprit.command(name="set-active", description="Choose your active Esprit")
    @app_commands.describe(esprit="Which Esprit")
    @app_commands.autocomplete(esprit=owned_autocomplete)
    async def esprit_set_active(self, interaction: discord.Interaction, esprit: str) -> None:
        view = await self.service.set_active(guild_of(interaction), interaction.user.id, parse_copy_id(esprit))
        await respond(interaction, f"**{view.name}** (#{view.copy_id}) is now your active Esprit.")

    @app_commands.command(name="gacha-leaderboard", description="The server's top players")
    @app_commands.describe(by="What to rank by", currency="For by:currency, which currency")
    @app_commands.choices(by=[app_commands.Choice(name=kind, value=kind) for kind in LEADERBOARD_KINDS])
    @app_commands.autocomplete(currency=currency_autocomplete)
    @app_commands.guild_only()
    async def leaderboard(self, interaction: discord.Interaction, by: str = "level",
                          currency: str | None = None) -> None:
        guild_id = guild_of(interaction)
        money = self.service.resolve_currency(currency)  # refuses an unknown currency even for by:level
        shown = {"level": "Level", "xp": "XP"}.get(by) or self.config.currency(money).name
        await self.send_listing_pages(
            interaction, lambda n: self.service.leaderboard(guild_id, by, currency=money, page=n),
            lambda data: render.leaderboard_embed(shown, data))

    # --- auction house -------------------------------------------------------------------------------------

    @auction.command(name="list", description="Put one of your Esprits up for sale")
    @app_commands.describe(esprit="Which Esprit", price="Asking price", currency="Currency of the price")
    @app_commands.autocomplete(esprit=tradable_autocomplete, currency=currency_autocomplete)
    async def auction_list(self, interaction: discord.Interaction, esprit: str,
                           price: app_commands.Range[int, 1], currency: str | None = None) -> None:
        listing = await self.service.list_for_sale(guild_of(interaction), interaction.user.id, parse_copy_id(esprit),
                                                   price, currency, key=interaction_key(interaction))
        await respond(
            interaction, f"Listed as **#{listing.listing_id}**: {clip(listing.esprit.name, 100)} for "
            f"{self.money(listing.price, listing.currency)}. It is held in escrow until it sells or you "
            f"`/auction cancel listing:{listing.listing_id}`."
        )

    @auction.command(name="browse", description="Esprits for sale in this server")
    @app_commands.describe(rarity="Only this rarity", page="Page to open")
    @app_commands.autocomplete(rarity=rarity_autocomplete)
    async def auction_browse(self, interaction: discord.Interaction, rarity: str | None = None,
                             page: app_commands.Range[int, 1, 1000] = 1) -> None:
        guild_id = guild_of(interaction)
        tier = self.service.resolve_rarity(rarity) if rarity is not None else None
        await self.send_listing_pages(interaction, lambda n: self.service.browse(guild_id, rarity=tier, page=n),
                                      lambda data: render.auction_embed(self.config, data), start=page - 1)

    @auction.command(name="buy", description="Buy a listed Esprit")
    @app_commands.describe(listing="The listing number (from /auction browse)")
    @app_commands.autocomplete(listing=buyable_autocomplete)
    async def auction_buy(self, interaction: discord.Interaction, listing: app_commands.Range[int, 1]) -> None:
        result = await self.service.buy(guild_of(interaction), interaction.user.id, listing,
                                        key=interaction_key(interaction))
        bought = result.listing
        await respond(
            interaction,
            f"You bought **{bought.esprit.name}** (#{bought.esprit.copy_id}) from <@{bought.seller_id}> for "
            f"{self.money(bought.price, bought.currency)}. "
            f"You have {self.money(result.buyer_balance, bought.currency)} left."
        )

    @auction.command(name="cancel", description="Withdraw your listing and get the Esprit back")
    @app_commands.describe(listing="The listing number")
    @app_commands.autocomplete(listing=own_listing_autocomplete)
    async def auction_cancel(self, interaction: discord.Interaction, listing: app_commands.Range[int, 1]) -> None:
        cancelled = await self.service.cancel_listing(guild_of(interaction), interaction.user.id, listing,
                                                      key=interaction_key(interaction))
        await respond(
            interaction,
            f"Listing #{cancelled.listing_id} withdrawn: **{cancelled.esprit.name}** is back in your inventory.",
            ephemeral=True,
        )

    # --- administration ------------------------------------------------------------------------------------

    @admin.command(name="grant", description="Give (or, with a negative amount, take) currency, with a reason")
    @app_commands.describe(member="Who", amount="How much (negative takes)", currency="Which currency",
                           reason="Why: written to the ledger")
    @app_commands.autocomplete(currency=currency_autocomplete)
    @checks.admin_check
    async def admin_grant(self, interaction: discord.Interaction, member: discord.Member, amount: int,
                          currency: str, reason: app_commands.Range[str, 1, 200]) -> None:
        result = await self.service.grant(guild_of(interaction), interaction.user.id, member.id, amount=amount,
                                          currency=currency, reason=reason, key=interaction_key(interaction))
        verb = "Gave" if amount > 0 else "Took"
        await respond(
            interaction,
            f"{verb} {self.money(abs(amount), result.currency)} {'to' if amount > 0 else 'from'} {member.mention} "
            f"({reason}). Their balance: {self.money(result.balance_after, result.currency)}.",
            allowed_mentions=discord.AllowedMentions.none(),
        )

    @admin.command(name="reset", description="Delete this server's game data (after a backup)")
    @checks.admin_check
    async def admin_reset(self, interaction: discord.Interaction) -> None:
        guild_id = guild_of(interaction)
        view = ConfirmView(owner_id=interaction.user.id, confirmed="Resetting: taking a backup first...",
                           cancelled="Reset cancelled; nothing was changed.")
        await respond(
            interaction,
            "This deletes every player, Esprit and listing of the game in this server. A backup is taken first. "
            "Are you sure?", view=view, ephemeral=True)
        view.message = await interaction.original_response()
        if not await view.wait() and view.value and view.interaction is not None:
            report = await self.service.reset(guild_id, interaction.user.id, self.bot.settings.backup_dir,
                                              key=interaction_key(view.interaction))
            done = "This reset was already done" if report.replayed else "The game was reset"
            await respond(
                interaction, f"{done}: {plural(report.players, 'player')}, {plural(report.esprits, 'Esprit')} and "
                f"{plural(report.listings, 'listing')} removed. Backup: `{report.backup.name}`.", ephemeral=True)

    async def is_operator(self, user: discord.abc.User) -> bool:
        """The bot application's owner (or a member of its team), or a user listed in GUILDKEEP_OPERATOR_IDS."""
        return user.id in self.bot.settings.operator_ids or await self.bot.is_owner(user)

    @admin.command(name="reseed", description="(Bot operator) Reload the game's JSON files on every shard")
    async def admin_reseed(self, interaction: discord.Interaction) -> None:
        if not await self.is_operator(interaction.user):
            raise PermissionDeniedError(
                "Only the bot's operator can reseed: the catalogue is shared by every server this bot is in.")
        await interaction.response.defer(ephemeral=True, thinking=True)
        try:
            report = await self.service.reseed()
        except GachaConfigError as exc:
            raise ValidationError(clip(f"The catalogue was not changed: {exc}", CONTENT)) from exc
        await respond(
            interaction, f"Catalogue updated on every shard: {report.inserted} new, {report.updated} changed, "
            f"{report.unchanged} unchanged, {report.retired} retired.", ephemeral=True)


async def setup_cog(bot: GuildkeepBot) -> None:
    """Add the gacha cog to ``bot``."""
    await bot.add_cog(Gacha(bot))

