"""Level-role grants on both databases: only roles the bot gave as level rewards are taken back."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from guildkeep.db import Database
from guildkeep.leveling import rules
from guildkeep.leveling.models import LevelRoleGrant
from guildkeep.leveling.rules import LevelRole
from guildkeep.leveling.service import LevelingService

G, G2 = 1001, 1002
A, B = 11, 12
EVERYDAY, REWARD = 501, 502


@pytest.fixture
def svc(db: Database) -> LevelingService:
    return LevelingService(db)


def test_only_granted_roles_are_removed() -> None:
    roles = [LevelRole(EVERYDAY, 10), LevelRole(REWARD, 5)]
    assert rules.reconcile_roles({EVERYDAY, REWARD}, 0, roles, granted=()) == (set(), set())
    assert rules.reconcile_roles({EVERYDAY, REWARD}, 0, roles, granted={REWARD}) == (set(), {REWARD})
    assert rules.reconcile_roles(set(), 10, roles, granted=()) == ({EVERYDAY, REWARD}, set())
    single = [LevelRole(1, 5, False), LevelRole(2, 10, False)]
    assert rules.reconcile_roles({1}, 12, single, granted={1}) == ({2}, {1})  # highest only
    assert rules.reconcile_roles({1}, 12, single, granted=()) == ({2}, set())


async def test_a_role_held_before_it_became_a_level_role_is_kept(svc: LevelingService) -> None:
    await svc.add_level_role(G, EVERYDAY, 10)
    await svc.set_level(G, A, 3)
    assert await svc.level_role_changes(G, A, [EVERYDAY]) == (set(), set())  # below level 10, keeps it


async def test_a_granted_role_is_taken_back_and_the_grant_forgotten(svc: LevelingService, db: Database) -> None:
    await svc.add_level_role(G, REWARD, 5)
    await svc.set_level(G, A, 6)
    add, remove = await svc.level_role_changes(G, A, [])
    assert (add, remove) == ({REWARD}, set())
    await svc.record_level_roles(G, A, given=add, held={REWARD})
    assert await svc.granted_roles(G, A) == {REWARD}
    assert await svc.granted_roles(G2, A) == set()  # per server
    await svc.set_level(G, A, 2)
    add, remove = await svc.level_role_changes(G, A, [REWARD])
    assert (add, remove) == (set(), {REWARD})
    await svc.record_level_roles(G, A, given=(), held=set())
    assert await svc.granted_roles(G, A) == set()
    async with db.session(read_only=True) as s:
        assert await s.scalar(select(func.count()).select_from(LevelRoleGrant)) == 0


async def test_a_granted_role_removed_by_hand_is_forgotten(svc: LevelingService) -> None:
    await svc.add_level_role(G, REWARD, 5)
    await svc.add_level_role(G, EVERYDAY, 1)
    await svc.set_level(G, A, 6)
    await svc.record_level_roles(G, A, given={REWARD, EVERYDAY}, held={REWARD, EVERYDAY})
    await svc.record_level_roles(G, A, given=(), held={REWARD})  # someone took EVERYDAY away by hand
    assert await svc.granted_roles(G, A) == {REWARD}
    await svc.record_level_roles(G, A, given={REWARD}, held={REWARD})  # giving twice is one grant
    assert await svc.granted_roles(G, A) == {REWARD}


async def test_removing_a_level_role_forgets_its_grants(svc: LevelingService) -> None:
    await svc.add_level_role(G, REWARD, 5)
    await svc.record_level_roles(G, A, given={REWARD}, held={REWARD})
    await svc.record_level_roles(G, B, given={REWARD}, held={REWARD})
    await svc.remove_level_role(G, REWARD)
    assert await svc.granted_roles(G, A) == set()
    assert await svc.granted_roles(G, B) == set()


async def test_levels_of_members(svc: LevelingService) -> None:
    await svc.set_level(G, A, 7)
    assert await svc.levels_of(G, [A, B]) == {A: 7, B: 0}
    assert await svc.levels_of(G2, [A]) == {A: 0}
    assert await svc.levels_of(G, []) == {}
