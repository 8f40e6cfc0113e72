"""drop ix_products_category_id: the sort indexes of 0002 lead with category_id

Every product write (190,000 on a restore or a seed) kept a fourth B-tree up to date that no
query needs: a category filter, and the foreign-key check when a category is deleted, use any
of ix_products_category_{name,company,price}, whose first column is category_id.

Revision ID: 0006
Revises: 0005
"""

from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_products_category_id", "products")


def downgrade() -> None:
    op.create_index("ix_products_category_id", "products", ["category_id"])
