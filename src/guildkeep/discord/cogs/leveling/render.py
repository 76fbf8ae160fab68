"""Text and embeds leveling shows; `guildkeep.discord.limits` fits them to Discord's limits when sent."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import discord
from guildkeep.discord.limits import clip
from guildkeep.leveling import rules
from guildkeep.leveling.results import (
    AchievementInfo,
    LeaderboardEntryInfo,
    QuestInfo,
    ServerConfigInfo,
    UserQuestInfo,
)
from guildkeep.leveling.settings import WEEKDAYS
from guildkeep.results import Page

COLOR = discord.Color.blurple()
DESCRIPTION_MAX = 4000


def bar(done: int, total: int, width: int = 12) -> str:
    """A text progress bar."""
    filled = 0 if total <= 0 else min(width, round(width * done / total))
    return "█" * filled + "░" * (width - filled)


def requirement_text(kind: str, value: int) -> str:
    """What an achievement asks for, in words: "level 5", "100 messages", "1 reaction", "60 minutes in voice"."""
    if kind == "level":
        return f"level {value:,}"
    if kind == "voice":  # counted in seconds
        count, unit = (value // 60, "minute") if value % 60 == 0 else (value, "second")
        return f"{count:,} {unit}{'' if count == 1 else 's'} in voice"
    noun = {"messages": "message", "reactions": "reaction", "commands": "command"}.get(kind, kind)
    return f"{value:,} {noun}{'' if value == 1 else 's'}"


@dataclass
class RoleSync:
    """What one reconciliation did: roles given and taken (Discord accepted), and the ones that failed why."""

    given: list[int] = field(default_factory=list)
    taken: list[int] = field(default_factory=list)
    failed: list[tuple[int, str]] = field(default_factory=list)

    def merge(self, other: RoleSync) -> None:
        self.given += other.given
        self.taken += other.taken
        self.failed += other.failed

    def report(self) -> str:
        text = f"Level roles synced: {len(self.given)} given, {len(self.taken)} taken."
        if self.failed:
            counts = Counter(self.failed)
            lines = [f"• <@&{role_id}> ({n} member{'s' if n != 1 else ''}): {reason}"
                     for (role_id, reason), n in counts.most_common()]
            text += f"\n{len(self.failed)} change{'s' if len(self.failed) != 1 else ''} failed:\n" + "\n".join(lines)
        return text


def quest_line(quest: QuestInfo, progress: int | None = None, completed: bool = False) -> str:
    """One quest: name, kind, reward, end, and the member's progress when given."""
    reward = f"{quest.reward_xp} XP"
    if quest.reward_multiplier > 1 and quest.multiplier_minutes:
        reward += f" + ×{quest.reward_multiplier:g} XP for {quest.multiplier_minutes} min"
    ends = f" · ends {discord.utils.format_dt(quest.expires_at, 'R')}" if quest.expires_at else ""
    head = f"{'✅' if completed else '▫️'} **{quest.name}** ({quest.quest_type}, {quest.difficulty}) — {reward}{ends}"
    if progress is None:
        return f"{head}\n{quest.description}"
    shown = bar(progress, quest.requirement_value)
    return f"{head}\n{quest.description}\n`{shown}` {progress}/{quest.requirement_value}"


def my_quests(mine: Sequence[UserQuestInfo]) -> discord.Embed:
    """The member's active quests with their progress."""
    return discord.Embed(title="Your quests", color=COLOR, description="\n\n".join(
        quest_line(q.quest, q.quest_specific_progress, q.completed) for q in mine)[:DESCRIPTION_MAX])


def new_quests(created: Sequence[QuestInfo]) -> str:
    """The quest channel's notice of a reset's new quests."""
    lines = "\n".join(f"• **{q.name}** — {q.description} ({q.reward_xp} XP)" for q in created)
    return f"📜 New quests are up!\n{lines}"


def achievements(name: str, every: Sequence[AchievementInfo], earned: set[int]) -> discord.Embed:
    """Every achievement, earned ones marked."""
    lines = [
        f"{'🏆' if a.id in earned else '🔒'} **{a.name}** — {a.description or a.requirement_type} "
        f"({requirement_text(a.requirement_type, a.requirement_value)}"
        f"{f', {a.reward_xp:,} XP' if a.reward_xp else ''})"
        for a in every
    ]
    return discord.Embed(title=f"{name}'s achievements ({len(earned)}/{len(every)})", color=COLOR,
                         description="\n".join(lines)[:DESCRIPTION_MAX])


def leaderboard_page(guild_name: str, board: Page[LeaderboardEntryInfo], number: int,
                     first: Page[LeaderboardEntryInfo]) -> discord.Embed:
    """One page of the leaderboard."""
    embed = discord.Embed(title=f"{guild_name} leaderboard", color=COLOR, description="\n".join(
        f"**#{e.rank}** <@{e.user_id}> — level {e.level} · {rules.compact_number(e.xp)} XP" for e in board.items))
    embed.set_footer(text=f"Page {number}/{first.pages} · {first.total} members")
    return embed


def config_embed(cfg: ServerConfigInfo) -> discord.Embed:
    """The server's leveling settings."""
    s = cfg.settings

    def channel(cid: int | None) -> str:
        return f"<#{cid}>" if cid else "not set"

    embed = discord.Embed(title="Leveling settings", color=COLOR)
    embed.add_field(name="XP", value=(
        f"rate ×{s.xp_rate:g} · message {s.message_xp_min}–{s.message_xp_max} "
        f"(cooldown {s.cooldown('message')} s) · voice {s.voice_xp_per_minute}/min · "
        f"reaction {s.reaction_xp} ({s.cooldown('reaction')} s) · "
        f"command {s.command_xp} ({s.cooldown('command')} s)"), inline=False)
    curve = {"mee6": "MEE6 (5L²+50L+100)", "linear": f"linear ({s.curve_base:g}·L+75)",
             "power": f"power ({s.curve_base:g}·L^{s.curve_exponent:g})"}[s.curve]
    embed.add_field(name="Curve", value=curve, inline=False)
    embed.add_field(name="Level-ups", value=f"{s.level_up_mode} · {channel(s.level_up_channel)}\n"
                                            f"`{clip(cfg.template, 900)}`", inline=False)
    embed.add_field(name="Quests", value=(
        f"{'on' if s.quests_enabled else 'off'} · reset {s.quest_reset_hour:02d}:00 UTC, weekly on "
        f"{WEEKDAYS[s.quest_reset_day]} · {channel(s.quest_channel)}"), inline=False)
    embed.add_field(name="Achievements", value=channel(s.achievement_channel), inline=False)
    no_xp = [f"<#{c}>" for c in s.no_xp_channels] + [f"<@&{r}>" for r in s.no_xp_roles]
    embed.add_field(name="No XP", value=", ".join(no_xp) or "none", inline=False)
    multipliers = [f"<@&{r}> ×{m:g}" for r, m in s.role_multipliers.items()] + [
        f"<#{c}> ×{m:g}" for c, m in s.channel_multipliers.items()]
    embed.add_field(name="Multipliers", value=", ".join(multipliers) or "none", inline=False)
    return embed
