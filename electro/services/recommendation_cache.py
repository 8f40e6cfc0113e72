"""What one worker keeps between recommendations fragments (B6): the rendered fragment of each
product, and the views not yet written.

Measured with a copy of bench/bench_recommend.py's serving run (100,000 products, 1 worker, 8
connections, a shared 2-core machine): writing each view in its request took the fragment from
127 to 81 req/s and its p99 from 0.27 to 1.4 s (every write waits for SQLite's one write lock and
commits). So views are remembered here and written together, one INSERT of many rows, by the
request that finds the oldest of them ``view_flush_seconds`` old (or ``VIEW_BATCH`` of them): a
worker writes what it kept when it stops; one that crashes loses at most those seconds of
views, which only ever tune the picks.
Fragments are kept per product until the catalogue version (stock, names, deletions) or the
model (a rebuild) changes, both re-read at most every ``search_cache_seconds``.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from electro import clock
from electro.config import Settings
from electro.services import recommendations, search
from electro.services.recommendations import View
from electro.services.search_cache import Render

MAX_CACHED_PRODUCTS = 5000
VIEW_BATCH = 1000
MAX_REMEMBERED_VIEWS = 100_000
SHOWN = 6  # products in each list
# The request's session, asked for only when needed: a request answered from the cache opens
# none, and so commits none (a third of the time of a cached answer).
Session = Callable[[], AsyncSession]


@dataclass(frozen=True)
class Fragment:
    product_id: int
    product_name: str
    html: str


@dataclass
class RecommendationCache:
    """One per app (so one per worker process)."""

    settings: Settings
    render: Render
    version: tuple[int, str] | None = None
    version_checked: float = float("-inf")
    fragments: OrderedDict[int, Fragment] = field(default_factory=OrderedDict)
    pending: set[View] = field(default_factory=set)
    pending_since: datetime | None = None
    written: set[View] = field(default_factory=set)  # stored on written_day
    written_day: date | None = None

    async def fragment(self, session: Session, product_id: int) -> Fragment:
        """The product's recommendations, rendered (NotFound for no such product)."""
        if time.monotonic() - self.version_checked >= self.settings.search_cache_seconds:
            db = session()
            current = (await search.catalogue_version(db), await recommendations.model_version(db))
            self.version_checked = time.monotonic()
            if current != self.version:
                self.version, self.fragments = current, OrderedDict()
        cached = self.fragments.get(product_id)
        if cached is not None:
            self.fragments.move_to_end(product_id)
            return cached
        rendered_at = self.version
        product, related = await recommendations.shown_with_product(session(), product_id, SHOWN)
        html = await self.render("partials/recommendations.html", product=product,
                                 related=related)
        fragment = Fragment(product.id, product.name, html)
        if rendered_at == self.version:  # else the catalogue changed meanwhile: not kept
            self.fragments[product_id] = fragment
            if len(self.fragments) > MAX_CACHED_PRODUCTS:
                self.fragments.popitem(last=False)
        return fragment

    async def viewed(self, session: Session, product_id: int, client: str) -> None:
        """Count ``client``'s view of the product; written with others (module docstring)."""
        now = clock.now()
        view: View = (product_id, client, now.date())
        if view in self.written:
            return
        if not self.pending:
            self.pending_since = now
        self.pending.add(view)
        age = (now - (self.pending_since or now)).total_seconds()
        if len(self.pending) >= VIEW_BATCH or age >= self.settings.view_flush_seconds:
            await self.flush(session())

    async def flush(self, db: AsyncSession) -> None:
        views, self.pending, self.pending_since = self.pending, set(), None
        if not views:
            return
        today = clock.now().date()
        if self.written_day != today or len(self.written) >= MAX_REMEMBERED_VIEWS:
            self.written, self.written_day = set(), today
        if await recommendations.record_views(db, views):
            self.written.update(views)
