"""price_history: every price a product had, written by a trigger (SPEC B1, issue 13)

A reduction may only be announced against the lowest price of the 30 days before it began, so
every price change is kept. A trigger on ``products`` writes the history in the transaction that
changes the price, whatever writes it (admin, CLI, seeding, bulk SQL), so no write path can
forget it. The key is (product, moment): a transaction that sets a price twice keeps the last
one (on PostgreSQL the moment is the transaction's start, on SQLite the statement's); the key
also serves the per-product reads in time order. The moment is the database's clock in naive
UTC, stored as the app stores datetimes (on SQLite the text ``2026-12-06 14:05:54.123000``).

Only changes are written: a product whose price never changed has no rows (its one price has
held since ``created_at``), and its first change writes that first price too, dated
``created_at``. So an insert writes nothing, and a restore, which inserts every product and then
the snapshot's own history, gets exactly the snapshot back.

The typed ``old_price_cents`` goes: where it was above the price (a discount shown today), the
history gets the old price 30 days before the current one, so that discount still shows.

Revision ID: 0008_price_history
Revises: 0007
"""

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from alembic import op

revision = '0008_price_history'
down_revision = '0007'
branch_labels = None
depends_on = None

# strftime gives milliseconds; '000' pads them to the microseconds the app writes.
SQLITE_DDL = [
    """CREATE TRIGGER price_history_update AFTER UPDATE OF price_cents ON products
       WHEN new.price_cents IS NOT old.price_cents BEGIN
       INSERT INTO price_history (product_id, changed_at, price_cents)
       SELECT old.id, min(old.created_at, strftime('%Y-%m-%d %H:%M:%f', 'now') || '000'),
              old.price_cents
       WHERE NOT EXISTS (SELECT 1 FROM price_history WHERE product_id = old.id);
       INSERT INTO price_history (product_id, changed_at, price_cents)
       VALUES (new.id, strftime('%Y-%m-%d %H:%M:%f', 'now') || '000', new.price_cents)
       ON CONFLICT (product_id, changed_at) DO UPDATE SET price_cents = excluded.price_cents;
       END""",
]
SQLITE_DROP = ["DROP TRIGGER IF EXISTS price_history_update"]

POSTGRESQL_DDL = [
    # LEAST: a first price dated after the change (clocks apart) would read as the current one.
    """CREATE FUNCTION price_history_record() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          INSERT INTO price_history (product_id, changed_at, price_cents)
          SELECT OLD.id, LEAST(OLD.created_at, now() AT TIME ZONE 'UTC'), OLD.price_cents
          WHERE NOT EXISTS (SELECT 1 FROM price_history WHERE product_id = OLD.id);
          INSERT INTO price_history (product_id, changed_at, price_cents)
          VALUES (NEW.id, now() AT TIME ZONE 'UTC', NEW.price_cents)
          ON CONFLICT (product_id, changed_at) DO UPDATE SET price_cents = EXCLUDED.price_cents;
          RETURN NULL;
        END $$""",
    """CREATE TRIGGER price_history_update AFTER UPDATE OF price_cents ON products
        FOR EACH ROW WHEN (OLD.price_cents IS DISTINCT FROM NEW.price_cents)
        EXECUTE FUNCTION price_history_record()""",
]
POSTGRESQL_DROP = [
    "DROP TRIGGER IF EXISTS price_history_update ON products",
    "DROP FUNCTION IF EXISTS price_history_record()",
]

def upgrade() -> None:
    op.create_table(
        'price_history',
        sa.Column('product_id', sa.Integer(), nullable=False),
        sa.Column('changed_at', sa.DateTime(), nullable=False),
        sa.Column('price_cents', sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(['product_id'], ['products.id'],
                                name=op.f('fk_price_history_product_id_products'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('product_id', 'changed_at', name=op.f('pk_price_history')),
    )
    now = datetime.now(UTC).replace(tzinfo=None)
    bind = op.get_bind()
    bind.execute(
        sa.text("""INSERT INTO price_history (product_id, changed_at, price_cents)
                   SELECT id, :before, old_price_cents FROM products
                   WHERE old_price_cents > price_cents
                   UNION ALL
                   SELECT id, :now, price_cents FROM products
                   WHERE old_price_cents > price_cents""").bindparams(
            sa.bindparam("before", type_=sa.DateTime()), sa.bindparam("now", type_=sa.DateTime())
        ),
        {"before": now - timedelta(days=30), "now": now},
    )
    for statement in SQLITE_DDL if bind.dialect.name == "sqlite" else POSTGRESQL_DDL:
        op.execute(statement)
    # Native on both (SQLite since 3.35): no table rebuild, so the search triggers stay.
    op.execute("ALTER TABLE products DROP COLUMN old_price_cents")


def downgrade() -> None:
    op.execute("ALTER TABLE products ADD COLUMN old_price_cents INTEGER")
    # The old price is the last other price, where it was higher.
    op.execute(
        """UPDATE products SET old_price_cents = (
             SELECT CASE WHEN h.price_cents > products.price_cents THEN h.price_cents END
             FROM price_history h
             WHERE h.product_id = products.id AND h.price_cents <> products.price_cents
             ORDER BY h.changed_at DESC LIMIT 1)"""
    )
    sqlite = op.get_bind().dialect.name == "sqlite"
    for statement in SQLITE_DROP if sqlite else POSTGRESQL_DROP:
        op.execute(statement)
    op.drop_table('price_history')
