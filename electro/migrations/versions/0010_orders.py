"""baskets, basket_lines, orders, order_lines: buying (SPEC B5, issue 13)

Anonymous baskets are named by the SHA-256 of a cookie id (like session ids). An order keeps
copies of the address, the e-mail and each line's name and price; ``checkout_hash`` (unique) is
the checkout form's one-time token, so a repeated submit finds the order it already made.
Every column that refers to users or products has an index (a leading one counts), so deleting
an account or a product does not scan these tables (see 0003).

Revision ID: 0010_orders
Revises: 0009_twofactor
"""

import sqlalchemy as sa
from alembic import op

revision = '0010_orders'
down_revision = '0009_twofactor'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'baskets',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('token_hash', sa.String(length=64), nullable=True),
        sa.Column('user_id', sa.Integer(), nullable=True),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('updated_at', sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(['user_id'], ['users.id'],
                                name=op.f('fk_baskets_user_id_users'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_baskets')),
        sa.UniqueConstraint('token_hash', name=op.f('uq_baskets_token_hash')),
        sa.UniqueConstraint('user_id', name=op.f('uq_baskets_user_id')),
    )
    op.create_index(op.f('ix_baskets_updated_at'), 'baskets', ['updated_at'])
    op.create_table(
        'basket_lines',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('basket_id', sa.Integer(), nullable=False),
        sa.Column('product_id', sa.Integer(), nullable=True),
        sa.Column('product_name', sa.String(length=200), nullable=False),
        sa.Column('quantity', sa.Integer(), nullable=False),
        sa.Column('added_at', sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(['basket_id'], ['baskets.id'],
                                name=op.f('fk_basket_lines_basket_id_baskets'),
                                ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['product_id'], ['products.id'],
                                name=op.f('fk_basket_lines_product_id_products'),
                                ondelete='SET NULL'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_basket_lines')),
        sa.UniqueConstraint('basket_id', 'product_id', name=op.f('uq_basket_lines_basket_id')),
    )
    op.create_index(op.f('ix_basket_lines_product_id'), 'basket_lines', ['product_id'])
    op.create_table(
        'orders',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('number', sa.String(length=16), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=True),
        sa.Column('email', sa.String(length=254), nullable=False),
        sa.Column('status', sa.String(length=20), nullable=False),
        sa.Column('payment', sa.String(length=20), nullable=False),
        sa.Column('name', sa.String(length=120), nullable=False),
        sa.Column('street', sa.String(length=200), nullable=False),
        sa.Column('postcode', sa.String(length=16), nullable=False),
        sa.Column('city', sa.String(length=120), nullable=False),
        sa.Column('country', sa.String(length=60), nullable=False),
        sa.Column('subtotal_cents', sa.Integer(), nullable=False),
        sa.Column('delivery_cents', sa.Integer(), nullable=False),
        sa.Column('total_cents', sa.Integer(), nullable=False),
        sa.Column('checkout_hash', sa.String(length=64), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('paid_at', sa.DateTime(), nullable=True),
        sa.Column('shipped_at', sa.DateTime(), nullable=True),
        sa.Column('cancelled_at', sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(['user_id'], ['users.id'],
                                name=op.f('fk_orders_user_id_users'), ondelete='SET NULL'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_orders')),
        sa.UniqueConstraint('checkout_hash', name=op.f('uq_orders_checkout_hash')),
        sa.UniqueConstraint('number', name=op.f('uq_orders_number')),
    )
    op.create_index(op.f('ix_orders_created_at'), 'orders', ['created_at'])
    op.create_index(op.f('ix_orders_status'), 'orders', ['status'])
    op.create_index(op.f('ix_orders_user_id'), 'orders', ['user_id'])
    op.create_table(
        'order_lines',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('order_id', sa.Integer(), nullable=False),
        sa.Column('product_id', sa.Integer(), nullable=True),
        sa.Column('name', sa.String(length=200), nullable=False),
        sa.Column('unit_price_cents', sa.Integer(), nullable=False),
        sa.Column('quantity', sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(['order_id'], ['orders.id'],
                                name=op.f('fk_order_lines_order_id_orders'), ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['product_id'], ['products.id'],
                                name=op.f('fk_order_lines_product_id_products'),
                                ondelete='SET NULL'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_order_lines')),
    )
    op.create_index(op.f('ix_order_lines_order_id'), 'order_lines', ['order_id'])
    op.create_index(op.f('ix_order_lines_product_id'), 'order_lines', ['product_id'])


def downgrade() -> None:
    op.drop_table('order_lines')
    op.drop_table('orders')
    op.drop_table('basket_lines')
    op.drop_table('baskets')
