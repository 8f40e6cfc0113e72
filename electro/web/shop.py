"""Shop pages."""

from __future__ import annotations

from quart import Blueprint, Response

from electro.services import catalog
from electro.web import db, render

bp = Blueprint("shop", __name__)


@bp.get("/")
async def index() -> Response:
    categories = await catalog.categories_with_counts(db())
    return await render("index.html", "partials/categories.html", categories=categories)
