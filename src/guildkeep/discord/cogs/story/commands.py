"""``/world``, ``/story`` and ``/relationship``: every decision is the story service's.

The story of "this channel" is found with ``checks.channels_of``: in a thread (or forum post) of a story's
channel, it is that story.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from discord.ext import commands

import discord
from discord import app_commands
from guildkeep.characters.errors import CharacterNotFoundError
from guildkeep.characters.results import CharacterInfo
from guildkeep.discord import checks
from guildkeep.discord.cogs.story import render
from guildkeep.discord.limits import clip, respond
from guildkeep.discord.views import Paginator
from guildkeep.errors import DomainError
from guildkeep.story import rules
from guildkeep.story.errors import StoryInputError
from guildkeep.story.results import WorldInfo
from guildkeep.story.service import StoryService

if TYPE_CHECKING:
    from guildkeep.discord.bot import GuildkeepBot

Choices = list[app_commands.Choice[str]]
CHOICES_MAX = 25
LIST_PAGES_MAX = 10


def guild_of(interaction: discord.Interaction) -> int:
    return checks.guild_of(interaction, "Stories are played inside a server, not in direct messages.")


def can_manage(interaction: discord.Interaction) -> bool:
    return bool(interaction.permissions.manage_guild)


def split_refs(raw: str | None) -> list[str]:
    return [part.strip() for part in (raw or "").split(",") if part.strip()]


class StoryCommands(commands.Cog):
    """Worlds, stories, story characters and relationships."""

    world = app_commands.Group(name="world", description="This server's story worlds", guild_only=True)
    location = app_commands.Group(name="location", description="A world's locations", parent=world)
    event = app_commands.Group(name="event", description="Events at a world's locations", parent=world)
    story = app_commands.Group(name="story", description="The story played in this channel", guild_only=True)
    character = app_commands.Group(name="character", description="Characters for stories", parent=story)
    relationship = app_commands.Group(name="relationship", description="How the story's characters see players",
                                      guild_only=True)

    def __init__(self, bot: GuildkeepBot) -> None:
        self.bot = bot
        self.service = StoryService(bot.db)

    # --- helpers -------------------------------------------------------------------------------------

    async def _world(self, interaction: discord.Interaction, ref: str) -> WorldInfo:
        return await self.service.find_world(guild_of(interaction), ref)

    async def _character(self, interaction: discord.Interaction, ref: str, *, owned_only: bool = False
                         ) -> CharacterInfo:
        return await self.service.characters.resolve(interaction.user.id, ref, guild_id=guild_of(interaction),
                                                     owned_only=owned_only)

    async def world_autocomplete(self, interaction: discord.Interaction, current: str) -> Choices:
        if interaction.guild_id is None:
            return []
        worlds = await self.service.suggest_worlds(interaction.guild_id, current)
        return [app_commands.Choice(name=clip(w.name, 100), value=str(w.id)) for w in worlds[:CHOICES_MAX]]

    async def _world_for_choices(self, interaction: discord.Interaction) -> WorldInfo | None:
        ref = getattr(interaction.namespace, "world", None)
        if interaction.guild_id is None or not ref:
            return None
        try:
            return await self.service.find_world(interaction.guild_id, str(ref))
        except DomainError:  # an unknown world: nothing to offer
            return None

    async def location_autocomplete(self, interaction: discord.Interaction, current: str) -> Choices:
        world = await self._world_for_choices(interaction)
        if world is None:
            return []
        wanted = rules.key(current)
        return [app_commands.Choice(name=clip(loc.name, 100), value=clip(loc.name, 100))
                for loc in world.locations if wanted in rules.key(loc.name)][:CHOICES_MAX]

    async def event_autocomplete(self, interaction: discord.Interaction, current: str) -> Choices:
        world = await self._world_for_choices(interaction)
        location = getattr(interaction.namespace, "location", None)
        if world is None or not location:
            return []
        index = rules.find_location(world.locations, str(location))
        if index is None:
            return []
        wanted = rules.key(current)
        return [app_commands.Choice(name=clip(e.name, 100), value=clip(e.name, 100))
                for e in world.locations[index].events if wanted in rules.key(e.name)][:CHOICES_MAX]

    @staticmethod
    def _choice(info: CharacterInfo, viewer_id: int) -> app_commands.Choice[str]:
        label = info.display_name + ("" if info.owner_id == viewer_id else " (public)")
        return app_commands.Choice(name=clip(label, 100), value=str(info.id))

    async def character_autocomplete(self, interaction: discord.Interaction, current: str) -> Choices:
        if interaction.guild_id is None:
            return []
        found = await self.service.suggest_characters(interaction.guild_id, interaction.user.id, current)
        return [self._choice(c, interaction.user.id) for c in found[:CHOICES_MAX]]

    async def own_character_autocomplete(self, interaction: discord.Interaction, current: str) -> Choices:
        found = await self.service.characters.suggest(interaction.user.id, current, guild_id=interaction.guild_id)
        return [self._choice(c, interaction.user.id) for c in found[:CHOICES_MAX]]

    async def cast_autocomplete(self, interaction: discord.Interaction, current: str) -> Choices:
        """The characters of this channel's story."""
        if interaction.guild_id is None or interaction.channel_id is None:
            return []
        story = await self.service.current_story(interaction.guild_id, checks.channels_of(interaction))
        if story is None:
            return []
        wanted = rules.key(current)
        return [app_commands.Choice(name=clip(c.name, 100), value=str(c.character_id))
                for c in story.cast if wanted in rules.key(c.name)][:CHOICES_MAX]

    async def characters_autocomplete(self, interaction: discord.Interaction, current: str) -> Choices:
        """A comma-separated list: completes the last name, keeping those already chosen."""
        if interaction.guild_id is None:
            return []
        done, _, last = current.rpartition(",")
        prefix = ", ".join(split_refs(done))
        found = await self.service.suggest_characters(interaction.guild_id, interaction.user.id, last.strip())
        choices = []
        for c in found:
            value = f"{prefix}, {c.display_name}" if prefix else c.display_name
            if len(value) <= 100:
                choices.append(app_commands.Choice(name=clip(value, 100), value=value))
        return choices[:CHOICES_MAX]

    # --- /world ----------------------------------------------------------------------------------

    @world.command(name="create", description="Create a world for stories on this server.")
    @app_commands.describe(name="Its name", description="What it is like")
    async def world_create(self, interaction: discord.Interaction, name: app_commands.Range[str, 1, 100],
                           description: app_commands.Range[str, 1, 2000] | None = None) -> None:
        world = await self.service.create_world(guild_of(interaction), interaction.user.id, name, description)
        await respond(
            interaction, f"Created the world **{render.md(world.name)}**. Add places with `/world location add`.",
            embed=render.world_embed(world), ephemeral=True)

    @world.command(name="edit", description="Rename a world or change its description.")
    @app_commands.describe(world="The world", name="A new name", description="A new description")
    @app_commands.autocomplete(world=world_autocomplete)
    async def world_edit(self, interaction: discord.Interaction, world: str,
                         name: app_commands.Range[str, 1, 100] | None = None,
                         description: app_commands.Range[str, 1, 2000] | None = None) -> None:
        target = await self._world(interaction, world)
        if name is None and description is None:
            raise StoryInputError("Give a new name or a new description.")
        info = await self.service.edit_world(guild_of(interaction), target.id, interaction.user.id,
                                             can_manage=can_manage(interaction), name=name, description=description)
        await respond(interaction, f"Saved **{render.md(info.name)}**.",
                      embed=render.world_embed(info), ephemeral=True)

    @world.command(name="show", description="Show a world with its locations and events.")
    @app_commands.describe(world="The world")
    @app_commands.autocomplete(world=world_autocomplete)
    async def world_show(self, interaction: discord.Interaction, world: str) -> None:
        info = await self._world(interaction, world)
        await respond(interaction, embed=render.world_embed(info), ephemeral=True)

    @world.command(name="list", description="List this server's worlds.")
    async def world_list(self, interaction: discord.Interaction) -> None:
        worlds = await self.service.get_all_worlds(guild_of(interaction))
        if not worlds:
            await respond(interaction, "No worlds yet. Create one with `/world create`.",
                          ephemeral=True)
            return
        pages = [render.worlds_embed(worlds[i:i + 20]) for i in range(0, len(worlds), 20)][:LIST_PAGES_MAX]
        await Paginator(pages, owner_id=interaction.user.id).send(interaction, ephemeral=True)

    @world.command(name="delete", description="Delete a world (not while a story in it runs).")
    @app_commands.describe(world="The world")
    @app_commands.autocomplete(world=world_autocomplete)
    async def world_delete(self, interaction: discord.Interaction, world: str) -> None:
        target = await self._world(interaction, world)
        gone = await self.service.delete_world(guild_of(interaction), target.id, interaction.user.id,
                                               can_manage=can_manage(interaction))
        await respond(interaction, f"Deleted the world **{render.md(gone.name)}**.", ephemeral=True)

    @location.command(name="add", description="Add a location to a world.")
    @app_commands.describe(world="The world", name="The location's name", description="What is there")
    @app_commands.autocomplete(world=world_autocomplete)
    async def location_add(self, interaction: discord.Interaction, world: str, name: app_commands.Range[str, 1, 100],
                           description: app_commands.Range[str, 1, 1000] | None = None) -> None:
        target = await self._world(interaction, world)
        info = await self.service.add_location(guild_of(interaction), target.id, interaction.user.id, name,
                                               description, can_manage=can_manage(interaction))
        await respond(interaction, f"Added a location to **{render.md(info.name)}**.",
                      embed=render.world_embed(info), ephemeral=True)

    @location.command(name="remove", description="Remove a location (and its events) from a world.")
    @app_commands.describe(world="The world", location="The location")
    @app_commands.autocomplete(world=world_autocomplete, location=location_autocomplete)
    async def location_remove(self, interaction: discord.Interaction, world: str, location: str) -> None:
        target = await self._world(interaction, world)
        info = await self.service.remove_location(guild_of(interaction), target.id, interaction.user.id, location,
                                                  can_manage=can_manage(interaction))
        await respond(interaction, f"Removed a location from **{render.md(info.name)}**.",
                      embed=render.world_embed(info), ephemeral=True)

    @event.command(name="add", description="Add an event at one of a world's locations.")
    @app_commands.describe(world="The world", location="Where it happens", name="The event's name",
                           description="What happens")
    @app_commands.autocomplete(world=world_autocomplete, location=location_autocomplete)
    async def event_add(self, interaction: discord.Interaction, world: str, location: str,
                        name: app_commands.Range[str, 1, 100],
                        description: app_commands.Range[str, 1, 1000] | None = None) -> None:
        target = await self._world(interaction, world)
        info = await self.service.add_event(guild_of(interaction), target.id, interaction.user.id, location, name,
                                            description=description, can_manage=can_manage(interaction))
        await respond(interaction, f"Added an event to **{render.md(info.name)}**.",
                      embed=render.world_embed(info), ephemeral=True)

    @event.command(name="remove", description="Remove an event from a location.")
    @app_commands.describe(world="The world", location="The location", event="The event")
    @app_commands.autocomplete(world=world_autocomplete, location=location_autocomplete, event=event_autocomplete)
    async def event_remove(self, interaction: discord.Interaction, world: str, location: str, event: str) -> None:
        target = await self._world(interaction, world)
        info = await self.service.remove_event(guild_of(interaction), target.id, interaction.user.id, location,
                                               event, can_manage=can_manage(interaction))
        await respond(interaction, f"Removed an event from **{render.md(info.name)}**.",
                      embed=render.world_embed(info), ephemeral=True)

    # --- /story ----------------------------------------------------------------------------------

    @story.command(name="start", description="Start a story in this channel.")
    @app_commands.describe(world="The world it is set in",
                           characters="Characters the narrator plays, separated by commas",
                           outline="Where the story should go", summary_every="Write a summary every N messages")
    @app_commands.autocomplete(world=world_autocomplete, characters=characters_autocomplete)
    async def story_start(self, interaction: discord.Interaction, world: str,
                          characters: app_commands.Range[str, 1, 1000] | None = None,
                          outline: app_commands.Range[str, 1, 1000] | None = None,
                          summary_every: app_commands.Range[int, 2, 200] = rules.SUMMARY_EVERY_DEFAULT) -> None:
        guild_id = guild_of(interaction)
        target = await self._world(interaction, world)
        refs = split_refs(characters)
        if len(refs) > rules.CAST_MAX:
            raise StoryInputError(f"A story can have at most {rules.CAST_MAX} characters.")
        ids = []
        for ref in refs:
            try:
                ids.append((await self._character(interaction, ref)).id)
            except CharacterNotFoundError:
                raise CharacterNotFoundError(f"I can't find a character called **{render.md(clip(ref, 80))}** "
                                             "that you can use; pick them from the list as you type.") from None
        info = await self.service.start_story(guild_id, checks.channels_of(interaction), interaction.user.id,
                                              target.id, ids, outline=outline, summary_every=summary_every)
        await respond(
            interaction, f"A story in **{render.md(info.world_name)}** begins in this channel. Write what you do; "
            "`/story pause` or `/story end` when you are done.", embed=render.story_embed(info))

    @story.command(name="status", description="Show the story in this channel.")
    async def story_status(self, interaction: discord.Interaction) -> None:
        info = await self.service.get_story_instance(guild_of(interaction), checks.channels_of(interaction))
        await respond(interaction, embed=render.story_embed(info), ephemeral=True)

    @story.command(name="pause", description="Pause the story: the narrator stops answering until resumed.")
    async def story_pause(self, interaction: discord.Interaction) -> None:
        await self.service.pause_story(guild_of(interaction), checks.channels_of(interaction), interaction.user.id,
                                       can_manage=can_manage(interaction))
        await respond(interaction, "The story is paused. `/story resume` to go on.")

    @story.command(name="resume", description="Resume the paused story.")
    async def story_resume(self, interaction: discord.Interaction) -> None:
        await self.service.resume_story(guild_of(interaction), checks.channels_of(interaction), interaction.user.id,
                                        can_manage=can_manage(interaction))
        await respond(interaction, "The story goes on.")

    @story.command(name="end", description="End the story in this channel.")
    async def story_end(self, interaction: discord.Interaction) -> None:
        info = await self.service.end_story(guild_of(interaction), checks.channels_of(interaction), interaction.user.id,
                                            can_manage=can_manage(interaction))
        await respond(
            interaction,
            f"The story in **{render.md(info.world_name)}** has ended after {info.message_count} message(s).")

    @story.command(name="summary", description="The story's summaries; or how often one is written.")
    @app_commands.describe(every="Write a summary every N messages from now on")
    async def story_summary(self, interaction: discord.Interaction,
                            every: app_commands.Range[int, 2, 200] | None = None) -> None:
        guild_id, channels = guild_of(interaction), checks.channels_of(interaction)
        if every is not None:
            info = await self.service.set_summary_every(guild_id, channels, interaction.user.id, every,
                                                        can_manage=can_manage(interaction))
            await respond(interaction, f"A summary will be written every {info.summary_every} "
                          "messages.", ephemeral=True)
            return
        info = await self.service.get_story_instance(guild_id, channels)
        await respond(interaction, embed=render.texts_embed(
            "Summaries", info.summaries, f"No summary yet: one is written every {info.summary_every} messages."),
            ephemeral=True)

    @story.command(name="outline", description="The story's outline; add a line to it.")
    @app_commands.describe(add="A new line for the outline")
    async def story_outline(self, interaction: discord.Interaction,
                            add: app_commands.Range[str, 1, 1000] | None = None) -> None:
        guild_id, channels = guild_of(interaction), checks.channels_of(interaction)
        if add is not None:
            info = await self.service.add_outline(guild_id, channels, interaction.user.id, add,
                                                  can_manage=can_manage(interaction))
        else:
            info = await self.service.get_story_instance(guild_id, channels)
        await respond(interaction, embed=render.texts_embed(
            "Outline", info.outlines, "No outline yet. Add one with `/story outline add:`."), ephemeral=True)

    # --- /story character -------------------------------------------------------------------------

    @character.command(name="create", description="Create a character for stories.")
    @app_commands.describe(name="Its name", description="Who it is (the narrator reads this)",
                           avatar_url="A link to its picture", public="Let others use it (default: only you)")
    async def character_create(self, interaction: discord.Interaction, name: app_commands.Range[str, 1, 100],
                               description: app_commands.Range[str, 1, 2000] | None = None,
                               avatar_url: app_commands.Range[str, 1, 2048] | None = None,
                               public: bool = False) -> None:
        info = await self.service.save_character(guild_of(interaction), interaction.user.id, name=name,
                                                 description=description, avatar_url=avatar_url, public=public)
        await respond(interaction, f"Created **{render.md(info.name)}**.",
                      embed=render.character_embed(info), ephemeral=True)

    @character.command(name="edit", description="Change one of your characters.")
    @app_commands.describe(character="Your character", name="A new name", description="A new description",
                           avatar_url="A new picture link", public="Let others use it")
    @app_commands.autocomplete(character=own_character_autocomplete)
    async def character_edit(self, interaction: discord.Interaction, *, character: str,
                             name: app_commands.Range[str, 1, 100] | None = None,
                             description: app_commands.Range[str, 1, 2000] | None = None,
                             avatar_url: app_commands.Range[str, 1, 2048] | None = None,
                             public: bool | None = None) -> None:
        target = await self._character(interaction, character, owned_only=True)
        info = await self.service.save_character(guild_of(interaction), interaction.user.id, character_id=target.id,
                                                 name=name, description=description, avatar_url=avatar_url,
                                                 public=public)
        await respond(interaction, f"Saved **{render.md(info.name)}**.",
                      embed=render.character_embed(info), ephemeral=True)

    @character.command(name="show", description="Show a character you can use.")
    @app_commands.describe(character="The character")
    @app_commands.autocomplete(character=character_autocomplete)
    async def character_show(self, interaction: discord.Interaction, character: str) -> None:
        info = await self._character(interaction, character)
        await respond(interaction, embed=render.character_embed(info), ephemeral=True)

    @character.command(name="list", description="The characters you can use in a story here.")
    async def character_list(self, interaction: discord.Interaction) -> None:
        guild_id = guild_of(interaction)
        first = await self.service.get_selectable_characters(guild_id, interaction.user.id, per_page=20)
        if first.total == 0:
            await respond(
                interaction, "There are no characters you can use yet. Make one with `/story character create`.",
                ephemeral=True)
            return
        await interaction.response.defer(ephemeral=True, thinking=True)
        pages = [first] + [await self.service.get_selectable_characters(guild_id, interaction.user.id, page=n,
                                                                        per_page=20)
                           for n in range(2, min(first.pages, LIST_PAGES_MAX) + 1)]
        embeds = []
        for page in pages:
            lines = [f"**{render.md(c.display_name)}**" + ("" if c.owner_id == interaction.user.id
                                                          else f" by <@{c.owner_id}>")
                     + ("" if c.is_public else " (private)") for c in page.items]
            embed = discord.Embed(title="Characters you can use here", description=clip("\n".join(lines), 4096),
                                  color=render.COLOR)
            embed.set_footer(text=f"Page {page.page}/{page.pages} - {page.total} character(s)")
            embeds.append(embed)
        await Paginator(embeds, owner_id=interaction.user.id).send(interaction, ephemeral=True)

    @character.command(name="delete", description="Delete one of your characters (not while a story uses it).")
    @app_commands.describe(character="Your character")
    @app_commands.autocomplete(character=own_character_autocomplete)
    async def character_delete(self, interaction: discord.Interaction, character: str) -> None:
        target = await self._character(interaction, character, owned_only=True)
        gone = await self.service.delete_character(guild_of(interaction), interaction.user.id, target.id)
        await respond(interaction, f"Deleted **{render.md(gone.name)}**.", ephemeral=True)

    # --- /relationship -----------------------------------------------------------------------------

    @relationship.command(name="show", description="How the story's characters see a player.")
    @app_commands.describe(member="Whose relationships (default: yours)")
    async def relationship_show(self, interaction: discord.Interaction, member: discord.Member | None = None) -> None:
        who = member or interaction.user
        rels = await self.service.get_relationships(guild_of(interaction), checks.channels_of(interaction), who.id)
        await respond(interaction, embed=render.relationships_embed(rels, who.display_name),
                      ephemeral=True)

    @relationship.command(name="set", description="Set how a character of the story sees a player.")
    @app_commands.describe(member="The player", character="A character of this story",
                           score="From -100 (hostile) to 100 (close)", description="How the character sees them")
    @app_commands.autocomplete(character=cast_autocomplete)
    async def relationship_set(self, interaction: discord.Interaction, member: discord.Member, character: str,
                               score: app_commands.Range[int, -100, 100] | None = None,
                               description: app_commands.Range[str, 1, 500] | None = None) -> None:
        guild_id, channels = guild_of(interaction), checks.channels_of(interaction)
        story = await self.service.get_story_instance(guild_id, channels)
        wanted = rules.key(character)
        found = [c for c in story.cast if str(c.character_id) == character.strip() or rules.key(c.name) == wanted]
        if not found:
            raise StoryInputError("That character is not in this story; pick one from the list as you type.")
        rel = await self.service.set_relationship(guild_id, channels, interaction.user.id, member.id,
                                                  found[0].character_id, score=score, description=description,
                                                  can_manage=can_manage(interaction))
        await respond(
            interaction,
            f"**{render.md(rel.character_name)}** now sees {member.mention}: {rel.score} ({rules.band(rel.score)}).",
            ephemeral=True, allowed_mentions=discord.AllowedMentions.none())
