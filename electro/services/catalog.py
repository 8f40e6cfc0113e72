"""Catalogue reads."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from electro.models import Category, Product


async def categories_with_counts(db: AsyncSession) -> list[tuple[Category, int]]:
    query = (
        select(Category, func.count(Product.id))
        .outerjoin(Product, Product.category_id == Category.id)
        .group_by(Category.id)
        .order_by(Category.name)
    )
    return [(c, n) for c, n in (await db.execute(query)).all()]
