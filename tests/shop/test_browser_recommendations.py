"""The product page's recommendations in a real Chromium: loaded by htmx when scrolled into
view, with no console or CSP errors; without JavaScript, a plain link to the same lists."""

from __future__ import annotations

from typing import Any

import pytest

from electro.db import make_engine, make_sessionmaker
from tests.support.shop import CATALOGUE, insert_catalogue

pytestmark = pytest.mark.browser


@pytest.fixture
async def phone_id(database_url: str) -> int:
    """The catalogue with a second phone, so the phone has a similar product."""
    engine = make_engine(database_url)
    try:
        async with make_sessionmaker(engine).begin() as db:
            rows = [*CATALOGUE, ("Lumen Phone Mini", "Lumen", "Phones", 59_900, None, "Small.")]
            return (await insert_catalogue(db, rows))["Lumen Phone Pro 12"]
    finally:
        await engine.dispose()


async def test_the_fragment_loads_into_the_product_page(
    phone_id: int, live_server: Any, page: Any, browser_errors: list[str]
) -> None:
    await page.goto(f"{live_server.url}/products/{phone_id}")
    similar = page.locator("#recommendations .picks a", has_text="Lumen Phone Mini")
    await similar.wait_for()
    assert page.url == f"{live_server.url}/products/{phone_id}"
    assert await page.locator("#recommendations h2").all_inner_texts() == ["Similar products"]
    assert browser_errors == []


async def test_without_javascript_a_link_leads_to_the_lists(
    phone_id: int, live_server: Any, js_disabled_page: Any, browser_errors: list[str]
) -> None:
    await js_disabled_page.goto(f"{live_server.url}/products/{phone_id}")
    await js_disabled_page.locator("#recommendations a").click()
    await js_disabled_page.wait_for_url(f"**/products/{phone_id}/recommendations")
    assert await js_disabled_page.locator("main .picks a").all_inner_texts() == [
        "Lumen Phone Mini"]
    assert browser_errors == []
