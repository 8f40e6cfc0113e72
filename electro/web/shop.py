"""Catalogue pages (S1): home, a category's products (sorted, paginated), one product and its
recommendations (B6).

Each page is rendered once per catalogue version for anonymous visitors (electro.web.shared), and
what it is built from (category counts, the page keys of a sorted listing) is kept per version
for everyone (electro.services.worker_cache).
"""

from __future__ import annotations

from typing import Any

from markupsafe import Markup
from quart import Blueprint, Response, request

from electro.services import catalog
from electro.services import recommendations as recs
from electro.services.paging import page_number
from electro.web import client_identity, db, is_htmx, own_transaction, render, runtime
from electro.web.shared import TRENDING_SLOT, personalise, shopper_page

bp = Blueprint("shop", __name__)




@bp.get("/")
async def index() -> Response:
    async def context() -> dict[str, Any]:
        return {"categories": await runtime().worker_cache.category_counts(db),
                "trending_html": TRENDING_SLOT}

    trending = await runtime().worker_cache.trending(db())
    return await shopper_page("index.html", "partials/categories.html", context,
                              {TRENDING_SLOT: trending})


@bp.get("/categories/<int:category_id>")
async def category(category_id: int) -> Response:
    args = request.args

    async def context() -> dict[str, Any]:
        return {"listing": await catalog.category_page(
            db(), category_id, args.get("sort", "name"), args.get("dir", "asc"),
            page_number(args.get("page", 1)), runtime().worker_cache.page_keys)}

    return await shopper_page("category.html", "partials/product_rows.html", context)


@bp.get("/products/<int:product_id>")
async def product(product_id: int) -> Response:
    async def context() -> dict[str, Any]:
        page = await catalog.product(db(), product_id)
        return {"product": page.product, "category": page.category,
                "prior_price_cents": page.prior_price_cents}

    return await shopper_page("product.html", "partials/product.html", context)


@bp.get("/products/<int:product_id>/recommendations")
async def recommendations(product_id: int) -> Response:
    """"Often bought together" and "Similar products": the fragment the product page loads when
    it is scrolled into view, or the page its plain link leads to without JavaScript."""
    rt = runtime()
    fragment = await rt.worker_cache.related(db, product_id)
    if rt.view_buffer.viewed(fragment.product_id,
                             recs.viewer(rt.settings.secret_key, client_identity())):
        await rt.view_buffer.flush(own_transaction)
    if is_htmx():
        response = Response(await personalise(fragment.html),
                            content_type="text/html; charset=utf-8")
        response.headers.add("Vary", "HX-Request")
        return response
    return await render("recommendations.html", "partials/recommendations.html",
                        product_id=fragment.product_id, product_name=fragment.product_name,
                        related_html=Markup(await personalise(fragment.html)))  # noqa: S704 - our own rendered fragment
