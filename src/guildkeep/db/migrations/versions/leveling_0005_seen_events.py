"""leveling: seen activity events (deduplication across processes)

Revision ID: leveling_0005
Revises: leveling_0004
Create Date: 2026-12-02 10:40:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import guildkeep.db.types

revision: str = 'leveling_0005'
down_revision: str | Sequence[str] | None = 'leveling_0004'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('leveling_seen_events',
    sa.Column('key', guildkeep.db.types.Snowflake(), autoincrement=False, nullable=False),
    sa.Column('owner', sa.BigInteger(), nullable=True),
    sa.Column('seen_at', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('key', name=op.f('pk_leveling_seen_events'))
    )
    with op.batch_alter_table('leveling_seen_events', schema=None) as batch_op:
        batch_op.create_index('ix_leveling_seen_events_seen_at', ['seen_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('leveling_seen_events', schema=None) as batch_op:
        batch_op.drop_index('ix_leveling_seen_events_seen_at')
    op.drop_table('leveling_seen_events')
