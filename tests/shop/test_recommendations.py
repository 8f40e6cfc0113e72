"""B6 recommendations: picks from purchases and views, exclusions, cold start, views counted once
per client per product per day, the rebuild job, the product page's fragment and /account."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import OperationalError

from electro import clock
from electro.app import create_app
from electro.db import make_sessionmaker, opened, writing
from electro.models import Order, OrderLine, Product, ProductPair, ProductView
from electro.services import recommendations
from electro.services.orders import CANCELLED, PAID
from electro.services.view_buffer import ViewBuffer
from electro.tasks import event_retention, rebuild_recommendations
from tests.support import Client, make_user, sign_in
from tests.support.accounts import count_rows, events_of
from tests.support.shop import add_catalogue

PHONE, SPEAKER, LAPTOP = "Lumen Phone Pro 12", "Café Racer Speaker", "Kestrel Laptop Air 14"
MONITOR, KEYBOARD, CAMERA = "Studio Monitor 27", "Quiet Keyboard", "Pixel Camera X"


async def _buy(app: Any, user_id: int, *product_ids: int, status: str = PAID) -> None:
    async with app.extensions["electro"].sessions.begin() as db:
        order = Order(number=f"T{user_id}-{len(product_ids)}-{product_ids[0]}", user_id=user_id,
                      email="x@example.com", status=status, payment="bank_transfer", name="X",
                      street="Main Street 1", postcode="10115", city="Berlin",
                      country="Germany", checkout_hash=f"{user_id}-{product_ids}".ljust(64, "0"))
        db.add(order)
        await db.flush()
        db.add_all(OrderLine(order_id=order.id, product_id=pid, name="line",
                             unit_price_cents=100, quantity=1) for pid in product_ids)


async def _view(app: Any, product_id: int, client: str) -> None:
    async with app.extensions["electro"].sessions.begin() as db:
        assert await recommendations.record_views(db, [(product_id, client, clock.now().date())])


@pytest.fixture
def views_at_once(settings_overrides: dict[str, Any]) -> None:
    settings_overrides["view_flush_seconds"] = 0


async def _rebuild(app: Any, every: timedelta = timedelta(0)) -> bool:
    async with app.extensions["electro"].sessions.begin() as db:
        return await recommendations.rebuild(db, every)


async def _picks(app: Any, user_id: int, limit: int = 3, **kwargs: Any) -> list[str]:
    async with app.extensions["electro"].sessions() as db:
        return [p.name for p in await recommendations.for_shopper(db, user_id, limit, **kwargs)]


async def _shop(app: Any) -> tuple[dict[str, int], list[int]]:
    """The catalogue and five shoppers: three bought a phone with a speaker, two a laptop with a
    monitor and a keyboard."""
    ids = await add_catalogue(app)
    shoppers = [(await make_user(app, f"buyer{n}")).id for n in range(5)]
    for user_id in shoppers[:3]:
        await _buy(app, user_id, ids[PHONE], ids[SPEAKER])
    for user_id in shoppers[3:]:
        await _buy(app, user_id, ids[LAPTOP], ids[MONITOR], ids[KEYBOARD])
    assert await _rebuild(app)
    return ids, shoppers


async def test_picks_follow_each_shoppers_history(app: Any) -> None:
    ids, _ = await _shop(app)
    alice, bob = await make_user(app, "alice"), await make_user(app, "bob")
    await _buy(app, alice.id, ids[PHONE])
    await _buy(app, bob.id, ids[LAPTOP])
    alice_picks, bob_picks = await _picks(app, alice.id), await _picks(app, bob.id)
    assert alice_picks[0] == SPEAKER
    assert set(bob_picks[:2]) == {MONITOR, KEYBOARD}
    assert alice_picks != bob_picks


async def test_views_count_for_the_shopper_who_made_them(app: Any) -> None:
    ids, _ = await _shop(app)
    carol = await make_user(app, "carol")
    secret = app.extensions["electro"].settings.secret_key
    client = recommendations.viewer(secret, recommendations.shopper_identity(carol.id))
    await _view(app, ids[LAPTOP], client)
    assert set((await _picks(app, carol.id, secret_key=secret))[:2]) == {MONITOR, KEYBOARD}


async def test_searches_count_for_the_shopper_who_made_them(app: Any, client: Client) -> None:
    await _shop(app)
    carol = await make_user(app, "carol")
    await sign_in(app, client, carol)
    assert (await client.get("/search?q=kestrel+laptop", htmx=True)).status_code == 200
    secret = app.extensions["electro"].settings.secret_key
    assert set((await _picks(app, carol.id))[:2]) == {PHONE, SPEAKER}  # the shop's favourites
    assert set((await _picks(app, carol.id, secret_key=secret))[:2]) == {MONITOR, KEYBOARD}


async def test_nothing_out_of_stock_already_bought_or_deleted(app: Any) -> None:
    ids, _ = await _shop(app)
    dave = await make_user(app, "dave")
    await _buy(app, dave.id, ids[LAPTOP], ids[MONITOR])
    picks = await _picks(app, dave.id, limit=20)
    assert KEYBOARD in picks and LAPTOP not in picks and MONITOR not in picks
    async with app.extensions["electro"].sessions.begin() as db:
        await db.execute(update(Product).where(Product.id == ids[KEYBOARD]).values(stock=0))
        await db.execute(delete(Product).where(Product.id == ids[CAMERA]))
    picks = await _picks(app, dave.id, limit=20)
    assert KEYBOARD not in picks and CAMERA not in picks
    assert picks and LAPTOP not in picks and MONITOR not in picks
    async with app.extensions["electro"].sessions() as db:
        phone = await db.get_one(Product, ids[PHONE])
        shown = await recommendations.for_product(db, phone, 10)
    assert [p.name for p in shown.bought_together] == [SPEAKER]
    assert all(p.stock > 0 for p in shown.similar)


async def test_a_cancelled_order_is_not_bought(app: Any) -> None:
    ids, _ = await _shop(app)
    erin = await make_user(app, "erin")
    await _buy(app, erin.id, ids[PHONE], status=CANCELLED)
    assert PHONE in await _picks(app, erin.id, limit=20)


async def test_cold_start(app: Any) -> None:
    # An empty shop: nothing to pick, and no error.
    nobody = await make_user(app, "nobody")
    assert await _picks(app, nobody.id) == []
    ids, _ = await _shop(app)
    # A new shopper: the most bought products of the shop.
    newcomer = await make_user(app, "newcomer")
    assert set(await _picks(app, newcomer.id, limit=2)) == {PHONE, SPEAKER}
    # A product nobody bought: its category's neighbours in price, the same company first.
    async with app.extensions["electro"].sessions.begin() as db:
        laptop = await db.get_one(Product, ids[LAPTOP])
        db.add_all([
            Product(name="Far Laptop", company="Other", category_id=laptop.category_id,
                    price_cents=9_000_000, stock=1),
            Product(name="Near Laptop", company="Other", category_id=laptop.category_id,
                    price_cents=129_000, stock=1),
            Product(name="Kestrel Laptop 2", company="Kestrel Labs",
                    category_id=laptop.category_id, price_cents=20_000, stock=1),
            new := Product(name="New Laptop", company="Kestrel Labs",
                           category_id=laptop.category_id, price_cents=130_000, stock=1),
        ])
    async with app.extensions["electro"].sessions() as db:
        shown = await recommendations.for_product(db, new, 10)
    assert shown.bought_together == []
    assert [p.name for p in shown.similar] == [
        LAPTOP, "Kestrel Laptop 2", "Near Laptop", "Far Laptop"]


async def test_fragment_records_a_view_once_per_client_per_product_per_day(
    views_at_once: None, app: Any, client: Client
) -> None:
    ids, _ = await _shop(app)
    page = await (await client.get(f"/products/{ids[PHONE]}")).get_data(as_text=True)
    assert f'hx-get="/products/{ids[PHONE]}/recommendations"' in page
    assert await count_rows(app, ProductView) == 0  # the product page itself writes nothing
    for _ in range(3):
        fragment = await client.get(f"/products/{ids[PHONE]}/recommendations", htmx=True)
        assert fragment.status_code == 200
    html = await fragment.get_data(as_text=True)
    assert "Often bought together" in html and SPEAKER in html and "<html" not in html
    assert await count_rows(app, ProductView) == 1
    await client.get(f"/products/{ids[LAPTOP]}/recommendations", htmx=True)
    assert await count_rows(app, ProductView) == 2
    other = Client(app)
    await sign_in(app, other, await make_user(app, "frank"))
    await other.get(f"/products/{ids[PHONE]}/recommendations", htmx=True)
    assert await count_rows(app, ProductView) == 3
    clock.advance(timedelta(days=1))
    await client.get(f"/products/{ids[PHONE]}/recommendations", htmx=True)
    assert await count_rows(app, ProductView) == 4
    async with app.extensions["electro"].sessions() as db:
        clients = set(await db.scalars(select(ProductView.client_hash)))
    assert len(clients) == 2 and all(len(c) == 64 and "." not in c for c in clients)


async def test_without_javascript_the_link_leads_to_a_page(app: Any, client: Client) -> None:
    ids, _ = await _shop(app)
    page = await client.get(f"/products/{ids[PHONE]}/recommendations")
    html = await page.get_data(as_text=True)
    assert page.status_code == 200 and html.lstrip().lower().startswith("<!doctype html")
    assert "Similar products" in html and SPEAKER in html
    missing = await client.get("/products/999999/recommendations")
    assert missing.status_code == 404


async def test_views_go_with_the_events_retention(app: Any) -> None:
    ids, _ = await _shop(app)
    await _view(app, ids[PHONE], "a" * 64)
    settings = app.extensions["electro"].settings
    clock.advance(timedelta(days=settings.event_retention_days + 1))
    await _view(app, ids[PHONE], "b" * 64)
    async with app.extensions["electro"].sessions.begin() as db:
        await event_retention(db, settings)
    async with app.extensions["electro"].sessions() as db:
        assert list(await db.scalars(select(ProductView.client_hash))) == ["b" * 64]


async def test_account_page_recommends(app: Any, client: Client) -> None:
    ids, _ = await _shop(app)
    gina = await make_user(app, "gina")
    await _buy(app, gina.id, ids[PHONE])
    await sign_in(app, client, gina)
    html = await (await client.get("/account")).get_data(as_text=True)
    assert "Recommended for you" in html and SPEAKER in html


async def test_rebuild_job_runs_at_its_interval_and_when_signals_change(app: Any) -> None:
    ids, shoppers = await _shop(app)
    settings = app.extensions["electro"].settings
    async with app.extensions["electro"].sessions() as db:
        before = await db.scalar(select(ProductPair.score).where(
            ProductPair.product_id == ids[PHONE], ProductPair.related_id == ids[SPEAKER]))
    await _buy(app, shoppers[3], ids[PHONE])
    async with app.extensions["electro"].sessions.begin() as db:
        assert await rebuild_recommendations(db, settings) is False  # within the interval
    clock.advance(timedelta(minutes=settings.recommend_rebuild_minutes))
    async with app.extensions["electro"].sessions.begin() as db:
        assert await rebuild_recommendations(db, settings) is True
    assert len(await events_of(app, "recommendations_rebuilt")) == 2
    async with app.extensions["electro"].sessions() as db:
        after = await db.scalar(select(ProductPair.score).where(
            ProductPair.product_id == ids[PHONE], ProductPair.related_id == ids[SPEAKER]))
    assert after is not None and before is not None and after < before  # 3/sqrt(4*3) < 1
    clock.advance(timedelta(minutes=settings.recommend_rebuild_minutes))
    async with app.extensions["electro"].sessions.begin() as db:
        assert await rebuild_recommendations(db, settings) is False  # nothing new


async def test_two_nodes_rebuilding_at_once_rebuild_once(app: Any) -> None:
    await _shop(app)
    clock.advance(timedelta(hours=2))
    await _buy(app, (await make_user(app, "henry")).id, 1)
    results = await asyncio.gather(*(_rebuild(app, timedelta(hours=1)) for _ in range(2)))
    assert sorted(results) == [False, True]


async def test_views_wait_to_be_written_together(app: Any, client: Client) -> None:
    ids, _ = await _shop(app)
    wait = app.extensions["electro"].settings.view_flush_seconds
    for name in (PHONE, LAPTOP, CAMERA):
        await client.get(f"/products/{ids[name]}/recommendations", htmx=True)
    assert await count_rows(app, ProductView) == 0
    clock.advance(timedelta(seconds=wait))
    await client.get(f"/products/{ids[PHONE]}/recommendations", htmx=True)
    assert await count_rows(app, ProductView) == 3  # one INSERT, the phone's repeat a no-op


async def test_views_kept_by_a_worker_are_written_when_it_stops(
    settings_overrides: dict[str, Any]
) -> None:
    second = create_app(settings_overrides)
    async with second.test_app():
        ids, _ = await _shop(second)
        await Client(second).get(f"/products/{ids[PHONE]}/recommendations", htmx=True)
        assert await count_rows(second, ProductView) == 0
    async with opened(second.extensions["electro"].settings.database) as engine:
        async with make_sessionmaker(engine)() as db:
            assert await db.scalar(select(func.count()).select_from(ProductView)) == 1


async def test_a_view_of_a_product_deleted_before_writing_is_dropped(app: Any) -> None:
    ids, _ = await _shop(app)
    async with app.extensions["electro"].sessions.begin() as db:
        await db.execute(delete(Product).where(Product.id == ids[CAMERA]))
    async with app.extensions["electro"].sessions.begin() as db:
        today = clock.now().date()
        assert not await recommendations.record_views(
            db, [(ids[CAMERA], "a" * 64, today), (ids[PHONE], "a" * 64, today)])
    assert await count_rows(app, ProductView) == 1


async def test_views_stay_kept_while_the_database_is_busy(app: Any) -> None:
    """A database still locked after busy_timeout must not lose the views nor fail the
    shopper's answer: they wait for the next write."""
    ids, _ = await _shop(app)
    buffer = ViewBuffer(app.extensions["electro"].settings)
    buffer.viewed(ids[PHONE], "b" * 64)

    @asynccontextmanager
    async def busy() -> AsyncIterator[Any]:
        raise OperationalError("BEGIN IMMEDIATE", {}, Exception("database is locked"))
        yield

    await buffer.flush(busy)
    assert buffer.pending and await count_rows(app, ProductView) == 0
    await buffer.flush(lambda: writing(app.extensions["electro"].sessions))
    assert not buffer.pending and await count_rows(app, ProductView) == 1
