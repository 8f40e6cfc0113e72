"""What one worker keeps between requests, on the catalogue version: rendered search result
fragments (S2), the shopper pages and what they are built from (issue 12: category counts, the
page boundaries of sorted category listings, pages rendered once for everyone) and each
product's recommendations fragment (B6); besides, the trending top 10 and the searches it
already recorded this hour (S3).

Measured with bench/bench_shop.py: rendering a result list costs more than the framework itself,
and a real full-text query several times more, so all of these are served from a per-process
cache (``remembered``: one bound, least recently used dropped first, one build per key at a
time). Everything is dropped when the version changes: the catalogue version (bumped by
triggers on products and categories) with the recommendation model's (each rebuild). The version
is re-read at most every ``search_cache_seconds``, as is the trending top 10; a worker that
committed a change re-reads it at its next request, so its own changes show at once. Every
search is still recorded: a repeat of a (query, client, hour) this process already stored is
skipped, since the database would ignore it.

Templates are rendered through the ``render`` function the app gives (the service stays free of
the web framework); it renders for everyone, with slots where the asker's own bits go.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from electro import clock
from electro.config import Settings
from electro.models import Category
from electro.services import catalog, recommendations, search, trending

MAX_REMEMBERED_SEARCHES = 100_000
MAX_REMEMBERED_VALUES = 3000  # pages are ~5-20 kB each: tens of MiB per worker at most

T = TypeVar("T")
_MISSING = object()

RELATED_SHOWN = 6  # products in each list of a recommendations fragment

Render = Callable[..., Awaitable[str]]
"""``render(template_name, **context)``: the app's template rendering."""

Session = Callable[[], AsyncSession]
"""The request's session, asked for only when needed: an answer from the cache opens none, and
so commits none (a third of the time of a cached recommendations fragment, measured)."""


@dataclass(frozen=True)
class RelatedFragment:
    """A product's recommendations, rendered (B6)."""

    product_id: int
    product_name: str
    html: str


@dataclass
class WorkerCache:
    """One per app (so one per worker process)."""

    settings: Settings
    render: Render
    disallowed: frozenset[str] | None = None
    version: tuple[int, str] | None = None  # the catalogue's and the recommendation model's
    version_checked: float = float("-inf")
    values: dict[Hashable, object] = field(default_factory=dict)  # see remembered()
    building: dict[Hashable, asyncio.Lock] = field(default_factory=dict)
    trending_html: str = ""
    trending_checked: float = float("-inf")
    recorded: set[tuple[str, str]] = field(default_factory=set)  # (query, identity) this hour
    recorded_hour: datetime | None = None

    def fresh(self, checked: float) -> bool:
        return time.monotonic() - checked < self.settings.search_cache_seconds

    async def disallowed_words(self) -> frozenset[str]:
        if self.disallowed is None:
            path = Path(self.settings.disallowed_words_file or trending.SHIPPED_DISALLOWED)
            self.disallowed = await asyncio.to_thread(trending.load_disallowed, path)
        return self.disallowed

    def expect_change(self) -> None:
        """This worker committed something that may change the catalogue: the next request
        re-reads the version."""
        self.version_checked = float("-inf")

    async def current_version(self, session: Session) -> tuple[int, str] | None:
        """The version, re-read at most every ``search_cache_seconds``; everything kept for an
        older version is dropped."""
        if not self.fresh(self.version_checked):
            db = session()
            current = (await search.catalogue_version(db), await recommendations.model_version(db))
            self.version_checked = time.monotonic()
            if current != self.version:
                self.version, self.values = current, {}
        return self.version

    async def remembered(
        self, session: Session, key: Hashable, build: Callable[[], Awaitable[T]]
    ) -> T:
        """The value ``build`` gives, kept while the catalogue version stays (at most
        ``search_cache_seconds`` stale; a value built while the version moved is not kept).
        One build per key at a time: requests asking meanwhile wait for its value rather than
        each building it (8 at once, measured, when a deep listing's page keys were missing)."""
        version = await self.current_version(session)
        value = self.values.pop(key, _MISSING)
        if value is _MISSING:
            lock = self.building.setdefault(key, asyncio.Lock())
            try:
                async with lock:
                    value = self.values.pop(key, _MISSING)  # built while this one waited
                    if value is _MISSING:
                        value = await build()
                        if version != self.version:
                            return value
                        if len(self.values) >= MAX_REMEMBERED_VALUES:
                            del self.values[next(iter(self.values))]  # least recently used
                    self.values[key] = value
            finally:
                if self.building.get(key) is lock:
                    del self.building[key]  # waiters hold it; newcomers find the value
        self.values[key] = value  # (re)inserted last: dict order is recency
        return value  # type: ignore[return-value]  # stored by this same key and build

    async def category_counts(self, session: Session) -> list[tuple[Category, int]]:
        """Counting 100,000 products per request was the whole cost of the home page."""
        return await self.remembered(session, ("category counts",),
                                     lambda: catalog.categories_with_counts(session()))

    async def page_keys(
        self, db: AsyncSession, category_id: int, sort: str, direction: str
    ) -> catalog.PageKeys:
        """catalog.page_keys, kept: a catalog.PageKeysOf."""
        return await self.remembered(lambda: db, ("page keys", category_id, sort, direction),
                                     lambda: catalog.page_keys(db, category_id, sort, direction))

    async def results(self, session: Session, value: str) -> tuple[str, str, int]:
        """(normalised query, rendered fragment, number of hits)."""
        query = search.normalise(value)

        async def build() -> tuple[str, int]:
            results = await search.search(session(), query)
            html = await self.render("partials/search_results.html", results=results)
            return html, len(results.hits)

        html, hits = await self.remembered(session, ("search", query), build)
        return query, html, hits

    async def related(self, session: Session, product_id: int) -> RelatedFragment:
        """The product's recommendations fragment (NotFound for no such product)."""
        async def build() -> RelatedFragment:
            product, related = await recommendations.shown_with_product(
                session(), product_id, RELATED_SHOWN)
            html = await self.render("partials/recommendations.html", product=product,
                                     related=related)
            return RelatedFragment(product.id, product.name, html)

        return await self.remembered(session, ("related", product_id), build)

    async def record(self, db: AsyncSession, query: str, hits: int, identity: str) -> None:
        """Count a search by ``identity`` (the account, else the address) towards trending.

        ``db`` is the request's own session: a second connection per request would let N
        concurrent requests hold the whole pool while each waits for one more (a deadlock the
        bench found). A query that does not count (too short, disallowed) is not written.
        """
        hour = clock.now().replace(minute=0, second=0, microsecond=0)
        if hour != self.recorded_hour or len(self.recorded) >= MAX_REMEMBERED_SEARCHES:
            self.recorded, self.recorded_hour = set(), hour
        if (query, identity) in self.recorded:
            return  # stored (or refused for good) this hour: the database would ignore it
        if hits == 0:
            return  # may find something once products are added: ask again next time
        await trending.record(db, query, trending.client_hash(self.settings.secret_key, identity),
                              hits, await self.disallowed_words())
        self.recorded.add((query, identity))

    async def trending(self, db: AsyncSession) -> str:
        if not self.fresh(self.trending_checked):
            trends = await trending.top(db, await self.disallowed_words())
            self.trending_html = await self.render("partials/trending.html", trends=trends)
            self.trending_checked = time.monotonic()
        return self.trending_html
