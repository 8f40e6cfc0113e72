"""What the API answers, as pydantic models: quart-schema documents them in /openapi.json and
schemathesis checks every response against them."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from electro.inputs import MAX_INT
from electro.models import Category as CategoryRow
from electro.models import Order as OrderRow
from electro.models import OrderLine as OrderLineRow
from electro.models import Product as ProductRow
from electro.services.trending import Trend as TrendRow

CURRENCY: Literal["EUR"] = "EUR"  # every price in the shop; the API says so rather than assume it
PAGE_SIZE = 24
MAX_PAGE_SIZE = 100


class Money(BaseModel):
    cents: int = Field(description="Exact amount in the currency's minor unit")
    currency: Literal["EUR"] = CURRENCY


def money(cents: int) -> Money:
    return Money(cents=cents, currency=CURRENCY)


class Category(BaseModel):
    id: int
    name: str
    products: int = Field(description="How many products the category holds")


class Categories(BaseModel):
    categories: list[Category]


class Product(BaseModel):
    id: int
    name: str
    company: str
    category_id: int
    description: str
    price: Money
    prior_price: Money | None = Field(
        description="The price before the current reduction (B1), when reduced")
    stock: int


class ProductPage(BaseModel):
    products: list[Product]
    next: str | None = Field(description="The next page's URL (keyset cursor), or null at the end")


class Trend(BaseModel):
    query: str
    score: float


class Trending(BaseModel):
    trending: list[Trend]


class Me(BaseModel):
    username: str
    email: str
    created: datetime


class OrderLine(BaseModel):
    name: str = Field(description="The product's name when the order was placed")
    unit_price: Money
    quantity: int


class OrderSummary(BaseModel):
    number: str
    status: Literal["awaiting_payment", "confirmed", "paid", "shipped", "cancelled"]
    payment: Literal["bank_transfer", "cash_on_delivery"]
    placed: datetime
    total: Money


class Orders(BaseModel):
    orders: list[OrderSummary]


class Order(OrderSummary):
    name: str
    street: str
    postcode: str
    city: str
    country: str
    subtotal: Money
    delivery: Money
    lines: list[OrderLine]


class Problem(BaseModel):
    """RFC 9457 problem details."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str
    errors: dict[str, str] = Field(default_factory=dict,
                                   description="Messages by query parameter, when any")


class ProductQuery(BaseModel):
    q: str = Field("", max_length=1000, description="Words that every product must match")
    category: int | None = Field(None, ge=1, le=MAX_INT, description="A category id")
    sort: Literal["name", "company", "price"] = "name"
    dir: Literal["asc", "desc"] = "asc"
    cursor: str | None = Field(None, max_length=1000, pattern=r"^[A-Za-z0-9_-]+$",
                               description="From a previous page's next link, unchanged")
    limit: int = Field(PAGE_SIZE, ge=1, le=MAX_PAGE_SIZE)


def category_out(row: CategoryRow, count: int) -> Category:
    return Category(id=row.id, name=row.name, products=count)


def product_out(row: ProductRow, prior_price_cents: int | None) -> Product:
    """``prior_price_cents``: the price a reduction is announced against (services.prices)."""
    return Product(
        id=row.id, name=row.name, company=row.company, category_id=row.category_id,
        description=row.description, price=money(row.price_cents), stock=row.stock,
        prior_price=None if prior_price_cents is None else money(prior_price_cents),
    )


def order_summary(row: OrderRow) -> OrderSummary:
    return OrderSummary(number=row.number, status=row.status, payment=row.payment,  # type: ignore[arg-type]
                        placed=row.created_at, total=money(row.total_cents))


def order_out(row: OrderRow, lines: list[OrderLineRow]) -> Order:
    return Order(
        **order_summary(row).model_dump(), name=row.name, street=row.street,
        postcode=row.postcode, city=row.city, country=row.country,
        subtotal=money(row.subtotal_cents), delivery=money(row.delivery_cents),
        lines=[OrderLine(name=line.name, unit_price=money(line.unit_price_cents),
                         quantity=line.quantity) for line in lines],
    )


def trend_out(row: TrendRow) -> Trend:
    return Trend(query=row.query, score=row.score)
