"""Catalogue pages (S1): home, a category's products (sorted, paginated), one product and its
recommendations (B6)."""

from __future__ import annotations

from markupsafe import Markup
from quart import Blueprint, Response, request

from electro.services import catalog
from electro.services import recommendations as recs
from electro.services.paging import page_number
from electro.web import client_identity, db, is_htmx, render, runtime

bp = Blueprint("shop", __name__)


@bp.get("/")
async def index() -> Response:
    categories = await catalog.categories_with_counts(db())
    return await render(
        "index.html", "partials/categories.html", categories=categories,
        trending_html=Markup(await runtime().search_cache.trending(db())),  # noqa: S704 - our own rendered fragment
    )


@bp.get("/categories/<int:category_id>")
async def category(category_id: int) -> Response:
    args = request.args
    listing = await catalog.category_page(
        db(), category_id, args.get("sort", "name"), args.get("dir", "asc"),
        page_number(args.get("page", 1)),
    )
    return await render("category.html", "partials/product_rows.html", listing=listing)


@bp.get("/products/<int:product_id>")
async def product(product_id: int) -> Response:
    page = await catalog.product(db(), product_id)
    return await render(
        "product.html", "partials/product.html", product=page.product, category=page.category,
        prior_price_cents=page.prior_price_cents,
    )


@bp.get("/products/<int:product_id>/recommendations")
async def recommendations(product_id: int) -> Response:
    """"Often bought together" and "Similar products": the fragment the product page loads when
    it is scrolled into view, or the page its plain link leads to without JavaScript."""
    cache = runtime().recommendation_cache
    fragment = await cache.fragment(db, product_id)
    await cache.viewed(db, fragment.product_id,
                       recs.viewer(runtime().settings.secret_key, client_identity()))
    if is_htmx():
        response = Response(fragment.html, content_type="text/html; charset=utf-8")
        response.headers.add("Vary", "HX-Request")
        return response
    return await render("recommendations.html", "partials/recommendations.html",
                        product_id=fragment.product_id, product_name=fragment.product_name,
                        related_html=Markup(fragment.html))  # noqa: S704 - our own rendered fragment
