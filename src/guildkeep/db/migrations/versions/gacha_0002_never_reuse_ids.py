"""gacha: copies and listings never reuse an id on SQLite

SQLite hands out max(rowid)+1 for an INTEGER PRIMARY KEY, so after a reset deleted a server's copies the
next copy could get the id of a deleted one, and old ledger lines would point at the new copy. With
AUTOINCREMENT an id is never handed out twice. PostgreSQL's sequences never reuse ids: nothing to do there.

Revision ID: gacha_0002
Revises: gacha_0001
Create Date: 2026-12-02 10:40:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = 'gacha_0002'
down_revision: str | Sequence[str] | None = 'gacha_0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ('gacha_user_esprits', 'gacha_auction_listings')


def _rebuild(autoincrement: bool) -> None:
    if op.get_bind().dialect.name != 'sqlite':
        return
    # Migrations run with foreign keys off on SQLite, so rebuilding a referenced table keeps its rows.
    for table in TABLES:
        with op.batch_alter_table(table, recreate='always',
                                  table_kwargs={'sqlite_autoincrement': autoincrement}) as batch_op:
            batch_op.alter_column('id', existing_nullable=False)


def upgrade() -> None:
    _rebuild(True)


def downgrade() -> None:
    _rebuild(False)
