"""What one worker keeps between search requests: rendered result fragments, the trending top 10
and the searches it already recorded this hour (S2, S3).

Measured with bench/bench_shop.py: rendering a result list costs more than the framework itself,
and a real full-text query several times more, so both fragments are served from a per-process
cache. Search fragments are keyed by the normalised query and dropped when the catalogue version
(bumped by triggers on products and categories) changes; the version is re-read at most every
``search_cache_seconds``, as is the trending top 10. Every search is still recorded: a repeat of a
(query, client, hour) this process already stored is skipped, since the database would ignore it.

Templates are rendered through the ``render`` function the app gives (the service stays free of
the web framework).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncSession

from electro import clock
from electro.config import Settings
from electro.services import search, trending

MAX_CACHED_QUERIES = 5000
MAX_REMEMBERED_SEARCHES = 100_000

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

    async def results(self, db: AsyncSession, value: str) -> tuple[str, str, int]:
        """(normalised query, rendered fragment, number of hits)."""
        query = search.normalise(value)
        if not self.fresh(self.version_checked):
            current = await search.catalogue_version(db)
            self.version_checked = time.monotonic()
            if current != self.version:
                self.version, self.fragments = current, {}
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
