"""The demo server every e2e test and the playground start with, built through the driver (no bot needed)."""

from __future__ import annotations

from dataclasses import dataclass, field

from guildkeep.sandbox.driver import Driver
from guildkeep.sandbox.state import ChannelType, Guild


@dataclass
class DemoGuild:
    """The demo server every e2e test and the playground start with."""

    guild: Guild
    names: dict[str, int] = field(default_factory=dict)


async def build_demo_guild(driver: Driver) -> DemoGuild:
    """Channels general, bot-commands (text), Lounge (voice) and a thread in general; roles Admin
    (administrator), Moderator, Member; members alice (owner, Admin), bob and carol (Member); the bot's
    own role sits above Moderator and Member so it can manage them."""
    guild = driver.create_guild("Guildkeep Sandbox", owner="alice")
    alice = guild.members[guild.owner_id]
    alice.user.global_name = "Alice"
    member = await driver.create_role("Member", ["view_channel", "send_messages", "read_message_history"],
                                      color=0x2ECC71)
    moderator = await driver.create_role("Moderator", ["manage_messages", "kick_members", "manage_nicknames"],
                                         color=0x3498DB)
    bot_role = next(r for r in guild.roles.values() if r.managed)
    bot_role.position = moderator.position + 1
    admin = await driver.create_role("Admin", ["administrator"], color=0xE74C3C)
    admin.position = bot_role.position + 1
    alice.roles.append(admin.id)
    await driver.add_member("bob", roles=[member], global_name="Bob")
    await driver.add_member("carol", roles=[member], global_name="Carol")
    category = await driver.create_channel("Text Channels", kind=ChannelType.CATEGORY)
    await driver.create_channel("general", parent=category, topic="Chat about anything")
    await driver.create_channel("bot-commands", parent=category, topic="Talk to the bot here")
    await driver.create_channel("Lounge", kind=ChannelType.VOICE)
    await driver.create_thread("general", "welcome-thread", owner="alice")
    return DemoGuild(guild, {"admin": admin.id, "moderator": moderator.id, "member": member.id})


def demo_of(guild: Guild) -> DemoGuild:
    """The demo server's record for a guild restored from a saved world (its roles found by name)."""
    names = {role.name.lower(): role.id for role in guild.roles.values() if not role.managed and role.id != guild.id}
    return DemoGuild(guild, {k: v for k, v in names.items() if k in ("admin", "moderator", "member")})


__all__ = ["DemoGuild", "build_demo_guild", "demo_of"]
