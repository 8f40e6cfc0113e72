"""Demo shoppers with planted tastes (``electro seed-demo --shoppers N``, SPEC B6), so the demo's
recommendations and bench/bench_recommend.py have real structure to find.

Each shopper has two favourite device categories and two favourite companies, and buys what
is popular more often than what is not (a skewed pick within a category and company). An order
is a device, often with one of that device's accessories (a few fixed products of the same
company in the categories that go with the device's), or an accessory for a device bought in an
earlier order. Shoppers and orders are written with one executemany per batch.
"""

from __future__ import annotations

import random
import secrets
from collections import defaultdict
from datetime import timedelta

from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession
from tqdm import tqdm

from electro import clock
from electro.config import Settings
from electro.db import make_sessionmaker, opened
from electro.models import Category, Order, OrderLine, Product, User
from electro.security.passwords import Passwords
from electro.services.orders import PAID, SHIPPED, new_number

# A device category -> the categories its accessories come from.
ACCESSORIES = {
    "Laptops": ["Keyboards", "Storage", "Monitors"],
    "Phones": ["Headphones", "Audio"],
    "Tablets": ["Keyboards", "Headphones"],
    "Cameras": ["Storage"],
    "Gaming": ["Monitors", "Headphones"],
    "Smart home": ["Networking"],
}
ACCESSORIES_PER_DEVICE = 3
ORDERS = (2, 8)  # orders per shopper, at least and at most
DAYS = 180  # orders are spread over this many days before now
BATCH = 5000
USERNAME_PREFIX = "shopper"

Item = tuple[int, int]  # (product id, price in cents)


class Catalogue:
    """The demo catalogue's products grouped by category and company, for picking."""

    def __init__(self, rows: list[tuple[int, str, str, str, int]]) -> None:
        self.by_category: dict[str, list[Item]] = defaultdict(list)
        self.by_shelf: dict[tuple[str, str], list[Item]] = defaultdict(list)
        self.names = {product_id: name for product_id, name, *_ in rows}
        self.company = {product_id: company for product_id, _, _, company, _ in rows}
        for product_id, _name, category, company, price in rows:
            self.by_category[category].append((product_id, price))
            self.by_shelf[(category, company)].append((product_id, price))
        self.devices = [c for c in ACCESSORIES if self.by_category[c]]
        self.companies = sorted({company for _, company in self.by_shelf})

    def accessories(self, device: Item, category: str, company: str) -> list[Item]:
        """The device's few accessories: the same every time it is bought."""
        found: list[Item] = []
        for accessory_category in ACCESSORIES[category]:
            shelf = (self.by_shelf.get((accessory_category, company))
                     or self.by_category[accessory_category])
            if shelf:
                found += [shelf[(device[0] * (k + 7)) % len(shelf)]
                          for k in range(ACCESSORIES_PER_DEVICE)]
        return found


def _popular_pick(rng: random.Random, items: list[Item]) -> Item:
    """Mostly the first (popular) items of a list, sometimes any."""
    return items[int(len(items) * rng.random() ** 3)]


def plan_orders(rng: random.Random, shop: Catalogue) -> list[list[Item]]:
    """One shopper's orders, oldest first: lists of products."""
    favourite_categories = rng.sample(shop.devices, min(2, len(shop.devices)))
    favourite_companies = rng.sample(shop.companies, min(2, len(shop.companies)))
    owned: list[tuple[Item, str, str]] = []  # (device, its category, its company)
    orders: list[list[Item]] = []
    for _ in range(rng.randint(*ORDERS)):
        if owned and rng.random() < 0.4:
            device, category, company = rng.choice(owned)
            orders.append([rng.choice(shop.accessories(device, category, company))])
            continue
        category = (rng.choice(favourite_categories) if rng.random() < 0.8
                    else rng.choice(shop.devices))
        company = rng.choice(favourite_companies) if rng.random() < 0.7 else ""
        shelf = shop.by_shelf.get((category, company)) or shop.by_category[category]
        device = _popular_pick(rng, shelf)
        company = shop.company[device[0]]
        order = [device]
        accessories = shop.accessories(device, category, company)
        if accessories and rng.random() < 0.6:
            order.append(rng.choice(accessories))
        owned.append((device, category, company))
        orders.append(order)
    return orders


async def seed(settings: Settings, shoppers: int, only_if_none: bool) -> None:
    rng = random.Random(11)  # the same demo shoppers every time  # noqa: S311
    # Nobody knows this password: demo shoppers exist to be recommended to, not to sign in.
    password_hash = await Passwords(settings).hash(secrets.token_urlsafe(24))
    async with opened(settings.database) as engine, make_sessionmaker(engine).begin() as db:
        if only_if_none and await db.scalar(select(func.count(Order.id))):
            print("there are orders already; no demo shoppers added")
            return
        rows = (await db.execute(select(Product.id, Product.name, Category.name,
                                        Product.company, Product.price_cents)
                                 .join(Category, Category.id == Product.category_id)
                                 .order_by(Product.id))).tuples().all()
        shop = Catalogue(list(rows))
        if not shop.devices:
            print("no demo products to buy: run seed-demo --products first")
            return
        first = (await db.scalar(select(func.max(User.id))) or 0) + 1
        for start in tqdm(range(0, shoppers, BATCH), desc="shoppers", unit="batch",
                          disable=shoppers < BATCH):
            count = min(BATCH, shoppers - start)
            await _add_batch(db, rng, shop, range(first + start, first + start + count),
                             password_hash)
    print(f"seeded {shoppers} demo shoppers with their orders")


async def _add_batch(
    db: AsyncSession, rng: random.Random, shop: Catalogue, numbers: range, password_hash: str
) -> None:
    users = [{"username": f"{USERNAME_PREFIX}{n}", "email": f"{USERNAME_PREFIX}{n}@example.com",
              "password_hash": password_hash, "is_active": True, "is_admin": False,
              "failed_logins": 0, "version": 1} for n in numbers]
    user_ids = list(await db.scalars(
        insert(User).returning(User.id, sort_by_parameter_order=True), users))
    now = clock.now()
    orders: list[dict[str, object]] = []
    contents: list[list[Item]] = []
    for user_id, user in zip(user_ids, users, strict=True):
        planned = plan_orders(rng, shop)
        moments = sorted(now - timedelta(days=rng.uniform(1, DAYS)) for _ in planned)
        for moment, items in zip(moments, planned, strict=True):
            subtotal = sum(price for _, price in items)
            orders.append({
                "number": new_number(), "user_id": user_id, "email": user["email"],
                "status": rng.choice((PAID, SHIPPED)), "payment": "bank_transfer",
                "name": f"Demo {user['username']}", "street": "1 Demo Street",
                "postcode": "10115", "city": "Berlin", "country": "Germany",
                "subtotal_cents": subtotal, "delivery_cents": 0, "total_cents": subtotal,
                "checkout_hash": secrets.token_hex(32), "created_at": moment, "paid_at": moment,
            })
            contents.append(items)
    order_ids = list(await db.scalars(
        insert(Order).returning(Order.id, sort_by_parameter_order=True), orders))
    lines = [{"order_id": order_id, "product_id": pid, "name": shop.names[pid],
              "unit_price_cents": price, "quantity": 1}
             for order_id, items in zip(order_ids, contents, strict=True)
             for pid, price in dict(items).items()]
    await db.execute(insert(OrderLine), lines)
