"""Live search (S2) and trending suggestions (S3), served through the worker's search cache
(electro.services.worker_cache)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from markupsafe import Markup
from quart import Blueprint, Response, request
from quart_rate_limiter import rate_limit

from electro.web import client_identity, db, is_htmx, runtime
from electro.web.shared import TRENDING_SLOT, personalise, shopper_page

bp = Blueprint("search", __name__)


def _fragment(html: str) -> Response:
    response = Response(html, content_type="text/html; charset=utf-8")
    response.headers.add("Vary", "HX-Request")
    return response


@bp.get("/search")
@rate_limit(60, timedelta(minutes=1))
async def search_page() -> Response:
    value = request.args.get("q", "")
    cache = runtime().worker_cache
    query, html, hits = await cache.results(db, value)
    # Only searches made on the shop count towards trending: a popular page elsewhere linking
    # to /search?q=... (the browser says "cross-site") cannot push a query. A browser too old
    # to say is counted.
    if request.headers.get("Sec-Fetch-Site") not in ("cross-site", "same-site"):
        await cache.record(db(), query, hits, client_identity())
    if is_htmx():
        return _fragment(await personalise(html))

    async def context() -> dict[str, Any]:
        return {"q": value, "query": query,
                "results_html": Markup(html),  # noqa: S704 - our own rendered fragment
                "trending_html": TRENDING_SLOT}

    return await shopper_page("search.html", "partials/search_results.html", context,
                              {TRENDING_SLOT: await cache.trending(db())})


@bp.get("/trending")
async def trending_fragment() -> Response:
    return _fragment(await runtime().worker_cache.trending(db()))
