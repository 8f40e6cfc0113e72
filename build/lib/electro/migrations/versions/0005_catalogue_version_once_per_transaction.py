"""PostgreSQL: bump the catalogue version once per transaction, not once per statement

``products_fts_bump`` (migration 0002) updated the one row of ``products_fts_version`` after
every statement on products. A transaction that runs many statements (an executemany insert of
190,000 products, as seeding does) then updated that row 190,000 times; every update leaves a
row version that later updates of the same transaction must step over, so the cost grew with
the square of the count: seeding 190,000 products took 299 s. The version only has to move
once per transaction (readers see it change at commit, with the data), so the function now
remembers in a transaction-local setting that it has bumped; a rolled-back savepoint forgets
both the setting and the update. SQLite is untouched (its rows are updated in place).

Revision ID: 0005
Revises: 0004
"""

from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(
        """CREATE OR REPLACE FUNCTION products_fts_bump() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
              IF coalesce(current_setting('electro.catalogue_bumped', true), '') = '' THEN
                UPDATE products_fts_version SET version = version + 1;
                PERFORM set_config('electro.catalogue_bumped', 'yes', true);
              END IF;
              RETURN NULL;
            END $$"""
    )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(
        """CREATE OR REPLACE FUNCTION products_fts_bump() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
              UPDATE products_fts_version SET version = version + 1;
              RETURN NULL;
            END $$"""
    )
