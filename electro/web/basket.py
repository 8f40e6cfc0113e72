"""The basket and the checkout (SPEC B5).

"Add to basket" is a plain form on product pages and category and search rows. With htmx its
answer is a notice plus an ``HX-Trigger: {"basket-changed": {"count": n}}`` header, which
static/basket.js turns into the header's new count (no second request); without JavaScript it
redirects back with the notice. The basket page's quantity and remove forms likewise answer
htmx with the basket fragment and plain posts with a redirect.
"""

from __future__ import annotations

import json
from datetime import timedelta
from urllib.parse import urlsplit

from quart import Blueprint, Response, flash, g, redirect, render_template, request
from quart_rate_limiter import rate_limit
from werkzeug.datastructures import MultiDict

from electro.errors import DomainError, FieldError, InvalidInput
from electro.inputs import MAX_INT, whole_number
from electro.services import basket, orders
from electro.services.basket import Owner
from electro.web import db, is_api_path, is_htmx, own_transaction, render, runtime
from electro.web.guards import acting, local_path, login_required, signed_in

bp = Blueprint("basket", __name__)


def owner() -> Owner:
    """The signed-in account's basket, else the one the visitor's cookie names."""
    account = g.get("account")
    if account is not None:
        return Owner(user_id=account.user.id)
    return Owner(token=request.cookies.get(basket.COOKIE))


async def load_basket_count() -> None:
    """before_request, after the account is known: the header's count (base.html). No query
    when no page is coming (static files, the API, an htmx fragment: a change sends its count
    in HX-Trigger), nor for a visitor without a basket."""
    page_coming = request.endpoint != "static" and not is_htmx() and not is_api_path(
        request.path)
    who = owner() if page_coming else Owner()
    g.basket_count = await basket.count(db(), who) if who.matches() is not None else 0


def _changed(response: Response, count: int) -> Response:
    response.headers["HX-Trigger"] = json.dumps({"basket-changed": {"count": count}})
    return response


def _number(raw: str | None, name: str, maximum: int, minimum: int = 1) -> int:
    try:
        return whole_number(raw or "", minimum=minimum, maximum=maximum)
    except FieldError as exc:
        raise InvalidInput(f"{name}: {exc}.", errors={name: str(exc)}) from None


def _back() -> str:
    """Where a plain "Add to basket" post returns: the page it came from, on this site."""
    referrer = urlsplit(request.headers.get("Referer", ""))
    if referrer.netloc and referrer.netloc != request.host:
        return "/basket"
    path = referrer.path + (f"?{referrer.query}" if referrer.query else "")
    return local_path(path, "/basket")


@bp.post("/basket/items")
async def add_item() -> Response:
    form = await request.form
    added = await basket.add(
        db(), owner(), _number(form.get("product_id"), "product_id", MAX_INT),
        _number(form.get("quantity", "1"), "quantity", basket.MAX_QUANTITY))
    if is_htmx():
        response = Response(await render_template("partials/basket_notice.html",
                                                  message=added.message))
    else:
        await flash(added.message)
        response = redirect(_back())  # type: ignore[assignment]
    if added.new_token:
        settings = runtime().settings
        response.set_cookie(basket.COOKIE, added.new_token,
                            max_age=int(basket.ABANDONED_AFTER.total_seconds()),
                            httponly=True, samesite="Lax", secure=settings.cookie_secure)
    return _changed(response, added.count)


async def _basket_page(notice: str = "") -> Response:
    view = await basket.view(db(), runtime().settings, owner())
    response = await render("basket.html", "partials/basket.html", view=view, notice=notice)
    return _changed(response, view.count)


@bp.get("/basket")
async def page() -> Response:
    return await _basket_page()


@bp.post("/basket/lines/<int:line_id>")
async def change_line(line_id: int) -> Response:
    form = await request.form
    quantity = _number(form.get("quantity"), "quantity", basket.MAX_QUANTITY, minimum=0)
    return await _after_change(await basket.set_quantity(db(), owner(), line_id, quantity))


@bp.post("/basket/lines/<int:line_id>/remove")
async def remove_line(line_id: int) -> Response:
    return await _after_change(await basket.remove(db(), owner(), line_id))


async def _after_change(message: str) -> Response:
    if is_htmx():
        return await _basket_page(message)
    await flash(message)
    return redirect("/basket")  # type: ignore[return-value]


# ---------------------------------------------------------------- checkout


async def _checkout_page(
    form: dict[str, str] | None = None, errors: dict[str, str] | None = None,
    problems: list[str] | None = None, status: int = 200, token: str = "",
) -> Response:
    account = await signed_in()
    checkout = await orders.checkout(db(), runtime().settings, account.user)
    return await render(
        "checkout.html", "partials/checkout_form.html", status, checkout=checkout,
        token=token or checkout.token, form=form or {}, errors=errors or {},
        problems=problems or [], payments=orders.PAYMENTS, fields=orders.ADDRESS_FIELDS)


async def _checkout_refused(form: MultiDict[str, str], refused: DomainError) -> Response:
    """The form again, with the fields' messages or the basket and total as they are now; its
    token was not used (nothing was placed), so it stays."""
    return await _checkout_page(dict(form), refused.errors, refused.problems, refused.status,
                                form.get("checkout_token", ""))


@bp.get("/checkout")
@login_required
async def checkout_form() -> Response:
    return await _checkout_page()


@bp.post("/checkout")
@rate_limit(20, timedelta(minutes=1))
@login_required
async def place_order() -> Response:
    account = await signed_in()
    form = await request.form
    actor = await acting()
    try:
        order = await orders.place_order(db(), runtime().settings, account.user, form, actor)
    except InvalidInput as refused:
        return await _checkout_refused(form, refused)
    except (orders.OutOfStock, orders.PriceChanged) as refused:
        async with own_transaction() as own:  # the 409 rolls the request back; this stays
            await actor.record(own, "order_refused", reason=refused.message,
                               problems=refused.problems)
        return await _checkout_refused(form, refused)
    return redirect(f"/account/orders/{order.number}", 303)  # type: ignore[return-value]
