"""Shared views: ``BaseView`` (central errors, optional owner-only clicks), ``Paginator`` and ``ConfirmView``."""

from __future__ import annotations

import contextlib
import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import discord
from guildkeep.discord.errors import handle_interaction_error
from guildkeep.discord.limits import fit_content, fit_embed


class BaseView(discord.ui.View):
    """A view whose errors go to the central handler; with ``owner_id`` only that user may click."""

    def __init__(self, *, owner_id: int | None = None, timeout: float | None = 180.0) -> None:
        super().__init__(timeout=timeout)
        self.owner_id = owner_id
        self.message: discord.Message | discord.InteractionMessage | None = None

    async def interaction_check(self, interaction: discord.Interaction) -> bool:
        if self.owner_id is None or interaction.user.id == self.owner_id:
            return True
        await interaction.response.send_message("These buttons belong to someone else's command.", ephemeral=True)
        return False

    async def on_error(self, interaction: discord.Interaction, error: Exception, item: discord.ui.Item[Any]) -> None:
        await handle_interaction_error(interaction, error)

    async def on_timeout(self) -> None:
        """Grey the buttons out so players can see the view stopped listening."""
        for item in self.children:
            if isinstance(item, discord.ui.Button | discord.ui.Select):
                item.disabled = True
        if self.message is not None:
            with contextlib.suppress(discord.HTTPException):
                await self.message.edit(view=self)


@dataclass
class Page:
    """One page: text and/or an embed, and files (e.g. a rendered card) rebuilt for each send."""

    content: str | None = None
    embed: discord.Embed | None = None
    files: Sequence[tuple[str, bytes]] = field(default_factory=tuple)

    def discord_files(self) -> list[discord.File]:
        return [discord.File(io.BytesIO(data), filename=name) for name, data in self.files]


class Paginator(BaseView):
    """Previous/Next through pages of embeds (or text, or files); the page counter is shown on the footer."""

    def __init__(self, pages: Sequence[Page | discord.Embed | str], *, owner_id: int | None = None,
                 timeout: float | None = 180.0, start: int = 0) -> None:
        super().__init__(owner_id=owner_id, timeout=timeout)
        if not pages:
            raise ValueError("a paginator needs at least one page")
        self.pages = [self._page(p) for p in pages]
        self.index = max(0, min(start, len(self.pages) - 1))  # ``start`` is 0-based and clamped to the pages
        self._sync_buttons()

    @staticmethod
    def _page(page: Page | discord.Embed | str) -> Page:
        """The page, with its text and embed fitted to Discord's limits."""
        if isinstance(page, discord.Embed):
            page = Page(embed=page)
        elif not isinstance(page, Page):
            page = Page(content=page)
        return Page(content=fit_content(page.content), embed=fit_embed(page.embed) if page.embed else None,
                    files=page.files)

    @property
    def current(self) -> Page:
        return self.pages[self.index]

    def _sync_buttons(self) -> None:
        self.previous_page.disabled = self.index == 0
        self.next_page.disabled = self.index >= len(self.pages) - 1
        self.counter.label = f"{self.index + 1}/{len(self.pages)}"

    def _kwargs(self) -> dict[str, Any]:
        page = self.current
        return {"content": page.content, "embed": page.embed, "view": self}

    async def send(self, interaction: discord.Interaction, *, ephemeral: bool = False) -> None:
        """Answer ``interaction`` with the first page (as a followup if it was already answered)."""
        kwargs = self._kwargs()
        files = self.current.discord_files()
        if interaction.response.is_done():
            self.message = await interaction.followup.send(
                **{k: v for k, v in kwargs.items() if v is not None}, files=files, ephemeral=ephemeral, wait=True)
        else:
            await interaction.response.send_message(**kwargs, files=files, ephemeral=ephemeral)
            self.message = await interaction.original_response()

    async def _show(self, interaction: discord.Interaction) -> None:
        self._sync_buttons()
        await interaction.response.edit_message(**self._kwargs(), attachments=self.current.discord_files())

    @discord.ui.button(label="Previous", style=discord.ButtonStyle.secondary)
    async def previous_page(self, interaction: discord.Interaction, _button: discord.ui.Button[Paginator]) -> None:
        self.index = max(0, self.index - 1)
        await self._show(interaction)

    @discord.ui.button(label="1/1", style=discord.ButtonStyle.secondary, disabled=True)
    async def counter(self, interaction: discord.Interaction, _button: discord.ui.Button[Paginator]) -> None:
        await interaction.response.defer()

    @discord.ui.button(label="Next", style=discord.ButtonStyle.primary)
    async def next_page(self, interaction: discord.Interaction, _button: discord.ui.Button[Paginator]) -> None:
        self.index = min(len(self.pages) - 1, self.index + 1)
        await self._show(interaction)


class ConfirmView(BaseView):
    """Confirm/Cancel. After ``await view.wait()``, ``view.value`` is True, False, or None (timed out)."""

    def __init__(self, *, owner_id: int | None = None, timeout: float | None = 60.0,
                 confirmed: str = "Confirmed.", cancelled: str = "Cancelled.") -> None:
        super().__init__(owner_id=owner_id, timeout=timeout)
        self.value: bool | None = None
        self.confirmed_text = confirmed
        self.cancelled_text = cancelled
        self.interaction: discord.Interaction | None = None

    async def _finish(self, interaction: discord.Interaction, value: bool) -> None:
        self.value = value
        self.interaction = interaction
        for item in self.children:
            if isinstance(item, discord.ui.Button):
                item.disabled = True
        await interaction.response.edit_message(
            content=fit_content(self.confirmed_text if value else self.cancelled_text), view=self)
        self.stop()

    @discord.ui.button(label="Confirm", style=discord.ButtonStyle.success)
    async def confirm(self, interaction: discord.Interaction, _button: discord.ui.Button[ConfirmView]) -> None:
        await self._finish(interaction, True)

    @discord.ui.button(label="Cancel", style=discord.ButtonStyle.secondary)
    async def cancel(self, interaction: discord.Interaction, _button: discord.ui.Button[ConfirmView]) -> None:
        await self._finish(interaction, False)
