"""indexes on the columns that refer to users

Deleting an account makes the database look up every row that refers to it (ON DELETE CASCADE
or SET NULL). Without these indexes each deleted account scanned four tables: deleting 10,000
accounts took ~9 s instead of ~0.25 s (bench/bench_admin.py).

Revision ID: 0003
Revises: 0002
"""

from alembic import op

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None

INDEXES = [
    ("ix_one_time_keys_user_id", "one_time_keys", "user_id"),
    ("ix_account_blocks_created_by_id", "account_blocks", "created_by_id"),
    ("ix_ip_blocks_created_by_id", "ip_blocks", "created_by_id"),
    ("ix_backups_created_by_id", "backups", "created_by_id"),
]


def upgrade() -> None:
    for name, table, column in INDEXES:
        op.create_index(name, table, [column])


def downgrade() -> None:
    for name, table, _column in reversed(INDEXES):
        op.drop_index(name, table_name=table)
