"""Catalogue reads (S1): categories, a category's products sorted and paginated, one product."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from electro.errors import NotFound
from electro.inputs import MAX_INT
from electro.models import Category, Product
from electro.services import prices
from electro.services.paging import clamp

PAGE_SIZE = 24
SORTS = {"name": Product.name, "company": Product.company, "price": Product.price_cents}
DIRECTIONS = ("asc", "desc")


@dataclass(frozen=True)
class CategoryPage:
    category: Category
    products: list[Product]
    sort: str
    direction: str
    page: int
    pages: int
    total: int
    prior_prices: dict[int, int]  # product id -> prior price, for the reductions shown (B1)


@dataclass(frozen=True)
class ProductPage:
    product: Product
    category: Category
    prior_price_cents: int | None  # shown with the price when it announces a reduction (B1)


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


async def category_page(
    db: AsyncSession, category_id: int, sort: str, direction: str, page: int
) -> CategoryPage:
    """Unknown sort keys fall back to name ascending; the page is clamped to 1..last."""
    category = await db.get(Category, category_id) if 0 < category_id <= MAX_INT else None
    if category is None:
        raise NotFound("There is no such category.")
    sort = sort if sort in SORTS else "name"
    direction = direction if direction in DIRECTIONS else "asc"
    total = await db.scalar(
        select(func.count(Product.id)).where(Product.category_id == category_id)
    ) or 0
    page, pages = clamp(page, total, PAGE_SIZE)
    column = SORTS[sort]
    order = column.asc() if direction == "asc" else column.desc()
    products = list(await db.scalars(
        select(Product)
        .where(Product.category_id == category_id)
        .order_by(order, Product.id.asc() if direction == "asc" else Product.id.desc())
        .limit(PAGE_SIZE)
        .offset((page - 1) * PAGE_SIZE)
    ))
    reductions = await prices.prior_prices(db, [p.id for p in products])
    return CategoryPage(category, products, sort, direction, page, pages, total, reductions)


async def product(db: AsyncSession, product_id: int) -> ProductPage:
    if not 0 < product_id <= MAX_INT:
        raise NotFound("There is no such product.")
    row = (
        await db.execute(
            select(Product, Category)
            .join(Category, Category.id == Product.category_id)
            .where(Product.id == product_id)
        )
    ).first()
    if row is None:
        raise NotFound("There is no such product.")
    item, category = row
    reductions = await prices.prior_prices(db, [item.id])
    return ProductPage(item, category, reductions.get(item.id))
