"""Live search and trending in a real Chromium, with and without JavaScript."""

from __future__ import annotations

from typing import Any

import pytest

from electro.db import make_engine, make_sessionmaker
from tests.support.shop import CATALOGUE, insert_catalogue

pytestmark = pytest.mark.browser


@pytest.fixture
def live_server_env(live_server_env: dict[str, str]) -> dict[str, str]:
    # Trending shows a search at once instead of after the cache's few seconds.
    return {**live_server_env, "ELECTRO_SEARCH_CACHE_SECONDS": "0"}


@pytest.fixture
async def seeded(database_url: str) -> None:
    engine = make_engine(database_url)
    try:
        async with make_sessionmaker(engine).begin() as db:
            await insert_catalogue(db, CATALOGUE)
    finally:
        await engine.dispose()


async def test_typing_shows_results_without_a_page_load(
    seeded: None, live_server: Any, page: Any, browser_errors: list[str]
) -> None:
    await page.goto(live_server.url + "/")
    await page.wait_for_function("typeof htmx === 'object'")
    await page.evaluate("window.samePage = true")  # a page load would forget it
    await page.locator('input[name="q"]').press_sequentially("lum", delay=40)
    results = page.locator("#search-results .result-name")
    await results.first.wait_for()
    names = await results.all_inner_texts()
    assert names[0] == "Lumen Phone Pro 12"
    assert await page.locator("#search-results mark").first.inner_text() == "Lumen"
    assert await page.evaluate("window.samePage") is True
    assert page.url == live_server.url + "/"
    assert browser_errors == []


async def test_trending_suggestion_appears_and_a_click_searches(
    seeded: None, live_server: Any, page: Any, browser_errors: list[str]
) -> None:
    assert (await page.request.get(live_server.url + "/search?q=Kestrel")).status == 200
    await page.goto(live_server.url + "/")
    await page.wait_for_function("typeof htmx === 'object'")
    await page.evaluate("window.samePage = true")
    suggestion = page.locator(".trending-list a", has_text="kestrel")
    await suggestion.click()
    await page.wait_for_url("**/search?q=kestrel")
    await page.locator("main .result-name").first.wait_for()
    assert await page.locator("main .result-name").all_inner_texts() == ["Kestrel Laptop Air 14"]
    assert await page.locator('input[name="q"]').input_value() == "kestrel"
    assert await page.evaluate("window.samePage") is True  # boosted: swapped, not reloaded
    assert browser_errors == []


async def test_without_javascript_the_search_form_still_works(
    seeded: None, live_server: Any, js_disabled_page: Any, browser_errors: list[str]
) -> None:
    page = js_disabled_page
    await page.goto(live_server.url + "/")
    await page.locator('input[name="q"]').fill("cafe")
    async with page.expect_navigation():
        await page.locator('input[name="q"]').press("Enter")
    assert page.url == live_server.url + "/search?q=cafe"
    assert "Café Racer Speaker" in await page.locator("main .result-name").all_inner_texts()
    # Sorting and paging are plain links too.
    await page.goto(live_server.url + "/")
    await page.locator(".category-name", has_text="Phones").click()
    await page.locator("a.sort", has_text="Price").click()
    assert "sort=price" in page.url
    assert browser_errors == []
