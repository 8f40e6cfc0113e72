"""A small catalogue written through the app's own database session, with price histories."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, insert, update
from sqlalchemy.ext.asyncio import AsyncSession

from electro import clock
from electro.models import Category, PriceChange, Product

# (name, company, category, price_cents, reduced_from, description): reduced_from is the price
# of the 60 days before a reduction to price_cents yesterday (None: no reduction).
CATALOGUE = [
    ("Lumen Phone Pro 12", "Lumen", "Phones", 79_900, 89_900, "A bright OLED phone."),
    ("Kestrel Laptop Air 14", "Kestrel Labs", "Laptops", 129_999, None, "Light and quiet."),
    ("Café Racer Speaker", "Sonder", "Audio", 4_999, None, "Warm sound for small rooms."),
    ("Studio Monitor 27", "Lumen", "Monitors", 34_950, None, "Colour-accurate panel."),
    ("Quiet Keyboard", "Helix", "Keyboards", 8_900, 9_900, "Pairs with a Lumen phone."),
    ("Pixel Camera X", "Orbital", "Cameras", 54_900, None, "Lumens of light in a tiny body."),
    ("Smart Plug", "Müller Technik", "Smart home", 1_999, None, "Schaltet Lampen. Café-ready."),
    ("<script>alert(1)</script> Cable", "Evil & Co", "Networking", 500, None, "Tag test."),
]


async def insert_catalogue(db: AsyncSession, rows: list[tuple[Any, ...]]) -> dict[str, int]:
    """Adds the rows (categories created as needed); returns product ids by name."""
    categories = {name: Category(name=name) for name in dict.fromkeys(r[2] for r in rows)}
    db.add_all(categories.values())
    await db.flush()
    products = [
        Product(name=name, company=company, category_id=categories[category].id,
                price_cents=price, description=description, stock=3)
        for name, company, category, price, _reduced_from, description in rows
    ]
    db.add_all(products)
    await db.flush()
    now = clock.now()
    for product, (*_, price, reduced_from, _description) in zip(products, rows, strict=True):
        if reduced_from is not None:
            await write_history(db, product.id, [(now - timedelta(days=60), reduced_from),
                                                 (now - timedelta(days=1), price)])
    return {p.name: p.id for p in products}


async def write_history(
    db: AsyncSession, product_id: int, changes: Sequence[tuple[datetime, int]]
) -> None:
    """Gives the product this price history (oldest first) and the last price of it, as if
    the changes had happened then (the triggers date changes now, so the history is rewritten
    after the price is set)."""
    await db.execute(update(Product).where(Product.id == product_id)
                     .values(price_cents=changes[-1][1], version=Product.version + 1))
    await db.execute(delete(PriceChange).where(PriceChange.product_id == product_id))
    await db.execute(insert(PriceChange), [
        {"product_id": product_id, "changed_at": moment, "price_cents": cents}
        for moment, cents in changes
    ])


async def add_catalogue(app: Any, rows: list[tuple[Any, ...]] | None = None) -> dict[str, int]:
    async with app.extensions["electro"].sessions.begin() as db:
        return await insert_catalogue(db, rows or CATALOGUE)
