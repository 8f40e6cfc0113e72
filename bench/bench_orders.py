"""Checkout benchmark (issue 13): orders/s and p99 of ``POST /checkout`` with 8 and 32 shoppers
checking out at once, each on a product of their own and all on the same product; and the p99
of the htmx "Add to basket" answer beside ``/healthz`` (the framework's own floor).

Seeds a temporary SQLite instance straight through the models (products, shoppers with a live
session and one unit in their basket), serves it with ``electro serve`` (one worker, rate limits
off) and drives it from threads of this process: each shopper first GETs /checkout (untimed:
the cookie, CSRF and one-time tokens), then all post at once and only the posts are timed.

Run: ``.venv/bin/python bench/bench_orders.py`` (well under a minute).
"""

from __future__ import annotations

import asyncio
import http.client
import re
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlencode

import support
from sqlalchemy import select

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from electro.app import create_app
from electro.db import make_engine, make_sessionmaker
from electro.models import Basket, BasketLine, Category, Product, User
from electro.services import sessions

ROUNDS = 4  # checkouts per shopper slot: 8 x 4 = 32 and 32 x 4 = 128 orders per scenario
CONCURRENCY = (8, 32)
ADDS = 400  # htmx add-to-basket requests per concurrency level
ADDRESS = {"name": "Bench Shopper", "street": "Main Street 1", "postcode": "10115",
           "city": "Berlin", "country": "Germany", "payment": "cash_on_delivery"}


async def seed(env: dict[str, str], shoppers: int) -> tuple[list[str], list[int]]:
    """``shoppers`` accounts with a live session each (their cookies) and as many products,
    plenty in stock; baskets are filled per scenario."""
    signer = create_app({"secret_key": env["ELECTRO_SECRET_KEY"],
                         "instance_dir": Path(env["ELECTRO_INSTANCE_DIR"])})
    settings = signer.extensions["electro"].settings
    auth = signer.extensions["QUART_AUTH"][0]
    engine = make_engine(settings.database)
    try:
        async with make_sessionmaker(engine).begin() as db:
            category = Category(name="Bench")
            db.add(category)
            await db.flush()
            products = [Product(name=f"Bench phone {n}", company="Acme", category_id=category.id,
                                price_cents=100_00, stock=1_000_000) for n in range(shoppers)]
            users = [User(username=f"shopper{n}", email=f"shopper{n}@example.com",
                          password_hash="x") for n in range(shoppers)]
            db.add_all([*products, *users])
            await db.flush()
            db.add_all([Basket(user_id=user.id) for user in users])
            cookies = []
            for user in users:
                token = await sessions.start_session(db, settings, user, "127.0.0.1", "bench")
                cookies.append(f"{auth.cookie_name}={auth.dump_token(token, app=signer)}")
    finally:
        await engine.dispose()
    return cookies, [p.id for p in products]


async def fill_baskets(env: dict[str, str], product_ids: list[int]) -> None:
    """Shopper n's basket: one unit of ``product_ids[n]``."""
    engine = make_engine(env["ELECTRO_DATABASE_URL"])
    try:
        async with make_sessionmaker(engine).begin() as db:
            baskets = (await db.execute(select(Basket.id).where(Basket.user_id.is_not(None))
                                        .order_by(Basket.user_id))).all()
            db.add_all([BasketLine(basket_id=basket.id, product_id=product_id,
                                   product_name="Bench phone", quantity=1)
                        for basket, product_id in zip(baskets, product_ids, strict=False)])
    finally:
        await engine.dispose()


def checkout_form(port: int, cookie: str) -> tuple[str, str]:
    """GET /checkout: the cookies to send and the form body to post."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    conn.request("GET", "/checkout", headers={"Cookie": cookie})
    response = conn.getresponse()
    page = response.read().decode()
    conn.close()
    fields = {name: re.search(rf'name="{name}" value="([^"]*)"', page)[1]  # type: ignore[index]
              for name in ("csrf_token", "checkout_token", "expected_total")}
    session = (response.getheader("Set-Cookie") or "").split(";", 1)[0]
    return f"{cookie}; {session}", urlencode({**fields, **ADDRESS})


def p99(latencies: list[float]) -> float:
    return statistics.quantiles(latencies, n=100)[98] * 1000


async def checkout_round(env: dict[str, str], port: int, cookies: list[str],
                         product_ids: list[int]) -> tuple[list[float], float]:
    """One order per shopper, all posted at once: (latencies, wall-clock seconds)."""
    await fill_baskets(env, product_ids)
    with ThreadPoolExecutor(max_workers=8) as pool:
        forms = list(pool.map(lambda cookie: checkout_form(port, cookie), cookies))
    barrier = threading.Barrier(len(forms))

    def post(form: tuple[str, str]) -> float:
        barrier.wait()
        return support.timed_post(port, "/checkout", form[0], form[1], 303)

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=len(forms)) as pool:
        latencies = list(pool.map(post, forms))
    return latencies, time.perf_counter() - started


def add_to_basket_p99(port: int, connections: int, cookie_and_token: tuple[str, str]) -> float:
    cookie, token = cookie_and_token
    body = urlencode({"csrf_token": token, "product_id": "1", "quantity": "1"})
    with ThreadPoolExecutor(max_workers=connections) as pool:
        return p99(list(pool.map(
            lambda _: support.timed_post(port, "/basket/items", cookie, body, 200,
                                 {"HX-Request": "true"}), range(ADDS))))


def healthz_p99(port: int, connections: int) -> float:
    with ThreadPoolExecutor(max_workers=connections) as pool:
        return p99(list(pool.map(lambda _: support.timed_get(port, "/healthz"), range(ADDS))))


def anonymous_visitor(port: int) -> tuple[str, str]:
    """A visitor's session cookie and CSRF token (from the home page)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    conn.request("GET", "/")
    response = conn.getresponse()
    page = response.read().decode()
    conn.close()
    token = re.search(r'"X-CSRF-Token": "([^"]+)"', page)[1]  # type: ignore[index]
    return (response.getheader("Set-Cookie") or "").split(";", 1)[0], token


def main() -> None:
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        env = support.instance_env(Path(folder))
        env["ELECTRO_DATABASE_URL"] = f"sqlite+aiosqlite:///{folder}/electro.db"
        support.electro(env, "init-db")
        shoppers = max(CONCURRENCY)
        cookies, product_ids = asyncio.run(seed(env, shoppers))
        with support.server(env) as port:
            for connections in CONCURRENCY:
                for label, products in (("own products", product_ids),
                                        ("same product", [product_ids[0]] * shoppers)):
                    latencies: list[float] = []
                    seconds = 0.0
                    for _ in range(ROUNDS):
                        took, wall = asyncio.run(checkout_round(
                            env, port, cookies[:connections], products[:connections]))
                        latencies += took
                        seconds += wall
                    rows.append((f"checkout, {label}", connections,
                                 len(latencies) / seconds, p99(latencies)))
                visitor = anonymous_visitor(port)
                rows.append(("add to basket (htmx)", connections, 0.0,
                             add_to_basket_p99(port, connections, visitor)))
                rows.append(("/healthz (baseline)", connections, 0.0,
                             healthz_p99(port, connections)))
    print(f"{'what':<26} {'shoppers':>8} {'orders/s':>9} {'p99 ms':>8}")
    for what, connections, rate, latency in rows:
        shown = f"{rate:>9.1f}" if rate else f"{'':>9}"
        print(f"{what:<26} {connections:>8} {shown} {latency:>8.1f}")


if __name__ == "__main__":
    main()
