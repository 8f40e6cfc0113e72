"""A shopper's own orders (SPEC B5): the list and one order. Another shopper's number answers
404, as a number that does not exist does (the query asks for the shopper's own)."""

from __future__ import annotations

from quart import Blueprint, Response

from electro.services import orders
from electro.web import db, render
from electro.web.guards import login_required, signed_in

bp = Blueprint("orders", __name__)


@bp.get("/account/orders")
@login_required
async def own_orders() -> Response:
    account = await signed_in()
    return await render("orders.html", "partials/order_list.html",
                        orders=await orders.own_orders(db(), account.user),
                        labels=orders.STATUS_LABELS)


@bp.get("/account/orders/<number>")
@login_required
async def own_order(number: str) -> Response:
    account = await signed_in()
    order, lines = await orders.own_order(db(), account.user, number)
    return await render("order.html", "partials/order.html", order=order, lines=lines,
                        labels=orders.STATUS_LABELS, payments=orders.PAYMENTS)
