"""leveling role grants: the level roles guildkeep gave, so reconciliation only takes those away

Revision ID: leveling_0003
Revises: leveling_0001
Create Date: 2026-12-02 10:40:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import guildkeep.db.types

revision: str = 'leveling_0003'
down_revision: str | Sequence[str] | None = 'leveling_0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('leveling_role_grants',
    sa.Column('guild_id', guildkeep.db.types.Snowflake(), autoincrement=False, nullable=False),
    sa.Column('user_id', guildkeep.db.types.Snowflake(), autoincrement=False, nullable=False),
    sa.Column('role_id', guildkeep.db.types.Snowflake(), autoincrement=False, nullable=False),
    sa.Column('granted_at', guildkeep.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['guild_id'], ['guilds.id'], name=op.f('fk_leveling_role_grants_guild_id_guilds'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('guild_id', 'user_id', 'role_id', name=op.f('pk_leveling_role_grants'))
    )


def downgrade() -> None:
    op.drop_table('leveling_role_grants')
