"""web settings: whether a server's public pages (leaderboards, profiles, auctions) are shown

Revision ID: web_0001
Revises: 0001_identity
Create Date: 2026-12-02 11:50:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import guildkeep.db.types

revision: str = 'web_0001'
down_revision: str | Sequence[str] | None = '0001_identity'
branch_labels: str | Sequence[str] | None = ('web',)
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('web_settings',
    sa.Column('guild_id', guildkeep.db.types.Snowflake(), autoincrement=False, nullable=False),
    sa.Column('public_pages', sa.Boolean(), server_default=sa.true(), nullable=False),
    sa.Column('updated_at', guildkeep.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['guild_id'], ['guilds.id'], name=op.f('fk_web_settings_guild_id_guilds'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('guild_id', name=op.f('pk_web_settings'))
    )


def downgrade() -> None:
    op.drop_table('web_settings')
