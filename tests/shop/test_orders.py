"""Buying (SPEC B5, issue 13): the basket, the checkout and the order states, through the app
as plain HTTP (the no-JavaScript flow) and as htmx asks."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import event, select

from electro import clock
from electro.models import Basket, BasketLine, Event, Order, OrderLine, Product
from electro.services import basket, dashboard, orders
from electro.tasks import OUTBOX, run_jobs_once
from tests.support import Client, Mailbox, body_of, make_user, sign_in
from tests.support.accounts import log_in
from tests.support.admin import act, add_order, fetch, insert_rows, seed_catalogue

ADDRESS = {"name": "Ann Example", "street": "Hauptstraße 1", "postcode": "10115",
           "city": "Berlin", "country": "Germany"}


async def products(app: Any, *stock_and_price: tuple[int, int]) -> list[int]:
    """Products with these (stock, price in cents), in a category "Phones"."""
    category_id, _ = await seed_catalogue(app, products=0)
    async with app.extensions["electro"].sessions.begin() as db:
        return await insert_rows(db, Product, [
            {"name": f"Phone {n}", "company": "Acme", "category_id": category_id,
             "price_cents": price, "stock": stock, "description": ""}
            for n, (stock, price) in enumerate(stock_and_price)])


async def add(client: Client, product_id: int, quantity: int = 1, htmx: bool = False) -> Any:
    return await client.post("/basket/items", {"product_id": product_id, "quantity": quantity},
                             htmx=htmx, headers={"Referer": f"/products/{product_id}"})


def count_in_header(html: str) -> int:
    match = re.search(r'<span id="basket-count">(\d+)</span>', html)
    assert match, "every page shows the basket count"
    return int(match[1])


async def checkout_form(client: Client) -> dict[str, str]:
    """The hidden fields of the checkout form as the page gives them."""
    html = await (await client.get("/checkout")).get_data(as_text=True)
    return {name: re.search(rf'name="{name}" value="([^"]*)"', html)[1]  # type: ignore[index]
            for name in ("checkout_token", "expected_total")}


async def place(client: Client, payment: str = "bank_transfer", **form: Any) -> Any:
    hidden = await checkout_form(client) if "checkout_token" not in form else {}
    return await client.post("/checkout", {**ADDRESS, "payment": payment, **hidden, **form})


async def stock_of(app: Any, product_id: int) -> int:
    return int((await fetch(app, select(Product.stock).where(Product.id == product_id)))[0][0])


async def test_add_to_basket_without_javascript_redirects_back_with_a_notice(
    app: Any, client: Client
) -> None:
    (phone,) = await products(app, (5, 1000))
    response = await add(client, phone, 2)
    assert response.status_code == 302 and response.headers["Location"] == f"/products/{phone}"
    assert basket.COOKIE in response.headers["Set-Cookie"]
    assert "HttpOnly" in response.headers["Set-Cookie"]
    page = await (await client.get(f"/products/{phone}")).get_data(as_text=True)
    assert "Added “Phone 0” to your basket." in page and count_in_header(page) == 2
    # Only the SHA-256 of the cookie id is stored.
    clear = re.search(rf"{basket.COOKIE}=([^;]+)", response.headers["Set-Cookie"])[1]  # type: ignore[index]
    (stored,) = (await fetch(app, select(Basket.token_hash)))[0]
    assert stored != clear and len(stored) == 64


async def test_add_with_htmx_answers_the_notice_and_the_count_in_one_response(
    app: Any, client: Client
) -> None:
    (phone,) = await products(app, (3, 1000))
    response = await add(client, phone, 2, htmx=True)
    assert response.status_code == 200
    assert json.loads(response.headers["HX-Trigger"]) == {"basket-changed": {"count": 2}}
    html = await response.get_data(as_text=True)
    assert "<html" not in html and "Added “Phone 0”" in html
    # More than the stock: capped, and said.
    response = await add(client, phone, 5, htmx=True)
    assert json.loads(response.headers["HX-Trigger"])["basket-changed"]["count"] == 3
    assert "Only 3 of “Phone 0” in stock" in await response.get_data(as_text=True)


async def test_the_header_count_is_read_only_for_a_page(app: Any, client: Client) -> None:
    """A fragment or an API answer has no header to fill: its request counts nothing."""
    (phone,) = await products(app, (3, 1000))
    await add(client, phone, 1)
    counted: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if "basket_lines" in statement:
            counted.append(statement)

    engine = app.extensions["electro"].engine.sync_engine
    event.listen(engine, "before_cursor_execute", seen)
    try:
        for path, htmx in (("/search?q=phone", True), ("/api/v1/categories", False)):
            await client.get(path, htmx=htmx)
        assert counted == []
        page = await (await client.get("/search?q=phone")).get_data(as_text=True)
        assert len(counted) == 1 and count_in_header(page) == 1
    finally:
        event.remove(engine, "before_cursor_execute", seen)


async def test_bad_basket_input_is_a_4xx_with_a_message(app: Any, client: Client) -> None:
    (phone, sold_out) = await products(app, (3, 1000), (0, 500))
    for form, status, message in (
        ({"product_id": "x", "quantity": 1}, 422, "product_id"),
        ({"product_id": phone, "quantity": 0}, 422, "quantity"),
        ({"product_id": phone, "quantity": 100}, 422, "quantity"),
        ({"product_id": 999999, "quantity": 1}, 404, "no such product"),
        ({"product_id": sold_out, "quantity": 1}, 422, "sold out"),
    ):
        response = await client.post("/basket/items", form)
        assert response.status_code == status, form
        assert message in await response.get_data(as_text=True), form


async def test_basket_page_changes_and_removes_lines_and_says_what_went_wrong(
    app: Any, client: Client
) -> None:
    phone, cable, gone = await products(app, (5, 10_00), (9, 2_50), (2, 7_00))
    for product_id in (phone, cable, gone):
        await add(client, product_id)
    lines = dict(await fetch(app, select(BasketLine.product_id, BasketLine.id)))
    # htmx: the basket fragment comes back with new totals and the header's new count.
    response = await client.post(f"/basket/lines/{lines[phone]}", {"quantity": 3}, htmx=True)
    html = await response.get_data(as_text=True)
    assert response.status_code == 200 and "<html" not in html
    assert json.loads(response.headers["HX-Trigger"])["basket-changed"]["count"] == 5
    assert 'id="basket-subtotal">€39.50' in html  # 3 x 10.00 + 2.50 + 7.00
    # Plain post: a redirect, and the page says it.
    response = await client.post(f"/basket/lines/{lines[cable]}/remove")
    assert response.status_code == 302 and response.headers["Location"] == "/basket"
    async with app.extensions["electro"].sessions.begin() as db:
        (await db.get_one(Product, phone)).stock = 2
        await db.delete(await db.get_one(Product, gone))
    page = await (await client.get("/basket")).get_data(as_text=True)
    assert "Removed “Phone 1” from your basket." in page
    assert "Only 2 of “Phone 0” left (you have 3 in your basket)." in page
    assert "“Phone 2” is no longer sold" in page
    assert 'href="/checkout"' not in page  # fix the lines first
    # Someone else's line is not found; quantity 0 removes.
    other = Client(app)
    await add(other, phone)
    (other_line,) = (await fetch(app, select(BasketLine.id).order_by(BasketLine.id.desc())))[0]
    assert (await client.post(f"/basket/lines/{other_line}/remove")).status_code == 404
    assert (await client.post(f"/basket/lines/{lines[phone]}", {"quantity": 0})).status_code == 302
    assert "Your basket is empty" not in await (await client.get("/basket")).get_data(as_text=True)


async def test_checkout_needs_a_signed_in_shopper_and_the_basket_merges_at_log_in(
    app: Any, client: Client
) -> None:
    phone, cable = await products(app, (4, 1000), (9, 250))
    ann = await make_user(app, "ann")
    # Ann's account basket already holds 3 phones (from another device).
    other_device = Client(app)
    await sign_in(app, other_device, ann)
    await add(other_device, phone, 3)
    # Anonymous: 2 phones and a cable; checkout sends her to log in and back.
    await add(client, phone, 2)
    await add(client, cable, 1)
    response = await client.get("/checkout")
    assert response.status_code == 302 and response.headers["Location"] == "/login?next=/checkout"
    response = await log_in(client, "ann", form={"next": "/checkout"})
    assert response.status_code == 302 and response.headers["Location"] == "/checkout"
    assert f"{basket.COOKIE}=;" in response.headers["Set-Cookie"]  # the anonymous cookie goes
    page = await (await client.get("/checkout")).get_data(as_text=True)
    # Quantities add, capped at the stock (3 + 2 > 4); the anonymous basket is gone.
    assert count_in_header(page) == 5
    held = dict(await fetch(app, select(BasketLine.product_id, BasketLine.quantity)))
    assert held == {phone: 4, cable: 1}
    assert len(await fetch(app, select(Basket.id))) == 1


async def test_a_bank_transfer_order_end_to_end_without_javascript(
    app: Any, user_client: Client, mailbox: Mailbox
) -> None:
    phone, cable = await products(app, (5, 20_00), (9, 2_50))
    await add(user_client, phone, 2)
    await add(user_client, cable, 1)
    response = await place(user_client)
    assert response.status_code == 303
    number = response.headers["Location"].removeprefix("/account/orders/")
    assert re.fullmatch(r"[2-9A-Z]{4}-[2-9A-Z]{4}", number)
    page = await (await user_client.get(response.headers["Location"])).get_data(as_text=True)
    assert f"Order {number}" in page and "Awaiting payment" in page and count_in_header(page) == 0
    # 42.50 of goods is under the free-delivery threshold: the flat fee is added.
    order = (await fetch(app, select(Order)))[0][0]
    assert (order.subtotal_cents, order.delivery_cents, order.total_cents) == (4250, 495, 4745)
    assert (await stock_of(app, phone), await stock_of(app, cable)) == (3, 8)
    lines = await fetch(app, select(OrderLine.name, OrderLine.unit_price_cents,
                                    OrderLine.quantity).order_by(OrderLine.id))
    assert [tuple(line) for line in lines] == [("Phone 0", 2000, 2), ("Phone 1", 250, 1)]
    (mail,) = await mailbox.wait_for("ann@example.com")
    body = body_of(mail)
    assert number in mail["Subject"] and f"Payment reference: {number}" in body
    assert app.extensions["electro"].settings.bank_details in body and "€47.45" in body
    assert (await fetch(app, select(Event.type).where(Event.type == "order_placed")))
    listing = await (await user_client.get("/account/orders")).get_data(as_text=True)
    assert f'href="/account/orders/{number}"' in listing


async def test_cash_on_delivery_is_confirmed_at_once_and_free_delivery_applies(
    app: Any, user_client: Client
) -> None:
    (laptop,) = await products(app, (2, 999_00))
    await add(user_client, laptop)
    assert (await place(user_client, "cash_on_delivery")).status_code == 303
    order = (await fetch(app, select(Order)))[0][0]
    assert (order.status, order.delivery_cents, order.total_cents) == ("confirmed", 0, 99900)


async def test_a_repeated_submit_of_one_form_makes_one_order(
    app: Any, user_client: Client
) -> None:
    (phone,) = await products(app, (5, 1000))
    await add(user_client, phone, 2)
    hidden = await checkout_form(user_client)
    first = await place(user_client, **hidden)
    second = await place(user_client, **hidden)
    assert first.status_code == second.status_code == 303
    assert first.headers["Location"] == second.headers["Location"]
    assert len(await fetch(app, select(Order.id))) == 1 and await stock_of(app, phone) == 3


async def test_missing_stock_takes_nothing_and_says_which_line_and_how_many_are_left(
    app: Any, user_client: Client
) -> None:
    phone, cable = await products(app, (5, 1000), (5, 250))
    await add(user_client, phone, 2)
    await add(user_client, cable, 4)
    hidden = await checkout_form(user_client)
    async with app.extensions["electro"].sessions.begin() as db:
        (await db.get_one(Product, cable)).stock = 1  # sold meanwhile
    response = await place(user_client, **hidden)
    html = await response.get_data(as_text=True)
    assert response.status_code == 409
    assert "nothing was ordered" in html and "“Phone 1”: you asked for 4, only 1 left." in html
    assert (await stock_of(app, phone), await stock_of(app, cable)) == (5, 1)
    assert await fetch(app, select(Order.id)) == []
    (event,) = (await fetch(app, select(Event).where(Event.type == "order_refused")))[0]
    assert event.actor == "ann" and "only 1 left" in str(event.details["problems"])


async def test_a_changed_price_shows_the_new_total_to_confirm_again(
    app: Any, user_client: Client
) -> None:
    (phone,) = await products(app, (5, 100_00))
    await add(user_client, phone)
    hidden = await checkout_form(user_client)
    async with app.extensions["electro"].sessions.begin() as db:
        (await db.get_one(Product, phone)).price_cents = 120_00
    response = await place(user_client, **hidden)
    html = await response.get_data(as_text=True)
    assert response.status_code == 409 and "the total is now €120.00" in html
    assert 'name="expected_total" value="12000"' in html and await stock_of(app, phone) == 5
    again = await place(user_client, checkout_token=hidden["checkout_token"],
                        expected_total="12000")
    assert again.status_code == 303
    assert (await fetch(app, select(OrderLine.unit_price_cents)))[0][0] == 120_00


async def test_address_fields_get_clear_messages(app: Any, user_client: Client) -> None:
    (phone,) = await products(app, (5, 1000))
    await add(user_client, phone)
    response = await place(user_client, payment="cheque", postcode="??", city=" ")
    html = await response.get_data(as_text=True)
    assert response.status_code == 422
    assert "Enter a postcode of letters and digits" in html and "Enter the city." in html
    assert "Choose bank transfer or cash on delivery." in html
    assert 'value="Ann Example"' in html  # what was typed stays
    assert await fetch(app, select(Order.id)) == [] and await stock_of(app, phone) == 5


async def test_a_shopper_sees_only_their_own_orders(app: Any, user_client: Client) -> None:
    (phone,) = await products(app, (5, 1000))
    await add(user_client, phone)
    number = (await place(user_client)).headers["Location"].rsplit("/", 1)[1]
    bob = Client(app)
    await sign_in(app, bob, await make_user(app, "bob"))
    assert (await bob.get(f"/account/orders/{number}")).status_code == 404
    assert number not in await (await bob.get("/account/orders")).get_data(as_text=True)
    assert (await bob.get("/account/orders/" + "Z" * 300)).status_code == 404


async def place_direct(app: Any, user: Any, product_id: int, payment: str) -> int:
    """An order placed through the service (for the admin and job tests)."""
    async with app.extensions["electro"].sessions.begin() as db:
        await basket.add(db, basket.Owner(user_id=user.id), product_id, 1)
        checkout = await orders.checkout(db, app.extensions["electro"].settings, user)
        order = await orders.place_order(
            db, app.extensions["electro"].settings, user,
            {**ADDRESS, "payment": payment, "checkout_token": checkout.token,
             "expected_total": str(checkout.basket.total_cents)}, orders.events.NOBODY)
        return order.id


async def test_admin_actions_follow_the_state_machine_and_mail_each_shopper(
    app: Any, admin_client: Client, mailbox: Mailbox
) -> None:
    (phone,) = await products(app, (10, 1000))
    ann = await make_user(app, "ann")
    bank = await place_direct(app, ann, phone, "bank_transfer")
    cod = await place_direct(app, ann, phone, "cash_on_delivery")
    assert await stock_of(app, phone) == 8
    status, html, _ = await act(admin_client, "orders", "mark_paid", [bank, cod])
    assert status == 422 and "cannot be marked paid" in html and "Nothing was changed" in html
    status, html, _ = await act(admin_client, "orders", "mark_paid", [bank])
    assert status == 200 and "Marked paid 1 order" in html
    status, html, _ = await act(admin_client, "orders", "mark_shipped", [bank, cod])
    assert status == 200 and "Marked shipped 2 orders" in html
    status, html, _ = await act(admin_client, "orders", "cancel", [bank])
    assert status == 422 and "cannot be marked cancelled" in html
    assert await stock_of(app, phone) == 8
    statuses = dict(await fetch(app, select(Order.id, Order.status)))
    assert statuses == {bank: "shipped", cod: "shipped"}
    mails = await mailbox.wait_for("ann@example.com", 5)  # 2 placed, paid, 2 shipped
    assert sum("Shipped" in m["Subject"] for m in mails) == 2
    events = [row[0] for row in await fetch(app, select(Event.type).order_by(Event.id))]
    assert events.count("order_shipped") == 1 and events.count("order_paid") == 1


async def test_cancelling_gives_the_stock_back(app: Any, admin_client: Client) -> None:
    phone, cable = await products(app, (10, 1000), (10, 100))
    ann = await make_user(app, "ann")
    ids = [await place_direct(app, ann, product, "cash_on_delivery")
           for product in (phone, phone, cable)]
    assert (await stock_of(app, phone), await stock_of(app, cable)) == (8, 9)
    status, html, _ = await act(admin_client, "orders", "cancel", ids)
    assert status == 200 and "Cancelled 3 orders" in html
    assert (await stock_of(app, phone), await stock_of(app, cable)) == (10, 10)


async def test_jobs_cancel_unpaid_orders_and_drop_abandoned_baskets(
    app: Any, client: Client, mailbox: Mailbox
) -> None:
    (phone,) = await products(app, (10, 1000))
    ann = await make_user(app, "ann")
    unpaid = await place_direct(app, ann, phone, "bank_transfer")
    cod = await place_direct(app, ann, phone, "cash_on_delivery")
    await add(client, phone)  # an anonymous basket
    rt = app.extensions["electro"]
    clock.advance(timedelta(days=rt.settings.unpaid_order_days - 1))
    await run_jobs_once(rt.sessions, rt.settings)
    assert dict(await fetch(app, select(Order.id, Order.status)))[unpaid] == "awaiting_payment"
    assert len(await fetch(app, select(Basket.id))) == 2  # ann's and the anonymous one
    clock.advance(timedelta(days=31))
    await run_jobs_once(rt.sessions, rt.settings)
    await run_jobs_once(rt.sessions, rt.settings, OUTBOX)  # the mail the round queued
    statuses = dict(await fetch(app, select(Order.id, Order.status)))
    assert statuses == {unpaid: "cancelled", cod: "confirmed"}
    assert await stock_of(app, phone) == 9
    mails = await mailbox.wait_for("ann@example.com", 3)
    assert "No payment arrived within 7 days." in body_of(mails[2])
    # Ann's own basket stays; the anonymous one went.
    assert [row[0] for row in await fetch(app, select(Basket.user_id))] == [ann.id]


async def test_search_rows_carry_each_askers_own_csrf_token(app: Any, client: Client) -> None:
    """Search results are cached for everyone, so their forms hold a slot that each answer
    fills with the asker's own token (a cached token would be someone else's)."""
    (phone,) = await products(app, (3, 1000))
    other = Client(app)
    for shopper in (client, other):
        token = await shopper.refresh_token()
        for htmx in (False, True):
            html = await (await shopper.get("/search?q=phone", htmx=htmx)).get_data(as_text=True)
            assert f'name="csrf_token" value="{token}"' in html and "csrf-token-->" not in html
            assert f'name="product_id" value="{phone}"' in html
    assert client.token != other.token
    cached = app.extensions["electro"].worker_cache.values
    fragments = [value[0] for key, value in cached.items() if key[0] == "search"]
    assert fragments and all("<!--csrf-token-->" in html for html in fragments)


async def test_the_dashboard_charts_orders_and_revenue_per_day(
    app: Any, admin_client: Client
) -> None:
    async with app.extensions["electro"].sessions.begin() as db:
        for number, status in (("DASH-0001", "paid"), ("DASH-0002", "confirmed"),
                               ("DASH-0003", "cancelled")):
            await add_order(db, None, number, "Ann", "Phone", status=status)  # 14.95 each
        placed, revenue = await dashboard.order_series(db, days=30)
    assert (placed.title, placed.points[-1][1], sum(v for _, v in placed.points)) == (
        "Orders", 3, 3)
    assert revenue.points[-1][1] == 29  # two orders of €14.95, not the cancelled one
    page = await (await admin_client.get("/admin")).get_data(as_text=True)
    assert 'aria-label="Orders"' in page and 'aria-label="Revenue (€)"' in page


async def test_order_actions_cost_the_same_statements_for_20_orders_as_for_900(
    app: Any, admin_client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(app.extensions["electro"], "wake_jobs", None)  # count the requests' own
    (phone,) = await products(app, (0, 1000))

    async def placed(count: int, prefix: str) -> list[int]:
        async with app.extensions["electro"].sessions.begin() as db:
            ids = await insert_rows(db, Order, [
                {"number": f"{prefix}-{n:04d}", "email": f"{prefix}{n}@example.com",
                 "status": "awaiting_payment", "payment": "bank_transfer", "name": "A",
                 "street": "S", "postcode": "10115", "city": "C", "country": "D",
                 "subtotal_cents": 1000, "delivery_cents": 0, "total_cents": 1000,
                 "checkout_hash": f"{prefix}-{n:04d}".ljust(64, "-"), "created_at": clock.now()}
                for n in range(count)])
            await insert_rows(db, OrderLine, [
                {"order_id": order_id, "product_id": phone, "name": "Phone 0",
                 "unit_price_cents": 1000, "quantity": 1} for order_id in ids])
        return ids

    statements: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    async def statements_for(action: str, ids: list[int]) -> int:
        statements.clear()
        status, html, _ = await act(admin_client, "orders", action, ids)
        assert status == 200, html
        return len(statements)

    few, many = await placed(20, "FEW"), await placed(900, "MANY")
    await act(admin_client, "orders", "mark_paid", await placed(1, "WARM"))  # first-use work
    engine = app.extensions["electro"].engine.sync_engine
    event.listen(engine, "before_cursor_execute", count)
    try:
        for action in ("mark_paid", "cancel"):
            assert await statements_for(action, few) == await statements_for(action, many) < 15
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert await stock_of(app, phone) == 920  # each cancelled order's unit came back
