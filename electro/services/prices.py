"""Honest discounts (SPEC B1; EU Omnibus, Art. 6a of Directive 98/6/EC).

A reduction is announced only against the *prior price*: the lowest price in force at any time
in the 30 days before the reduction began (the whole history where it is shorter), and only when
the current price is below it.

The history is ``price_history`` (written by the trigger of migration 0008): a row's price is in
force from its ``changed_at`` until the product's next row. The reduction began when the current
price did: where the last run of rows at another price ended (a repeated row at the same price
changes nothing). So the window is anchored at the reduction, not at today: nothing here depends
on the date, and a page rendered from it stays right until a price changes (which also moves the
catalogue version that search results are cached by).
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from datetime import timedelta
from functools import cache

from sqlalchemy import ColumnElement, DateTime, Select, Subquery, func, select, type_coerce
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from electro.db import among_bound
from electro.models import PriceChange, Product

PRIOR_PRICE_DAYS = 30


async def prior_prices(db: AsyncSession, product_ids: Collection[int]) -> dict[int, int]:
    """The announced reductions among ``product_ids``: product id -> prior price in cents.

    One query for the whole set (a category page asks for all its rows at once); products with
    no reduction to announce are left out."""
    if not product_ids:
        return {}
    rows = await db.execute(_prior_prices_of_ids(db.get_bind().dialect.name),
                            {"product_ids": sorted(set(product_ids))})
    return {product_id: cents for product_id, cents in rows.all()}


@cache
def _prior_prices_of_ids(dialect: str) -> Select[int, int]:
    """Built once per dialect: a statement object that is reused keeps its cache key, so
    SQLAlchemy finds its compiled form without walking it again (~0.35 ms a call)."""
    return select(*prior_prices_among(
        lambda product_id: among_bound(dialect, product_id, "product_ids"), dialect).c)


def prior_prices_among(
    selected: Callable[[InstrumentedAttribute[int]], ColumnElement[bool]], dialect: str
) -> Subquery:
    """The announced reductions, as a subquery for a caller's own statement (a page's rows and
    their prior prices in one round-trip): columns ``product_id`` and ``prior_price_cents``, one
    row per reduced product whose id ``selected(product id column)`` admits."""
    history = (
        select(
            PriceChange.product_id,
            PriceChange.changed_at,
            PriceChange.price_cents,
            Product.price_cents.label("current"),
            func.lead(PriceChange.changed_at)
            .over(partition_by=PriceChange.product_id, order_by=PriceChange.changed_at)
            .label("ended_at"),
        )
        .join(Product, Product.id == PriceChange.product_id)
        .where(selected(PriceChange.product_id))
        .cte("history")
    )
    # When the current price began: the end of the last row at another price. A product whose
    # latest row is not its current price (a history that cannot be trusted) gets no row here,
    # so no reduction: count() skips the one NULL end, count(*) does not.
    began = (
        select(history.c.product_id, func.max(history.c.ended_at).label("at"))
        .where(history.c.price_cents != history.c.current)
        .group_by(history.c.product_id)
        .having(func.count(history.c.ended_at) == func.count())
        .cte("began")
    )
    window_start = _days_before(began.c.at, PRIOR_PRICE_DAYS, dialect)
    prior = func.min(history.c.price_cents)
    return (
        select(history.c.product_id, prior.label("prior_price_cents"))
        .join(began, began.c.product_id == history.c.product_id)
        .where(history.c.changed_at < began.c.at, history.c.ended_at > window_start)
        .group_by(history.c.product_id)
        .having(prior > func.max(history.c.current))
        .subquery("reductions")
    )


def _days_before(
    moment: ColumnElement[object], days: int, dialect: str
) -> ColumnElement[object]:
    if dialect == "sqlite":
        # Datetimes are text there ("2026-12-06 14:05:54.123456"): shift the whole seconds and
        # keep the fraction as written (strftime's %f would cut it to milliseconds).
        shifted = func.strftime("%Y-%m-%d %H:%M:%S", moment, f"-{days} days")
        return type_coerce(shifted.concat(func.substr(moment, 20)), DateTime)
    return moment - timedelta(days=days)
