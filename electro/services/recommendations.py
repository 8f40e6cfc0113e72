"""Recommendations (B6): products picked for one shopper, for "Recommended for you" on
/account and the picks in each newsletter (B2).

The interface is settled here so the newsletter and the recommender can be built side by side;
until the model lands the picks are the newest products in stock."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from electro.models import Product


async def for_shopper(db: AsyncSession, user_id: int, limit: int) -> list[Product]:
    """Up to ``limit`` products in stock picked for the shopper ``user_id``, best first."""
    del user_id  # the model (B6) uses it
    query = (select(Product).where(Product.stock > 0)
             .order_by(Product.created_at.desc(), Product.id.desc()).limit(limit))
    return list(await db.scalars(query))
