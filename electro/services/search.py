"""Product search (S2): words from any text, matched in the database's full-text index.

User text never reaches the query syntax: it is cut into words of letters and digits (accents
off, lower case) and each word is quoted; every word must match, the last one as a prefix.
SQLite uses the FTS5 table ``products_fts`` (bm25 with column weights), PostgreSQL the weighted
tsvector in ``products_fts`` (ts_rank); both are built by migration 0002.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from markupsafe import Markup, escape
from sqlalchemy import TextClause, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from electro.services import prices
from electro.services.backups.databases import database_for

MAX_INPUT = 1000  # characters looked at: a 10 kB paste costs no more than a sentence
MAX_TERMS = 8
MAX_TERM_LENGTH = 40
MAX_QUERY_LENGTH = 200  # searches.query is String(200)
RESULT_LIMIT = 20
_WORD = re.compile(r"[^\W_]+")

# name > company > category > description. Both rank inside the index first, so only the best
# rows are looked up in products: a common word matches a fifth of the catalogue, and joining
# every match before the sort cost 40% more on SQLite (oled at 1,000,000 products: 286 ms, now
# 177 ms) and twice as much on PostgreSQL (at 200,000: 113 ms, now 50 ms).
_SQLITE = text(
    """SELECT p.id, p.name, p.company, c.name AS category, p.price_cents, p.stock
       FROM (SELECT rowid, bm25(products_fts, 10.0, 5.0, 2.0, 1.0) AS score
             FROM products_fts WHERE products_fts MATCH :match
             ORDER BY score, rowid LIMIT :limit) best
       JOIN products p ON p.id = best.rowid
       JOIN categories c ON c.id = p.category_id
       ORDER BY best.score, p.id"""
)
# ts_rank weights are listed {D, C, B, A}.
_POSTGRESQL = text(
    """SELECT p.id, p.name, p.company, c.name AS category, p.price_cents, p.stock
       FROM (SELECT product_id, ts_rank('{0.1, 0.2, 0.5, 1.0}', document,
                                        to_tsquery('simple', :match)) AS score
             FROM products_fts WHERE document @@ to_tsquery('simple', :match)
             ORDER BY score DESC, product_id LIMIT :limit) best
       JOIN products p ON p.id = best.product_id
       JOIN categories c ON c.id = p.category_id
       ORDER BY best.score DESC, p.id"""
)


@dataclass(frozen=True)
class Hit:
    id: int
    name: str
    company: str
    category: str
    price_cents: int
    stock: int
    prior_price_cents: int | None  # announced with the price when it is a reduction (B1)


@dataclass(frozen=True)
class Results:
    query: str  # the normalised query: what trending counts and caches are keyed on
    terms: tuple[str, ...]
    hits: tuple[Hit, ...]


def fold(value: str) -> str:
    """Lower case without accents ("Café" -> "cafe"), as the indexes fold them."""
    stripped = "".join(
        c for c in unicodedata.normalize("NFD", value) if not unicodedata.combining(c)
    )
    return unicodedata.normalize("NFC", stripped).lower()


def terms(value: str) -> tuple[str, ...]:
    """The words of any text: letters and digits only, folded, bounded in number and length."""
    words: list[str] = []
    length = 0
    for word in _WORD.findall(fold(value[:MAX_INPUT])):
        word = word[:MAX_TERM_LENGTH]
        length += len(word) + (1 if words else 0)
        if len(words) == MAX_TERMS or length > MAX_QUERY_LENGTH:
            break
        words.append(word)
    return tuple(words)


def normalise(value: str) -> str:
    return " ".join(terms(value))


def _is_prefix(index: int, words: tuple[str, ...]) -> bool:
    # One letter is no useful prefix (and has no prefix index): it matches as a whole word.
    return index == len(words) - 1 and len(words[index]) >= 2


def _match_expression(words: tuple[str, ...], dialect: str) -> str:
    # Words hold only letters and digits, and are quoted anyway: no operator can get through.
    quote, star, joiner = ('"', "*", " ") if dialect == "sqlite" else ("'", ":*", " & ")
    return joiner.join(
        f"{quote}{w}{quote}" + (star if _is_prefix(i, words) else "") for i, w in enumerate(words)
    )


async def search(db: AsyncSession, value: str, limit: int = RESULT_LIMIT) -> Results:
    """Best matches first; no words, no query."""
    words = terms(value)
    if not words:
        return Results("", (), ())
    dialect = db.get_bind().dialect.name
    statement = _SQLITE if dialect == "sqlite" else _POSTGRESQL
    rows = (await db.execute(
        statement, {"match": _match_expression(words, dialect), "limit": limit}
    )).all()
    reductions = await prices.prior_prices(db, [row.id for row in rows])
    hits = tuple(Hit(**row._mapping, prior_price_cents=reductions.get(row.id)) for row in rows)
    return Results(" ".join(words), words, hits)


def matching_ids(dialect: str, words: tuple[str, ...]) -> TextClause:
    """The ids of the products that match every word, as a subquery for the caller's filter
    (the API's listing sorts and pages these itself rather than by rank)."""
    statement = (
        "SELECT rowid FROM products_fts WHERE products_fts MATCH :match" if dialect == "sqlite"
        else "SELECT product_id FROM products_fts WHERE document @@ to_tsquery('simple', :match)"
    )
    return text(statement).bindparams(match=_match_expression(words, dialect))


async def catalogue_version(db: AsyncSession) -> int:
    """Changes whenever a product or a category name changes (triggers of migration 0002)."""
    version = await db.scalar(text("SELECT version FROM products_fts_version WHERE id = 1"))
    return int(version or 0)


def highlight(value: str, words: tuple[str, ...]) -> Markup:
    """``value`` escaped, with the words that matched wrapped in <mark>."""
    if not words:
        return escape(value)
    exact = set(words)
    prefix = words[-1] if _is_prefix(len(words) - 1, words) else None
    out: list[str] = []
    last = 0
    for match in _WORD.finditer(value):
        word = fold(match.group())
        if word in exact or (prefix and word.startswith(prefix)):
            out.append(escape(value[last:match.start()]))
            out.append(Markup("<mark>%s</mark>") % match.group())
            last = match.end()
    out.append(escape(value[last:]))
    return Markup("").join(out)


@asynccontextmanager
async def index_paused(conn: AsyncConnection) -> AsyncIterator[None]:
    """Bulk changes to products without per-row index upkeep, inside the caller's transaction:
    the row triggers of migration 0002 are off for the block and the index is rebuilt once at
    its end (a restore of 190,000 products took 23 s on SQLite and 34 s on PostgreSQL with the
    triggers firing per row). The catalogue version moves on, so no cached result survives."""
    if conn.dialect.name == "sqlite":
        triggers = (await conn.execute(text(
            "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' "
            "AND name LIKE 'products_fts%'"
        ))).all()
        for name, _sql in triggers:
            await conn.exec_driver_sql(f'DROP TRIGGER "{name}"')
        yield
        for _name, sql in triggers:  # SQLite DDL is transactional: all of this or none
            await conn.exec_driver_sql(sql)
        await conn.execute(text("INSERT INTO products_fts (products_fts) VALUES ('rebuild')"))
    else:
        await conn.execute(text("ALTER TABLE products DISABLE TRIGGER products_fts_sync"))
        yield
        await conn.execute(text("ALTER TABLE products ENABLE TRIGGER products_fts_sync"))
        # One GIN build and one key check, not an index update per row.
        async with database_for(conn.dialect).loading(conn, ["products_fts"]):
            await conn.execute(text("DELETE FROM products_fts"))
            # The documents are most of the work (3.7 s for 190,000 products). CREATE TABLE AS
            # may compute them with parallel workers, INSERT ... SELECT may not (1.8 s + 0.3 s).
            await conn.execute(text(
                "CREATE TEMPORARY TABLE products_fts_rebuild AS "
                "SELECT p.id, products_fts_document(p.name, p.company, c.name, p.description) "
                "AS document FROM products p JOIN categories c ON c.id = p.category_id"
            ))
            await conn.execute(text(
                "INSERT INTO products_fts (product_id, document) "
                "SELECT id, document FROM products_fts_rebuild"
            ))
            await conn.execute(text("DROP TABLE products_fts_rebuild"))
    await conn.execute(text("UPDATE products_fts_version SET version = version + 1"))
