"""Issue 12: shopper pages rendered once per catalogue version, keyset paging, validators.

Through the real parts: the app's routes and cache, the admin's inline edit, the database's
triggers (which move the catalogue version)."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select, update

from electro.models import Category, Product
from electro.services import catalog
from electro.services.catalog import DIRECTIONS, PAGE_SIZE, SORTS
from electro.services.paging import clamp
from tests.support import Client
from tests.support.admin import hidden
from tests.support.shop import add_catalogue

TOKEN = re.compile(r'"X-CSRF-Token": "([^"]+)"')
BASKET = re.compile(r'<span id="basket-count">([^<]*)</span>')


def _product_ids(html: str) -> list[int]:
    return [int(n) for n in re.findall(r'<td><a href="/products/(\d+)">', html)]


async def _page(client: Client, path: str, **kwargs: Any) -> str:
    response = await client.get(path, **kwargs)
    assert response.status_code == 200, path
    return str(await response.get_data(as_text=True))


async def test_a_conditional_get_is_answered_304_until_an_admin_edit(
    app: Any, client: Client, admin_client: Client, catalogue: dict[str, int]
) -> None:
    phone = catalogue["Lumen Phone Pro 12"]
    first = await client.get(f"/products/{phone}")
    etag = first.headers["ETag"]
    assert first.headers["Cache-Control"] == "private, no-cache"  # a browser's, revalidated
    again = await client.get(f"/products/{phone}", headers={"If-None-Match": etag})
    assert again.status_code == 304 and await again.get_data() == b""
    assert (await client.get(f"/products/{phone}", headers={"If-None-Match": '"other"'})
            ).status_code == 200

    editor = await (await admin_client.get(f"/admin/tables/products/{phone}/edit", htmx=True)
                    ).get_data(as_text=True)
    edited = await admin_client.post(f"/admin/tables/products/{phone}/edit", {
        "version": hidden(editor, "version"), "price": "777.00", "stock": "3"}, htmx=True)
    assert edited.status_code == 200
    # The edit went through this worker: its next request re-reads the catalogue version.
    changed = await client.get(f"/products/{phone}", headers={"If-None-Match": etag})
    assert changed.status_code == 200 and changed.headers["ETag"] != etag
    assert "€777.00" in await changed.get_data(as_text=True)


async def test_another_workers_edit_shows_within_the_staleness(
    app: Any, client: Client, catalogue: dict[str, int], settings_overrides: dict[str, Any]
) -> None:
    phone = catalogue["Lumen Phone Pro 12"]
    staleness = app.extensions["electro"].settings.search_cache_seconds
    before = await _page(client, f"/products/{phone}")
    home = await _page(client, "/")
    assert "A bright OLED phone." in before and "(1)" in home
    # Another worker's change: straight in the database, this worker is not told.
    async with app.extensions["electro"].sessions.begin() as db:
        await db.execute(update(Product).where(Product.id == phone)
                         .values(description="Now brighter."))
        db.add(Product(name="Second Phone", company="Lumen", price_cents=100, stock=1,
                       description="", category_id=await _category_of(app, phone)))
    assert await _page(client, f"/products/{phone}") == before  # rendered once, kept
    await asyncio.sleep(staleness + 0.05)
    assert "Now brighter." in await _page(client, f"/products/{phone}")
    assert re.search(r">Phones</a> <span class=\"count\">\(2\)", await _page(client, "/"))


async def test_visitors_never_get_each_others_token_or_basket_count(
    app: Any, catalogue: dict[str, int]
) -> None:
    phone = catalogue["Lumen Phone Pro 12"]
    category_page = f"/categories/{(await _category_of(app, phone))}?sort=price&dir=desc"
    buyer, other = Client(app), Client(app)
    await buyer.refresh_token()
    assert (await buyer.post("/basket/items", {"product_id": str(phone), "quantity": "2"},
                             htmx=True)).status_code == 200
    handed_out: set[str] = set()
    for path in ("/", f"/products/{phone}", category_page, "/search?q=phone"):
        for htmx in (False, True):
            seen = {}
            for visitor in (buyer, other, buyer, other):  # the second round is served cached
                html = await _page(visitor, path, htmx=htmx)
                assert "<!--" not in html.replace("<!--[", "")  # every slot filled
                tokens = set(re.findall(r'name="csrf_token" value="([^"]+)"', html)) | set(
                    TOKEN.findall(html))
                counts = BASKET.findall(html)
                seen.setdefault(visitor, (tokens, counts))
                assert (tokens, counts) == seen[visitor], path
            (buyer_tokens, buyer_count), (other_tokens, other_count) = seen.values()
            assert not buyer_tokens & other_tokens
            handed_out |= buyer_tokens | other_tokens
            if not htmx:
                assert buyer_tokens and other_tokens
                assert (buyer_count, other_count) == (["2"], ["0"])
    cached = app.extensions["electro"].worker_cache.values
    pages = [html for key, html in cached.items() if key[0] == "page"]
    # Four pages and three fragments (search's fragment is kept as a search result).
    assert len(pages) == 7 and len(handed_out) == 2
    assert not any(token in html for html in pages for token in handed_out)


async def test_signed_in_shoppers_share_the_render_with_their_own_header(
    app: Any, client: Client, user_client: Client, admin_client: Client,
    catalogue: dict[str, int]
) -> None:
    phone = catalogue["Lumen Phone Pro 12"]
    anonymous = await _page(client, f"/products/{phone}")
    assert "Log in" in anonymous and "Log out" not in anonymous
    cached = app.extensions["electro"].worker_cache.values
    [key] = [key for key in cached if key[0] == "page"]
    assert not any(word in cached[key] for word in ("Log in", "Log out"))  # a slot there
    cached[key] = cached[key].replace("</main>", "<p>kept render</p></main>")  # marks it
    mine = await _page(user_client, f"/products/{phone}")
    assert "Log out" in mine and "Log in" not in mine and 'href="/admin"' not in mine
    admins = await _page(admin_client, f"/products/{phone}")
    assert "Log out" in admins and 'href="/admin"' in admins
    assert "kept render" in mine and "kept render" in admins  # one render served all three


async def test_a_notice_is_shown_to_its_visitor_only(
    app: Any, client: Client, catalogue: dict[str, int]
) -> None:
    phone = catalogue["Lumen Phone Pro 12"]
    await _page(Client(app), f"/products/{phone}")  # cached
    added = await client.post("/basket/items", {"product_id": str(phone), "quantity": "1"},
                              headers={"Referer": f"/products/{phone}"})
    assert added.status_code == 302
    page = await _page(client, f"/products/{phone}")
    assert 'class="notice"' in page
    assert 'class="notice"' not in await _page(Client(app), f"/products/{phone}")


async def _category_of(app: Any, product_id: int) -> int:
    async with app.extensions["electro"].sessions() as db:
        return int(await db.scalar(select(Product.category_id).where(Product.id == product_id)))


# Few distinct values: ties in every sort column, so the id must break them.
ROW = st.tuples(st.sampled_from(["Able", "Baker", "Cable"]), st.sampled_from(["Helix", "Lumen"]),
                st.sampled_from([100, 250, 999]))
# Sizes spread over several pages (hypothesis would mostly draw short lists).
ROWS = st.integers(0, 3 * PAGE_SIZE + 5).flatmap(
    lambda n: st.lists(ROW, min_size=n, max_size=n))
ASKS = st.lists(st.tuples(st.sampled_from(sorted(SORTS)), st.sampled_from(DIRECTIONS),
                          st.integers(-1, 6)), min_size=1, max_size=6)


async def test_keyset_pages_are_exactly_the_offset_pages(
    app: Any, client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Hypothesis draws catalogues full of ties and the pages asked of them (out-of-range
    ones too); every page is compared with what ORDER BY ... OFFSET gives. The examples are
    drawn first, then run on the test's event loop. A key every 2 pages, so the drawn
    catalogues (up to 4 pages) page both from the start and from a key."""
    monkeypatch.setattr(catalog, "PAGES_PER_KEY", 2)
    examples: list[tuple[list[tuple[str, str, int]], list[tuple[str, str, int]]]] = []

    @settings(max_examples=25, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(ROWS, ASKS)
    def draw(rows: list[tuple[str, str, int]], asks: list[tuple[str, str, int]]) -> None:
        examples.append((rows, asks))

    draw()
    for n, (rows, asks) in enumerate(examples):
        names = [(f"{name} {i}" if i % 2 else name, company, f"Drawn {n}", price, None, "")
                 for i, (name, company, price) in enumerate(rows)]
        # Product names repeat ("Able" twice): insert_catalogue keys by name, so find ids anew.
        await add_catalogue(app, names or [("Only", "Helix", f"Drawn {n}", 1, None, "")])
        async with app.extensions["electro"].sessions() as db:
            category = (await db.execute(
                select(Category.id).where(Category.name == f"Drawn {n}"))).scalar_one()
            total = len(names) or 1
            for sort, direction, page in asks:
                column = SORTS[sort]
                order = (column.asc(), Product.id.asc()) if direction == "asc" else (
                    column.desc(), Product.id.desc())
                shown, pages = clamp(page, total, PAGE_SIZE)
                expected = list(await db.scalars(
                    select(Product.id).where(Product.category_id == category).order_by(*order)
                    .limit(PAGE_SIZE).offset((shown - 1) * PAGE_SIZE)))
                html = await _page(client, f"/categories/{category}?sort={sort}"
                                           f"&dir={direction}&page={page}")
                assert _product_ids(html) == expected, (sort, direction, page)
                assert f"Page {shown} of {pages}" in html
