"""Honest discounts (SPEC B1): the price history and the prior-price rule, on both databases."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any

import pytest
from alembic import command
from sqlalchemy import event, func, select, text, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from electro import cli, clock
from electro.db import make_engine
from electro.migrate import alembic_config, upgrade
from electro.models import PriceChange, Product
from electro.services import prices
from tests.support.admin import hidden
from tests.support.shop import add_catalogue, write_history

SENTENCE = "Lowest price in the 30 days before the reduction: "
# Whole seconds: the reduction in each case below is a round number of days after the others.
NOW = datetime(2026, 11, 20, 12, 0, 0)


def days_ago(days: float) -> datetime:
    return NOW - timedelta(days=days)


@pytest.fixture
async def one_product(app: Any) -> int:
    ids = await add_catalogue(app, [("Probe", "Acme", "Tests", 100_00, None, "")])
    return ids["Probe"]


async def prior_after(app: Any, product_id: int, changes: list[tuple[float, int]]) -> int | None:
    """The announced prior price once the product's history is ``changes`` (days ago, cents)."""
    async with app.extensions["electro"].sessions.begin() as db:
        await write_history(db, product_id, [(days_ago(d), cents) for d, cents in changes])
    async with app.extensions["electro"].sessions() as db:
        return (await prices.prior_prices(db, [product_id])).get(product_id)


# ---------------------------------------------------------------- the rule's edges


async def test_raised_then_lowered_within_30_days_is_no_reduction(
    app: Any, one_product: int
) -> None:
    # 80 for months, 120 for a week, then "reduced" to 100: 80 was asked 10 days ago.
    assert await prior_after(app, one_product, [(90, 8000), (10, 12000), (3, 10000)]) is None
    # Back to 80 exactly: not below the lowest price either.
    assert await prior_after(app, one_product, [(90, 8000), (10, 12000), (3, 8000)]) is None
    # Below it: announced against 80, not against the 120 it was raised to.
    assert await prior_after(app, one_product, [(90, 8000), (10, 12000), (3, 7000)]) == 8000


async def test_the_window_is_the_30_days_before_the_reduction_not_before_today(
    app: Any, one_product: int
) -> None:
    # Reduced 40 days ago: its window is 70..40 days ago (120 until day 60, then 100).
    assert await prior_after(app, one_product, [(100, 12000), (60, 10000), (40, 8000)]) == 10000
    # A price that ended exactly 30 days before the reduction is outside the window...
    assert await prior_after(app, one_product, [(100, 5000), (70, 10000), (40, 8000)]) == 10000
    # ... one that ended a minute later is inside it, and 80 is not below 50.
    changes = [(100, 5000), (70 - 1 / 1440, 10000), (40, 8000)]
    assert await prior_after(app, one_product, changes) is None


async def test_a_history_shorter_than_30_days_is_the_window(app: Any, one_product: int) -> None:
    assert await prior_after(app, one_product, [(10, 10000), (3, 9000)]) == 10000
    assert await prior_after(app, one_product, [(10, 10000), (8, 9500), (3, 9000)]) == 9500
    assert await prior_after(app, one_product, [(10, 9000), (3, 10000)]) is None  # a rise
    assert await prior_after(app, one_product, [(10, 9000)]) is None  # one price, ever


async def test_a_repeated_price_does_not_restart_the_reduction(
    app: Any, one_product: int
) -> None:
    # Reduced 20 days ago; the same price written again 2 days ago changes nothing.
    assert await prior_after(app, one_product, [(50, 10000), (20, 8000), (2, 8000)]) == 10000


async def test_a_history_that_does_not_end_at_the_price_announces_nothing(
    app: Any, one_product: int
) -> None:
    await prior_after(app, one_product, [(50, 10000), (20, 8000)])
    async with app.extensions["electro"].sessions.begin() as db:
        await db.execute(update(PriceChange).where(PriceChange.changed_at == days_ago(20))
                         .values(price_cents=9000))  # the history no longer says 80
        assert (await prices.prior_prices(db, [one_product])) == {}


async def test_prior_prices_of_many_products_in_one_query(
    app: Any, catalogue: dict[str, int]
) -> None:
    statements: list[str] = []

    def count(*args: Any) -> None:
        statements.append(args[2])

    engine = app.extensions["electro"].engine.sync_engine
    async with app.extensions["electro"].sessions() as db:
        await db.connection()  # begun before counting
        event.listen(engine, "before_cursor_execute", count)
        try:
            found = await prices.prior_prices(db, list(catalogue.values()))
        finally:
            event.remove(engine, "before_cursor_execute", count)
    assert len(statements) == 1
    assert found == {catalogue["Lumen Phone Pro 12"]: 89_900, catalogue["Quiet Keyboard"]: 9_900}


# ---------------------------------------------------------------- the history is written


async def history(app: Any, product_id: int) -> list[int]:
    async with app.extensions["electro"].sessions() as db:
        return list(await db.scalars(
            select(PriceChange.price_cents).where(PriceChange.product_id == product_id)
            .order_by(PriceChange.changed_at)
        ))


async def test_every_price_change_is_recorded_by_the_database(app: Any, one_product: int) -> None:
    sessions = app.extensions["electro"].sessions
    assert await history(app, one_product) == []  # a price never changed: no rows yet
    async with sessions.begin() as db:  # not a price change
        await db.execute(update(Product).values(stock=9, price_cents=Product.price_cents))
    assert await history(app, one_product) == []
    async with sessions.begin() as db:  # plain SQL, no app code: the first price comes too
        await db.execute(text("UPDATE products SET price_cents = 9000"))
    assert await history(app, one_product) == [10000, 9000]
    async with sessions.begin() as db:
        product = await db.get(Product, one_product)
        assert product is not None
        first = await db.scalar(select(func.min(PriceChange.changed_at))
                                 .where(PriceChange.product_id == one_product))
        assert first == product.created_at  # dated when the product was listed
    with pytest.raises(RuntimeError):  # a rolled-back change leaves no history
        async with sessions.begin() as db:
            await db.execute(text("UPDATE products SET price_cents = 7000"))
            raise RuntimeError
    assert await history(app, one_product) == [10000, 9000]
    async with sessions.begin() as db:  # set twice in one transaction: what it ends at counts
        await db.execute(text("UPDATE products SET price_cents = 6000"))
        await db.execute(text("UPDATE products SET price_cents = 6500"))
    assert (await history(app, one_product))[-1] == 6500



async def test_an_admin_price_edit_is_recorded_with_it(
    app: Any, admin_client: Any, one_product: int
) -> None:
    editor = await (await admin_client.get(
        f"/admin/tables/products/{one_product}/edit", htmx=True)).get_data(as_text=True)
    assert "old_price" not in editor  # the typed "old price" is gone
    response = await admin_client.post(
        f"/admin/tables/products/{one_product}/edit",
        {"version": hidden(editor, "version"), "price": "79.99"}, htmx=True)
    assert response.status_code == 200
    assert await history(app, one_product) == [10000, 7999]


# ---------------------------------------------------------------- pages say it in words


async def test_category_product_and_search_pages_say_what_the_prior_price_is(
    app: Any, client: Any
) -> None:
    ids = await add_catalogue(app, [
        ("Genuine Deal Radio", "Acme", "Radios", 80_00, None, ""),
        ("Inflated Deal Radio", "Acme", "Radios", 100_00, None, ""),
        ("Plain Radio", "Acme", "Radios", 50_00, None, ""),
    ])
    now = clock.now()
    async with app.extensions["electro"].sessions.begin() as db:
        await write_history(db, ids["Genuine Deal Radio"], [(now - timedelta(days=40), 120_00),
                                                            (now - timedelta(days=2), 80_00)])
        await write_history(db, ids["Inflated Deal Radio"], [  # raised, then "reduced"
            (now - timedelta(days=90), 90_00), (now - timedelta(days=9), 150_00),
            (now - timedelta(days=2), 100_00)])
        category_id = (await db.get(Product, ids["Plain Radio"])).category_id  # type: ignore[union-attr]
    sentence = SENTENCE + "€120.00"
    pages = {
        "category": f"/categories/{category_id}",
        "product": f"/products/{ids['Genuine Deal Radio']}",
        "search": "/search?q=radio",
    }
    for name, path in pages.items():
        for htmx in (False, True):
            body = await (await client.get(path, htmx=htmx)).get_data(as_text=True)
            assert body.count(sentence) == 1, (name, htmx)
            assert body.count(SENTENCE) == 1, (name, htmx)  # not for the inflated one
    inflated = await (await client.get(f"/products/{ids['Inflated Deal Radio']}")).get_data(
        as_text=True)
    assert "€100.00" in inflated and SENTENCE not in inflated
    for name in ("Genuine Deal Radio", "Inflated Deal Radio"):  # the basket says it too
        await client.post("/basket/items", {"product_id": str(ids[name]), "quantity": "1"})
    basket = await (await client.get("/basket")).get_data(as_text=True)
    assert basket.count(sentence) == 1 and basket.count(SENTENCE) == 1


# ---------------------------------------------------------------- migration and demo data


async def test_typed_old_prices_migrate_into_the_history(database_url: str) -> None:
    """A database at 0007 with a typed old price: after 0008 the same discount shows; going
    back to 0007 gives the old price back."""
    engine = make_engine(database_url)
    try:
        await _migrate(engine, "downgrade", "0007")
        async with engine.begin() as conn:
            await conn.execute(text("INSERT INTO categories (id, name, created_at) "
                                    "VALUES (1, 'Phones', CURRENT_TIMESTAMP)"))
            await conn.execute(text(
                "INSERT INTO products (id, name, company, category_id, price_cents, "
                "old_price_cents, description, stock, created_at, updated_at, version) "
                "VALUES (:id, 'P', '', 1, :price, :old, '', 1, CURRENT_TIMESTAMP, "
                "CURRENT_TIMESTAMP, 1)"),
                [{"id": 1, "price": 800, "old": 1000}, {"id": 2, "price": 800, "old": None},
                 {"id": 3, "price": 800, "old": 700}])  # an "old price" below the price
        await upgrade(engine)
        async with AsyncSession(engine) as db:
            assert await prices.prior_prices(db, [1, 2, 3]) == {1: 1000}
        await _migrate(engine, "downgrade", "0007")
        async with engine.connect() as conn:
            olds = (await conn.execute(text(
                "SELECT id, old_price_cents FROM products ORDER BY id"))).all()
        assert [tuple(r) for r in olds] == [(1, 1000), (2, None), (3, None)]
        await upgrade(engine)
    finally:
        await engine.dispose()


async def _migrate(engine: AsyncEngine, how: str, revision: str) -> None:
    async with engine.begin() as conn:
        await conn.run_sync(lambda c: getattr(command, how)(alembic_config(c), revision))


async def test_seed_demo_has_genuine_recent_reductions(cli_database: str) -> None:
    await asyncio.to_thread(cli.main, ["seed-demo", "--products", "60"])
    engine = make_engine(cli_database)
    try:
        async with AsyncSession(engine) as db:
            products = list(await db.scalars(select(Product)))
            reduced = await prices.prior_prices(db, [p.id for p in products])
            changed = set(await db.scalars(select(PriceChange.product_id).distinct()))
    finally:
        await engine.dispose()
    assert len(products) == 60
    assert 5 <= len(reduced) <= 25 and set(reduced) == changed  # every change is a reduction
    by_id = {p.id: p for p in products}
    assert all(by_id[i].price_cents < prior for i, prior in reduced.items())
