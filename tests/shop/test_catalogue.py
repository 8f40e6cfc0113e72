"""S1 catalogue: home, category listing (sort links, pagination bounds), product page."""

from __future__ import annotations

import re
from typing import Any

import pytest

from electro.models import Category, Product
from electro.services.catalog import PAGE_SIZE, format_price
from tests.support.shop import add_catalogue


def test_prices_are_exact() -> None:
    assert format_price(5) == "€0.05"
    assert format_price(1999) == "€19.99"
    assert format_price(123_456_789) == "€1,234,567.89"
    assert format_price(-250) == "-€2.50"


async def test_home_links_every_category(client: Any, catalogue: dict[str, int]) -> None:
    body = await (await client.get("/")).get_data(as_text=True)
    assert re.search(r'<a class="category-name" href="/categories/\d+">Phones</a>', body)
    assert 'name="q"' in body


async def test_product_page_shows_every_fact(client: Any, catalogue: dict[str, int]) -> None:
    body = await (await client.get(f"/products/{catalogue['Lumen Phone Pro 12']}")).get_data(
        as_text=True
    )
    for fact in ("Lumen Phone Pro 12", "Lumen", ">Phones</a>", "€799.00",
                 "Lowest price in the 30 days before the reduction: €899.00",
                 "A bright OLED phone.", "3 in stock"):
        assert fact in body
    plain = await (await client.get(f"/products/{catalogue['Smart Plug']}")).get_data(as_text=True)
    assert "Lowest price" not in plain and "Müller Technik" in plain
    fragment = await client.get(f"/products/{catalogue['Smart Plug']}", htmx=True)
    assert "<html" not in await fragment.get_data(as_text=True)


@pytest.mark.parametrize("path", ["/products/999999", "/products/99999999999999999999",
                                  "/categories/999999", "/categories/99999999999999999999",
                                  "/products/abc"])
async def test_missing_things_are_404(client: Any, path: str) -> None:
    assert (await client.get(path)).status_code == 404


@pytest.fixture
async def crowded(app: Any) -> int:
    """One category with a page and a half of products, prices descending with the name."""
    ids = await add_catalogue(app, [
        (f"Item {n:02d}", f"Maker {n % 3}", "Crowded", 10_000 - n * 100, None, "")
        for n in range(PAGE_SIZE + 6)
    ])
    async with app.extensions["electro"].sessions() as db:
        found = await db.get(Product, ids["Item 00"])
        assert found is not None
        return found.category_id


def _rows(body: str) -> list[str]:
    return re.findall(r'<td><a href="/products/\d+">([^<]+)</a></td>', body)


async def test_sorting_by_each_column_both_ways(client: Any, crowded: int) -> None:
    async def first(query: str) -> str:
        body = await (await client.get(f"/categories/{crowded}?{query}")).get_data(as_text=True)
        return _rows(body)[0]

    assert await first("sort=name&dir=asc") == "Item 00"
    assert await first("sort=name&dir=desc") == "Item 29"
    assert await first("sort=price&dir=asc") == "Item 29"  # cheapest
    assert await first("sort=price&dir=desc") == "Item 00"
    assert await first("sort=company&dir=asc") == "Item 00"  # Maker 0, then by id
    assert await first("sort=company&dir=desc") == "Item 29"  # Maker 2, highest id first
    assert await first("sort=evil'--&dir=sideways") == "Item 00"  # junk: name ascending


async def test_sort_links_toggle_and_keep_working_without_javascript(
    client: Any, crowded: int
) -> None:
    body = await (await client.get(f"/categories/{crowded}?sort=price&dir=asc")).get_data(
        as_text=True
    )
    assert f'class="sort sort-asc" href="/categories/{crowded}?sort=price&amp;dir=desc"' in body
    assert f'href="/categories/{crowded}?sort=name&amp;dir=asc"' in body
    assert f'href="/categories/{crowded}?sort=company&amp;dir=asc"' in body
    # Paging keeps the order.
    assert f'href="/categories/{crowded}?sort=price&amp;dir=asc&amp;page=2"' in body


@pytest.mark.parametrize(("page", "shown", "rows"), [
    ("1", 1, PAGE_SIZE), ("2", 2, 6), ("0", 1, PAGE_SIZE), ("-5", 1, PAGE_SIZE),
    ("1000000000", 2, 6), ("9" * 5000, 1, PAGE_SIZE), ("junk", 1, PAGE_SIZE), ("", 1, PAGE_SIZE),
    ("1.5", 1, PAGE_SIZE),
])
async def test_pagination_is_clamped(
    client: Any, crowded: int, page: str, shown: int, rows: int
) -> None:
    response = await client.raw.get(f"/categories/{crowded}", query_string={"page": page})
    assert response.status_code == 200
    body = await response.get_data(as_text=True)
    assert f"Page {shown} of 2" in body
    assert len(_rows(body)) == rows


async def test_empty_category_has_one_page(client: Any, app: Any) -> None:
    async with app.extensions["electro"].sessions.begin() as db:
        empty = Category(name="Empty")
        db.add(empty)
    body = await (await client.get(f"/categories/{empty.id}?page=7")).get_data(as_text=True)
    assert "Page 1 of 1" in body and "No products in this category yet." in body
