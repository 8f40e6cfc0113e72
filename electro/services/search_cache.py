"""What one worker keeps between requests: rendered search result fragments, the trending top 10
and the searches it already recorded this hour (S2, S3); and, on the same catalogue version, the
catalogue's shopper pages and what they are built from (issue 12: category counts, the page
boundaries of sorted category listings, anonymous pages rendered once).

Measured with bench/bench_shop.py: rendering a result list costs more than the framework itself,
and a real full-text query several times more, so both fragments are served from a per-process
cache. Search fragments are keyed by the normalised query and dropped when the catalogue version
(bumped by triggers on products and categories) changes; the version is re-read at most every
``search_cache_seconds``, as is the trending top 10; a worker that committed a change re-reads it
at its next request, so its own changes show at once. Every search is still recorded: a repeat of a
(query, client, hour) this process already stored is skipped, since the database would ignore it.

Other version-keyed values (``remembered``) share the fragments' bound and recency order.

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
from electro.services import catalog, search, trending

MAX_CACHED_QUERIES = 5000
MAX_REMEMBERED_SEARCHES = 100_000
MAX_REMEMBERED_VALUES = 3000  # pages are ~5-20 kB each: tens of MiB per worker at most

T = TypeVar("T")
_MISSING = object()

Render = Callable[..., Awaitable[str]]
"""``render(template_name, **context)``: the app's template rendering."""


@dataclass
class SearchCache:
    """One per app (so one per worker process)."""

    settings: Settings
    render: Render
    disallowed: frozenset[str] | None = None
    version: int | None = None
    version_checked: float = float("-inf")
    fragments: dict[str, tuple[str, int]] = field(default_factory=dict)
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

    async def current_version(self, db: AsyncSession) -> int | None:
        """The catalogue version, re-read at most every ``search_cache_seconds``; everything
        kept for an older version is dropped."""
        if not self.fresh(self.version_checked):
            current = await search.catalogue_version(db)
            self.version_checked = time.monotonic()
            if current != self.version:
                self.version, self.fragments, self.values = current, {}, {}
        return self.version

    async def remembered(
        self, db: AsyncSession, key: Hashable, build: Callable[[], Awaitable[T]]
    ) -> T:
        """The value ``build`` gives, kept while the catalogue version stays (at most
        ``search_cache_seconds`` stale; a value built while the version moved is not kept).
        One build per key at a time: requests asking meanwhile wait for its value rather than
        each building it (8 at once, measured, when a deep listing's page keys were missing)."""
        version = await self.current_version(db)
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

    async def category_counts(self, db: AsyncSession) -> list[tuple[Category, int]]:
        """Counting 100,000 products per request was the whole cost of the home page."""
        return await self.remembered(db, "category counts",
                                     lambda: catalog.categories_with_counts(db))

    async def page_keys(
        self, db: AsyncSession, category_id: int, sort: str, direction: str
    ) -> catalog.PageKeys:
        """catalog.page_keys, kept: a catalog.PageKeysOf."""
        return await self.remembered(db, ("page keys", category_id, sort, direction),
                                     lambda: catalog.page_keys(db, category_id, sort, direction))

    async def results(self, db: AsyncSession, value: str) -> tuple[str, str, int]:
        """(normalised query, rendered fragment, number of hits)."""
        query = search.normalise(value)
        await self.current_version(db)
        cached = self.fragments.pop(query, None)
        if cached is None:
            rendered_at = self.version
            results = await search.search(db, query)
            html = await self.render("partials/search_results.html", results=results)
            cached = (html, len(results.hits))
            if rendered_at != self.version:
                return query, *cached  # the catalogue changed meanwhile: may be stale, not kept
            if len(self.fragments) >= MAX_CACHED_QUERIES:
                del self.fragments[next(iter(self.fragments))]  # least recently used
        self.fragments[query] = cached  # (re)inserted last: dict order is recency
        return query, *cached

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
