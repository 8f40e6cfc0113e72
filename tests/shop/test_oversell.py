"""Never oversell (issue 13): 200 shoppers check out the last 10 units at once, as real
concurrent HTTP requests to the served app (hypercorn, the test's SQLite or PostgreSQL
database). Exactly 10 are sold, the stock ends at 0, the 190 others get a clear refusal, and
no request fails with a 5xx or a deadlock."""

from __future__ import annotations

import asyncio
import re
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from electro.app import create_app
from electro.db import make_engine, make_sessionmaker
from electro.models import Basket, BasketLine, Category, Order, OrderLine, Product, User
from electro.services import sessions
from tests.support.browser import LiveServer, live_request

SHOPPERS = 200
STOCK = 10


async def _shoppers_with_the_product_in_their_basket(
    live_server: LiveServer, database_url: str, shoppers: int = SHOPPERS
) -> tuple[int, list[str]]:
    """The product (STOCK in stock) and ``shoppers`` signed-in shoppers' session cookies, each
    with one unit in their basket, written straight into the server's database."""
    signer = create_app({"secret_key": live_server.env["ELECTRO_SECRET_KEY"],
                         "instance_dir": Path(live_server.env["ELECTRO_INSTANCE_DIR"])})
    settings = signer.extensions["electro"].settings
    auth = signer.extensions["QUART_AUTH"][0]
    engine = make_engine(database_url)
    try:
        async with make_sessionmaker(engine).begin() as db:
            category = Category(name="Phones")
            db.add(category)
            await db.flush()
            product = Product(name="Last Phone", company="Acme", category_id=category.id,
                              price_cents=100_00, stock=STOCK)
            users = [User(username=f"shopper{n}", email=f"shopper{n}@example.com",
                          password_hash="x") for n in range(shoppers)]
            db.add_all([product, *users])
            await db.flush()
            baskets = [Basket(user_id=user.id) for user in users]
            db.add_all(baskets)
            await db.flush()
            db.add_all([BasketLine(basket_id=b.id, product_id=product.id,
                                   product_name=product.name, quantity=1) for b in baskets])
            cookies = []
            for user in users:
                token = await sessions.start_session(db, settings, user, "127.0.0.1", "test")
                cookies.append(f"{auth.cookie_name}={auth.dump_token(token, app=signer)}")
    finally:
        await engine.dispose()
    return product.id, cookies


def _checkout_form(url: str, cookie: str) -> tuple[str, dict[str, str]]:
    """GET /checkout as the shopper: the cookie with the CSRF session, and the form to post."""
    status, page, set_cookie = live_request(f"{url}/checkout", cookie)
    assert status == 200, page[:500]
    values = {name: re.search(rf'name="{name}" value="([^"]*)"', page)[1]  # type: ignore[index]
              for name in ("csrf_token", "checkout_token", "expected_total")}
    form = {**values, "name": "Shopper", "street": "Main Street 1", "postcode": "10115",
            "city": "Berlin", "country": "Germany", "payment": "cash_on_delivery"}
    return f"{cookie}; {set_cookie.split(';', 1)[0]}", form


async def _count(database_url: str, query: Any) -> int:
    engine = make_engine(database_url)
    try:
        async with make_sessionmaker(engine)() as db:
            return int(await db.scalar(query) or 0)
    finally:
        await engine.dispose()


async def test_200_shoppers_at_once_buy_exactly_the_10_in_stock(
    live_server: LiveServer, database_url: str
) -> None:
    product_id, cookies = await _shoppers_with_the_product_in_their_basket(
        live_server, database_url)
    url = live_server.url
    with ThreadPoolExecutor(max_workers=8) as pool:  # the forms, a few at a time
        forms = list(pool.map(lambda cookie: _checkout_form(url, cookie), cookies))
    start = threading.Barrier(SHOPPERS)

    def submit(cookie: str, form: dict[str, str]) -> tuple[int, str, str]:
        start.wait()  # all 200 posts leave together
        return live_request(f"{url}/checkout", cookie, form)

    loop = asyncio.get_running_loop()
    with ThreadPoolExecutor(max_workers=SHOPPERS) as pool:
        answers = await asyncio.gather(*(
            loop.run_in_executor(pool, submit, cookie, form) for cookie, form in forms))
    statuses = [status for status, _, _ in answers]
    assert all(status < 500 for status in statuses), sorted(set(statuses))
    assert statuses.count(303) == STOCK, statuses
    refusals = [body for status, body, _ in answers if status != 303]
    assert len(refusals) == SHOPPERS - STOCK
    assert all(status == 409 for status in statuses if status != 303)
    assert all("“Last Phone”: you asked for 1, sold out." in body for body in refusals)
    assert await _count(database_url, select(Product.stock).where(Product.id == product_id)) == 0
    assert await _count(database_url, select(func.count(Order.id))) == STOCK
    assert await _count(database_url, select(func.sum(OrderLine.quantity))) == STOCK


async def test_one_form_submitted_five_times_at_once_makes_one_order(
    live_server: LiveServer, database_url: str
) -> None:
    """A double click, concurrently: the repeats wait for the first submit's one-time token to
    commit, then answer with its order."""
    product_id, (cookie,) = await _shoppers_with_the_product_in_their_basket(
        live_server, database_url, shoppers=1)
    cookie, form = await asyncio.to_thread(_checkout_form, live_server.url, cookie)
    repeats = 5
    start = threading.Barrier(repeats)

    def submit() -> tuple[int, str, str]:
        start.wait()
        return live_request(f"{live_server.url}/checkout", cookie, form)

    loop = asyncio.get_running_loop()
    with ThreadPoolExecutor(max_workers=repeats) as pool:
        answers = await asyncio.gather(*(loop.run_in_executor(pool, submit)
                                         for _ in range(repeats)))
    assert [status for status, _, _ in answers] == [303] * repeats
    assert await _count(database_url, select(func.count(Order.id))) == 1
    assert await _count(database_url, select(Product.stock).where(
        Product.id == product_id)) == STOCK - 1
