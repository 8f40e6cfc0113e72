"""S2 live search: matching, ranking, highlighting, hostile input, page or fragment."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from electro import cli
from electro.db import make_engine
from electro.models import Category, Product, SearchDaily
from electro.services import search
from tests.support.shop import add_catalogue


async def _names(app: Any, value: str) -> list[str]:
    async with app.extensions["electro"].sessions() as db:
        return [hit.name for hit in (await search.search(db, value)).hits]


async def test_ranking_puts_name_above_company_above_category_above_description(
    app: Any,
) -> None:
    await add_catalogue(app, [
        ("Plain Four", "Acme", "Misc", 100, None, "Made by zeta engineers."),
        ("Plain Three", "Acme", "Zeta", 100, None, ""),
        ("Plain Two", "Zeta", "Misc", 100, None, ""),
        ("Zeta One", "Acme", "Misc", 100, None, ""),
        ("Unrelated", "Acme", "Misc", 100, None, "Nothing here."),
    ])
    assert await _names(app, "zeta") == ["Zeta One", "Plain Two", "Plain Three", "Plain Four"]


async def test_seed_demo_fills_the_index_and_leaves_its_upkeep_on(cli_database: str) -> None:
    """seed-demo pauses the index's per-row upkeep and fills it once at the end: every seeded
    product is found, and one added afterwards too (the triggers are back)."""
    await asyncio.to_thread(cli.main, ["seed-demo", "--products", "30"])
    engine = make_engine(cli_database)
    try:
        async with AsyncSession(engine) as db:
            seeded = list(await db.scalars(select(Product)))
            for product in seeded:
                found = (await search.search(db, f"{product.name} {product.company}")).hits
                assert product.id in {hit.id for hit in found}
            assert await search.catalogue_version(db) > 0
            db.add(Product(name="Zyzzyva Probe", company="Acme", price_cents=100,
                           category_id=seeded[0].category_id))
            await db.commit()
            assert [hit.name for hit in (await search.search(db, "zyzzyva")).hits] == [
                "Zyzzyva Probe"]
    finally:
        await engine.dispose()
    assert len(seeded) == 30


async def test_last_word_is_a_prefix_and_every_word_must_match(
    app: Any, catalogue: dict[str, int]
) -> None:
    assert await _names(app, "kest") == ["Kestrel Laptop Air 14"]
    assert await _names(app, "laptop ai") == ["Kestrel Laptop Air 14"]
    assert await _names(app, "lap air") == []  # only the last word is a prefix
    assert await _names(app, "kestrel phone") == []  # every word must match
    # Name, then company, then the description that says "Lumen phone".
    assert await _names(app, "lumen phone") == ["Lumen Phone Pro 12", "Quiet Keyboard"]
    # "lumen" as the last word is a prefix too: "Lumens" in a description matches, ranked last.
    assert (await _names(app, "lumen"))[-1] == "Pixel Camera X"


async def test_accents_and_case_are_ignored_both_ways(app: Any, catalogue: dict[str, int]) -> None:
    assert "Café Racer Speaker" in await _names(app, "cafe racer")
    assert "Café Racer Speaker" in await _names(app, "CAFÉ RACER")
    assert await _names(app, "muller") == ["Smart Plug"]
    assert await _names(app, "MÜLL") == ["Smart Plug"]


async def test_search_follows_product_and_category_changes(
    app: Any, catalogue: dict[str, int]
) -> None:
    sessions = app.extensions["electro"].sessions
    async with sessions.begin() as db:
        await db.execute(
            update(Product).where(Product.id == catalogue["Smart Plug"])
            .values(name="Smart Socket", version=Product.version + 1)
        )
        await db.execute(
            update(Category).where(Category.name == "Monitors").values(name="Displays")
        )
        await db.execute(delete(Product).where(Product.id == catalogue["Quiet Keyboard"]))
    assert await _names(app, "socket") == ["Smart Socket"]
    assert await _names(app, "plug") == []
    assert await _names(app, "displays") == ["Studio Monitor 27"]
    assert await _names(app, "monitors") == []
    assert "Quiet Keyboard" not in await _names(app, "lumen")


async def test_matches_are_highlighted_and_escaped(client: Any, catalogue: dict[str, int]) -> None:
    body = await (await client.get("/search?q=script", htmx=True)).get_data(as_text=True)
    assert "&lt;<mark>script</mark>&gt;alert(1)&lt;/<mark>script</mark>&gt; Cable" in body
    assert "<script" not in body
    assert "Evil &amp; Co" in body
    body = await (await client.get("/search?q=cafe", htmx=True)).get_data(as_text=True)
    assert "<mark>Café</mark> Racer Speaker" in body


def test_highlight_escapes_text_around_and_inside_marks() -> None:
    words = search.terms("<b>caf")
    assert words == ("b", "caf")
    assert str(search.highlight("<b>Café & cafés</b>", words)) == (
        "&lt;<mark>b</mark>&gt;<mark>Café</mark> &amp; <mark>cafés</mark>&lt;/<mark>b</mark>&gt;"
    )


@pytest.fixture
def no_rate_limits(settings_overrides: dict[str, Any]) -> None:
    settings_overrides["rate_limits"] = False  # these tests are about input, not limits


HOSTILE = [
    "", " ", '"', "'", '"unterminated', "a AND OR NOT b", "NEAR(a b)", "*", "a*", "^x", "x:y",
    "name:lumen", "-lumen", "lumen OR 1=1; DROP TABLE products;--", "<script>alert(1)</script>",
    "\x00", "lu\x00men", "lumen\x00", "(((", "{col}: x", "x" * 10_000, "lumen " * 2_000,
    "&&!!|:*", "😀 lumen", "\\", "%", "_", "e\u0301",
]


async def test_hostile_input_gets_a_normal_answer(
    no_rate_limits: None, client: Any, catalogue: dict[str, int]
) -> None:
    for value in HOSTILE:
        for headers in ({}, {"HX-Request": "true"}):
            response = await client.raw.get("/search", query_string={"q": value}, headers=headers)
            assert response.status_code == 200, repr(value)
            assert "<script>alert" not in await response.get_data(as_text=True)
    # Bytes that are not UTF-8, and a NUL, straight in the query string.
    response = await client.raw.get("/search?q=%ff%00%fe%22lumen&q=second")
    assert response.status_code == 200


async def test_hostile_input_with_real_words_still_finds(
    client: Any, catalogue: dict[str, int]
) -> None:
    for value in ['"lumen', "lumen OR 1=1; DROP TABLE products;--", "lu\x00men", "(lumen)*"]:
        response = await client.raw.get("/search", query_string={"q": value},
                                         headers={"HX-Request": "true"})
        assert response.status_code == 200
    body = await (await client.get("/search?q=%22lumen", htmx=True)).get_data(as_text=True)
    assert "<mark>Lumen</mark> Phone Pro 12" in body


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=st.text())
async def test_any_text_never_breaks_search(
    no_rate_limits: None, client: Any, catalogue: dict[str, int], value: str
) -> None:
    response = await client.raw.get("/search", query_string={"q": value},
                                    headers={"HX-Request": "true"})
    assert response.status_code == 200


async def test_page_without_htmx_and_fragment_with_it(
    client: Any, catalogue: dict[str, int]
) -> None:
    page = await client.get("/search?q=lumen")
    fragment = await client.get("/search?q=lumen", htmx=True)
    page_body = await page.get_data(as_text=True)
    fragment_body = await fragment.get_data(as_text=True)
    assert page.status_code == fragment.status_code == 200
    assert "<html" in page_body and 'id="results"' in page_body and 'value="lumen"' in page_body
    assert "<html" not in fragment_body and 'id="results"' in fragment_body
    for response in (page, fragment):
        assert "HX-Request" in response.headers.get("Vary", "")
    # The same fragment template serves both.
    results = re.search(r'<div class="results".*?</ul>', page_body, re.S)
    assert results and results.group(0) in fragment_body
    # A boosted link (trending suggestions) swaps the whole body: it gets the page.
    boosted = await client.raw.get(
        "/search?q=lumen", headers={"HX-Request": "true", "HX-Boosted": "true"}
    )
    assert "<html" in await boosted.get_data(as_text=True)


async def test_empty_and_unmatched_queries(client: Any, catalogue: dict[str, int]) -> None:
    assert (await (await client.get("/search?q=", htmx=True)).get_data(as_text=True)).strip() == ""
    page = await (await client.get("/search")).get_data(as_text=True)
    assert "Type a product" in page
    body = await (await client.get("/search?q=zzzzqqq", htmx=True)).get_data(as_text=True)
    assert "No products match “zzzzqqq”" in body


async def test_search_box_is_htmx_active_search(client: Any) -> None:
    page = await (await client.get("/")).get_data(as_text=True)
    box = re.search(r'<input type="search" name="q".*?>', page, re.S)
    assert box
    for attribute in ('hx-get="/search"', 'hx-trigger="input changed delay:200ms, search"',
                      'hx-target="#search-results"', 'hx-indicator="#search-indicator"'):
        assert attribute in box.group(0)
    assert 'id="search-results"' in page and 'action="/search" method="get"' in page


async def test_search_has_a_tight_rate_limit(client: Any) -> None:
    statuses = [(await client.get("/search?q=x", htmx=True)).status_code for _ in range(61)]
    assert statuses[:60] == [200] * 60 and statuses[60] == 429


async def test_catalogue_version_moves_with_every_transaction_that_changes_products(
    app: Any, catalogue: dict[str, int]
) -> None:
    sessions = app.extensions["electro"].sessions
    postgres = app.extensions["electro"].engine.dialect.name == "postgresql"

    async def version() -> int:
        async with sessions() as db:
            return await search.catalogue_version(db)

    async def change_prices(statements: int) -> None:
        async with sessions.begin() as db:
            for cents in range(statements):
                await db.execute(update(Product).where(Product.id == catalogue["Smart Plug"])
                                 .values(price_cents=1_000 + cents))

    start = await version()
    await change_prices(50)
    after_first = await version()
    # PostgreSQL bumps once per transaction however many statements it runs (migration 0005);
    # SQLite bumps per row.
    assert after_first == start + (1 if postgres else 50)
    await change_prices(1)  # the next transaction on the same pooled connection moves it again
    assert await version() == after_first + 1
    with pytest.raises(RuntimeError):
        async with sessions.begin() as db:
            await db.execute(update(Product).values(stock=Product.stock + 1))
            raise RuntimeError("rolled back")
    assert await version() == after_first + 1


@pytest.fixture
def version_checked_each_time(settings_overrides: dict[str, Any]) -> None:
    settings_overrides["search_cache_seconds"] = 0.0


async def test_cached_fragment_is_dropped_when_the_catalogue_changes(
    version_checked_each_time: None, app: Any, client: Any, catalogue: dict[str, int]
) -> None:
    async def fragment() -> str:
        return str(await (await client.get("/search?q=smart", htmx=True)).get_data(as_text=True))

    assert "€19.99" in await fragment()
    async with app.extensions["electro"].sessions.begin() as db:
        await db.execute(update(Product).where(Product.id == catalogue["Smart Plug"])
                         .values(price_cents=1_499, version=Product.version + 1))
    assert "€14.99" in await fragment()


async def test_a_cached_answer_still_records_the_search(
    app: Any, client: Any, catalogue: dict[str, int]
) -> None:
    for address in ("10.0.0.1", "10.0.0.2", "10.0.0.2"):
        response = await client.raw.get("/search?q=lumen", headers={"HX-Request": "true"},
                                        scope_base={"client": (address, 1)})
        assert response.status_code == 200
    async with app.extensions["electro"].sessions() as db:
        assert await db.scalar(select(SearchDaily.clients)) == 2
