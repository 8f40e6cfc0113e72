"""Buying in a real Chromium with JavaScript (issue 13's "done when"): add from live search
and from a product page, watch the header count change without a reload, change a quantity,
log in at checkout, place a bank-transfer order and get the mail with its number."""

from __future__ import annotations

from typing import Any

import pytest
from argon2 import PasswordHasher
from playwright.async_api import expect

from electro.db import make_engine, make_sessionmaker
from electro.models import User
from tests.support import TEST_PASSWORD, Mailbox, body_of
from tests.support.shop import CATALOGUE, insert_catalogue

pytestmark = pytest.mark.browser


async def _shop_and_shopper(database_url: str) -> dict[str, int]:
    engine = make_engine(database_url)
    try:
        async with make_sessionmaker(engine).begin() as db:
            ids = await insert_catalogue(db, CATALOGUE)
            db.add(User(username="ann", email="ann@example.com",
                        password_hash=PasswordHasher(time_cost=1, memory_cost=1024,
                                                     parallelism=1).hash(TEST_PASSWORD)))
    finally:
        await engine.dispose()
    return ids


async def test_search_add_change_log_in_and_order_by_bank_transfer(
    live_server: Any, page: Any, browser_errors: list[str], database_url: str,
    mailbox: Mailbox,
) -> None:
    ids = await _shop_and_shopper(database_url)
    count = page.locator("#basket-count")
    await page.goto(live_server.url + "/")
    await page.wait_for_function("typeof htmx === 'object'")
    await page.evaluate("window.samePage = true")  # a page load would forget it
    await page.locator('input[name="q"]').press_sequentially("lumen phone", delay=30)
    await page.locator("#search-results .result").first.wait_for()
    await page.locator("#search-results .result", has_text="Lumen Phone Pro 12").get_by_role(
        "button", name="Add to basket").click()
    await expect(count).to_have_text("1")
    assert "Added “Lumen Phone Pro 12”" in await page.locator("#notices").inner_text()
    assert await page.evaluate("window.samePage") is True

    await page.goto(f"{live_server.url}/products/{ids['Quiet Keyboard']}")
    await page.wait_for_function("typeof htmx === 'object'")
    await page.evaluate("window.samePage = true")
    await page.locator("#product input[name=quantity]").fill("2")
    await page.locator("#product").get_by_role("button", name="Add to basket").click()
    await expect(count).to_have_text("3")
    assert await page.evaluate("window.samePage") is True

    await page.goto(live_server.url + "/basket")
    await page.wait_for_function("typeof htmx === 'object'")
    await page.evaluate("window.samePage = true")
    await page.get_by_label("Quantity of Quiet Keyboard").fill("1")
    keyboard_row = page.locator("#basket tr", has_text="Quiet Keyboard")
    await keyboard_row.get_by_role("button", name="Update").click()
    await expect(count).to_have_text("2")
    assert await page.locator("#basket-subtotal").inner_text() == "€888.00"  # 799 + 89
    assert await page.evaluate("window.samePage") is True

    await page.get_by_role("link", name="Check out").click()
    await page.wait_for_url("**/login?next=/checkout")
    await page.fill("#login", "ann")
    await page.fill("#password", TEST_PASSWORD)
    await page.click("#login-form button[type=submit]")
    await page.wait_for_url(live_server.url + "/checkout")
    assert await count.inner_text() == "2"  # the basket came along
    for field, value in (("#name", "Ann Example"), ("#street", "Hauptstraße 1"),
                         ("#postcode", "10115"), ("#city", "Berlin"), ("#country", "Germany")):
        await page.fill(field, value)
    await page.get_by_label("Bank transfer").check()
    await page.locator("#checkout-form button[type=submit]").click()
    await page.wait_for_url("**/account/orders/*")
    number = page.url.rsplit("/", 1)[1]
    assert f"Order {number}" in await page.locator("h1").inner_text()
    assert await count.inner_text() == "0"
    (mail,) = await mailbox.wait_for("ann@example.com")
    assert number in mail["Subject"] and f"Payment reference: {number}" in body_of(mail)
    assert browser_errors == []
