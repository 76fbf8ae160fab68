"""bot instances (heartbeat of running bots)

Revision ID: 0002_bot_instances
Revises: 0001_identity
Create Date: 2026-12-02 11:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import guildkeep.db.types

revision: str = '0002_bot_instances'
down_revision: str | Sequence[str] | None = '0001_identity'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('bot_instances',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('host', sa.String(length=255), nullable=False),
    sa.Column('pid', sa.Integer(), nullable=False),
    sa.Column('started_at', guildkeep.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('heartbeat_at', guildkeep.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_bot_instances'))
    )


def downgrade() -> None:
    op.drop_table('bot_instances')
