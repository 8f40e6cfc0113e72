"""B3: the public catalogue as JSON: listing, keyset paging, one product, trending, ETags."""

from __future__ import annotations

from typing import Any

from electro.services.catalog import InvalidCursor
from tests.support.shop import add_catalogue


async def _json(client: Any, path: str, status: int = 200, **kwargs: Any) -> Any:
    response = await client.get(path, **kwargs)
    assert response.status_code == status, await response.get_data(as_text=True)
    return await response.get_json()


async def test_categories_list_every_category_with_its_count(
    client: Any, catalogue: dict[str, int]
) -> None:
    body = await _json(client, "/api/v1/categories")
    names = [c["name"] for c in body["categories"]]
    assert names == sorted(names) and "Phones" in names
    assert all(c["products"] == 1 for c in body["categories"])


async def test_a_product_has_cents_a_currency_and_its_prior_price(
    client: Any, catalogue: dict[str, int]
) -> None:
    phone = await _json(client, f"/api/v1/products/{catalogue['Lumen Phone Pro 12']}")
    assert phone["price"] == {"cents": 79_900, "currency": "EUR"}
    assert phone["prior_price"] == {"cents": 89_900, "currency": "EUR"}
    plug = await _json(client, f"/api/v1/products/{catalogue['Smart Plug']}")
    assert plug["prior_price"] is None and plug["company"] == "Müller Technik"
    missing = await client.get("/api/v1/products/2147483647")
    assert missing.status_code == 404
    assert missing.headers["Content-Type"] == "application/problem+json"
    assert (await missing.get_json())["detail"] == "There is no such product."


async def test_paging_follows_next_links_through_every_product_once(
    client: Any, app: Any
) -> None:
    rows = [(f"Gadget {n:03d}", "Acme", "Gadgets", 1000 + (n % 7), None, "") for n in range(53)]
    await add_catalogue(app, rows)
    for sort, direction in (("name", "asc"), ("price", "desc"), ("company", "asc")):
        seen: list[dict[str, Any]] = []
        path: str | None = f"/api/v1/products?sort={sort}&dir={direction}&limit=10"
        pages = 0
        while path is not None:
            body = await _json(client, path)
            seen += body["products"]
            path, pages = body["next"], pages + 1
        assert pages == 6 and len({p["id"] for p in seen}) == 53
        keys = [(p["price"]["cents"] if sort == "price" else p[sort], p["id"]) for p in seen]
        assert keys == sorted(keys, reverse=direction == "desc")


async def test_filters_by_words_and_category(client: Any, catalogue: dict[str, int]) -> None:
    found = await _json(client, "/api/v1/products?q=lumen")
    assert {p["name"] for p in found["products"]} >= {"Lumen Phone Pro 12", "Studio Monitor 27"}
    phones = await _json(client, "/api/v1/categories")
    phone_category = next(c["id"] for c in phones["categories"] if c["name"] == "Phones")
    only = await _json(client, f"/api/v1/products?q=lumen&category={phone_category}")
    assert [p["name"] for p in only["products"]] == ["Lumen Phone Pro 12"]
    await _json(client, "/api/v1/products?category=2147483647", 404)


async def test_bad_parameters_and_altered_cursors_are_400_problems(
    client: Any, catalogue: dict[str, int]
) -> None:
    for query in ("sort=stock", "dir=up", "limit=0", "limit=101", "category=%D9%A3",
                  "cursor=not!base64", "category=99999999999999999999"):
        problem = await _json(client, f"/api/v1/products?{query}", 400)
        assert problem["status"] == 400 and problem["errors"], query
    first = await _json(client, "/api/v1/products?limit=2")
    cursor = first["next"].split("cursor=")[1]
    # A cursor handed out for one sort is refused by another; made-up ones too.
    for path in (f"/api/v1/products?limit=2&sort=price&cursor={cursor}",
                 "/api/v1/products?cursor=WyJuYW1lIiwiYXNjIiwxLDFd",  # ["name","asc",1,1]
                 "/api/v1/products?cursor=e30"):  # {}
        problem = await _json(client, path, 400)
        assert problem["errors"] == {"cursor": "Use the next link of a response, unchanged."}
    assert InvalidCursor.status == 400


async def test_every_public_endpoint_answers_304_while_unchanged(
    client: Any, app: Any, catalogue: dict[str, int]
) -> None:
    paths = ["/api/v1/categories", "/api/v1/products?q=lumen", "/api/v1/trending",
             f"/api/v1/products/{catalogue['Smart Plug']}"]
    etags = {}
    for path in paths:
        etags[path] = (await client.get(path)).headers["ETag"]
        again = await client.get(path, headers={"If-None-Match": f'"other", {etags[path]}'})
        assert again.status_code == 304 and await again.get_data() == b"", path
        assert again.headers["ETag"] == etags[path]
    await add_catalogue(app, [("New Thing", "Acme", "Novelties", 100, None, "")])
    for path in paths[:2] + paths[3:]:  # the catalogue changed: a new representation
        changed = await client.get(path, headers={"If-None-Match": etags[path]})
        assert changed.status_code == 200 and changed.headers["ETag"] != etags[path], path


async def test_trending_lists_counted_searches(client: Any, catalogue: dict[str, int]) -> None:
    await client.get("/search?q=lumen")
    body = await _json(client, "/api/v1/trending")
    assert [t["query"] for t in body["trending"]] == ["lumen"]
