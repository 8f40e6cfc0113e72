"""Live search (S2) and trending suggestions (S3).

Measured with bench/bench_shop.py: rendering a result list costs more than the framework itself,
and a real full-text query several times more, so both fragments are served from a per-process
cache. Search fragments are keyed by the normalised query and dropped when the catalogue version
(bumped by triggers on products and categories) changes; the version is re-read at most every
``search_cache_seconds``, as is the trending top 10. Every search is still recorded: a repeat of a
(query, client, hour) this process already stored is skipped, since the database would ignore it.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from markupsafe import Markup
from quart import Blueprint, Response, current_app, g, render_template, request
from quart_rate_limiter import rate_limit

from electro import clock
from electro.config import Settings
from electro.services import search, trending
from electro.services.catalog import format_price
from electro.services.sessions import SignedIn
from electro.web import client_ip, db, is_htmx, render, runtime

bp = Blueprint("search", __name__)
MAX_CACHED_QUERIES = 5000
MAX_REMEMBERED_SEARCHES = 100_000


@dataclass
class SearchCache:
    """What one worker process keeps between requests (one per app)."""

    settings: Settings
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

    async def results(self, value: str) -> tuple[str, str, int]:
        """(normalised query, rendered fragment, number of hits)."""
        query = search.normalise(value)
        if not self.fresh(self.version_checked):
            current = await search.catalogue_version(db())
            self.version_checked = time.monotonic()
            if current != self.version:
                self.version, self.fragments = current, {}
        cached = self.fragments.pop(query, None)
        if cached is None:
            rendered_at = self.version
            results = await search.search(db(), query)
            html = await render_template("partials/search_results.html", results=results)
            cached = (html, len(results.hits))
            if rendered_at != self.version:
                return query, *cached  # the catalogue changed meanwhile: may be stale, not kept
            if len(self.fragments) >= MAX_CACHED_QUERIES:
                del self.fragments[next(iter(self.fragments))]  # least recently used
        self.fragments[query] = cached  # (re)inserted last: dict order is recency
        return query, *cached

    async def record(self, query: str, hits: int) -> None:
        hour = clock.now().replace(minute=0, second=0, microsecond=0)
        if hour != self.recorded_hour or len(self.recorded) >= MAX_REMEMBERED_SEARCHES:
            self.recorded, self.recorded_hour = set(), hour
        identity = _client_identity()
        if (query, identity) in self.recorded:
            return  # stored (or refused for good) this hour: the database would ignore it
        if hits == 0:
            return  # may find something once products are added: ask again next time
        # The request's own session: a second connection per request would let N concurrent
        # requests hold the whole pool while each waits for one more (a deadlock the bench
        # found). It is committed as the response leaves, right after this write. A query that
        # does not count (too short, disallowed) is not written.
        await trending.record(db(), query, trending.client_hash(self.settings.secret_key, identity),
                              hits, await self.disallowed_words())
        self.recorded.add((query, identity))

    async def trending(self) -> str:
        if not self.fresh(self.trending_checked):
            trends = await trending.top(db(), await self.disallowed_words())
            self.trending_html = await render_template("partials/trending.html", trends=trends)
            self.trending_checked = time.monotonic()
        return self.trending_html


def cache() -> SearchCache:
    found: SearchCache | None = current_app.extensions.get("electro_search")
    if found is None:
        found = current_app.extensions["electro_search"] = SearchCache(runtime().settings)
    return found


def _client_identity() -> str:
    """The account when signed in (``g.account``, set by the auth layer), else the IP address."""
    account: SignedIn | None = g.get("account")
    return f"user:{account.user.id}" if account is not None else f"ip:{client_ip()}"


def _fragment(html: str) -> Response:
    response = Response(html, content_type="text/html; charset=utf-8")
    response.headers.add("Vary", "HX-Request")
    return response


@bp.app_template_filter("money")
def money(cents: int) -> str:
    return format_price(cents)


@bp.app_template_filter("highlight")
def highlight(value: str, words: tuple[str, ...]) -> Markup:
    return search.highlight(value, words)


@bp.get("/search")
@rate_limit(60, timedelta(minutes=1))
async def search_page() -> Response:
    value = request.args.get("q", "")
    query, html, hits = await cache().results(value)
    await cache().record(query, hits)
    if is_htmx():
        return _fragment(html)
    return await render(
        "search.html", "partials/search_results.html", q=value, query=query,
        results_html=Markup(html), trending_html=Markup(await cache().trending()),  # noqa: S704
    )


@bp.get("/trending")
async def trending_fragment() -> Response:
    return _fragment(await cache().trending())
