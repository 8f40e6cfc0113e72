"""newsletters: consent, newsletters and their deliveries (SPEC B2)

``users.newsletter`` is the consent (off by default: opt-in), and ``one_time_keys.newsletter``
carries a pending registration's answer to the account its key creates. A newsletter's
recipients are fixed when sending starts: one ``newsletter_deliveries`` row per shopper, unique
per (newsletter, shopper), so no shopper gets one newsletter twice, whatever restarts.

Revision ID: 0012_newsletters
Revises: 0011_api_tokens
"""

import sqlalchemy as sa
from alembic import op

revision = '0012_newsletters'
down_revision = '0011_api_tokens'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # ADD COLUMN with a default, no table rebuild (which would lose users' lower() indexes).
    op.add_column('users', sa.Column('newsletter', sa.Boolean(), nullable=False,
                                 server_default=sa.false()))
    op.add_column('one_time_keys', sa.Column('newsletter', sa.Boolean(), nullable=False,
                                 server_default=sa.false()))
    op.create_table(
        'newsletters',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('subject', sa.String(length=200), nullable=False),
        sa.Column('body', sa.Text(), nullable=False),
        sa.Column('picks', sa.Integer(), nullable=False),
        sa.Column('created_by_id', sa.Integer(), nullable=True),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('started_at', sa.DateTime(), nullable=True),
        sa.Column('finished_at', sa.DateTime(), nullable=True),
        sa.Column('claimed_at', sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(['created_by_id'], ['users.id'],
                                name=op.f('fk_newsletters_created_by_id_users'),
                                ondelete='SET NULL'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_newsletters')),
    )
    op.create_index(op.f('ix_newsletters_created_by_id'), 'newsletters', ['created_by_id'])
    op.create_index(op.f('ix_newsletters_created_at'), 'newsletters', ['created_at'])
    op.create_table(
        'newsletter_deliveries',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('newsletter_id', sa.Integer(), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('attempts', sa.Integer(), nullable=False),
        sa.Column('next_attempt_at', sa.DateTime(), nullable=False),
        sa.Column('claimed_at', sa.DateTime(), nullable=True),
        sa.Column('sent_at', sa.DateTime(), nullable=True),
        sa.Column('last_error', sa.String(length=500), nullable=False),
        sa.ForeignKeyConstraint(['newsletter_id'], ['newsletters.id'],
                                name=op.f('fk_newsletter_deliveries_newsletter_id_newsletters'),
                                ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['user_id'], ['users.id'],
                                name=op.f('fk_newsletter_deliveries_user_id_users'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_newsletter_deliveries')),
        sa.UniqueConstraint('newsletter_id', 'user_id',
                            name=op.f('uq_newsletter_deliveries_newsletter_id')),
    )
    op.create_index(op.f('ix_newsletter_deliveries_user_id'), 'newsletter_deliveries',
                    ['user_id'])
    op.create_index(op.f('ix_newsletter_deliveries_claimed_at'), 'newsletter_deliveries',
                    ['claimed_at'])
    op.create_index(op.f('ix_newsletter_deliveries_sent_at'), 'newsletter_deliveries',
                    ['sent_at'])
    op.create_index('ix_newsletter_deliveries_due', 'newsletter_deliveries',
                    ['status', 'next_attempt_at', 'id'])


def downgrade() -> None:
    op.drop_table('newsletter_deliveries')
    op.drop_table('newsletters')
    op.drop_column('one_time_keys', 'newsletter')
    op.drop_column('users', 'newsletter')
