"""recommendations: product views, precomputed product pairs and popularity, the rebuild's claim (SPEC B6)

``product_views`` is keyed (product, client, day) so a repeat view that day is a no-op; its
client index serves a shopper's own views (and a new one on ``searches`` their own searches),
its day index the retention. ``product_pairs`` is
read by product and kind (its key) and by related product (the ON DELETE CASCADE lookup).

Revision ID: 0013_recommendations
Revises: 0012_newsletters
"""

import sqlalchemy as sa
from alembic import op

revision = "0013_recommendations"
down_revision = "0012_newsletters"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'product_views',
        sa.Column('product_id', sa.Integer(), nullable=False),
        sa.Column('client_hash', sa.String(length=64), nullable=False),
        sa.Column('day', sa.Date(), nullable=False),
        sa.ForeignKeyConstraint(['product_id'], ['products.id'],
                                name=op.f('fk_product_views_product_id_products'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('product_id', 'client_hash', 'day', name=op.f('pk_product_views')),
    )
    op.create_index(op.f('ix_product_views_client_hash'), 'product_views', ['client_hash'])
    op.create_index(op.f('ix_product_views_day'), 'product_views', ['day'])
    # A shopper's own recent searches tune their picks: found by their client.
    op.create_index(op.f('ix_searches_client_hash'), 'searches', ['client_hash'])
    op.create_table(
        'product_pairs',
        sa.Column('product_id', sa.Integer(), nullable=False),
        sa.Column('kind', sa.String(length=8), nullable=False),
        sa.Column('related_id', sa.Integer(), nullable=False),
        sa.Column('score', sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(['product_id'], ['products.id'],
                                name=op.f('fk_product_pairs_product_id_products'),
                                ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['related_id'], ['products.id'],
                                name=op.f('fk_product_pairs_related_id_products'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('product_id', 'kind', 'related_id', name=op.f('pk_product_pairs')),
    )
    op.create_index(op.f('ix_product_pairs_related_id'), 'product_pairs', ['related_id'])
    op.create_table(
        'recommendation_builds',
        sa.Column('name', sa.String(length=16), nullable=False),
        sa.Column('started_at', sa.DateTime(), nullable=False),
        sa.Column('signals', sa.String(length=64), nullable=False),
        sa.Column('pairs', sa.Integer(), nullable=False),
        sa.Column('seconds', sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint('name', name=op.f('pk_recommendation_builds')),
    )
    op.create_table(
        'product_popularity',
        sa.Column('product_id', sa.Integer(), nullable=False),
        sa.Column('category_id', sa.Integer(), nullable=False),
        sa.Column('buyers', sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(['product_id'], ['products.id'],
                                name=op.f('fk_product_popularity_product_id_products'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('product_id', name=op.f('pk_product_popularity')),
    )
    op.create_index('ix_product_popularity_category_buyers', 'product_popularity',
                    ['category_id', 'buyers'])


def downgrade() -> None:
    op.drop_index('ix_product_popularity_category_buyers', table_name='product_popularity')
    op.drop_table('product_popularity')
    op.drop_table('recommendation_builds')
    op.drop_index(op.f('ix_product_pairs_related_id'), table_name='product_pairs')
    op.drop_table('product_pairs')
    op.drop_index(op.f('ix_searches_client_hash'), table_name='searches')
    op.drop_index(op.f('ix_product_views_day'), table_name='product_views')
    op.drop_index(op.f('ix_product_views_client_hash'), table_name='product_views')
    op.drop_table('product_views')
