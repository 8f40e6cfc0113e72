"""Writes under contention, through the served app (issue 11, finding 2): 20 admins' edits of
20 product rows and 20 adds, all at once, wait their turn; none is a 500 (on SQLite, a
SAVEPOINT then an update of a table with search-index triggers failed at once with "database is
locked" while another writer held the lock)."""

from __future__ import annotations

import asyncio
import re

from sqlalchemy import func, select

from electro.db import make_engine, make_sessionmaker
from electro.models import Category, Product, User
from tests.support.browser import LiveServer, live_request, session_cookie

ROWS = 20


async def _admin_with_products(live_server: LiveServer, database_url: str) -> tuple[str, list[int]]:
    """An admin's signed session cookie, and ROWS products, in the server's database."""
    engine = make_engine(database_url)
    try:
        async with make_sessionmaker(engine).begin() as db:
            admin = User(username="admin", email="admin@example.com", password_hash="x",
                         is_admin=True)
            category = Category(name="Cables")
            db.add_all([admin, category])
            await db.flush()
            products = [Product(name=f"Cable {n}", company="Acme", category_id=category.id,
                                price_cents=100, stock=1) for n in range(ROWS)]
            db.add_all(products)
            cookie = await session_cookie(live_server, db, admin)
            await db.flush()
            ids = [p.id for p in products]
    finally:
        await engine.dispose()
    return f"{cookie['name']}={cookie['value']}", ids


async def test_parallel_edits_and_adds_wait_their_turn(
    live_server: LiveServer, database_url: str
) -> None:
    auth_cookie, ids = await _admin_with_products(live_server, database_url)
    status, page, set_cookie = await asyncio.to_thread(
        live_request, f"{live_server.url}/admin/tables/products", auth_cookie)
    assert status == 200
    token = re.search(r'"X-CSRF-Token": "([^"]+)"', page)
    assert token, "the page carries the CSRF token"
    cookie = f"{auth_cookie}; {set_cookie.split(';', 1)[0]}"
    base = f"{live_server.url}/admin/tables/products"
    edits = [asyncio.to_thread(live_request, f"{base}/{row_id}/edit", cookie, {
        "csrf_token": token.group(1), "version": "1", "price": "12.34"}) for row_id in ids]
    adds = [asyncio.to_thread(live_request, f"{base}/add", cookie, {
        "csrf_token": token.group(1), "name": f"Hub {n}", "company": "Acme",
        "category": "Cables", "price": "9.99", "stock": "3", "description": ""})
        for n in range(ROWS)]
    answers = await asyncio.gather(*edits, *adds)
    statuses = [status for status, _, _ in answers]
    assert all(status < 500 for status in statuses), statuses
    assert statuses.count(303) == 2 * ROWS, statuses  # each saved, none refused
    engine = make_engine(database_url)
    try:
        async with make_sessionmaker(engine)() as db:
            repriced = await db.scalar(select(func.count()).select_from(Product)
                                       .where(Product.price_cents == 1234))
            added = await db.scalar(select(func.count()).select_from(Product)
                                    .where(Product.name.like("Hub %")))
    finally:
        await engine.dispose()
    assert (repriced, added) == (ROWS, ROWS)
