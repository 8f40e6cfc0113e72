"""The shop API, version 1 (SPEC B3): the public catalogue, read only, and the token owner's
account. Each route parses, calls one service and answers JSON; errors are problem details
(electro.web.errors). Public answers carry an ETag and answer a matching If-None-Match with
304: the catalogue version (bumped by triggers on every product and category change) validates
products without running their query; the rest are validated by a hash of their body."""

from __future__ import annotations

import hashlib
from urllib.parse import urlencode

from pydantic import BaseModel
from quart import Blueprint, Response, request
from quart_schema import document_response, security_scheme, tag_blueprint, validate_querystring

from electro.api import schemas
from electro.services import catalog, orders, search, trending
from electro.web import db, runtime
from electro.web.bearer import required_bearer

bp = Blueprint("api_v1", __name__, url_prefix="/api/v1")
tag_blueprint(bp, ["catalogue"])
JSON = "application/json"
PUBLIC = "public, max-age=0, must-revalidate"  # may be stored, but asked again each time


def _json(model: BaseModel, etag: str | None = None) -> Response:
    response = Response(model.model_dump_json(), content_type=JSON)
    if etag is not None:
        response.headers["ETag"] = etag
        response.headers["Cache-Control"] = PUBLIC
    return response


def _not_modified(etag: str) -> Response | None:
    """304 when the client already holds this representation (RFC 9110 If-None-Match)."""
    sent = request.headers.get("If-None-Match", "")
    held = {tag.strip().removeprefix("W/") for tag in sent.split(",")}
    if etag in held or "*" in held:
        response = Response(status=304)
        response.headers["ETag"] = etag
        response.headers["Cache-Control"] = PUBLIC
        return response
    return None


async def _catalogue_etag(what: str) -> str:
    """Names the catalogue version and the request (path and query string): a different page
    or filter of the same version is another representation."""
    version = await search.catalogue_version(db())
    digest = hashlib.sha256(request.full_path.encode()).hexdigest()[:16]
    return f'"{what}-{version}-{digest}"'


def _body_etagged(model: BaseModel) -> Response:
    body = model.model_dump_json()
    etag = f'"{hashlib.sha256(body.encode()).hexdigest()[:32]}"'
    return _not_modified(etag) or _json(model, etag)


@bp.get("/categories")
@document_response(schemas.Categories)
@document_response(schemas.Problem, 429)
async def categories() -> Response:
    """Every category, by name, with how many products it holds."""
    rows = await catalog.categories_with_counts(db())
    return _body_etagged(schemas.Categories(
        categories=[schemas.category_out(row, count) for row, count in rows]))


@bp.get("/products")
@validate_querystring(schemas.ProductQuery)
@document_response(schemas.ProductPage)
@document_response(schemas.Problem, 400)
@document_response(schemas.Problem, 404)
@document_response(schemas.Problem, 429)
async def products(query_args: schemas.ProductQuery) -> Response:
    """Products, filtered by words and category, sorted, paged by a keyset cursor.

    Follow `next` for the following page: it keeps the filters and the sort."""
    etag = await _catalogue_etag("products")
    if (unchanged := _not_modified(etag)) is not None:
        return unchanged
    found = await catalog.product_slice(
        db(), q=query_args.q, category_id=query_args.category, sort=query_args.sort,
        direction=query_args.dir, cursor=query_args.cursor, limit=query_args.limit)
    following = None
    if found.next_cursor is not None:
        kept = {"q": query_args.q, "category": query_args.category, "sort": query_args.sort,
                "dir": query_args.dir, "limit": query_args.limit, "cursor": found.next_cursor}
        following = f"{request.path}?" + urlencode(
            {name: value for name, value in kept.items() if value not in ("", None)})
    return _json(schemas.ProductPage(
        products=[schemas.product_out(row, found.prior_prices.get(row.id))
                  for row in found.products], next=following), etag)


@bp.get("/products/<int:product_id>")
@document_response(schemas.Product)
@document_response(schemas.Problem, 404)
@document_response(schemas.Problem, 429)
async def product(product_id: int) -> Response:
    """One product, with its prior price when it is reduced."""
    etag = await _catalogue_etag("product")
    if (unchanged := _not_modified(etag)) is not None:
        return unchanged
    shown = await catalog.product(db(), product_id)
    return _json(schemas.product_out(shown.product, shown.prior_price_cents), etag)


@bp.get("/trending")
@document_response(schemas.Trending)
@document_response(schemas.Problem, 429)
async def trending_searches() -> Response:
    """The searches most shoppers made lately (distinct shoppers per day, decayed over a week)."""
    top = await trending.top(db(), await runtime().worker_cache.disallowed_words())
    return _body_etagged(schemas.Trending(trending=[schemas.trend_out(t) for t in top]))


@bp.get("/me")
@security_scheme([{"token": []}])
@document_response(schemas.Me)
@document_response(schemas.Problem, 401)
@document_response(schemas.Problem, 429)
async def me() -> Response:
    """The account of the personal access token sent."""
    user = (await required_bearer()).user
    return _private(schemas.Me(username=user.username, email=user.email,
                               created=user.created_at))


def _private(model: BaseModel) -> Response:
    """A token owner's own data: never stored by a cache on the way."""
    response = _json(model)
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/orders")
@security_scheme([{"token": []}])
@document_response(schemas.Orders)
@document_response(schemas.Problem, 401)
@document_response(schemas.Problem, 429)
async def own_orders() -> Response:
    """The token owner's orders, newest first."""
    found = await orders.own_orders(db(), (await required_bearer()).user)
    return _private(schemas.Orders(orders=[schemas.order_summary(row) for row in found]))


@bp.get("/orders/<number>")
@security_scheme([{"token": []}])
@document_response(schemas.Order)
@document_response(schemas.Problem, 401)
@document_response(schemas.Problem, 404)
@document_response(schemas.Problem, 429)
async def own_order(number: str) -> Response:
    """One of the token owner's orders, with its lines; anyone else's number is a 404."""
    row, lines = await orders.own_order(db(), (await required_bearer()).user, number)
    return _private(schemas.order_out(row, lines))
