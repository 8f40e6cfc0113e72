"""Catalogue reads (S1): categories, a category's products sorted and paginated, one product;
for the API (B3), any products filtered, sorted and paged by a keyset cursor.

Both listings page by keyset ("seek": WHERE (sort, id) > the last row's), so a deep page costs
what the first does. The shop's ``?page=N`` links stay plain numbers: ``page_keys`` finds where
every page of a (category, sort, direction) starts in one index scan, and the web layer keeps
those keys for the catalogue version (electro.services.worker_cache).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import cache
from typing import Any, TypeVarTuple

from sqlalchemy import ColumnElement, Integer, Row, Select, bindparam, func, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from electro.errors import InvalidInput, NotFound
from electro.inputs import MAX_INT
from electro.models import Category, Product
from electro.services import prices, search
from electro.services.paging import clamp

PAGE_SIZE = 24
# A key is kept for every 8th page only, and a page within those 8 is OFFSET at most 168 rows
# from its key: at 1,000,000 products a key per page held ~40 MiB per worker (bench_scale).
PAGES_PER_KEY = 8
SORTS = {"name": Product.name, "company": Product.company, "price": Product.price_cents}
DIRECTIONS = ("asc", "desc")


@dataclass(frozen=True)
class CategoryPage:
    category: Category
    products: list[Row[Any]]  # the products' columns (read like a Product: .id, .name, ...)
    sort: str
    direction: str
    page: int
    pages: int
    total: int
    prior_prices: dict[int, int]  # product id -> prior price, for the reductions shown (B1)


Ts = TypeVarTuple("Ts")
SortKey = tuple[str | int, int]  # (the sort column's value, the product id) of one row


@dataclass(frozen=True)
class PageKeys:
    """A sorted listing's category and size, and the key of the last row of every
    ``PAGES_PER_KEY``-th page: page N starts ``(N - 1) % PAGES_PER_KEY`` pages after the row
    ``after[(N - 1) // PAGES_PER_KEY - 1]`` (after the start when that index is -1)."""

    category: Category
    total: int
    after: tuple[SortKey, ...]


PageKeysOf = Callable[[AsyncSession, int, str, str], Awaitable[PageKeys]]
"""``(db, category_id, sort, direction)``: ``page_keys`` itself, or a cache in front of it."""


@dataclass(frozen=True)
class ProductPage:
    product: Product
    category: Category
    prior_price_cents: int | None  # shown with the price when it announces a reduction (B1)


@dataclass(frozen=True)
class ProductSlice:
    """Products after a cursor, the prior prices of those reduced (B1), and the cursor of the
    next slice (None at the end)."""

    products: list[Product]
    prior_prices: dict[int, int]
    next_cursor: str | None


class InvalidCursor(InvalidInput):
    """A paging cursor that this listing did not hand out (altered, or from another sort)."""

    status = 400


def format_price(cents: int) -> str:
    """Exact money from integer cents: 123456 -> "€1,234.56" (no float on the way)."""
    sign = "-" if cents < 0 else ""
    whole, rest = divmod(abs(cents), 100)
    return f"{sign}€{whole:,}.{rest:02d}"


async def categories_with_counts(db: AsyncSession) -> list[tuple[Category, int]]:
    query = (
        select(Category, func.count(Product.id))
        .outerjoin(Product, Product.category_id == Category.id)
        .group_by(Category.id)
        .order_by(Category.name)
    )
    return [(c, n) for c, n in (await db.execute(query)).all()]


async def page_keys(db: AsyncSession, category_id: int, sort: str, direction: str) -> PageKeys:
    """Where every page of the listing starts (one scan of the category's sort index); an
    unknown category is a 404."""
    category = await db.get(Category, category_id)
    if category is None:
        raise NotFound("There is no such category.")
    column = SORTS[sort]
    total = await db.scalar(
        select(func.count(Product.id)).where(Product.category_id == category_id)
    ) or 0
    ranked = (
        select(column.label("value"), Product.id.label("id"),
               func.row_number().over(order_by=_order(column, direction)).label("position"))
        .where(Product.category_id == category_id)
        .subquery()
    )
    rows = await db.execute(
        select(ranked.c.value, ranked.c.id)
        .where(ranked.c.position % (PAGE_SIZE * PAGES_PER_KEY) == 0, ranked.c.position < total)
        .order_by(ranked.c.position)
    )
    return PageKeys(category, total, tuple((value, row_id) for value, row_id in rows))


async def category_page(
    db: AsyncSession, category_id: int, sort: str, direction: str, page: int,
    keys_of: PageKeysOf = page_keys,
) -> CategoryPage:
    """Unknown sort keys fall back to name ascending; the page is clamped to 1..last."""
    if not 0 < category_id <= MAX_INT:
        raise NotFound("There is no such category.")
    sort = sort if sort in SORTS else "name"
    direction = direction if direction in DIRECTIONS else "asc"
    keys = await keys_of(db, category_id, sort, direction)  # kept: the category comes with it
    page, pages = clamp(page, keys.total, PAGE_SIZE)
    block, pages_in = divmod(page - 1, PAGES_PER_KEY)
    after = keys.after[block - 1] if block else None
    dialect = db.get_bind().dialect.name
    params: dict[str, Any] = {"category_id": category_id, "skip": pages_in * PAGE_SIZE}
    if after is not None:
        params["after_value"], params["after_id"] = after
    rows = list((await db.execute(_listing_page(dialect, sort, direction, after is not None),
                                  params)).all())
    return CategoryPage(keys.category, rows, sort, direction, page, pages, keys.total,
                        {row.id: row.prior_price_cents for row in rows
                         if row.prior_price_cents is not None})


@cache
def _listing_page(dialect: str, sort: str, direction: str, seeking: bool) -> Select[Any]:
    """One page of a category's listing with the prior prices of its reductions, in one
    statement, built once per variant (see ``_product_page``). Plain rows of the products'
    columns: loading 24 ORM objects and rendering their attributes cost ~0.3 ms a page more
    (bench_pages_cold). Binds ``category_id``, ``skip`` (rows after the key) and, when
    ``seeking``, ``after_value`` and ``after_id`` (the key the page counts from)."""
    column = SORTS[sort]
    after = ((bindparam("after_value", type_=column.type), bindparam("after_id", type_=Integer))
             if seeking else None)
    in_category = select(Product.id).where(Product.category_id == bindparam("category_id"))
    on_page = (_seek(in_category, sort, direction, after).limit(PAGE_SIZE)
               .offset(bindparam("skip", type_=Integer)).cte("on_page"))
    reductions = prices.prior_prices_among(
        lambda product_id: product_id.in_(select(on_page.c.id)), dialect)
    return (
        select(*Product.__table__.c, reductions.c.prior_price_cents)
        .outerjoin(reductions, reductions.c.product_id == Product.id)
        .where(Product.id.in_(select(on_page.c.id)))
        .order_by(*_order(column, direction))
    )


def _order(column: Any, direction: str) -> tuple[ColumnElement[Any], ColumnElement[Any]]:
    """ORDER BY the sort column, then id (a total order: ties in the column are common)."""
    if direction == "asc":
        return column.asc(), Product.id.asc()
    return column.desc(), Product.id.desc()


def _seek(
    query: Select[*Ts], sort: str, direction: str, after: tuple[Any, Any] | None
) -> Select[*Ts]:
    """``query`` in the listing's order, from just after the row keyed ``after`` (all if None)."""
    column = SORTS[sort]
    if after is not None:
        key, last = tuple_(column, Product.id), tuple_(*after)
        query = query.where(key > last if direction == "asc" else key < last)
    return query.order_by(*_order(column, direction))


async def product(db: AsyncSession, product_id: int) -> ProductPage:
    if not 0 < product_id <= MAX_INT:
        raise NotFound("There is no such product.")
    row = (await db.execute(_product_page(db.get_bind().dialect.name),
                            {"product_id": product_id})).first()
    if row is None:
        raise NotFound("There is no such product.")
    item, category, prior = row
    return ProductPage(item, category, prior)


@cache
def _product_page(dialect: str) -> Select[Product, Category, int | None]:
    """A product, its category and its prior price (B1) in one round-trip; built once per
    dialect, so SQLAlchemy reuses its compiled form without rebuilding or re-keying it."""
    reductions = prices.prior_prices_among(
        lambda product_id: product_id == bindparam("product_id"), dialect)
    return (
        select(Product, Category, reductions.c.prior_price_cents)
        .join(Category, Category.id == Product.category_id)
        .outerjoin(reductions, reductions.c.product_id == Product.id)
        .where(Product.id == bindparam("product_id"))
    )


def _encode_cursor(sort: str, direction: str, value: str | int, after_id: int) -> str:
    raw = json.dumps([sort, direction, value, after_id], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str, sort: str, direction: str) -> tuple[str | int, int]:
    """(the last row's sort value, its id), refusing a cursor of another sort or direction."""
    try:
        decoded = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, binascii.Error):  # UnicodeDecodeError and JSONDecodeError too
        decoded = None
    if isinstance(decoded, list) and len(decoded) == 4 and decoded[:2] == [sort, direction]:
        value, after_id = decoded[2], decoded[3]
        # What the column could hold: an INTEGER price, or text without NUL (PostgreSQL
        # refuses NUL in text parameters).
        value_fits = (type(value) is int and abs(value) <= MAX_INT if sort == "price"
                      else isinstance(value, str) and len(value) <= 200 and "\x00" not in value)
        if value_fits and type(after_id) is int and 0 < after_id <= MAX_INT:
            return value, after_id
    raise InvalidCursor("The cursor is not one this listing handed out; start again without it.",
                        errors={"cursor": "Use the next link of a response, unchanged."})


async def product_slice(
    db: AsyncSession, *, q: str, category_id: int | None, sort: str, direction: str,
    cursor: str | None, limit: int,
) -> ProductSlice:
    """Products matching every word of ``q`` (all when it has none), of one category if given,
    ordered by ``sort`` then id, from after ``cursor``: a keyset (WHERE (sort, id) > last), so
    a deep page costs what the first does. An unknown category is a 404."""
    if sort not in SORTS or direction not in DIRECTIONS:
        raise InvalidInput(f"Sort by one of {', '.join(SORTS)}, asc or desc.")
    column = SORTS[sort]
    query = select(Product)
    if category_id is not None:
        category = await db.get(Category, category_id) if 0 < category_id <= MAX_INT else None
        if category is None:
            raise NotFound("There is no such category.")
        query = query.where(Product.category_id == category_id)
    words = search.terms(q)
    if words:
        query = query.where(Product.id.in_(
            search.matching_ids(db.get_bind().dialect.name, words)))
    after = _decode_cursor(cursor, sort, direction) if cursor is not None else None
    query = _seek(query, sort, direction, after)
    rows = list(await db.scalars(query.limit(limit + 1)))
    shown = rows[:limit]
    prior = await prices.prior_prices(db, [row.id for row in shown])
    if len(rows) <= limit:
        return ProductSlice(shown, prior, None)
    last_row = shown[-1]
    value = getattr(last_row, column.key)
    return ProductSlice(shown, prior, _encode_cursor(sort, direction, value, last_row.id))

