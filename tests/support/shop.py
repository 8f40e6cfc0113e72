"""A small catalogue written through the app's own database session."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from electro.models import Category, Product

# (name, company, category, price_cents, old_price_cents, description)
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
                price_cents=price, old_price_cents=old, description=description, stock=3)
        for name, company, category, price, old, description in rows
    ]
    db.add_all(products)
    await db.flush()
    return {p.name: p.id for p in products}


async def add_catalogue(app: Any, rows: list[tuple[Any, ...]] | None = None) -> dict[str, int]:
    async with app.extensions["electro"].sessions.begin() as db:
        return await insert_catalogue(db, rows or CATALOGUE)
