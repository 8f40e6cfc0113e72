"""B3 with B5: a token reads its owner's orders, and only those."""

from __future__ import annotations

from typing import Any

from tests.support import make_user
from tests.support.admin import add_order
from tests.support.api import bearer, make_token


async def test_a_token_reads_its_owners_orders_and_no_one_elses(app: Any, client: Any) -> None:
    ann, bob = await make_user(app, "ann"), await make_user(app, "bob")
    async with app.extensions["electro"].sessions.begin() as db:
        await add_order(db, ann.id, "ANN1", "Ann Example", "Lantern")
        await add_order(db, bob.id, "BOB1", "Bob Example", "Radio", status="paid")
    token = bearer(await make_token(app, ann))

    listed = await client.get("/api/v1/orders", headers=token)
    assert listed.status_code == 200 and listed.headers["Cache-Control"] == "no-store"
    summaries = (await listed.get_json())["orders"]
    assert [(o["number"], o["status"], o["total"]) for o in summaries] == [
        ("ANN1", "awaiting_payment", {"cents": 1495, "currency": "EUR"})]
    one = await (await client.get("/api/v1/orders/ANN1", headers=token)).get_json()
    assert one["lines"] == [{"name": "Lantern", "unit_price": {"cents": 1000, "currency": "EUR"},
                             "quantity": 1}]
    assert (one["city"], one["delivery"]["cents"]) == ("Berlin", 495)

    others = await client.get("/api/v1/orders/BOB1", headers=token)
    assert others.status_code == 404
    assert others.headers["Content-Type"] == "application/problem+json"
    assert (await client.get("/api/v1/orders")).status_code == 401  # no token, no orders
