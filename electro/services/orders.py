"""Orders (SPEC B5): placing one from the basket, and the states it goes through.

Placing an order is one transaction (Saleor's stock allocation, without reservations): the
order row first, so a repeated submit of the same checkout form meets the unique one-time token
and finds the order the first submit made; then, per line in product order (so two orders lock
rows in the same order and cannot deadlock), ``UPDATE products SET stock = stock - q WHERE id =
… AND stock >= q``. A line that lacks stock updates nothing; then nothing is taken at all (the
savepoint is rolled back) and the refusal says which lines and how many are left. However many
shoppers check out at once, stock never goes below zero: the database decides, row by row.

The state machine: awaiting_payment -> paid -> shipped (bank transfer); confirmed -> shipped
(cash on delivery); cancelled from any state before shipped, with the stock given back.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import ColumnElement, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from electro import clock
from electro.config import Settings
from electro.db import among
from electro.errors import Conflict, FieldError, InvalidInput, NotFound
from electro.inputs import whole_number
from electro.models import Order, OrderLine, Product, User
from electro.security.keys import hash_key, new_key
from electro.services import basket, events
from electro.services.basket import BasketView, Owner
from electro.services.catalog import format_price
from electro.services.events import Actor
from electro.services.mail import send_mail, send_mails

AWAITING_PAYMENT = "awaiting_payment"
CONFIRMED = "confirmed"
PAID = "paid"
SHIPPED = "shipped"
CANCELLED = "cancelled"
STATUS_LABELS = {AWAITING_PAYMENT: "Awaiting payment", CONFIRMED: "Confirmed", PAID: "Paid",
                 SHIPPED: "Shipped", CANCELLED: "Cancelled"}
# A new status, and the statuses an order may reach it from.
TRANSITIONS = {PAID: (AWAITING_PAYMENT,), SHIPPED: (PAID, CONFIRMED),
               CANCELLED: (AWAITING_PAYMENT, PAID, CONFIRMED)}
# The payment methods, and the status an order starts in with each.
PAYMENTS = {"bank_transfer": ("Bank transfer", AWAITING_PAYMENT),
            "cash_on_delivery": ("Cash on delivery", CONFIRMED)}
_NUMBER_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"  # no 0/O, 1/I: read over the phone
_POSTCODE = re.compile(r"[A-Za-z0-9][A-Za-z0-9 -]{1,14}")
ADDRESS_FIELDS = {"name": ("Name", 120), "street": ("Street and number", 200),
                  "postcode": ("Postcode", 16), "city": ("City", 120), "country": ("Country", 60)}


class OutOfStock(Conflict):
    """Some lines lack stock; nothing was taken. ``problems`` names each line and what is left."""


class PriceChanged(Conflict):
    """The total differs from the one the shopper confirmed; they confirm the new one."""


@dataclass(frozen=True)
class Checkout:
    """What the checkout form shows and carries: the basket, the total to confirm, and the
    form's one-time token (a fresh one per form shown)."""

    basket: BasketView
    token: str


async def checkout(db: AsyncSession, settings: Settings, user: User) -> Checkout:
    return Checkout(await basket.view(db, settings, Owner(user_id=user.id)), new_key())


def new_number() -> str:
    """Short and readable: 8 characters in two groups, e.g. ``K7MQ-2XAD`` (2^40 of them)."""
    chars = "".join(secrets.choice(_NUMBER_ALPHABET) for _ in range(8))
    return f"{chars[:4]}-{chars[4:]}"


def parse_address(form: Mapping[str, str]) -> dict[str, str]:
    """The delivery address and payment method, or InvalidInput with a message per field."""
    values, errors = {}, {}
    for name, (label, limit) in ADDRESS_FIELDS.items():
        value = " ".join(form.get(name, "").split())
        if not value:
            errors[name] = f"Enter the {label.lower()}."
        elif len(value) > limit:
            errors[name] = f"{label}: at most {limit} characters."
        values[name] = value
    if "postcode" not in errors and not _POSTCODE.fullmatch(values["postcode"]):
        errors["postcode"] = "Enter a postcode of letters and digits, such as 10115 or SW1A 1AA."
    payment = form.get("payment", "")
    if payment not in PAYMENTS:
        errors["payment"] = "Choose bank transfer or cash on delivery."
    values["payment"] = payment
    if errors:
        raise InvalidInput("Please correct the marked fields.", errors=errors)
    return values


async def place_order(
    db: AsyncSession, settings: Settings, user: User, form: Mapping[str, str], actor: Actor
) -> Order:
    """Place the signed-in shopper's basket as an order; see the module's docstring. A repeat
    of a form already placed returns that order. Raises InvalidInput (fields), OutOfStock or
    PriceChanged; nothing is changed then."""
    token = form.get("checkout_token", "")
    if not 20 <= len(token) <= 64:
        raise InvalidInput("The checkout form is incomplete: reload the page and try again.")
    checkout_hash = hash_key(token)
    placed = await _placed_with(db, user, checkout_hash)
    if placed is not None:
        return placed
    fields = parse_address(form)
    try:
        expected = whole_number(form.get("expected_total", ""))
    except FieldError:
        raise InvalidInput("The checkout form is incomplete: reload the page.") from None
    current = await basket.view(db, settings, Owner(user_id=user.id))
    if not current.lines:
        raise InvalidInput("Your basket is empty.")
    gone = [line.problem for line in current.lines if line.product_id is None]
    if gone:
        raise InvalidInput(problems=gone)
    if current.total_cents != expected:
        raise PriceChanged(f"Prices changed since you looked: the total is now "
                           f"{format_price(current.total_cents)}. Check it and confirm again.")
    try:
        async with db.begin_nested():  # a refusal takes back all of it, the order row too
            order = await _write(db, user, fields, checkout_hash, current)
    except IntegrityError:
        # The same form, submitted again while the first submit was being placed: the unique
        # token waited for that one to commit. (A clash of random numbers lands here too.)
        placed = await _placed_with(db, user, checkout_hash)
        if placed is None:
            raise Conflict("The order could not be placed; please try again.") from None
        return placed
    await _confirm(db, settings, user, order, actor)
    return order


async def _placed_with(db: AsyncSession, user: User, checkout_hash: str) -> Order | None:
    return await db.scalar(select(Order).where(Order.checkout_hash == checkout_hash,
                                               Order.user_id == user.id))


async def _write(
    db: AsyncSession, user: User, fields: dict[str, str], checkout_hash: str,
    current: BasketView,
) -> Order:
    _label, status = PAYMENTS[fields["payment"]]
    order = Order(number=new_number(), user_id=user.id, email=user.email,
                  status=status, checkout_hash=checkout_hash,
                  subtotal_cents=current.subtotal_cents, delivery_cents=current.delivery_cents,
                  total_cents=current.total_cents, created_at=clock.now(), **fields)
    db.add(order)
    await db.flush()  # the unique token: a repeat of this form stops here
    shortages, changed = [], []
    lines = sorted(current.lines, key=lambda line: line.product_id or 0)
    for line in lines:
        taken = (await db.execute(
            update(Product)
            .where(Product.id == line.product_id, Product.stock >= line.quantity)
            .values(stock=Product.stock - line.quantity, version=Product.version + 1)
            .returning(Product.price_cents)
            .execution_options(synchronize_session=False))).first()
        if taken is None:
            left = await db.scalar(select(Product.stock).where(Product.id == line.product_id))
            shortages.append(f"“{line.name}”: you asked for {line.quantity}, "
                             + (f"only {left} left." if left else "sold out."))
        elif taken[0] != line.price_cents:
            changed.append(line.name)
    if shortages:
        raise OutOfStock("Not enough stock: nothing was ordered.", problems=[
            "Not enough stock, so nothing was ordered:", *shortages])
    if changed:
        raise PriceChanged(f"The price of {', '.join(changed)} changed just now. "
                           "Check the new total and confirm again.")
    db.add_all([OrderLine(order_id=order.id, product_id=line.product_id, name=line.name,
                          unit_price_cents=line.price_cents, quantity=line.quantity)
                for line in lines])
    await basket.empty(db, user.id)
    return order


async def _confirm(
    db: AsyncSession, settings: Settings, user: User, order: Order, actor: Actor
) -> None:
    lines = await order_lines(db, order.id)
    await send_mail(db, settings, order.email, "order_placed", username=user.username,
                    order=order, lines=lines, money=format_price,
                    payment=PAYMENTS[order.payment][0], bank_details=settings.bank_details)
    await actor.record(db, "order_placed", number=order.number, total_cents=order.total_cents,
                       payment=order.payment)


async def order_lines(db: AsyncSession, order_id: int) -> list[OrderLine]:
    return list(await db.scalars(
        select(OrderLine).where(OrderLine.order_id == order_id).order_by(OrderLine.id)))


async def own_orders(db: AsyncSession, user: User) -> list[Order]:
    return list(await db.scalars(select(Order).where(Order.user_id == user.id)
                                 .order_by(Order.created_at.desc(), Order.id.desc())))


async def own_order(db: AsyncSession, user: User, number: str) -> tuple[Order, list[OrderLine]]:
    """One of the shopper's own orders; someone else's number is as unknown as a made-up one."""
    order = await db.scalar(select(Order).where(Order.number == number[:16],
                                                Order.user_id == user.id))
    if order is None:
        raise NotFound("You have no order with that number.")
    return order, await order_lines(db, order.id)


class TransitionRefused(InvalidInput):
    """A status change the state machine does not allow for some of the ticked orders."""


async def change_status(
    db: AsyncSession, settings: Settings, ids: Sequence[int], status: str, actor: Actor,
    reason: str = "",
) -> int:
    """Move the orders ``ids`` to ``status``: all of them, or none if any may not go there
    (refused, naming them). Set-based: one UPDATE ... RETURNING, one statement giving back the
    stock of cancelled orders, one INSERT of the mails, one event. Returns how many moved."""
    allowed = TRANSITIONS[status]
    stuck = list(await db.scalars(
        select(Order.number).where(among(db, Order.id, ids), Order.status.not_in(allowed))
        .order_by(Order.number).limit(6)))
    if stuck:
        shown = ", ".join(stuck[:5]) + (" and more" if len(stuck) > 5 else "")
        raise TransitionRefused(
            f"Nothing was changed: {shown} cannot be marked {STATUS_LABELS[status].lower()} "
            f"(allowed only from {' or '.join(STATUS_LABELS[s].lower() for s in allowed)}).")
    now = clock.now()
    stamp = {PAID: "paid_at", SHIPPED: "shipped_at", CANCELLED: "cancelled_at"}[status]
    moved = (await db.execute(
        update(Order).where(among(db, Order.id, ids), Order.status.in_(allowed))
        .values(status=status, **{stamp: now})
        .returning(Order.id, Order.number, Order.email)
        .execution_options(synchronize_session=False))).all()
    if not moved:
        return 0
    moved_ids = [row.id for row in moved]
    if status == CANCELLED:
        await _give_back_stock(db, among(db, OrderLine.order_id, moved_ids))
    await send_mails(db, settings, "order_status", [
        (row.email, {"number": row.number, "status": STATUS_LABELS[status], "reason": reason})
        for row in moved])
    await actor.record(db, f"order_{status}", count=len(moved),
                       numbers=[row.number for row in moved], reason=reason)
    return len(moved)


async def _give_back_stock(db: AsyncSession, lines: ColumnElement[bool]) -> None:
    """Each product gets back the quantities of the matching order lines: one UPDATE."""
    returned = (select(func.sum(OrderLine.quantity))
                .where(lines, OrderLine.product_id == Product.id).scalar_subquery())
    await db.execute(
        update(Product)
        .where(Product.id.in_(select(OrderLine.product_id).where(lines)))
        .values(stock=Product.stock + returned, version=Product.version + 1)
        .execution_options(synchronize_session=False))


async def cancel_unpaid(db: AsyncSession, settings: Settings) -> int:
    """Background job: bank-transfer orders unpaid after ELECTRO_UNPAID_ORDER_DAYS are
    cancelled, their stock given back, the shopper mailed."""
    due = list(await db.scalars(select(Order.id).where(
        Order.status == AWAITING_PAYMENT,
        Order.created_at < clock.now() - timedelta(days=settings.unpaid_order_days))))
    if not due:
        return 0
    return await change_status(
        db, settings, due, CANCELLED, events.NOBODY,
        reason=f"No payment arrived within {settings.unpaid_order_days} days.")
