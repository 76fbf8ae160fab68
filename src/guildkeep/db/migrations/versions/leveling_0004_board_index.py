"""leveling board index: (guild_id, xp DESC, user_id) so a leaderboard page is an index range, not a sort

Replaces ix_leveling_levels_guild_id_xp, whose leading columns it keeps.

Revision ID: leveling_0004
Revises: leveling_0003
Create Date: 2026-12-02 11:50:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'leveling_0004'
down_revision: str | Sequence[str] | None = 'leveling_0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('leveling_levels', schema=None) as batch_op:
        batch_op.create_index('ix_leveling_levels_board', ['guild_id', sa.text('xp DESC'), 'user_id'], unique=False)
        batch_op.drop_index('ix_leveling_levels_guild_id_xp')


def downgrade() -> None:
    with op.batch_alter_table('leveling_levels', schema=None) as batch_op:
        batch_op.create_index('ix_leveling_levels_guild_id_xp', ['guild_id', 'xp'], unique=False)
        batch_op.drop_index('ix_leveling_levels_board')
