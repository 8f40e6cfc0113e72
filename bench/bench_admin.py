"""Group actions on 10,000 accounts and 10,000 orders through the admin-tables service (goal:
< 1 s each).

Seeds two groups of 10,000 users, each user with a live session, into a temporary SQLite
database (and into a scratch PostgreSQL database when one is reachable at ELECTRO_BENCH_PG_URL,
by default postgresql+asyncpg://electro@127.0.0.1:5432/test). On the first group it times
deactivate, activate, send test e-mail and delete; on the second, block until a date, lift the
blocks and delete accounts that carry (lifted) blocks. Then, on 10,000 bank-transfer orders, it
times mark paid and mark shipped, and on 10,000 cash-on-delivery orders, cancel (which gives
the stock back); every moved order queues its shopper's mail. Each action runs in its own
transaction, commit included. Blocking queues one notice mail per owner (one multi-row INSERT),
and deleting accounts with blocks relies on migration 0003's indexes on the columns that refer
to users.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path

from sqlalchemy import insert, select

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import support

from electro import clock
from electro.config import load_settings
from electro.db import make_engine, make_sessionmaker
from electro.migrate import upgrade
from electro.models import Category, Order, OrderLine, Product, User, UserSession
from electro.services.admin.crud import run_action
from electro.services.admin.tables import TABLES
from electro.services.events import Actor

ROWS = 10_000
PLAIN = ("deactivate", "activate", "send_test_mail", "delete")
BLOCKING = ("block_accounts", "lift_account_blocks", "delete")


async def seed(sessions: object) -> tuple[int, list[int], list[int]]:
    now = clock.now()
    async with sessions.begin() as db:  # type: ignore[attr-defined]
        admin = (await db.execute(insert(User).values({
            "username": "bench-admin", "email": "bench-admin@example.com",
            "password_hash": "x", "is_admin": True}).returning(User.id))).scalar_one()
        ids = list((await db.scalars(
            insert(User).returning(User.id, sort_by_parameter_order=True),
            [{"username": f"user{i:05d}", "email": f"user{i:05d}@example.com",
              "password_hash": "x"} for i in range(2 * ROWS)])).all())
        await db.execute(insert(UserSession), [
            {"token_hash": uuid.uuid4().hex * 2, "user_id": user_id, "ip": "192.0.2.1",
             "user_agent": "bench", "created_at": now, "last_seen_at": now} for user_id in ids])
    return admin, ids[:ROWS], ids[ROWS:]


async def seed_orders(sessions: object, status: str, prefix: str) -> list[int]:
    """ROWS orders in ``status``, each of one unit of one product."""
    async with sessions.begin() as db:  # type: ignore[attr-defined]
        category = (await db.execute(insert(Category).values(name=f"Bench {prefix}")
                                     .returning(Category.id))).scalar_one()
        product = (await db.execute(insert(Product).values(
            name="Bench phone", category_id=category, price_cents=1000, stock=0)
            .returning(Product.id))).scalar_one()
        ids = list((await db.scalars(
            insert(Order).returning(Order.id, sort_by_parameter_order=True),
            [{"number": f"{prefix}{i:05d}", "email": f"buyer{i:05d}@example.com",
              "status": status, "name": "Buyer", "street": "S 1",
              "payment": "bank_transfer" if status == "awaiting_payment" else "cash_on_delivery",
              "postcode": "10115", "city": "Berlin", "country": "Germany",
              "subtotal_cents": 1000, "delivery_cents": 495, "total_cents": 1495,
              "checkout_hash": f"{prefix}{i:05d}".ljust(64, "0"), "created_at": clock.now()}
             for i in range(ROWS)])).all())
        await db.execute(insert(OrderLine), [
            {"order_id": order_id, "product_id": product, "name": "Bench phone",
             "unit_price_cents": 1000, "quantity": 1} for order_id in ids])
    return ids


ORDER_ACTIONS = (("awaiting_payment", ("mark_paid", "mark_shipped")), ("confirmed", ("cancel",)))


async def run(url: str, label: str) -> list[tuple[str, str, int, float]]:
    engine = make_engine(url)
    await upgrade(engine)
    sessions = make_sessionmaker(engine)
    admin, plain, blocked = await seed(sessions)
    settings = load_settings(environ={}, overrides={"database_url": url})
    actor = Actor(admin, "bench-admin")
    form = {"until": (clock.now() + timedelta(days=1)).isoformat(), "reason": "bench"}
    results = []
    for group, actions in ((plain, PLAIN), (blocked, BLOCKING)):
        raw = [str(i) for i in group]
        for action in actions:
            started = time.perf_counter()
            async with sessions.begin() as db:
                result = await run_action(db, settings, TABLES["users"], action, raw, form,
                                          actor=actor, confirmed=True)
            seconds = time.perf_counter() - started
            assert result.count == ROWS, (action, result.message)
            name = "delete (with blocks)" if group is blocked and action == "delete" else action
            results.append((label, name, result.count, seconds))
    for prefix, (status, actions) in zip("PC", ORDER_ACTIONS, strict=True):
        raw = [str(i) for i in await seed_orders(sessions, status, prefix)]
        for action in actions:
            started = time.perf_counter()
            async with sessions.begin() as db:
                result = await run_action(db, settings, TABLES["orders"], action, raw, {},
                                          actor=actor, confirmed=True)
            seconds = time.perf_counter() - started
            assert result.count == ROWS, (action, result.message)
            results.append((label, f"orders: {action}", result.count, seconds))
    async with sessions() as db:
        left = (await db.execute(select(User.id))).scalars().all()
        assert left == [admin], "delete removed every ticked account"
    await engine.dispose()
    return results




async def main() -> None:
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        rows += await run(f"sqlite+aiosqlite:///{folder}/bench.db", "SQLite")
    async with support.scratch_postgresql() as url:
        if url is not None:
            rows += await run(url, "PostgreSQL")
    print(f"{'database':<11} {'action':<20} {'rows':>6} {'seconds':>8} {'rows/s':>9}  goal < 1 s")
    for label, action, count, seconds in rows:
        verdict = "ok" if seconds < 1 else "SLOW"
        print(f"{label:<11} {action:<20} {count:>6} {seconds:>8.3f} {count / seconds:>9,.0f}"
              f"  {verdict}")


if __name__ == "__main__":
    asyncio.run(main())
