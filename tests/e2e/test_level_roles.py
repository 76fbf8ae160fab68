"""Level roles through the real bot: roles the bot cannot manage are refused, sync reports what Discord accepted,
and only roles the bot granted as level rewards are ever taken away."""

from __future__ import annotations

import pytest

from guildkeep.testing.harness import SandboxEnv
from tests.e2e.test_leveling import chat, fast_xp

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize(("role", "why"), [
    ("Admin", "it is not below my highest role (guildkeep)"),
    ("guildkeep", "it belongs to an integration"),
    ("@everyone", "everyone has @everyone"),
])
async def test_a_role_the_bot_cannot_manage_is_refused(discord_env: SandboxEnv, role: str, why: str) -> None:
    d = discord_env.driver
    reply = await d.slash("levels roles add", as_="alice", role=role, level=5)
    assert reply.ephemeral
    assert reply.content.startswith("I can't use ")
    assert why in reply.content
    listed = await d.slash("levels roles list", as_="alice")
    assert listed.content.startswith("No level roles yet.")


async def test_sync_counts_only_what_discord_accepted_and_says_what_failed(discord_env: SandboxEnv) -> None:
    d = discord_env.driver
    await fast_xp(discord_env)
    role = await d.create_role("Chatter", position=1)
    await d.slash("levels roles add", as_="alice", role="Chatter", level=1)
    # Discord's copy of the role moves above the bot's, the bot's cache has not heard: Discord refuses (50013)
    role.position = 100
    await chat(discord_env, "bob", 2)
    synced = await d.slash("levels roles sync", as_="alice")
    assert synced.ephemeral
    assert synced.text.startswith("Level roles synced: 0 given, 0 taken.\n1 change failed:")
    assert f"<@&{role.id}> (1 member): I'm missing the permission to change it" in synced.text
    assert role.id not in d.member("bob").roles


async def test_an_everyday_role_made_a_level_role_is_never_stripped(discord_env: SandboxEnv) -> None:
    d = discord_env.driver
    member = d.role("Member")
    added = await d.slash("levels roles add", as_="alice", role="Member", level=10)
    assert "2 members already have it below level 10 and keep it: I only take back roles I gave." in added.content
    synced = await d.slash("levels roles sync", as_="alice")
    assert synced.text == "Level roles synced: 0 given, 0 taken."
    assert member.id in d.member("bob").roles
    assert member.id in d.member("carol").roles
    # bob reaches level 10 and drops again: he held the role before, so it stays his
    await d.slash("level set", as_="alice", member="bob", level=10)
    await d.slash("level set", as_="alice", member="bob", level=0)
    assert (await d.slash("levels roles sync", as_="alice")).text == "Level roles synced: 0 given, 0 taken."
    assert member.id in d.member("bob").roles
    # dave joins without it: the level gives it, and a demotion takes back what the bot gave
    await d.add_member("dave")
    await d.slash("level set", as_="alice", member="dave", level=10)
    await d.wait_for(lambda: member.id in d.member("dave").roles, "dave to earn the Member role")
    await d.slash("level set", as_="alice", member="dave", level=3)
    await d.wait_for(lambda: member.id not in d.member("dave").roles, "the granted role to be taken back")
    assert member.id in d.member("bob").roles
    assert member.id in d.member("carol").roles
