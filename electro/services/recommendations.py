"""Recommendations (B6): "Often bought together" and "Similar products" on product pages,
"Recommended for you" on /account, and the picks in each newsletter (B2).

The model is item-to-item co-occurrence normalised by cosine (bench/bench_recommend.py compares
it with implicit's ALS and a popularity baseline on held-out orders; README has the figures):
two products are related by how many shoppers bought (or clients viewed) both, divided by the
geometric mean of how many bought (viewed) each. ``rebuild`` computes it set-based in SQL into
``product_pairs`` (the best ``PAIRS_PER_PRODUCT`` per product and kind) and the recent buyers per
product into ``product_popularity``; serving is a lookup in those tables, never a computation
of the model. Cold start: a product nobody bought yet gets its category's neighbours in price
(same company first); a shopper with no history, or too little, gets the most bought products
of the categories they looked at, then of the shop, then the newest.

What shows is filtered when it is served, so it is never stale: nothing out of stock, nothing
the shopper bought (an order not cancelled), nothing deleted (pairs cascade with products).
"""

from __future__ import annotations

import time
from collections.abc import Collection
from dataclasses import dataclass
from datetime import date, timedelta

from sqlalchemy import and_, case, delete, func, or_, select, text, true, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from electro import clock
from electro.db import upsert_insert
from electro.errors import NotFound
from electro.models import (
    Order,
    OrderLine,
    Product,
    ProductPair,
    ProductPopularity,
    ProductView,
    RecommendationBuild,
    SearchRecord,
)
from electro.services import events, search
from electro.services.orders import CANCELLED
from electro.services.trending import client_hash

BOUGHT, VIEWED = "bought", "viewed"
PAIRS_PER_PRODUCT = 20
# A client that viewed (or a shopper who bought) more distinct products than this is a crawler
# or a reseller: their pairs say nothing about taste and would grow as the square of the list.
MAX_ITEMS_PER_CLIENT = 100
HISTORY = 50  # the most recent products of a shopper's that their picks start from
POPULAR_DAYS = 90
# How much each signal counts towards a shopper's pick: what they bought over what they only
# looked at or found by searching, and pairs found in purchases over pairs found in views.
SEARCHED = "searched"
SEARCHES, SEARCH_HITS = 3, 5  # a shopper's last searches, and the best matches of each
HISTORY_WEIGHT = {BOUGHT: 1.0, VIEWED: 0.5, SEARCHED: 0.3}
PAIR_WEIGHT = {BOUGHT: 1.0, VIEWED: 0.5}
BUILD = "pairs"  # the one row of recommendation_builds
IN_STOCK = Product.stock > 0


View = tuple[int, str, date]  # (product id, client hash, day)


@dataclass(frozen=True)
class ForProduct:
    """What a product page shows below the product."""

    bought_together: list[Product]
    similar: list[Product]


def viewer(secret_key: str, identity: str) -> str:
    """The stored client of a view: an HMAC like the searches' (``user:<id>`` or ``ip:<ip>``)."""
    return client_hash(secret_key, identity)


def shopper_identity(user_id: int) -> str:
    """The identity a signed-in shopper's views are recorded under (web.client_identity)."""
    return f"user:{user_id}"


async def record_views(db: AsyncSession, views: Collection[View]) -> bool:
    """Store views (a repeat of a stored one is a no-op); False when they were dropped because
    a product went meanwhile (views only tune the picks, and its views go with it anyway)."""
    ids = {product_id for product_id, _, _ in views}
    existing = set(await db.scalars(select(Product.id).where(Product.id.in_(ids))))
    rows = [{"product_id": p, "client_hash": c, "day": d} for p, c, d in views if p in existing]
    if not rows:
        return not views
    insert = upsert_insert(db)
    try:
        async with db.begin_nested():
            await db.execute(insert(ProductView).values(rows).on_conflict_do_nothing(
                index_elements=["product_id", "client_hash", "day"]))
    except IntegrityError:
        return False  # deleted between the read and the write
    return len(rows) == len(views)


async def purge_old_views(db: AsyncSession, days: int) -> int:
    """Views are kept as long as events (ELECTRO_EVENT_RETENTION_DAYS)."""
    cutoff: date = clock.now().date() - timedelta(days=days)
    result = await db.execute(delete(ProductView).where(ProductView.day < cutoff))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


# ---- serving: lookups in the precomputed tables, filtered as they are read -------------------

async def shown_with_product(
    db: AsyncSession, product_id: int, limit: int
) -> tuple[Product, ForProduct]:
    """The product page's recommendations fragment: the product and what goes with it."""
    product = await db.get(Product, product_id)
    if product is None:
        raise NotFound("There is no such product.")
    return product, await for_product(db, product, limit)


async def model_version(db: AsyncSession) -> str:
    """Changes with every rebuild (what the model was built from)."""
    signals = await db.scalar(select(RecommendationBuild.signals)
                              .where(RecommendationBuild.name == BUILD))
    return signals or ""


async def for_product(db: AsyncSession, product: Product, limit: int) -> ForProduct:
    together = await _related(db, product.id, BOUGHT, limit)
    shown = {product.id, *(p.id for p in together)}
    similar = [p for p in await _related(db, product.id, VIEWED, limit) if p.id not in shown]
    shown.update(p.id for p in similar)
    if len(similar) < limit:
        similar += [p for p in await _neighbours(db, product, limit * 2) if p.id not in shown]
    return ForProduct(together, similar[:limit])


async def _related(db: AsyncSession, product_id: int, kind: str, limit: int) -> list[Product]:
    query = (select(Product).join(ProductPair, ProductPair.related_id == Product.id)
             .where(ProductPair.product_id == product_id, ProductPair.kind == kind,
                    IN_STOCK)
             .order_by(ProductPair.score.desc(), Product.id).limit(limit))
    return list(await db.scalars(query))


async def _neighbours(db: AsyncSession, product: Product, count: int) -> list[Product]:
    """The product's category neighbours in price (two range reads of the category's price
    index), the same company first, then the nearest price."""
    base = select(Product).where(Product.category_id == product.category_id,
                                 Product.id != product.id, IN_STOCK)
    above = base.where(Product.price_cents >= product.price_cents).order_by(
        Product.price_cents, Product.id).limit(count)
    below = base.where(Product.price_cents < product.price_cents).order_by(
        Product.price_cents.desc(), Product.id.desc()).limit(count)
    found = [*await db.scalars(above), *await db.scalars(below)]
    return sorted(found, key=lambda p: (p.company != product.company,
                                        abs(p.price_cents - product.price_cents), p.id))


async def for_shopper(
    db: AsyncSession, user_id: int, limit: int, *, secret_key: str = ""
) -> list[Product]:
    """Up to ``limit`` products in stock picked for the shopper ``user_id``, best first: related
    to what they bought and (given the ``secret_key`` their views and searches are recorded
    under) viewed and found by searching, then the most bought of the categories they know,
    then of the shop, then the newest."""
    bought = await _bought(db, user_id)
    viewed: list[int] = []
    searched: list[int] = []
    if secret_key:
        client = viewer(secret_key, shopper_identity(user_id))
        viewed, searched = await _viewed(db, client), await _searched(db, client)
    history = {BOUGHT: bought[:HISTORY], VIEWED: viewed, SEARCHED: searched}
    picks = await _from_pairs(db, history, set(bought), limit)
    shown = set(bought) | {p.id for p in picks}
    if len(picks) < limit:
        categories = await _categories(db, [*bought[:HISTORY], *viewed, *searched])
        picks += await _popular(db, categories, shown, limit - len(picks))
        shown |= {p.id for p in picks}
    if len(picks) < limit:
        picks += await _popular(db, None, shown, limit - len(picks))
        shown |= {p.id for p in picks}
    if len(picks) < limit:
        picks += await _newest(db, shown, limit - len(picks))
    return picks


async def _bought(db: AsyncSession, user_id: int) -> list[int]:
    """The products the shopper bought (orders not cancelled), the latest first."""
    last = func.max(Order.created_at)
    query = (select(OrderLine.product_id).join(Order, Order.id == OrderLine.order_id)
             .where(Order.user_id == user_id, Order.status != CANCELLED,
                    OrderLine.product_id.is_not(None))
             .group_by(OrderLine.product_id).order_by(last.desc(), OrderLine.product_id))
    return [pid for pid in await db.scalars(query) if pid is not None]


async def _viewed(db: AsyncSession, client: str) -> list[int]:
    query = (select(ProductView.product_id).where(ProductView.client_hash == client)
             .group_by(ProductView.product_id)
             .order_by(func.max(ProductView.day).desc(), ProductView.product_id).limit(HISTORY))
    return list(await db.scalars(query))


async def _searched(db: AsyncSession, client: str) -> list[int]:
    """The best matches of the client's last few searches (kept as long as the searches)."""
    recent = (select(SearchRecord.query).where(SearchRecord.client_hash == client)
              .group_by(SearchRecord.query).order_by(func.max(SearchRecord.created_at).desc())
              .limit(SEARCHES))
    found: list[int] = []
    for query in await db.scalars(recent):
        found += [hit.id for hit in (await search.search(db, query, SEARCH_HITS)).hits]
    return found


async def _from_pairs(
    db: AsyncSession, history: dict[str, list[int]], bought: set[int], limit: int
) -> list[Product]:
    """Products related to the history: each pair's score weighted by what the shopper did with
    the product it starts from and by the kind of pair, summed over the history."""
    if not any(history.values()):
        return []
    weight = case(
        *[(and_(ProductPair.product_id.in_(ids), ProductPair.kind == kind),
           HISTORY_WEIGHT[signal] * PAIR_WEIGHT[kind])
          for signal, ids in history.items() if ids for kind in (BOUGHT, VIEWED)],
        else_=0.0)
    starts = or_(*[ProductPair.product_id.in_(ids) for ids in history.values() if ids])
    score = func.sum(ProductPair.score * weight)
    query = (select(Product).join(ProductPair, ProductPair.related_id == Product.id)
             .where(starts, ProductPair.kind.in_((BOUGHT, VIEWED)), IN_STOCK,
                    Product.id.not_in(bought) if bought else true())
             .group_by(Product.id).order_by(score.desc(), Product.id).limit(limit))
    return list(await db.scalars(query))


async def _categories(db: AsyncSession, product_ids: list[int]) -> list[int]:
    if not product_ids:
        return []
    query = select(Product.category_id).where(Product.id.in_(product_ids)).distinct()
    return list(await db.scalars(query))


async def _popular(
    db: AsyncSession, categories: list[int] | None, shown: set[int], limit: int
) -> list[Product]:
    if categories == []:
        return []
    query = select(Product).join(ProductPopularity, ProductPopularity.product_id == Product.id)
    if categories is not None:
        query = query.where(ProductPopularity.category_id.in_(categories))
    query = query.where(IN_STOCK).order_by(ProductPopularity.buyers.desc(), Product.id)
    found = await db.scalars(query.limit(limit + len(shown)))
    return [p for p in found if p.id not in shown][:limit]


async def _newest(db: AsyncSession, shown: set[int], limit: int) -> list[Product]:
    query = (select(Product).where(IN_STOCK)
             .order_by(Product.created_at.desc(), Product.id.desc()).limit(limit + len(shown)))
    return [p for p in await db.scalars(query) if p.id not in shown][:limit]


# ---- the model: rebuilt set-based by the background job ---------------------------------------

async def rebuild(db: AsyncSession, every: timedelta) -> bool:
    """Rebuild the pairs and popularity when ``every`` has passed since the last rebuild began
    and something was bought, cancelled or viewed since. True when it rebuilt.

    The rebuild's row is claimed first (an UPDATE whose condition a second node re-reads after
    the first commits, so it finds nothing to do), and the tables are replaced in the same
    transaction: readers see the old model or the new one, never half of one."""
    now = clock.now()
    insert = upsert_insert(db)
    await db.execute(insert(RecommendationBuild)
                     .values(name=BUILD, started_at=now - every - timedelta(seconds=1))
                     .on_conflict_do_nothing(index_elements=["name"]))
    claimed = await db.scalar(
        update(RecommendationBuild)
        .where(RecommendationBuild.name == BUILD, RecommendationBuild.started_at <= now - every)
        .values(started_at=now).returning(RecommendationBuild.signals))
    if claimed is None:
        return False
    signals = await _signals(db)
    if signals == claimed:
        return False
    started = time.perf_counter()
    await db.execute(delete(ProductPair))
    await db.execute(delete(ProductPopularity))
    await db.execute(text(_PAIRS_SQL.format(history=_BOUGHT_SQL)),
                     {"kind": BOUGHT, "cap": MAX_ITEMS_PER_CLIENT, "top": PAIRS_PER_PRODUCT,
                      "cancelled": CANCELLED})
    await db.execute(text(_PAIRS_SQL.format(history=_VIEWED_SQL)),
                     {"kind": VIEWED, "cap": MAX_ITEMS_PER_CLIENT, "top": PAIRS_PER_PRODUCT})
    await db.execute(text(_POPULAR_SQL),
                     {"since": now - timedelta(days=POPULAR_DAYS), "cancelled": CANCELLED})
    pairs = await db.scalar(select(func.count()).select_from(ProductPair)) or 0
    seconds = time.perf_counter() - started
    await db.execute(update(RecommendationBuild).where(RecommendationBuild.name == BUILD).values(
        signals=signals, pairs=pairs, seconds=seconds))
    await events.record(db, "recommendations_rebuilt", actor="system", pairs=pairs,
                        seconds=round(seconds, 2))
    return True


async def _signals(db: AsyncSession) -> str:
    """What the model is built from, in a few numbers: a change means a rebuild is due."""
    orders = await db.execute(select(
        func.coalesce(func.max(Order.id), 0),
        func.count(Order.cancelled_at)))
    last_order, cancelled = orders.one()
    views = await db.scalar(select(func.count()).select_from(ProductView))
    return f"{last_order}:{cancelled}:{views}"


# (client, product) once each: a shopper's purchases or a client's views, capped per client.
_BOUGHT_SQL = """
    SELECT DISTINCT o.user_id AS client, l.product_id AS item
    FROM order_lines l JOIN orders o ON o.id = l.order_id
    WHERE o.user_id IS NOT NULL AND l.product_id IS NOT NULL AND o.status != :cancelled"""
_VIEWED_SQL = "SELECT DISTINCT client_hash AS client, product_id AS item FROM product_views"

# Cosine similarity of two products' sets of clients: together / sqrt(n(a) * n(b)).
_PAIRS_SQL = """
INSERT INTO product_pairs (product_id, kind, related_id, score)
WITH history AS ({history}),
small AS (SELECT client FROM history GROUP BY client HAVING COUNT(*) BETWEEN 2 AND :cap),
kept AS (SELECT h.client, h.item FROM history h JOIN small s ON s.client = h.client),
counts AS (SELECT item, COUNT(*) AS n FROM kept GROUP BY item),
together AS (
    SELECT a.item AS product_id, b.item AS related_id, COUNT(*) AS both_count
    FROM kept a JOIN kept b ON a.client = b.client AND a.item != b.item
    GROUP BY a.item, b.item),
scored AS (
    SELECT t.product_id, t.related_id,
           t.both_count / sqrt(1.0 * ca.n * cb.n) AS score
    FROM together t JOIN counts ca ON ca.item = t.product_id
    JOIN counts cb ON cb.item = t.related_id),
ranked AS (
    SELECT product_id, related_id, score,
           ROW_NUMBER() OVER (PARTITION BY product_id ORDER BY score DESC, related_id) AS place
    FROM scored)
SELECT product_id, CAST(:kind AS VARCHAR(8)), related_id, score FROM ranked WHERE place <= :top
"""

_POPULAR_SQL = """
INSERT INTO product_popularity (product_id, category_id, buyers)
SELECT p.id, p.category_id, COUNT(DISTINCT o.user_id)
FROM order_lines l JOIN orders o ON o.id = l.order_id JOIN products p ON p.id = l.product_id
WHERE o.created_at >= :since AND o.status != :cancelled AND o.user_id IS NOT NULL
GROUP BY p.id, p.category_id
"""
