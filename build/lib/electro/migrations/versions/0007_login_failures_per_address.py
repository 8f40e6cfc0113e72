"""login_failures: wrong passwords counted per (account, client address)

Five wrong passwords from anyone locked an account for everyone (issue 11 finding 7). Now they
lock it from that address only, and the account-wide counter in ``users`` locks it for everyone
at a higher threshold. The primary key (user_id, ip) makes counting one INSERT ... ON CONFLICT
and, leading with user_id, serves the ON DELETE CASCADE lookup as well.

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'login_failures',
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('ip', sa.String(length=45), nullable=False),
        sa.Column('failures', sa.Integer(), nullable=False),
        sa.Column('window_started_at', sa.DateTime(), nullable=False),
        sa.Column('locked_until', sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(['user_id'], ['users.id'],
                                name=op.f('fk_login_failures_user_id_users'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('user_id', 'ip', name=op.f('pk_login_failures')),
    )


def downgrade() -> None:
    op.drop_table('login_failures')
