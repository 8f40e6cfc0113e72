"""The basket (SPEC B5): held on the server for anonymous visitors and accounts alike.

An anonymous basket is named by a random id in a cookie, of which only the SHA-256 is stored
(like session ids, electro.services.sessions); at log-in it merges into the account's basket,
quantities adding up to the stock (as django-oscar's ``Basket.merge``). The basket always shows
current prices; the order takes its own copies (electro.services.orders).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy import ColumnElement, delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from electro import clock
from electro.config import Settings
from electro.db import upsert_insert
from electro.errors import InvalidInput, NotFound
from electro.inputs import MAX_INT
from electro.models import Basket, BasketLine, Product, UserSession
from electro.security.keys import hash_key, new_key
from electro.services import prices

COOKIE = "basket"
ABANDONED_AFTER = timedelta(days=30)  # an anonymous basket untouched this long is deleted
MAX_QUANTITY = 99  # of one product in one basket


@dataclass(frozen=True)
class Owner:
    """Whose basket: the signed-in account's, else the one the visitor's cookie names (None:
    the visitor has none yet)."""

    user_id: int | None = None
    token: str | None = None

    def matches(self) -> ColumnElement[bool] | None:
        if self.user_id is not None:
            return Basket.user_id == self.user_id
        if self.token:
            return Basket.token_hash == hash_key(self.token)
        return None


@dataclass(frozen=True)
class Line:
    """A basket line as the basket page shows it: current price, and what is wrong with it, if
    anything (the product went, or there is not enough of it left)."""

    id: int
    product_id: int | None
    name: str
    quantity: int
    price_cents: int  # current; 0 once the product has gone
    problem: str = ""
    prior_price_cents: int | None = None  # a reduction's prior price (SPEC B1), else None

    @property
    def total_cents(self) -> int:
        return self.price_cents * self.quantity if self.product_id is not None else 0


@dataclass(frozen=True)
class BasketView:
    lines: list[Line] = field(default_factory=list)
    subtotal_cents: int = 0
    delivery_cents: int = 0

    @property
    def total_cents(self) -> int:
        return self.subtotal_cents + self.delivery_cents

    @property
    def count(self) -> int:
        """Items that can be bought (the header's count)."""
        return sum(line.quantity for line in self.lines if line.product_id is not None)

    @property
    def problems(self) -> list[str]:
        return [line.problem for line in self.lines if line.problem]


def delivery_fee(subtotal_cents: int, settings: Settings) -> int:
    """The flat fee, waived from ELECTRO_FREE_DELIVERY_FROM_CENTS (0: never); nothing to
    deliver costs nothing."""
    free_from = settings.free_delivery_from_cents
    if subtotal_cents == 0 or (free_from and subtotal_cents >= free_from):
        return 0
    return settings.delivery_fee_cents


def _capped(name: str, stock: int) -> str:
    return f"Only {stock} of “{name}” in stock: your basket holds {stock}."


def _shortage(name: str, quantity: int, stock: int) -> str:
    if stock <= 0:
        return f"“{name}” is sold out."
    return f"Only {stock} of “{name}” left (you have {quantity} in your basket)."


async def view(db: AsyncSession, settings: Settings, owner: Owner) -> BasketView:
    """The basket with current prices, oldest line first; an empty view when there is none."""
    matches = owner.matches()
    if matches is None:
        return BasketView()
    rows = (await db.execute(
        select(BasketLine, Product.price_cents, Product.stock)
        .join(Basket, Basket.id == BasketLine.basket_id)
        .outerjoin(Product, Product.id == BasketLine.product_id)
        .where(matches).order_by(BasketLine.id))).all()
    prior = await prices.prior_prices(
        db, [line.product_id for line, _, _ in rows if line.product_id is not None])
    lines = []
    for line, price, stock in rows:
        if line.product_id is None:
            problem = f"“{line.product_name}” is no longer sold; remove it to check out."
        elif line.quantity > stock:
            problem = _shortage(line.product_name, line.quantity, stock)
        else:
            problem = ""
        lines.append(Line(line.id, line.product_id, line.product_name, line.quantity,
                          price or 0, problem, prior.get(line.product_id or 0)))
    subtotal = sum(line.total_cents for line in lines)
    return BasketView(lines, subtotal, delivery_fee(subtotal, settings))


async def count(db: AsyncSession, owner: Owner) -> int:
    """Items in the basket (the header shows it on every page: one small query)."""
    matches = owner.matches()
    if matches is None:
        return 0
    return int(await db.scalar(
        select(func.coalesce(func.sum(BasketLine.quantity), 0))
        .join(Basket, Basket.id == BasketLine.basket_id)
        .where(matches, BasketLine.product_id.is_not(None))) or 0)


@dataclass(frozen=True)
class Added:
    message: str
    count: int  # items in the basket now
    new_token: str | None = None  # a new anonymous basket's cookie id, to set


async def add(
    db: AsyncSession, owner: Owner, product_id: int, quantity: int
) -> Added:
    """Add ``quantity`` of a product, up to its stock; makes the basket if there is none."""
    product = await db.get(Product, product_id) if 0 < product_id <= MAX_INT else None
    if product is None:
        raise NotFound("There is no such product.")
    if product.stock <= 0:
        raise InvalidInput(f"“{product.name}” is sold out.")
    basket, new_token = await _basket_of(db, owner)
    held = await db.scalar(select(BasketLine.quantity).where(
        BasketLine.basket_id == basket.id, BasketLine.product_id == product_id)) or 0
    wanted = min(held + quantity, MAX_QUANTITY)
    kept = min(wanted, product.stock)
    await _put(db, basket.id, product_id, product.name, kept)
    message = (f"Added “{product.name}” to your basket." if kept == wanted else
               _capped(product.name, product.stock))
    return Added(message, await count(db, Owner(basket.user_id, new_token or owner.token)),
                 new_token)


async def _basket_of(db: AsyncSession, owner: Owner) -> tuple[Basket, str | None]:
    """The owner's basket, made if missing (with a new cookie id for an anonymous one)."""
    matches = owner.matches()
    basket = await db.scalar(select(Basket).where(matches)) if matches is not None else None
    if basket is not None:
        basket.updated_at = clock.now()
        return basket, None
    if owner.user_id is not None:
        # Two tabs adding at once must not make two baskets: the second insert does nothing.
        await db.execute(upsert_insert(db)(Basket).values(
            user_id=owner.user_id, created_at=clock.now(), updated_at=clock.now())
            .on_conflict_do_nothing(index_elements=[Basket.user_id]))
        made = await db.execute(select(Basket).where(Basket.user_id == owner.user_id))
        return made.scalar_one(), None
    token = new_key()
    basket = Basket(token_hash=hash_key(token))
    db.add(basket)
    await db.flush()
    return basket, token


async def _put(db: AsyncSession, basket_id: int, product_id: int, name: str, quantity: int) -> None:
    insert = upsert_insert(db)(BasketLine).values(
        basket_id=basket_id, product_id=product_id, product_name=name, quantity=quantity,
        added_at=clock.now())
    await db.execute(insert.on_conflict_do_update(
        index_elements=[BasketLine.basket_id, BasketLine.product_id],
        set_={"quantity": insert.excluded.quantity, "product_name": name}))


async def _own_line(db: AsyncSession, owner: Owner, line_id: int) -> BasketLine:
    """Only a line of the asker's basket (authorisation in the query)."""
    matches = owner.matches()
    line = None
    if matches is not None and 0 < line_id <= MAX_INT:
        line = await db.scalar(select(BasketLine).join(Basket).where(
            BasketLine.id == line_id, matches))
    if line is None:
        raise NotFound("That line is not in your basket (any more).")
    return line


async def set_quantity(db: AsyncSession, owner: Owner, line_id: int, quantity: int) -> str:
    """A new quantity (0 removes the line), up to the stock; returns what was done."""
    line = await _own_line(db, owner, line_id)
    if quantity == 0 or line.product_id is None:
        return await remove(db, owner, line_id)
    stock = await db.scalar(select(Product.stock).where(Product.id == line.product_id)) or 0
    if stock <= 0:
        raise InvalidInput(f"“{line.product_name}” is sold out: remove it to check out.")
    line.quantity = min(quantity, stock)
    await _touch(db, line.basket_id)
    if line.quantity < quantity:
        return _capped(line.product_name, stock)
    return f"“{line.product_name}”: {line.quantity} in your basket."


async def remove(db: AsyncSession, owner: Owner, line_id: int) -> str:
    line = await _own_line(db, owner, line_id)
    await db.delete(line)
    await _touch(db, line.basket_id)
    return f"Removed “{line.product_name}” from your basket."


async def _touch(db: AsyncSession, basket_id: int) -> None:
    await db.execute(update(Basket).where(Basket.id == basket_id).values(updated_at=clock.now()))


async def merge_on_log_in(db: AsyncSession, anonymous_token: str, session_token: str) -> None:
    """The anonymous basket joins the account's basket of the session just started:
    quantities add, capped at the stock; a product that has gone is dropped. The anonymous
    basket is deleted (the caller deletes its cookie)."""
    user_id = await db.scalar(select(UserSession.user_id).where(
        UserSession.token_hash == hash_key(session_token)))
    anonymous = await db.scalar(select(Basket).where(
        Basket.token_hash == hash_key(anonymous_token)))
    if user_id is None or anonymous is None:
        return
    incoming = (await db.execute(
        select(BasketLine.product_id, BasketLine.quantity, Product.name, Product.stock)
        .join(Product, Product.id == BasketLine.product_id)
        .where(BasketLine.basket_id == anonymous.id))).all()
    await db.delete(anonymous)
    if not incoming:
        return
    basket, _ = await _basket_of(db, Owner(user_id=user_id))
    held: dict[int | None, int] = {
        product_id: quantity for product_id, quantity in await db.execute(
            select(BasketLine.product_id, BasketLine.quantity)
            .where(BasketLine.basket_id == basket.id))}
    for product_id, quantity, name, stock in incoming:
        merged = min(held.get(product_id, 0) + quantity, MAX_QUANTITY, stock)
        if product_id is not None and merged > 0:
            await _put(db, basket.id, product_id, name, merged)


async def empty(db: AsyncSession, user_id: int) -> None:
    """The account's basket, once its lines became an order."""
    await db.execute(delete(BasketLine).where(
        BasketLine.basket_id.in_(select(Basket.id).where(Basket.user_id == user_id))))


async def purge_abandoned(db: AsyncSession, _settings: Settings) -> int:
    """Background job: anonymous baskets untouched for ABANDONED_AFTER go (lines cascade)."""
    result = await db.execute(delete(Basket).where(
        Basket.user_id.is_(None), Basket.updated_at < clock.now() - ABANDONED_AFTER))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]

