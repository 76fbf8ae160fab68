"""leveling: period counters on the level row for generated daily and weekly quests

Revision ID: leveling_0006
Revises: leveling_0005
Create Date: 2026-12-07 06:00:00.000000

The progress members made on this period's generated quests before the upgrade (rows of
``leveling_user_quests`` not completed) is carried into the new counters, so nobody loses progress; the rows
stay as they were (a downgrade reads them again).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import guildkeep.db.types

revision: str = 'leveling_0006'
down_revision: str | Sequence[str] | None = 'leveling_0005'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_NAMES = {"total_messages": "messages", "total_reactions": "reactions", "voice_time_seconds": "voice_seconds",
          "commands_used": "commands"}
_COUNTERS = [f"{p}_{n}" for p in ("daily", "weekly") for n in _NAMES.values()]
_BATCH = 5_000


def upgrade() -> None:
    with op.batch_alter_table('leveling_levels', schema=None) as batch_op:
        batch_op.add_column(sa.Column('daily_period', sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column('weekly_period', sa.BigInteger(), nullable=True))
        for name in _COUNTERS:
            batch_op.add_column(sa.Column(name, sa.BigInteger(), server_default='0', nullable=False))
    _carry_progress_over()


def _carry_progress_over() -> None:
    conn = op.get_bind()
    found = conn.execute(sa.text(
        "SELECT uq.guild_id, uq.user_id, q.quest_type, q.requirement_type, q.period_start, "
        "uq.quest_specific_progress FROM leveling_user_quests uq JOIN leveling_quests q ON q.id = uq.quest_id "
        "WHERE q.active = :yes AND uq.completed = :no AND q.template_key IS NOT NULL "
        "AND q.period_start IS NOT NULL AND q.quest_type IN ('daily', 'weekly')"
    ).bindparams(yes=True, no=False).columns(period_start=guildkeep.db.types.UTCDateTime()))
    members: dict[tuple[int, int], dict[str, int | None]] = {}
    for guild_id, user_id, quest_type, requirement_type, start, progress in found:
        if requirement_type not in _NAMES:
            continue
        key = int(start.timestamp())
        values = members.setdefault((int(guild_id), int(user_id)), {})
        held = values.get(f"{quest_type}_period")
        if held is not None and held > key:
            continue  # an older period's quest still marked active: the newer period's counters win
        if held != key:
            for name in _NAMES.values():
                values[f"{quest_type}_{name}"] = 0
            values[f"{quest_type}_period"] = key
        values[f"{quest_type}_{_NAMES[requirement_type]}"] = max(int(progress), 0)
    if not members:
        return
    levels = sa.table('leveling_levels', sa.column('guild_id'), sa.column('user_id'), sa.column('daily_period'),
                      sa.column('weekly_period'), *(sa.column(c) for c in _COUNTERS))
    rows = []
    for (guild_id, user_id), values in members.items():
        row = {"g": guild_id, "u": user_id, "daily_period": None, "weekly_period": None,
               **dict.fromkeys(_COUNTERS, 0)}
        row.update(values)
        rows.append(row)
    stmt = sa.update(levels).where(levels.c.guild_id == sa.bindparam("g"), levels.c.user_id == sa.bindparam("u"))
    stmt = stmt.values({c: sa.bindparam(c) for c in ("daily_period", "weekly_period", *_COUNTERS)})
    for i in range(0, len(rows), _BATCH):
        conn.execute(stmt, rows[i:i + _BATCH])


def downgrade() -> None:
    with op.batch_alter_table('leveling_levels', schema=None) as batch_op:
        for name in reversed(_COUNTERS):
            batch_op.drop_column(name)
        batch_op.drop_column('weekly_period')
        batch_op.drop_column('daily_period')
