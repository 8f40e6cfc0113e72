"""search index over products (S2)

SQLite: an FTS5 table with external content (a view joining the category name), kept in sync by
triggers. PostgreSQL: a weighted tsvector per product in a side table with a GIN index, kept in
sync by triggers; accents are folded by an IMMUTABLE SQL function (translate), so no extension
(unaccent needs contrib and a wrapper to be indexable) is required.

Both keep `products_fts_version.version`, bumped whenever products or category names change: the
app keys its cache of rendered search results on it.

These objects have no ORM model: electro.migrate.include_name keeps them out of model comparisons.

Revision ID: 0002
Revises: 0001
"""

import unicodedata

from alembic import op

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None

# Column weights, highest first: name > company > category > description.
SQLITE_DDL = [
    """CREATE VIEW products_fts_source AS
       SELECT p.id AS id, p.name AS name, p.company AS company, c.name AS category,
              p.description AS description
       FROM products p JOIN categories c ON c.id = p.category_id""",
    """CREATE VIRTUAL TABLE products_fts USING fts5(
       name, company, category, description,
       content='products_fts_source', content_rowid='id',
       tokenize='unicode61 remove_diacritics 2', prefix='2 3')""",
    "CREATE TABLE products_fts_version (id INTEGER PRIMARY KEY CHECK (id = 1), version INTEGER NOT NULL)",
    "INSERT INTO products_fts_version (id, version) VALUES (1, 0)",
    """CREATE TRIGGER products_fts_insert AFTER INSERT ON products BEGIN
       INSERT INTO products_fts (rowid, name, company, category, description)
       VALUES (new.id, new.name, new.company,
               (SELECT name FROM categories WHERE id = new.category_id), new.description);
       UPDATE products_fts_version SET version = version + 1;
       END""",
    # External content: a delete must repeat the values that were indexed.
    """CREATE TRIGGER products_fts_delete AFTER DELETE ON products BEGIN
       INSERT INTO products_fts (products_fts, rowid, name, company, category, description)
       VALUES ('delete', old.id, old.name, old.company,
               (SELECT name FROM categories WHERE id = old.category_id), old.description);
       UPDATE products_fts_version SET version = version + 1;
       END""",
    # Every update bumps the version (price and stock are shown in results too).
    """CREATE TRIGGER products_fts_update AFTER UPDATE ON products BEGIN
       INSERT INTO products_fts (products_fts, rowid, name, company, category, description)
       VALUES ('delete', old.id, old.name, old.company,
               (SELECT name FROM categories WHERE id = old.category_id), old.description);
       INSERT INTO products_fts (rowid, name, company, category, description)
       VALUES (new.id, new.name, new.company,
               (SELECT name FROM categories WHERE id = new.category_id), new.description);
       UPDATE products_fts_version SET version = version + 1;
       END""",
    """CREATE TRIGGER products_fts_category AFTER UPDATE OF name ON categories BEGIN
       INSERT INTO products_fts (products_fts, rowid, name, company, category, description)
       SELECT 'delete', id, name, company, old.name, description
       FROM products WHERE category_id = old.id;
       INSERT INTO products_fts (rowid, name, company, category, description)
       SELECT id, name, company, new.name, description FROM products WHERE category_id = new.id;
       UPDATE products_fts_version SET version = version + 1;
       END""",
    "INSERT INTO products_fts (products_fts) VALUES ('rebuild')",
]

SQLITE_DROP = [
    "DROP TRIGGER IF EXISTS products_fts_category",
    "DROP TRIGGER IF EXISTS products_fts_update",
    "DROP TRIGGER IF EXISTS products_fts_delete",
    "DROP TRIGGER IF EXISTS products_fts_insert",
    "DROP TABLE IF EXISTS products_fts_version",
    "DROP TABLE IF EXISTS products_fts",
    "DROP VIEW IF EXISTS products_fts_source",
]


def _fold_map() -> tuple[str, str]:
    """Accented Latin letters and their lower-case base letter, for translate()."""
    src, dst = [], []
    for cp in [*range(0xC0, 0x250), *range(0x1E00, 0x1F00)]:
        ch = chr(cp)
        base = "".join(c for c in unicodedata.normalize("NFD", ch) if not unicodedata.combining(c))
        if base != ch and len(base) == 1:
            src.append(ch)
            dst.append(base.lower())
    return "".join(src), "".join(dst)


def _postgresql_ddl() -> list[str]:
    src, dst = _fold_map()
    return [
        # Same words as the app's tokeniser: accents off, lower case, runs of letters and digits.
        f"""CREATE FUNCTION electro_fold(value text) RETURNS text
            LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
            AS $$ SELECT regexp_replace(lower(translate(value, '{src}', '{dst}')),
                                        '[^[:alnum:]]+', ' ', 'g') $$""",
        """CREATE FUNCTION products_fts_document(name text, company text, category text,
                                                description text) RETURNS tsvector
            LANGUAGE sql IMMUTABLE PARALLEL SAFE
            AS $$ SELECT setweight(to_tsvector('simple', electro_fold(coalesce(name, ''))), 'A')
                      || setweight(to_tsvector('simple', electro_fold(coalesce(company, ''))), 'B')
                      || setweight(to_tsvector('simple', electro_fold(coalesce(category, ''))), 'C')
                      || setweight(to_tsvector('simple', electro_fold(coalesce(description, ''))), 'D') $$""",
        """CREATE TABLE products_fts (
            product_id integer PRIMARY KEY REFERENCES products (id) ON DELETE CASCADE,
            document tsvector NOT NULL)""",
        "CREATE INDEX products_fts_document_gin ON products_fts USING gin (document)",
        "CREATE TABLE products_fts_version (id integer PRIMARY KEY CHECK (id = 1), version bigint NOT NULL)",
        "INSERT INTO products_fts_version (id, version) VALUES (1, 0)",
        """CREATE FUNCTION products_fts_sync() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
              INSERT INTO products_fts (product_id, document)
              SELECT NEW.id, products_fts_document(NEW.name, NEW.company, c.name, NEW.description)
              FROM categories c WHERE c.id = NEW.category_id
              ON CONFLICT (product_id) DO UPDATE SET document = EXCLUDED.document;
              RETURN NULL;
            END $$""",
        """CREATE TRIGGER products_fts_sync AFTER INSERT OR UPDATE ON products
            FOR EACH ROW EXECUTE FUNCTION products_fts_sync()""",
        """CREATE FUNCTION products_fts_category_sync() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
              UPDATE products_fts f
              SET document = products_fts_document(p.name, p.company, NEW.name, p.description)
              FROM products p WHERE p.id = f.product_id AND p.category_id = NEW.id;
              RETURN NULL;
            END $$""",
        """CREATE TRIGGER products_fts_category_sync AFTER UPDATE OF name ON categories
            FOR EACH ROW EXECUTE FUNCTION products_fts_category_sync()""",
        # Once per statement: a bulk insert bumps the version once, not once per row.
        """CREATE FUNCTION products_fts_bump() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
              UPDATE products_fts_version SET version = version + 1;
              RETURN NULL;
            END $$""",
        """CREATE TRIGGER products_fts_bump AFTER INSERT OR UPDATE OR DELETE ON products
            FOR EACH STATEMENT EXECUTE FUNCTION products_fts_bump()""",
        """CREATE TRIGGER products_fts_category_bump AFTER UPDATE ON categories
            FOR EACH STATEMENT EXECUTE FUNCTION products_fts_bump()""",
        """INSERT INTO products_fts (product_id, document)
            SELECT p.id, products_fts_document(p.name, p.company, c.name, p.description)
            FROM products p JOIN categories c ON c.id = p.category_id""",
    ]


POSTGRESQL_DROP = [
    "DROP TRIGGER IF EXISTS products_fts_category_bump ON categories",
    "DROP TRIGGER IF EXISTS products_fts_bump ON products",
    "DROP TRIGGER IF EXISTS products_fts_category_sync ON categories",
    "DROP TRIGGER IF EXISTS products_fts_sync ON products",
    "DROP FUNCTION IF EXISTS products_fts_bump()",
    "DROP FUNCTION IF EXISTS products_fts_category_sync()",
    "DROP FUNCTION IF EXISTS products_fts_sync()",
    "DROP TABLE IF EXISTS products_fts_version",
    "DROP TABLE IF EXISTS products_fts",
    "DROP FUNCTION IF EXISTS products_fts_document(text, text, text, text)",
    "DROP FUNCTION IF EXISTS electro_fold(text)",
]


# Sorted category pages (S1) walk one of these instead of sorting the whole category.
SORT_INDEXES = {
    "ix_products_category_name": ["category_id", "name", "id"],
    "ix_products_category_company": ["category_id", "company", "id"],
    "ix_products_category_price": ["category_id", "price_cents", "id"],
}


def upgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    for statement in SQLITE_DDL if sqlite else _postgresql_ddl():
        op.execute(statement)
    for name, columns in SORT_INDEXES.items():
        op.create_index(name, "products", columns)


def downgrade() -> None:
    for name in SORT_INDEXES:
        op.drop_index(name, "products")
    sqlite = op.get_bind().dialect.name == "sqlite"
    for statement in SQLITE_DROP if sqlite else POSTGRESQL_DROP:
        op.execute(statement)
